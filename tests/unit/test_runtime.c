/* SPDX-License-Identifier: MIT */
/*
 * spec/pool.md's states and transitions, tested as a table without
 * processes: the runtime runs with fake operations (struct
 * psup_runtime_ops: fake pids, recorded signals and verdicts, a probe that
 * answers what the test says), is given a configuration by
 * psup_config_parse, and is driven the way the loop drives it: a message,
 * an exit, a stop or the time passing, each followed by expire and
 * maintain. One test per row of the table, named after it; each checks the
 * worker's state, the pool's counts, exactly the signals, verdicts and
 * starts the runtime issued, and the log records that row calls for.
 *
 * Configurations listen on 127.0.0.1:0 (psup_runtime_apply binds them);
 * the log goes to a memory file the test reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "config/config.h"
#include "runtime/control.h"
#include "runtime/runtime.h"
#include "runtime/stats.h"

/* ---- fake operations ---------------------------------------------------- */

/* Far above any pid the kernel gives (PID_MAX_LIMIT is 4194304): a real
 * kill() that slipped past the seam would fail with ESRCH, not hit a
 * process. */
#define FIRST_PID 5000000
#define GONE (-1)
#define T0 1000000 /* ms, the runtime's clock at the start of each test */

enum fake_op { OP_SPAWN, OP_SIGNAL, OP_VERDICT, OP_WATCH, OP_UNWATCH };

struct fake_call {
    enum fake_op op;
    pid_t pid;      /* SPAWN: not compared; SIGNAL: -pid for the group */
    int sig;        /* SIGNAL; WATCH, UNWATCH: the socket (not compared) */
    uint64_t value; /* VERDICT */
    bool hold;      /* SPAWN: held until a verdict (scarce slots) */
};

struct fake {
    pid_t next_pid;
    int spawn_error; /* -errno: spawn fails */
    int probe_error; /* -errno: the probe finds no free slot */
    int readable;    /* what every listening socket says (wait mode) */
    int watch_error; /* -errno: the loop cannot watch a socket */
    int watching;    /* sockets watched now */
    unsigned probes;
    unsigned stacks_mapped, stacks_unmapped;
    pid_t spawned[256];
    size_t n_spawned;
    struct fake_call calls[512];
    size_t n_calls;
    size_t seen; /* calls already checked */
};

static void record(struct fake *f, struct fake_call call)
{
    assert_true(f->n_calls < sizeof(f->calls) / sizeof(f->calls[0]));
    f->calls[f->n_calls++] = call;
}

static int fake_stack_map(void *arg, struct psup_stack *stack)
{
    struct fake *f = arg;

    f->stacks_mapped++;
    stack->base = NULL;
    stack->size = 0;
    return 0;
}

static void fake_stack_unmap(void *arg, struct psup_stack *stack)
{
    struct fake *f = arg;

    (void)stack;
    f->stacks_unmapped++;
}

static pid_t fake_spawn(void *arg, struct psup_child *child, const struct psup_stack *stack)
{
    struct fake *f = arg;

    (void)stack;
    if (f->spawn_error)
        return f->spawn_error;
    pid_t pid = f->next_pid++;
    f->spawned[f->n_spawned++] = pid;
    record(f, (struct fake_call){OP_SPAWN, pid, 0, 0, child->hold});
    return pid;
}

static int fake_signal(void *arg, pid_t pid, int sig)
{
    record(arg, (struct fake_call){OP_SIGNAL, pid, sig, 0, false});
    return 0;
}

static int fake_verdict(void *arg, pid_t pid, uint64_t value)
{
    record(arg, (struct fake_call){OP_VERDICT, pid, 0, value, false});
    return 0;
}

static int fake_probe(void *arg, const struct psup_stack *stack)
{
    struct fake *f = arg;

    (void)stack;
    f->probes++;
    return f->probe_error;
}

static int fake_readable(void *arg, int fd)
{
    struct fake *f = arg;

    (void)fd;
    return f->readable;
}

static int fake_watch(void *arg, int fd, bool on)
{
    struct fake *f = arg;

    if (f->watch_error && on)
        return f->watch_error;
    record(f, (struct fake_call){on ? OP_WATCH : OP_UNWATCH, 0, fd, 0, false});
    f->watching += on ? 1 : -1;
    return 0;
}

/* ---- the test's runtime ------------------------------------------------- */

struct rt_test {
    struct psup_runtime rt;
    struct fake fake;
    int log_fd;
    off_t log_mark;
    uint64_t now;
    bool draining; /* shutdown: the backlogs are looked at before maintain */
    bool stopping; /* the loop no longer calls maintain */
};

static int setup(void **state)
{
    struct rt_test *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    assert_int_equal(psup_runtime_init(&t->rt, -1, true), 0);
    t->fake.next_pid = FIRST_PID;
    t->rt.ops = (struct psup_runtime_ops){.stack_map = fake_stack_map,
                                          .stack_unmap = fake_stack_unmap,
                                          .spawn = fake_spawn,
                                          .signal = fake_signal,
                                          .verdict = fake_verdict,
                                          .probe = fake_probe,
                                          .readable = fake_readable,
                                          .arg = &t->fake};
    t->rt.hooks = (struct psup_runtime_hooks){.watch = fake_watch, .arg = &t->fake};
    t->rt.nproc_limit = 0; /* slots are scarce only where a test says so */
    t->log_fd = memfd_create("log", MFD_CLOEXEC);
    assert_true(t->log_fd >= 0);
    psup_log_setup(t->log_fd, PSUP_LOG_TEXT, PSUP_LOG_INFO);
    t->now = T0;
    *state = t;
    return 0;
}

static struct psup_worker *find_worker(const struct rt_test *t, pid_t pid)
{
    for (struct psup_list *p = t->rt.services.next; p != &t->rt.services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        for (struct psup_list *q = s->workers.next; q != &s->workers; q = q->next) {
            struct psup_worker *w = PSUP_CONTAINER(q, struct psup_worker, link);
            if (w->pid == pid)
                return w;
        }
    }
    return NULL;
}

static struct psup_service *find_service(const struct rt_test *t, const char *name)
{
    for (struct psup_list *p = t->rt.services.next; p != &t->rt.services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* Every worker is reaped before the runtime is freed, as the loop does; the
 * stacks must all have gone back through the seam. */
static int teardown(void **state)
{
    struct rt_test *t = *state;

    while (t->rt.live) {
        for (size_t i = 0; i < t->fake.n_spawned; i++)
            if (find_worker(t, t->fake.spawned[i]))
                psup_runtime_on_exit(&t->rt, t->fake.spawned[i], 0, t->now);
    }
    psup_runtime_free(&t->rt);
    assert_int_equal(t->fake.stacks_mapped, t->fake.stacks_unmapped);
    psup_log_setup(2, PSUP_LOG_TEXT, PSUP_LOG_INFO);
    close(t->log_fd);
    free(t);
    return 0;
}

/* What the loop does after every event (supervisor.c, make_progress). */
static void progress(struct rt_test *t)
{
    psup_runtime_expire(&t->rt, t->now);
    if (t->draining && !t->stopping)
        psup_runtime_drain_backlogs(&t->rt, t->now);
    if (!t->stopping)
        psup_runtime_maintain(&t->rt, t->now);
}

static void advance(struct rt_test *t, uint64_t ms)
{
    t->now += ms;
    progress(t);
}

/* ---- configurations ----------------------------------------------------- */

#define POOL1 "'pool': {'min_spare': 1, 'max_spare': 1, 'max_workers': 4}"
#define SERVICE(name) "{'name': '" name "', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true'], "

static void apply_doc(struct rt_test *t, const char *doc)
{
    struct psup_diag d;
    struct psup_apply_report rep;
    char *text = strdup(doc);

    assert_non_null(text);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    psup_diag_init(&d);
    struct psup_config *cfg = psup_config_parse(text, strlen(text), "t.json", &d);
    for (size_t i = 0; !cfg && i < d.count; i++)
        print_error("config: %s\n", d.items[i]);
    assert_non_null(cfg);
    psup_diag_free(&d);
    free(text);
    assert_int_equal(psup_runtime_apply(&t->rt, cfg, t->now, &rep), 0);
    psup_config_unref(cfg);
    progress(t); /* the loop makes progress after a reload too */
}

/* One service "s" with these members besides name, listen and command. */
static void apply(struct rt_test *t, const char *members)
{
    char doc[1024];

    snprintf(doc, sizeof(doc), "{'services': [" SERVICE("s") "%s}]}", members);
    apply_doc(t, doc);
}

/* ---- events ------------------------------------------------------------- */

static struct psup_peer client(uint8_t n)
{
    struct psup_peer peer = {.family = AF_INET6, .port = 40000};

    /* 127.0.0.n, v4-mapped as a worker reports it. */
    peer.addr[10] = peer.addr[11] = 0xff;
    peer.addr[12] = 127;
    peer.addr[15] = n;
    return peer;
}

static void send_message(struct rt_test *t, pid_t pid, enum psup_msg_kind kind, uint32_t seq,
                         uint8_t from, int err, uint32_t step)
{
    struct psup_msg m = {.kind = kind, .pid = pid, .err = err, .step = step, .seq = seq};

    m.peer = client(from);
    /* The loop reads messages without calling expire or maintain after
     * them (supervisor.c, channel_cb): what a message starts, the runtime
     * starts itself. */
    psup_runtime_on_message(&t->rt, &m, &(struct psup_passed_fds){-1, -1}, t->now);
}

static void message(struct rt_test *t, pid_t pid, enum psup_msg_kind kind, uint32_t seq,
                    uint8_t from)
{
    send_message(t, pid, kind, seq, from, 0, 0);
}

/* A message about a connection that came through a load balancer,
 * 127.0.0.9 (spec/proxy.md): peer is the header's source. */
static void proxied(struct rt_test *t, pid_t pid, enum psup_msg_kind kind, uint32_t seq,
                    uint8_t from, int err)
{
    struct psup_msg m = {.kind = kind, .pid = pid, .err = err, .seq = seq};

    m.peer = client(from);
    m.proxy = client(9);
    psup_runtime_on_message(&t->rt, &m, &(struct psup_passed_fds){-1, -1}, t->now);
}

static void reap(struct rt_test *t, pid_t pid, int status)
{
    assert_true(psup_runtime_on_exit(&t->rt, pid, status, t->now));
    progress(t);
}

static void stop(struct rt_test *t, pid_t pid, bool stopped)
{
    psup_runtime_on_stop(&t->rt, pid, stopped);
    progress(t);
}

/* The graceful stop's phases (spec/signals.md). */
static void shutdown_begins(struct rt_test *t)
{
    t->draining = true;
    psup_runtime_stop_accepting(&t->rt, t->now);
    progress(t);
}

static void shutdown_timeout(struct rt_test *t)
{
    t->stopping = true;
    psup_runtime_terminate_all(&t->rt, t->now);
    progress(t);
}

#define EXITED(code) W_EXITCODE(code, 0)
#define KILLED(sig) (sig)

/* ---- expectations ------------------------------------------------------- */

static pid_t spawned(const struct rt_test *t, size_t i)
{
    assert_true(i < t->fake.n_spawned);
    return t->fake.spawned[i];
}

static const char *state_name(int state)
{
    static const char *const names[] = {"IDLE", "RETIRING", "STOPPED", "READING", "BUSY",
                                        "TERMINATING", "KILLING"};
    return state == GONE ? "(gone)" : names[state];
}

#define expect_state(t, pid, want) expect_state_(t, pid, want, __LINE__)
static void expect_state_(const struct rt_test *t, pid_t pid, int want, int line)
{
    const struct psup_worker *w = find_worker(t, pid);
    int got = w ? (int)w->state : GONE;

    if (got != want)
        fail_msg("line %d: worker %d is %s, want %s", line, (int)pid, state_name(got),
                 state_name(want));
}

#define expect_pool(t, i, b, r, s) expect_pool_(t, i, b, r, s, __LINE__)
static void expect_pool_(const struct rt_test *t, unsigned idle, unsigned busy,
                         unsigned retiring, unsigned stopped, int line)
{
    const struct psup_service *s = find_service(t, "s");

    assert_non_null(s);
    if (s->idle != idle || s->busy != busy || s->retiring != retiring || s->stopped != stopped)
        fail_msg("line %d: idle=%u busy=%u retiring=%u stopped=%u, want %u %u %u %u", line,
                 s->idle, s->busy, s->retiring, s->stopped, idle, busy, retiring, stopped);
}

static void describe(const struct fake_call *c, char *buf, size_t size)
{
    switch (c->op) {
    case OP_SPAWN:
        snprintf(buf, size, "spawn%s", c->hold ? " (held)" : "");
        break;
    case OP_SIGNAL:
        snprintf(buf, size, "signal %d to %d", c->sig, (int)c->pid);
        break;
    case OP_VERDICT:
        snprintf(buf, size, "verdict %d (connnum %u, seq %u) to %d",
                 (int)psup_verdict_code(c->value), psup_verdict_connnum(c->value),
                 psup_verdict_seq(c->value), (int)c->pid);
        break;
    case OP_WATCH:
    case OP_UNWATCH:
        snprintf(buf, size, "%s fd %d", c->op == OP_WATCH ? "watch" : "unwatch", c->sig);
        break;
    }
}

static bool same_call(const struct fake_call *got, const struct fake_call *want)
{
    if (got->op != want->op)
        return false;
    switch (want->op) {
    case OP_SPAWN: return got->hold == want->hold;
    case OP_SIGNAL: return got->pid == want->pid && got->sig == want->sig;
    case OP_VERDICT: return got->pid == want->pid && got->value == want->value;
    case OP_WATCH: case OP_UNWATCH: return true; /* the fd is the listener's */
    }
    return false;
}

/* Exactly these calls, in this order, since the last check. */
static void expect_calls_(struct rt_test *t, const struct fake_call *want, size_t n, int line)
{
    const struct fake_call *got = t->fake.calls + t->fake.seen;
    size_t n_got = t->fake.n_calls - t->fake.seen;
    bool ok = n_got == n;

    for (size_t i = 0; ok && i < n; i++)
        ok = same_call(&got[i], &want[i]);
    t->fake.seen = t->fake.n_calls;
    if (ok)
        return;
    char buf[128];
    for (size_t i = 0; i < n_got; i++) {
        describe(&got[i], buf, sizeof(buf));
        print_error("    got:  %s\n", buf);
    }
    for (size_t i = 0; i < n; i++) {
        describe(&want[i], buf, sizeof(buf));
        print_error("    want: %s\n", buf);
    }
    fail_msg("line %d: not the calls expected", line);
}

#define SPAWN {OP_SPAWN, 0, 0, 0, false}
#define SPAWN_HELD {OP_SPAWN, 0, 0, 0, true}
#define SIGNAL(pid, sig) {OP_SIGNAL, (pid), (sig), 0, false}
#define VERDICT(pid, code, connnum, seq)                                                      \
    {OP_VERDICT, (pid), 0, psup_verdict_encode((code), 0, (connnum), (seq)), false}
#define EXPECT_CALLS(t, ...)                                                                  \
    expect_calls_(t, (const struct fake_call[]){__VA_ARGS__},                                 \
                  sizeof((const struct fake_call[]){__VA_ARGS__}) / sizeof(struct fake_call),  \
                  __LINE__)
#define EXPECT_NO_CALLS(t) expect_calls_(t, NULL, 0, __LINE__)

/* The log written since the last check, NUL-terminated (free it). */
static char *new_log(struct rt_test *t)
{
    off_t end = lseek(t->log_fd, 0, SEEK_END);
    size_t len = (size_t)(end - t->log_mark);
    char *buf = malloc(len + 1);

    assert_non_null(buf);
    assert_int_equal(pread(t->log_fd, buf, len, t->log_mark), (ssize_t)len);
    buf[len] = '\0';
    t->log_mark = end;
    return buf;
}

/* Pass over what was logged so far. */
static void skip_log(struct rt_test *t)
{
    free(new_log(t));
}

/* A record as a test names it: "event=timeout conn=1", words that must all
 * be on its line. */
struct record {
    char buf[256];
    const char *words[8];
};

static void parse_record(const char *text, struct record *r)
{
    size_t n = 0;

    snprintf(r->buf, sizeof(r->buf), "%s", text);
    for (char *w = strtok(r->buf, " "); w && n < 7; w = strtok(NULL, " "))
        r->words[n++] = w;
    r->words[n] = NULL;
}

static bool line_has(const char *line, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (!memmem(line, len, *words, strlen(*words)))
            return false;
    return true;
}

/* The log since the last check must hold exactly one line for each record,
 * and no warning or error that is not one of them. */
#define EXPECT_LOG(t, ...) expect_log_(t, (const char *const[]){__VA_ARGS__, NULL}, __LINE__)
#define EXPECT_QUIET_LOG(t) expect_log_(t, (const char *const[]){NULL}, __LINE__)
static void expect_log_(struct rt_test *t, const char *const *texts, int line)
{
    struct record records[8];
    unsigned hits[8] = {0};
    size_t n = 0;
    char *log = new_log(t);
    bool ok = true;

    for (; texts[n]; n++) {
        assert_true(n < 8);
        parse_record(texts[n], &records[n]);
    }
    for (const char *p = log; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        bool matched = false;
        for (size_t i = 0; i < n; i++)
            if (line_has(p, len, records[i].words)) {
                hits[i]++;
                matched = true;
            }
        bool notable = memmem(p, len, "level=warn", 10) || memmem(p, len, "level=error", 11);
        if (notable && !matched) {
            print_error("line %d: unexpected: %.*s\n", line, (int)len, p);
            ok = false;
        }
        p += len + (nl ? 1 : 0);
    }
    for (size_t i = 0; i < n; i++)
        if (hits[i] != 1) {
            print_error("line %d: %u records with \"%s\"\n", line, hits[i], texts[i]);
            ok = false;
        }
    if (!ok) {
        print_error("the log:\n%s", log);
        fail_msg("line %d: not the log records expected", line);
    }
    free(log);
}

static unsigned source_count(const struct rt_test *t, uint8_t from)
{
    const struct psup_service *s = find_service(t, "s");
    struct psup_peer peer = client(from);
    struct psup_source src;

    psup_peer_source(&peer, 128, &src);
    return psup_sources_count(&s->sources, &src);
}

static const struct psup_service *svc(const struct rt_test *t)
{
    const struct psup_service *s = find_service(t, "s");

    assert_non_null(s);
    return s;
}

/* ==== (none) -> IDLE ===================================================== */

/* | (none) | pool below min_spare and below max_workers, backoff allows |
 * IDLE | clone a worker | */
static void none_to_idle_clone_up_to_min_spare(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 3}");
    EXPECT_CALLS(t, SPAWN, SPAWN);
    expect_state(t, spawned(t, 0), PSUP_WORKER_IDLE);
    expect_state(t, spawned(t, 1), PSUP_WORKER_IDLE);
    expect_pool(t, 2, 0, 0, 0);
    progress(t);
    EXPECT_NO_CALLS(t);
    /* One handler: one spare more fits under max_workers. */
    message(t, spawned(t, 0), PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN);
    /* Two: the limit is reached, no spare is started. */
    message(t, spawned(t, 1), PSUP_MSG_RUNNING, 1, 2);
    EXPECT_NO_CALLS(t);
    expect_pool(t, 1, 2, 0, 0);
    advance(t, 60000);
    EXPECT_NO_CALLS(t);
}

/* | (none) | ... while slots are scarce | IDLE | held until a probe shows
 * headroom, then released (a verdict `run` with seq 0) | */
static void none_to_idle_held_while_slots_are_scarce(void **state)
{
    struct rt_test *t = *state;

    t->rt.nproc_limit = 3; /* one worker already fills a third of it */
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 3}");
    /* One spare at most, held, probed, released. */
    EXPECT_CALLS(t, SPAWN_HELD, VERDICT(spawned(t, 0), PSUP_VERDICT_RUN, 0, 0));
    assert_int_equal(t->fake.probes, 1);
    expect_state(t, spawned(t, 0), PSUP_WORKER_IDLE);
    expect_pool(t, 1, 0, 0, 0);
    EXPECT_QUIET_LOG(t);
}

/* | (none) | ... no headroom | (none) | the held worker is killed before it
 * took anything; its death is not a failure | */
static void none_held_worker_killed_without_headroom(void **state)
{
    struct rt_test *t = *state;

    t->rt.nproc_limit = 3;
    t->fake.probe_error = -EAGAIN;
    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN_HELD, SIGNAL(w, SIGKILL));
    EXPECT_LOG(t, "event=spawn_failed errno=EAGAIN retry_ms=50");
    assert_true(t->rt.spawn_failing);
    reap(t, w, KILLED(SIGKILL));
    expect_state(t, w, GONE);
    assert_int_equal(svc(t)->counters.failed, 0);
    assert_int_equal(svc(t)->backoff.failures, 0);
    EXPECT_QUIET_LOG(t);
    /* Starts wait for the timer meanwhile; then it is tried again. */
    EXPECT_NO_CALLS(t);
    t->fake.probe_error = 0;
    advance(t, 50);
    EXPECT_CALLS(t, SPAWN_HELD, VERDICT(spawned(t, 1), PSUP_VERDICT_RUN, 0, 0));
}

/* | (none) | clone fails (EAGAIN, ENOMEM) | (none) | log spawn_failed once;
 * retry after 50 ms, doubling to 2 s; spawn_recovered after a calm second | */
static void none_clone_fails(void **state)
{
    struct rt_test *t = *state;

    t->fake.spawn_error = -EAGAIN;
    apply(t, POOL1);
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=spawn_failed errno=EAGAIN retry_ms=50");
    expect_pool(t, 0, 0, 0, 0);
    advance(t, 49);
    advance(t, 1); /* fails again: logged once per burst */
    EXPECT_QUIET_LOG(t);
    assert_int_equal(t->rt.spawn_delay, 100);
    t->fake.spawn_error = 0;
    advance(t, 99);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    /* Slots are scarce until a calm second: held and probed. */
    EXPECT_CALLS(t, SPAWN_HELD, VERDICT(spawned(t, 0), PSUP_VERDICT_RUN, 0, 0));
    advance(t, 1000);
    EXPECT_LOG(t, "event=spawn_recovered");
    assert_false(t->rt.spawn_failing);
}

/* ==== BUSY, RUNNING ====================================================== */

/* | IDLE | BUSY, verdict run | BUSY | count the source; start the timeout;
 * replace the spare | */
static void idle_busy_run_to_busy(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 2, 'timeout': 5");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    message(t, w, PSUP_MSG_BUSY, 7, 1);
    EXPECT_CALLS(t, VERDICT(w, PSUP_VERDICT_RUN, 1, 7), SPAWN);
    expect_state(t, w, PSUP_WORKER_BUSY);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(svc(t)->counters.accepted, 1);
    assert_int_equal(find_worker(t, w)->deadline, T0 + 5000);
    EXPECT_QUIET_LOG(t);
}

/* | IDLE | RUNNING | BUSY | count the source; start the timeout; replace the
 * spare (no verdict: the handler already runs) | */
static void idle_running_to_busy(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 5");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    t->now += 10;
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, w, PSUP_WORKER_BUSY);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(svc(t)->counters.accepted, 1);
    assert_int_equal(find_worker(t, w)->deadline, T0 + 10 + 5000);
    EXPECT_QUIET_LOG(t);
}

/* | any busy state | BUSY or RUNNING again | unchanged | nothing | */
static void busy_busy_or_running_again_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 5, 'timeout': 5");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_BUSY, 1, 1);
    EXPECT_CALLS(t, SPAWN, VERDICT(w, PSUP_VERDICT_RUN, 1, 1), SPAWN);
    message(t, w, PSUP_MSG_RUNNING, 2, 1);
    message(t, w, PSUP_MSG_BUSY, 3, 1);
    EXPECT_NO_CALLS(t);
    expect_state(t, w, PSUP_WORKER_BUSY);
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(svc(t)->counters.accepted, 1);
    assert_int_equal(find_worker(t, w)->deadline, T0 + 5000);
    expect_pool(t, 1, 1, 0, 0);
}

/* | RETIRING | BUSY, verdict run; or RUNNING | BUSY | (an old worker woken at
 * the moment it was retired serves with the old settings) | */
static void retiring_busy_run_or_running_to_busy(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'max_per_source': 2");
    pid_t a = spawned(t, 0), b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(a, SIGURG), SIGNAL(b, SIGURG));
    expect_state(t, a, PSUP_WORKER_RETIRING);
    /* The old generation decides with its own settings: a verdict. */
    message(t, a, PSUP_MSG_BUSY, 3, 1);
    EXPECT_CALLS(t, VERDICT(a, PSUP_VERDICT_RUN, 1, 3));
    expect_state(t, a, PSUP_WORKER_BUSY);
    message(t, b, PSUP_MSG_RUNNING, 1, 2);
    EXPECT_NO_CALLS(t); /* the new generation's spares are there */
    expect_state(t, b, PSUP_WORKER_BUSY);
    expect_pool(t, 2, 2, 0, 0);
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(source_count(t, 2), 1);
}

/* ==== refusals =========================================================== */

/* | IDLE | BUSY, verdict refuse (per_source) | unchanged | count and log | */
static void idle_busy_refused_per_source(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 1");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 1, 1);
    pid_t b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1), SPAWN);
    message(t, b, PSUP_MSG_BUSY, 1, 1);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_PER_SOURCE, 0, 1));
    expect_state(t, b, PSUP_WORKER_IDLE);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(svc(t)->counters.per_source, 1);
    assert_int_equal(svc(t)->counters.accepted, 1);
    assert_int_equal(source_count(t, 1), 1);
    EXPECT_LOG(t, "event=limited reason=max_per_source remote_ip=127.0.0.1");
    /* Another client is not limited. */
    message(t, b, PSUP_MSG_BUSY, 2, 2);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_RUN, 1, 2), SPAWN);
}

/* | IDLE | BUSY, verdict refuse (rate) | unchanged | count and log | */
static void idle_busy_refused_rate(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'rate': 1");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 1, 1);
    pid_t b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1), SPAWN);
    message(t, b, PSUP_MSG_BUSY, 1, 2);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_RATE, 0, 1));
    expect_state(t, b, PSUP_WORKER_IDLE);
    assert_int_equal(svc(t)->counters.rate, 1);
    assert_int_equal(source_count(t, 2), 0); /* a refusal consumes nothing */
    EXPECT_LOG(t, "event=limited reason=rate");
    t->now += 1000;
    message(t, b, PSUP_MSG_BUSY, 2, 2);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_RUN, 1, 2), SPAWN);
}

/* | IDLE | BUSY, verdict refuse (overload) | unchanged | count and log | */
static void idle_busy_refused_overload(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 1, 'max_spare': 1, 'max_workers': 1}, "
             "'on_overload': 'reject'");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 1, 1);
    pid_t b = spawned(t, 1); /* the one spare over the limit */
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1), SPAWN);
    EXPECT_LOG(t, "event=saturated busy=1");
    message(t, b, PSUP_MSG_BUSY, 1, 2);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_OVERLOAD, 0, 1));
    expect_state(t, b, PSUP_WORKER_IDLE);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(svc(t)->counters.overload, 1);
    EXPECT_LOG(t, "event=limited reason=overload");
}

/* | RETIRING | BUSY, verdict refuse | unchanged | count and log | */
static void retiring_busy_refused(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 1");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 1, 1);
    pid_t b = spawned(t, 1);
    apply(t, POOL1 ", 'max_per_source': 1, 'env': {'GEN': '2'}");
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1), SPAWN, SPAWN,
                 SIGNAL(b, SIGURG));
    message(t, b, PSUP_MSG_BUSY, 1, 1);
    EXPECT_CALLS(t, VERDICT(b, PSUP_VERDICT_PER_SOURCE, 0, 1));
    expect_state(t, b, PSUP_WORKER_RETIRING);
    assert_int_equal(svc(t)->counters.per_source, 1);
}

/* | IDLE, RETIRING | BUSY while handlers are being stopped | unchanged |
 * verdict close | */
static void busy_refused_while_stopping(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 1");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    shutdown_begins(t);
    EXPECT_CALLS(t, SIGNAL(w, SIGURG));
    shutdown_timeout(t);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL));
    message(t, w, PSUP_MSG_BUSY, 5, 1);
    EXPECT_CALLS(t, VERDICT(w, PSUP_VERDICT_CLOSE, 0, 5));
    expect_state(t, w, PSUP_WORKER_RETIRING);
    assert_int_equal(source_count(t, 1), 0);
    assert_int_equal(svc(t)->counters.accepted, 0);
}

/* | (not a worker) | BUSY | (none) | verdict close, so that it does not
 * wait | */
static void unknown_pid_busy_gets_close(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    EXPECT_CALLS(t, SPAWN);
    message(t, 4999999, PSUP_MSG_BUSY, 9, 1);
    EXPECT_CALLS(t, VERDICT(4999999, PSUP_VERDICT_CLOSE, 0, 9));
    assert_false(psup_runtime_on_exit(&t->rt, 4999999, 0, t->now));
}

/* ==== DENIED, ACCEPT_FAILED, GAVE_UP ===================================== */

/* | IDLE, RETIRING | DENIED | unchanged | count and log (rate-limited) | */
static void idle_denied_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    for (int i = 0; i < 7; i++)
        message(t, w, PSUP_MSG_DENIED, 0, 1);
    EXPECT_NO_CALLS(t);
    expect_state(t, w, PSUP_WORKER_IDLE);
    assert_int_equal(svc(t)->counters.denied, 7);
    char *log = new_log(t);
    unsigned lines = 0;
    for (char *p = log; (p = strstr(p, "event=denied")); p++)
        lines++;
    assert_int_equal(lines, 5); /* five at once, then one a second */
    free(log);
}

/* | IDLE, RETIRING | ACCEPT_FAILED | unchanged | log (rate-limited) | */
static void idle_accept_failed_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    send_message(t, w, PSUP_MSG_ACCEPT_FAILED, 0, 0, EMFILE, 0);
    EXPECT_NO_CALLS(t);
    expect_state(t, w, PSUP_WORKER_IDLE);
    EXPECT_LOG(t, "event=accept_failed errno=EMFILE");
    assert_int_equal(svc(t)->counters.failed, 0);
}

/* | BUSY | GAVE_UP for the BUSY it was told to run | IDLE | log
 * verdict_timeout; give back the source's count and the connection; cancel
 * the timeout | and | any | GAVE_UP for an older BUSY | unchanged | and then
 * | IDLE | idle above max_spare (newest first) | RETIRING | SIGURG | */
static void busy_gave_up_to_idle(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 2, 'timeout': 5");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 4, 1);
    pid_t b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 4), SPAWN);
    /* A late GAVE_UP for an earlier request changes nothing. */
    message(t, a, PSUP_MSG_GAVE_UP, 3, 1);
    expect_state(t, a, PSUP_WORKER_BUSY);
    EXPECT_LOG(t, "event=verdict_timeout outcome=closed");
    message(t, a, PSUP_MSG_GAVE_UP, 4, 1);
    expect_state(t, a, PSUP_WORKER_IDLE);
    EXPECT_LOG(t, "event=verdict_timeout outcome=closed");
    assert_int_equal(source_count(t, 1), 0);
    assert_int_equal(svc(t)->counters.accepted, 0);
    /* Its timeout is gone with the connection. */
    assert_int_equal(psup_runtime_next_deadline(&t->rt, t->now), 0);
    /* Two idle now, one above max_spare: at the loop's next turn, the
     * newest retires. */
    EXPECT_NO_CALLS(t);
    progress(t);
    EXPECT_CALLS(t, SIGNAL(b, SIGURG));
    expect_pool(t, 1, 0, 1, 0);
    advance(t, 5000);
    EXPECT_NO_CALLS(t);
    expect_state(t, a, PSUP_WORKER_IDLE);
}

/* | BUSY | GAVE_UP, its generation gone or psup stopping | RETIRING | as
 * above, and retire it | */
static void busy_gave_up_old_generation_to_retiring(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 2");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 4, 1);
    pid_t b = spawned(t, 1);
    apply(t, POOL1 ", 'max_per_source': 2, 'env': {'GEN': '2'}");
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 4), SPAWN, SPAWN,
                 SIGNAL(b, SIGURG));
    message(t, a, PSUP_MSG_GAVE_UP, 4, 1);
    EXPECT_CALLS(t, SIGNAL(a, SIGURG));
    expect_state(t, a, PSUP_WORKER_RETIRING);
    assert_int_equal(source_count(t, 1), 0);
}

/* | any | GAVE_UP for a refused BUSY | unchanged | log verdict_timeout | */
static void idle_gave_up_after_refusal_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'max_per_source': 1");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_BUSY, 1, 1);
    pid_t b = spawned(t, 1);
    message(t, b, PSUP_MSG_BUSY, 1, 1);
    EXPECT_CALLS(t, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1), SPAWN,
                 VERDICT(b, PSUP_VERDICT_PER_SOURCE, 0, 1));
    skip_log(t);
    message(t, b, PSUP_MSG_GAVE_UP, 1, 1);
    EXPECT_NO_CALLS(t);
    expect_state(t, b, PSUP_WORKER_IDLE);
    EXPECT_LOG(t, "event=verdict_timeout");
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(svc(t)->counters.accepted, 1);
}

/* ==== IDLE -> RETIRING =================================================== */

/* | IDLE | new generation | RETIRING | start the new spares first, then
 * SIGURG the old idle workers | */
static void idle_new_generation_to_retiring(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}");
    pid_t a = spawned(t, 0), b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'env': {'G': '2'}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(a, SIGURG), SIGNAL(b, SIGURG));
    expect_state(t, a, PSUP_WORKER_RETIRING);
    expect_state(t, b, PSUP_WORKER_RETIRING);
    expect_pool(t, 2, 0, 2, 0);
    /* The same configuration again changes nothing. */
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'env': {'G': '2'}");
    EXPECT_NO_CALLS(t);
    /* Another change retires the second generation, and only it. */
    pid_t c = spawned(t, 2), d = spawned(t, 3);
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'env': {'G': '3'}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(c, SIGURG), SIGNAL(d, SIGURG));
    expect_pool(t, 2, 0, 4, 0);
}

/* | IDLE | service removed | RETIRING | SIGURG; the service is forgotten
 * when its last worker is reaped | */
static void idle_service_removed_to_retiring(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    apply_doc(t, "{'services': [" SERVICE("other") POOL1 "}]}");
    EXPECT_CALLS(t, SPAWN, SIGNAL(w, SIGURG));
    expect_state(t, w, PSUP_WORKER_RETIRING);
    assert_null(svc(t)->current);
    reap(t, w, EXITED(0));
    assert_null(find_service(t, "s"));
    EXPECT_NO_CALLS(t);
    EXPECT_QUIET_LOG(t);
}

/* | IDLE | shutdown | RETIRING | SIGURG; nothing is started any more | */
static void idle_shutdown_to_retiring(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}");
    pid_t a = spawned(t, 0), b = spawned(t, 1);
    message(t, a, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    pid_t c = spawned(t, 2);
    shutdown_begins(t);
    /* Newest first (the least likely to be woken). */
    EXPECT_CALLS(t, SIGNAL(c, SIGURG), SIGNAL(b, SIGURG));
    expect_state(t, a, PSUP_WORKER_BUSY);
    expect_pool(t, 0, 1, 2, 0);
    reap(t, a, EXITED(0));
    EXPECT_NO_CALLS(t);
}

/* ==== stopped and continued ============================================== */

/* | IDLE | stopped | STOPPED | a spare replaces it | */
static void idle_stopped_to_stopped(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    stop(t, w, true);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, w, PSUP_WORKER_STOPPED);
    expect_pool(t, 1, 0, 0, 1);
}

/* | STOPPED | continued | IDLE | the pool is above max_spare again: an idle
 * worker (the newest) retires | */
static void stopped_continued_to_idle_surplus_retires(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    stop(t, w, true);
    pid_t spare = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    stop(t, w, false);
    EXPECT_CALLS(t, SIGNAL(spare, SIGURG));
    expect_state(t, w, PSUP_WORKER_IDLE);
    expect_state(t, spare, PSUP_WORKER_RETIRING);
    expect_pool(t, 1, 0, 1, 0);
}

/* | STOPPED | continued, of an old generation | RETIRING (through IDLE) |
 * SIGURG at once | */
static void stopped_continued_old_generation_retires(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    stop(t, w, true);
    pid_t spare = spawned(t, 1);
    apply(t, POOL1 ", 'env': {'G': '2'}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN, SIGNAL(spare, SIGURG));
    expect_state(t, w, PSUP_WORKER_STOPPED); /* a stopped worker cannot leave */
    stop(t, w, false);
    EXPECT_CALLS(t, SIGNAL(w, SIGURG));
    expect_state(t, w, PSUP_WORKER_RETIRING);
}

/* | RETIRING, any busy state | stopped or continued | unchanged | nothing |
 */
static void busy_or_retiring_stopped_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_RUNNING, 1, 1);
    pid_t b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    stop(t, a, true);
    expect_state(t, a, PSUP_WORKER_BUSY);
    stop(t, a, false);
    expect_state(t, a, PSUP_WORKER_BUSY);
    shutdown_begins(t);
    EXPECT_CALLS(t, SIGNAL(b, SIGURG));
    stop(t, b, true);
    expect_state(t, b, PSUP_WORKER_RETIRING);
    stop(t, b, false);
    expect_state(t, b, PSUP_WORKER_RETIRING);
    expect_pool(t, 0, 1, 1, 0);
    EXPECT_NO_CALLS(t);
}

/* ==== READING: a PROXY header on its way (spec/proxy.md) ================= */

#define PROXIED ", 'proxy_protocol': 'v2', 'proxy_from': ['127.0.0.9']"

/* | IDLE, RETIRING | READING | READING | counted busy; replace the spare | */
static void idle_reading_to_reading(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    proxied(t, w, PSUP_MSG_READING, 0, 9, 0);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, w, PSUP_WORKER_READING);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(svc(t)->counters.accepted, 0);
    EXPECT_QUIET_LOG(t);
}

/* | READING | BUSY, verdict run; or RUNNING | BUSY | the header's source is
 * the client: counted, logged at conn_end with the balancer | */
static void reading_busy_or_running_to_busy(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED ", 'max_per_source': 1");
    pid_t a = spawned(t, 0);
    proxied(t, a, PSUP_MSG_READING, 0, 9, 0);
    pid_t b = spawned(t, 1);
    proxied(t, a, PSUP_MSG_BUSY, 1, 1, 0);
    EXPECT_CALLS(t, SPAWN, SPAWN, VERDICT(a, PSUP_VERDICT_RUN, 1, 1));
    expect_state(t, a, PSUP_WORKER_BUSY);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(source_count(t, 1), 1);
    assert_int_equal(source_count(t, 9), 0);
    /* Another client of the same balancer is another source. */
    proxied(t, b, PSUP_MSG_READING, 0, 9, 0);
    proxied(t, b, PSUP_MSG_BUSY, 1, 2, 0);
    EXPECT_CALLS(t, SPAWN, VERDICT(b, PSUP_VERDICT_RUN, 1, 1));
    expect_pool(t, 1, 2, 0, 0);
    skip_log(t);
    reap(t, a, EXITED(0));
    EXPECT_LOG(t, "event=conn_end remote_ip=127.0.0.1 proxy_ip=127.0.0.9 status=0");

    apply(t, POOL1 PROXIED);
    skip_log(t);
    t->fake.seen = t->fake.n_calls;
    pid_t c = spawned(t, t->fake.n_spawned - 1);
    proxied(t, c, PSUP_MSG_READING, 0, 9, 0);
    proxied(t, c, PSUP_MSG_RUNNING, 0, 3, 0);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, c, PSUP_WORKER_BUSY);
}

/* | READING | PROXY_REFUSED | IDLE; RETIRING if its generation is gone or
 * psup is stopping | count and log proxy_refused (rate-limited) | */
static void reading_proxy_refused_to_idle(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED);
    pid_t a = spawned(t, 0);
    proxied(t, a, PSUP_MSG_READING, 0, 9, 0);
    pid_t b = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    proxied(t, a, PSUP_MSG_PROXY_REFUSED, 0, 9, ETIMEDOUT);
    expect_state(t, a, PSUP_WORKER_IDLE);
    /* Two idle now, above max_spare: the newest leaves. */
    progress(t);
    EXPECT_CALLS(t, SIGNAL(b, SIGURG));
    assert_int_equal(svc(t)->counters.proxy_refused, 1);
    assert_int_equal(svc(t)->counters.accepted, 0);
    EXPECT_LOG(t, "event=proxy_refused reason=timeout proxy_ip=127.0.0.9");
    reap(t, b, EXITED(0));

    proxied(t, a, PSUP_MSG_READING, 0, 9, 0);
    pid_t c = spawned(t, 2);
    apply(t, POOL1 PROXIED ", 'env': {'GEN': '2'}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(c, SIGURG));
    expect_state(t, a, PSUP_WORKER_READING);
    proxied(t, a, PSUP_MSG_PROXY_REFUSED, 0, 9, EPROTO);
    EXPECT_CALLS(t, SIGNAL(a, SIGURG));
    expect_state(t, a, PSUP_WORKER_RETIRING);
    EXPECT_LOG(t, "event=proxy_refused reason=malformed");
}

/* | IDLE | PROXY_REFUSED (outside proxy_from: no header was read) |
 * unchanged | count and log proxy_refused | */
static void idle_proxy_refused_unchanged(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    proxied(t, w, PSUP_MSG_PROXY_REFUSED, 0, 9, EACCES);
    EXPECT_NO_CALLS(t);
    expect_state(t, w, PSUP_WORKER_IDLE);
    EXPECT_LOG(t, "event=proxy_refused reason=proxy_from proxy_ip=127.0.0.9");
}

/* | READING | DENIED (allow/deny judged the header's source) | IDLE |
 * count and log it, with the balancer | */
static void reading_denied_to_idle(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED ", 'deny': ['127.0.0.5']");
    pid_t w = spawned(t, 0);
    proxied(t, w, PSUP_MSG_READING, 0, 9, 0);
    proxied(t, w, PSUP_MSG_DENIED, 0, 5, 0);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    expect_state(t, w, PSUP_WORKER_IDLE);
    assert_int_equal(svc(t)->counters.denied, 1);
    EXPECT_LOG(t, "event=denied remote_ip=127.0.0.5 proxy_ip=127.0.0.9");
}

/* | READING | shutdown reaches shutdown_timeout | (gone) | SIGKILL to the
 * group: no handler ran | */
static void reading_killed_at_shutdown_timeout(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 PROXIED);
    pid_t w = spawned(t, 0);
    proxied(t, w, PSUP_MSG_READING, 0, 9, 0);
    pid_t spare = spawned(t, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    shutdown_begins(t);
    EXPECT_CALLS(t, SIGNAL(spare, SIGURG));
    expect_state(t, w, PSUP_WORKER_READING);
    shutdown_timeout(t);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL), SIGNAL(-spare, SIGKILL));
}

/* A cgi service's relay enforces timeout itself (504); psup's timer is a
 * backstop kill_grace + 1 s later (spec/cgi.md). */
static void cgi_timeout_is_a_backstop(void **state)
{
    struct rt_test *t = *state;

    apply_doc(t, "{'kill_grace': 0.5, 'services': [" SERVICE("s") POOL1
                 ", 'protocol': 'cgi', 'timeout': 5}]}");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    assert_int_equal(psup_runtime_next_deadline(&t->rt, t->now), T0 + 6500);
    advance(t, 6499);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-w, SIGTERM));
    EXPECT_LOG(t, "event=timeout key=timeout limit=6.500");
}

/* ==== TERMINATING, KILLING =============================================== */

/* | BUSY | timeout reached | TERMINATING | SIGTERM to the group; log
 * event=timeout | */
static void busy_timeout_to_terminating(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 5");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    advance(t, 4999);
    EXPECT_NO_CALLS(t);
    assert_int_equal(psup_runtime_next_deadline(&t->rt, t->now), T0 + 5000);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-w, SIGTERM));
    expect_state(t, w, PSUP_WORKER_TERMINATING);
    expect_pool(t, 1, 1, 0, 0);
    assert_int_equal(svc(t)->counters.timed_out, 1);
    EXPECT_LOG(t, "event=timeout key=timeout limit=5.000");
}

/* | TERMINATING | kill_grace passed | KILLING | SIGKILL to the group | */
static void terminating_kill_grace_to_killing(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 5");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    advance(t, 5000);
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(-w, SIGTERM));
    advance(t, 1999);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL));
    expect_state(t, w, PSUP_WORKER_KILLING);
    advance(t, 60000);
    EXPECT_NO_CALLS(t);
}

/* | BUSY | shutdown reaches shutdown_timeout | TERMINATING | SIGTERM to the
 * group (then KILL after kill_grace) | and | IDLE, STOPPED, RETIRING | the
 * same | unchanged | SIGKILL to the group | */
static void shutdown_timeout_terminates_busy_kills_idle(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t busy = spawned(t, 0);
    message(t, busy, PSUP_MSG_RUNNING, 1, 1);
    pid_t stopped = spawned(t, 1);
    stop(t, stopped, true);
    pid_t idle = spawned(t, 2);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    shutdown_begins(t);
    EXPECT_CALLS(t, SIGNAL(idle, SIGURG));
    shutdown_timeout(t);
    EXPECT_CALLS(t, SIGNAL(-busy, SIGTERM), SIGNAL(-stopped, SIGKILL), SIGNAL(-idle, SIGKILL));
    expect_state(t, busy, PSUP_WORKER_TERMINATING);
    expect_state(t, stopped, PSUP_WORKER_STOPPED);
    expect_state(t, idle, PSUP_WORKER_RETIRING);
    advance(t, 2000);
    EXPECT_CALLS(t, SIGNAL(-busy, SIGKILL));
    expect_state(t, busy, PSUP_WORKER_KILLING);
    /* What psup killed is not a failure, nor lost. */
    skip_log(t);
    reap(t, stopped, KILLED(SIGKILL));
    reap(t, idle, KILLED(SIGKILL));
    EXPECT_QUIET_LOG(t);
    assert_int_equal(svc(t)->counters.failed, 0);
}

/* | any | immediate stop | KILLING (busy ones) or unchanged | SIGKILL to the
 * group | */
static void kill_all_kills_every_group(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 5");
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_RUNNING, 1, 1);
    pid_t b = spawned(t, 1);
    advance(t, 5000);
    message(t, b, PSUP_MSG_RUNNING, 1, 2);
    pid_t c = spawned(t, 2);
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(-a, SIGTERM), SPAWN);
    t->stopping = true;
    psup_runtime_kill_all(&t->rt);
    EXPECT_CALLS(t, SIGNAL(-a, SIGKILL), SIGNAL(-b, SIGKILL), SIGNAL(-c, SIGKILL));
    expect_state(t, a, PSUP_WORKER_KILLING);
    expect_state(t, b, PSUP_WORKER_KILLING);
    expect_state(t, c, PSUP_WORKER_IDLE);
    assert_int_equal(t->rt.n_listeners, 0);
}

/* ==== exits ============================================================== */

/* | any busy state | reaped | (gone) | log conn_end; release the source's
 * count | */
static void busy_reaped_gone(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    t->now += 250;
    reap(t, w, EXITED(3));
    EXPECT_NO_CALLS(t); /* nothing to start: the spare is there */
    expect_state(t, w, GONE);
    expect_pool(t, 1, 0, 0, 0);
    assert_int_equal(source_count(t, 1), 0);
    EXPECT_LOG(t, "event=conn_end remote_ip=127.0.0.1 listener=127.0.0.1: status=3 "
                  "duration_ms=250");
    /* A handler's exit status is not a failure of the service. */
    assert_int_equal(svc(t)->counters.failed, 0);
}

static void terminating_reaped_gone(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 1");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    advance(t, 1000);
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(-w, SIGTERM));
    skip_log(t);
    reap(t, w, KILLED(SIGTERM));
    expect_state(t, w, GONE);
    assert_int_equal(source_count(t, 1), 0);
    EXPECT_LOG(t, "event=conn_end outcome=timeout signal=TERM");
    /* Its KILL deadline went with it. */
    advance(t, 2000);
    EXPECT_NO_CALLS(t);
}

static void killing_reaped_gone(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'timeout': 5");
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    advance(t, 5000);
    advance(t, 2000);
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(-w, SIGTERM), SIGNAL(-w, SIGKILL));
    skip_log(t);
    reap(t, w, KILLED(SIGKILL));
    expect_state(t, w, GONE);
    assert_int_equal(source_count(t, 1), 0);
    /* psup sent the KILL: no hint of an outside kill. */
    EXPECT_LOG(t, "event=conn_end outcome=timeout signal=KILL duration_ms=7000");
    EXPECT_NO_CALLS(t);
}

/* | RETIRING | reaped, exit 0 | (gone) | nothing | */
static void retiring_reaped_exit_0_nothing(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    apply(t, POOL1 ", 'env': {'G': '2'}");
    EXPECT_CALLS(t, SPAWN, SPAWN, SIGNAL(w, SIGURG));
    skip_log(t);
    reap(t, w, EXITED(0));
    expect_state(t, w, GONE);
    expect_pool(t, 1, 0, 0, 0);
    EXPECT_NO_CALLS(t);
    EXPECT_QUIET_LOG(t);
    assert_int_equal(svc(t)->counters.failed, 0);
    assert_int_equal(svc(t)->backoff.failures, 0);
}

/* | IDLE, STOPPED, RETIRING | reaped after SETUP_FAILED or with another exit
 * status | (gone) | a failure of the service | */
static void idle_reaped_after_setup_failed_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    send_message(t, w, PSUP_MSG_SETUP_FAILED, 0, 0, ENOENT, PSUP_STEP_PROGRAM);
    expect_state(t, w, PSUP_WORKER_IDLE);
    reap(t, w, EXITED(PSUP_WORKER_EXIT_SETUP));
    expect_state(t, w, GONE);
    EXPECT_CALLS(t, SPAWN); /* the first failures are retried at once */
    EXPECT_LOG(t, "event=worker_failed step=program program=/bin/true errno=ENOENT");
    assert_int_equal(svc(t)->counters.failed, 1);
    assert_int_equal(svc(t)->backoff.failures, 1);
    assert_int_equal(svc(t)->last_error, ENOENT);
}

static void idle_stopped_retiring_other_exit_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}");
    pid_t idle = spawned(t, 0), stopped = spawned(t, 1);
    stop(t, stopped, true);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    /* Exit 0 without having been retired is a failure too. */
    reap(t, idle, EXITED(0));
    EXPECT_LOG(t, "event=worker_failed status=0");
    t->now += 10;
    reap(t, stopped, EXITED(1));
    assert_int_equal(svc(t)->counters.failed, 2);
    assert_int_equal(svc(t)->backoff.failures, 2);
    /* One start replaced the idle worker; the stopped one had its spare. */
    EXPECT_CALLS(t, SPAWN);
    pid_t retiring = spawned(t, 2);
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'env': {'G': '2'}");
    expect_state(t, retiring, PSUP_WORKER_RETIRING);
    t->now += 10;
    reap(t, retiring, EXITED(1));
    assert_int_equal(svc(t)->counters.failed, 3);
}

/* | IDLE, STOPPED, RETIRING | reaped, killed by a signal psup did not send |
 * (gone) | event=worker_lost; replaced at once, not a failure | */
static void idle_stopped_retiring_killed_from_outside_is_lost(void **state)
{
    struct rt_test *t = *state;

    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}");
    pid_t idle = spawned(t, 0), stopped = spawned(t, 1);
    stop(t, stopped, true);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    skip_log(t);
    reap(t, idle, KILLED(SIGKILL));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=worker_lost signal=KILL hint=oom_or_external_kill");
    reap(t, stopped, KILLED(SIGTERM));
    EXPECT_NO_CALLS(t); /* it had been replaced when it stopped */
    EXPECT_LOG(t, "event=worker_lost signal=TERM");
    pid_t retiring = spawned(t, 2);
    apply(t, "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 8}, 'env': {'G': '2'}");
    t->fake.seen = t->fake.n_calls;
    reap(t, retiring, KILLED(SIGKILL));
    EXPECT_LOG(t, "event=worker_lost signal=KILL");
    assert_int_equal(svc(t)->counters.failed, 0);
    assert_int_equal(svc(t)->backoff.failures, 0);
}

/* | BUSY | reaped after EXEC_FAILED | (gone) | conn_end with
 * outcome=exec_failed; a failure of the service | */
static void busy_reaped_after_exec_failed_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    pid_t w = spawned(t, 0);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    send_message(t, w, PSUP_MSG_EXEC_FAILED, 0, 1, EACCES, PSUP_STEP_EXEC);
    reap(t, w, EXITED(126));
    expect_state(t, w, GONE);
    EXPECT_LOG(t, "event=exec_failed step=exec errno=EACCES",
               "event=conn_end outcome=exec_failed status=126");
    assert_int_equal(svc(t)->counters.failed, 1);
    assert_int_equal(svc(t)->backoff.failures, 1);
    assert_int_equal(source_count(t, 1), 0);
}

/* ==== failures and backoff (spec/pool.md) ================================ */

static void fail_worker(struct rt_test *t, pid_t w)
{
    send_message(t, w, PSUP_MSG_SETUP_FAILED, 0, 0, ENOENT, PSUP_STEP_PROGRAM);
    reap(t, w, EXITED(PSUP_WORKER_EXIT_SETUP));
}

/* Two failures are retried at once; from the third, one probe per delay; a
 * handler that ran ends the streak and the pool is refilled at once. */
static void backoff_delays_probes_and_a_handler_ends_it(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    EXPECT_CALLS(t, SPAWN);
    for (size_t i = 0; i < 3; i++) {
        t->now += 10;
        fail_worker(t, spawned(t, i));
        if (i < 2)
            EXPECT_CALLS(t, SPAWN);
    }
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=worker_failed step=program",
               "event=backoff failures=3 delay=0.100 step=program errno=ENOENT");
    assert_int_equal(psup_runtime_next_deadline(&t->rt, t->now), t->now + 100);
    advance(t, 99);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SPAWN); /* the probe */
    pid_t probe = spawned(t, 3);
    message(t, probe, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_NO_CALLS(t); /* still one start per delay */
    t->now += 20;
    reap(t, probe, EXITED(0));
    EXPECT_LOG(t, "event=conn_end", "event=recovered");
    EXPECT_CALLS(t, SPAWN);
    assert_int_equal(svc(t)->backoff.failures, 0);
}

/* A reload is the operator saying "try again now". */
static void backoff_ends_on_reload(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    for (size_t i = 0; i < 3; i++) {
        t->now += 10;
        fail_worker(t, spawned(t, i));
    }
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    skip_log(t);
    apply(t, POOL1); /* unchanged: the same workers, and starts again */
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=recovered");
    assert_int_equal(svc(t)->backoff.failures, 0);
}

/* ==== the snapshot (stats.h) ============================================= */

struct seen_services {
    struct psup_service_stats s[4];
    char names[4][72];
    char listener[4][PSUP_ADDR_STRLEN];
    size_t n;
};

/* Copies what a test checks: the record is valid during the call only. */
static void collect(void *arg, const struct psup_service_stats *st)
{
    struct seen_services *seen = arg;

    assert_true(seen->n < 4);
    seen->s[seen->n] = *st;
    snprintf(seen->names[seen->n], sizeof(seen->names[0]), "%s", st->name);
    if (st->n_listeners)
        snprintf(seen->listener[seen->n], sizeof(seen->listener[0]), "%s",
                 st->listeners[0].text);
    seen->s[seen->n].name = seen->names[seen->n];
    seen->s[seen->n].listeners = NULL;
    seen->n++;
}

#define THREE_SERVICES                                                                      \
    "{'services': [" SERVICE("s") POOL1 ", 'max_per_source': 3, 'rate': 2, 'timeout': 4, "  \
    "'on_overload': 'reject'}, " SERVICE("t") POOL1 "}, "                                   \
    SERVICE("u") "'pool': {'min_spare': 1, 'max_spare': 1, 'max_workers': 1}}]}"

/* Three services: s serves one handler and denied a client, t fails into
 * backoff, u runs at max_workers. */
static void three_services(struct rt_test *t)
{
    apply_doc(t, THREE_SERVICES);
    pid_t s0 = spawned(t, 0), t0 = spawned(t, 1), u0 = spawned(t, 2);
    message(t, s0, PSUP_MSG_BUSY, 1, 1);
    pid_t s1 = spawned(t, 3);
    message(t, s1, PSUP_MSG_DENIED, 0, 2);
    message(t, u0, PSUP_MSG_RUNNING, 1, 3);
    t->now += 10;
    fail_worker(t, t0);
    t->now += 10;
    fail_worker(t, spawned(t, 4));
    t->now += 10;
    fail_worker(t, spawned(t, 5));
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN, VERDICT(s0, PSUP_VERDICT_RUN, 1, 1), SPAWN, SPAWN,
                 SPAWN);
}

static void stats_snapshot_per_service_and_runtime(void **state)
{
    struct rt_test *t = *state;
    struct seen_services seen = {0};
    struct psup_runtime_stats rs;

    three_services(t);
    psup_runtime_stats(&t->rt, &rs, collect, &seen);
    assert_int_equal(rs.services, 3);
    assert_int_equal(rs.listeners, 3);
    assert_int_equal(rs.live, 3); /* s: busy and a spare; t: none; u: busy */
    assert_true(rs.accepting);
    assert_false(rs.spawn_failing);
    assert_int_equal(seen.n, 3);

    const struct psup_service_stats *s = &seen.s[0];
    assert_string_equal(seen.names[0], "s");
    assert_string_equal(s->mode, "accept");
    assert_int_equal(s->state, PSUP_SERVICE_SERVING);
    assert_int_equal(s->n_listeners, 1);
    assert_true(strncmp(seen.listener[0], "127.0.0.1:", 10) == 0);
    assert_string_not_equal(seen.listener[0], "127.0.0.1:0"); /* the bound port */
    assert_int_equal(s->pool.idle, 1);
    assert_int_equal(s->pool.busy, 1);
    assert_int_equal(s->bounds.min_spare, 1);
    assert_int_equal(s->bounds.max_spare, 1);
    assert_int_equal(s->bounds.max_workers, 4);
    assert_true(s->bounds.reject_overload);
    assert_int_equal(s->max_per_source, 3);
    assert_true(s->rate == 2.0);
    assert_int_equal(s->rate_burst, 2);
    assert_true(s->timeout == 4.0);
    assert_int_equal(s->counters.accepted, 1);
    assert_int_equal(s->counters.denied, 1);
    assert_int_equal(s->failures, 0);
    assert_false(s->saturated);

    const struct psup_service_stats *b = &seen.s[1];
    assert_string_equal(seen.names[1], "t");
    assert_int_equal(b->state, PSUP_SERVICE_BACKOFF);
    assert_int_equal(b->pool.idle, 0);
    assert_int_equal(b->failures, 3);
    assert_int_equal(b->backoff_delay_ms, 100);
    assert_int_equal(b->backoff_not_before, t->now + 100);
    assert_int_equal(b->counters.failed, 3);
    assert_int_equal(b->last_error, ENOENT);
    assert_int_equal(b->last_step, PSUP_STEP_PROGRAM);
    assert_int_equal(b->max_per_source, 0);
    assert_true(b->rate == 0.0);
    assert_int_equal(b->rate_burst, 0);
    assert_false(b->bounds.reject_overload);

    const struct psup_service_stats *u = &seen.s[2];
    assert_string_equal(seen.names[2], "u");
    assert_int_equal(u->state, PSUP_SERVICE_SATURATED);
    assert_true(u->saturated);
    assert_int_equal(u->saturated_since, T0);
    assert_int_equal(u->pool.busy, 1);

    /* s removed: draining, nothing configured, its workers still counted. */
    apply_doc(t, "{'services': [" SERVICE("t") POOL1 "}, " SERVICE("u")
                 "'pool': {'min_spare': 1, 'max_spare': 1, 'max_workers': 1}}]}");
    memset(&seen, 0, sizeof(seen));
    psup_runtime_stats(&t->rt, &rs, collect, &seen);
    assert_int_equal(rs.services, 3);
    assert_int_equal(rs.listeners, 2);
    s = &seen.s[0];
    assert_string_equal(seen.names[0], "s");
    assert_int_equal(s->state, PSUP_SERVICE_DRAINING);
    assert_int_equal(s->n_listeners, 0);
    assert_int_equal(s->bounds.max_workers, 0);
    assert_int_equal(s->pool.busy, 1);
    assert_int_equal(s->pool.retiring, 1);
    assert_int_equal(s->counters.accepted, 1);

    /* Shutdown. */
    psup_runtime_stop_accepting(&t->rt, t->now);
    psup_runtime_stats(&t->rt, &rs, NULL, NULL);
    assert_false(rs.accepting);
    assert_int_equal(rs.listeners, 0);
}

/* The status record and the summary read the snapshot: one line per
 * service, with the fields spec/logging.md lists. */
static void stats_status_and_summary_records(void **state)
{
    struct rt_test *t = *state;

    three_services(t);
    /* s: its spare stopped, and replaced. */
    stop(t, spawned(t, 3), true);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    psup_runtime_log_status(&t->rt);
    EXPECT_LOG(t,
               "event=status service=s state=serving idle=1 busy=1 retiring=0 stopped=1 "
               "accepted=1",
               "event=status service=t state=backoff idle=0 busy=0 retiring=0 stopped=0 "
               "accepted=0",
               "event=status service=u state=saturated idle=0 busy=1 retiring=0 stopped=0 "
               "accepted=1");
    psup_runtime_log_summary(&t->rt);
    EXPECT_LOG(t,
               "event=summary service=s accepted=1 denied=1 limited_per_source=0 "
               "limited_rate=0 limited_overload=0 failed=0 timed_out=0",
               "event=summary service=t accepted=0 denied=0 failed=3 timed_out=0",
               "event=summary service=u accepted=1 denied=0 failed=0");
}

/* sd_notify's STATUS= line, from the same snapshot. */
static void stats_one_line_summary(void **state)
{
    struct rt_test *t = *state;
    char line[128];
    bool changed;

    psup_runtime_summary(&t->rt, line, sizeof(line));
    assert_string_equal(line, "0 services, 0 workers, 0 busy");
    three_services(t);
    psup_runtime_summary(&t->rt, line, sizeof(line));
    assert_string_equal(line, "3 services, 3 workers, 2 busy, 1 backing off");
    assert_int_equal(psup_runtime_pause(&t->rt, "u", true, NULL, t->now, &changed), 0);
    psup_runtime_summary(&t->rt, line, sizeof(line));
    assert_string_equal(line, "3 services, 3 workers, 2 busy, 1 paused, 1 backing off");
    /* Cut, never overrun. */
    memset(line, 'x', sizeof(line));
    psup_runtime_summary(&t->rt, line, 12);
    assert_string_equal(line, "3 services,");
    assert_int_equal(line[12], 'x');
}

/* The snapshot of a runtime with nothing configured yet. */
static void stats_of_an_empty_runtime(void **state)
{
    struct rt_test *t = *state;
    struct psup_runtime_stats rs;
    struct seen_services seen = {0};

    memset(&rs, 0xff, sizeof(rs));
    psup_runtime_stats(&t->rt, &rs, collect, &seen);
    assert_int_equal(seen.n, 0);
    assert_int_equal(rs.services, 0);
    assert_int_equal(rs.live, 0);
    assert_int_equal(rs.listeners, 0);
    assert_true(rs.accepting);
    assert_string_equal(psup_service_state_name(PSUP_SERVICE_SERVING), "serving");
    assert_string_equal(psup_service_state_name(PSUP_SERVICE_BACKOFF), "backoff");
    assert_string_equal(psup_service_state_name(PSUP_SERVICE_SATURATED), "saturated");
    assert_string_equal(psup_service_state_name(PSUP_SERVICE_DRAINING), "draining");
}

/* ==== Wait mode: spec/wait.md, "States and transitions" ================== */

#define WATCH {OP_WATCH, 0, 0, 0, false}
#define UNWATCH {OP_UNWATCH, 0, 0, 0, false}
#define WAIT "'mode': 'wait'"
#define ALWAYS "'mode': 'wait', 'start': 'always'"

/* The loop reports a watched socket readable (supervisor.c, watch_cb). */
static void ready(struct rt_test *t)
{
    const struct psup_service *s = svc(t);

    assert_non_null(s->watched);
    psup_runtime_on_ready(&t->rt, psup_plan_listeners(s->watched->plan)[0].fd, t->now);
    progress(t);
}

/* | (none) | on_demand service applied | WATCHING | watch the sockets |
 * | WATCHING | a socket readable | RUNNING | stop watching; start
 * `instances` servers; server_started | */
static void wait_on_demand_watches_then_starts_on_demand(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT ", 'instances': 3");
    EXPECT_CALLS(t, WATCH);
    assert_int_equal(t->fake.watching, 1);
    advance(t, 60000);
    EXPECT_NO_CALLS(t);
    EXPECT_QUIET_LOG(t);
    /* A socket psup does not watch (any more) is ignored. */
    psup_runtime_on_ready(&t->rt, 12345, t->now);
    EXPECT_NO_CALLS(t);
    ready(t);
    EXPECT_CALLS(t, UNWATCH, SPAWN, SPAWN, SPAWN);
    assert_int_equal(t->fake.watching, 0);
    for (size_t i = 0; i < 3; i++)
        expect_state(t, spawned(t, i), PSUP_WORKER_BUSY);
    expect_pool(t, 0, 3, 0, 0);
    EXPECT_LOG(t, "event=server_started service=s conn=1 start=on_demand",
               "event=server_started service=s conn=2 start=on_demand",
               "event=server_started service=s conn=3 start=on_demand");
    /* While one of them runs, nothing is watched or started. */
    reap(t, spawned(t, 0), EXITED(0));
    reap(t, spawned(t, 1), EXITED(0));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit conn=1 status=0 failure=false",
               "event=server_exit conn=2 status=0 failure=false");
    assert_null(svc(t)->watched);
}

/* | (none) | always service applied | RUNNING | start `instances`
 * servers | */
static void wait_always_starts_instances_at_once(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS ", 'instances': 2");
    EXPECT_CALLS(t, SPAWN, SPAWN);
    expect_pool(t, 0, 2, 0, 0);
    EXPECT_LOG(t, "event=server_started conn=1 start=always",
               "event=server_started conn=2 start=always");
    advance(t, 60000);
    EXPECT_NO_CALLS(t);
    assert_null(svc(t)->watched);
    assert_int_equal(svc(t)->tally.shared->used, 0); /* no TCPCONNNUM for servers */
}

/* | RUNNING | exit (any), always | (gone) | a failure: restarted at once
 * twice, then after the delay | */
static void wait_always_exit_is_a_failure_restarted_with_backoff(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    t->now += 5;
    reap(t, spawned(t, 0), EXITED(0));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=server_exit status=0 duration_ms=5 failure=true level=warn");
    reap(t, spawned(t, 1), KILLED(SIGSEGV));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=server_exit signal=SEGV failure=true");
    reap(t, spawned(t, 2), EXITED(3));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit status=3 failure=true", "event=backoff failures=3 delay=0.100");
    advance(t, 99);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SPAWN);
    assert_int_equal(svc(t)->counters.failed, 3);
    /* A server that stays ends the streak. */
    advance(t, 200);
    EXPECT_LOG(t, "event=server_started", "event=recovered service=s");
    assert_int_equal(svc(t)->backoff.failures, 0);
}

/* | RUNNING | exit 0, on_demand, nothing left waiting | (gone) | the
 * streak ends; watch again | */
static void wait_on_demand_clean_exit_watches_again(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT);
    ready(t);
    EXPECT_CALLS(t, WATCH, UNWATCH, SPAWN);
    skip_log(t);
    t->fake.readable = 0;
    reap(t, spawned(t, 0), EXITED(0));
    EXPECT_CALLS(t, WATCH);
    EXPECT_LOG(t, "event=server_exit status=0 failure=false level=info");
    assert_int_equal(svc(t)->counters.failed, 0);
    ready(t);
    EXPECT_CALLS(t, UNWATCH, SPAWN);
}

/* | RUNNING | exit, on_demand, the last server, a socket still readable
 * | (gone) | a failure ("looping"): watched again at once twice, then only
 * after the delay | */
static void wait_on_demand_exit_leaving_a_socket_readable_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT);
    EXPECT_CALLS(t, WATCH);
    t->fake.readable = 1;
    for (int i = 0; i < 2; i++) {
        ready(t);
        EXPECT_CALLS(t, UNWATCH, SPAWN);
        reap(t, spawned(t, (size_t)i), EXITED(0));
        EXPECT_CALLS(t, WATCH);
    }
    skip_log(t);
    ready(t);
    EXPECT_CALLS(t, UNWATCH, SPAWN);
    reap(t, spawned(t, 2), EXITED(0));
    /* Delayed: not even watched (what waits would wake psup at once). */
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_started", "event=server_exit pending=true failure=true",
               "event=backoff failures=3 delay=0.100");
    assert_int_equal(svc(t)->counters.failed, 3);
    assert_int_equal(psup_runtime_next_deadline(&t->rt, t->now), t->now + 100);
    advance(t, 100);
    EXPECT_CALLS(t, WATCH);
    ready(t);
    EXPECT_CALLS(t, UNWATCH, SPAWN);
    reap(t, spawned(t, 3), EXITED(0));
    EXPECT_NO_CALLS(t);
    skip_log(t);
    advance(t, 199);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, WATCH);
}

/* While another server of the service runs, a readable socket says
 * nothing: that one takes what waits. */
static void wait_on_demand_exit_with_others_running_is_clean(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT ", 'instances': 2");
    ready(t);
    EXPECT_CALLS(t, WATCH, UNWATCH, SPAWN, SPAWN);
    skip_log(t);
    t->fake.readable = 1;
    reap(t, spawned(t, 0), EXITED(0));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit conn=1 status=0 failure=false");
}

/* | RUNNING | crashed (a signal, a status other than 0), on_demand | (gone)
 * | a failure | */
static void wait_on_demand_crash_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT);
    ready(t);
    EXPECT_CALLS(t, WATCH, UNWATCH, SPAWN);
    skip_log(t);
    reap(t, spawned(t, 0), KILLED(SIGKILL));
    EXPECT_CALLS(t, WATCH);
    EXPECT_LOG(t, "event=server_exit signal=KILL hint=oom_or_external_kill failure=true");
    assert_int_equal(svc(t)->counters.failed, 1);
    assert_int_equal(svc(t)->backoff.failures, 1);
}

/* | RUNNING | reaped after SETUP_FAILED or EXEC_FAILED | (gone) | a
 * failure, logged with its step and reason (first of a burst) | */
static void wait_exec_failed_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    pid_t w = spawned(t, 0);
    send_message(t, w, PSUP_MSG_EXEC_FAILED, 0, 0, ENOENT, PSUP_STEP_EXEC);
    reap(t, w, EXITED(127));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=exec_failed step=exec program=/bin/true errno=ENOENT",
               "event=server_exit outcome=exec_failed status=127 failure=true",
               "event=server_started conn=2");
    w = spawned(t, 1);
    send_message(t, w, PSUP_MSG_SETUP_FAILED, 0, 0, EACCES, PSUP_STEP_PROGRAM);
    reap(t, w, EXITED(125));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=worker_failed step=program errno=EACCES",
               "event=server_exit outcome=setup_failed status=125 failure=true",
               "event=server_started conn=3");
    assert_int_equal(svc(t)->counters.failed, 2);
}

/* | RUNNING | `timeout` reached | STOPPING | SIGTERM to the group;
 * `timeout`; SIGKILL after kill_grace (always: its replacement starts at
 * once) | ... reaped | (gone) | not a failure | */
static void wait_timeout_stops_the_server(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS ", 'timeout': 5");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    advance(t, 4999);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-w, SIGTERM), SPAWN);
    expect_state(t, w, PSUP_WORKER_TERMINATING);
    EXPECT_LOG(t, "event=timeout service=s conn=1 key=timeout limit=5.000",
               "event=server_started conn=2");
    advance(t, 2000);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL));
    expect_state(t, w, PSUP_WORKER_KILLING);
    reap(t, w, KILLED(SIGKILL));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit outcome=timeout signal=KILL failure=false");
    assert_int_equal(svc(t)->counters.timed_out, 1);
    assert_int_equal(svc(t)->counters.failed, 0);
}

/* | RUNNING | a reload changes the service | STOPPING | once the new
 * generation's servers are started (always) or its sockets watched
 * (on_demand): SIGTERM to the server (what it started finishes), SIGKILL to
 * its group after shutdown_timeout and kill_grace | */
static void wait_reload_starts_new_then_stops_old(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS);
    pid_t old = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    apply(t, ALWAYS); /* unchanged: the server stays */
    EXPECT_NO_CALLS(t);
    apply(t, ALWAYS ", 'timeout': 60");
    EXPECT_CALLS(t, SPAWN, SIGNAL(old, SIGTERM)); /* the server only: see below */
    expect_state(t, old, PSUP_WORKER_TERMINATING);
    expect_state(t, spawned(t, 1), PSUP_WORKER_BUSY);
    skip_log(t);
    advance(t, 8999);
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-old, SIGKILL));
    reap(t, old, KILLED(SIGKILL));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit conn=1 outcome=stopped signal=KILL failure=false");
}

static void wait_reload_on_demand_watches_while_the_old_server_stops(void **state)
{
    struct rt_test *t = *state;

    apply(t, WAIT);
    ready(t);
    pid_t old = spawned(t, 0);
    EXPECT_CALLS(t, WATCH, UNWATCH, SPAWN);
    apply(t, WAIT ", 'timeout': 60");
    EXPECT_CALLS(t, WATCH, SIGNAL(old, SIGTERM));
    /* The next connection starts the new server, the old one still
     * stopping. */
    ready(t);
    EXPECT_CALLS(t, UNWATCH, SPAWN);
    skip_log(t);
    reap(t, old, EXITED(0));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit conn=1 outcome=stopped status=0 failure=false");
}

/* | RUNNING | the service is removed | STOPPING | SIGTERM to the server,
 * SIGKILL to its group after shutdown_timeout and kill_grace | */
static void wait_service_removed_stops_its_servers(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    apply_doc(t, "{'services': [" SERVICE("other") POOL1 "}]}");
    EXPECT_CALLS(t, SPAWN, SIGNAL(w, SIGTERM));
    expect_state(t, w, PSUP_WORKER_TERMINATING);
    reap(t, w, EXITED(0));
    assert_null(find_service(t, "s"));
}

/* | RUNNING | shutdown begins | STOPPING | SIGTERM now, SIGKILL after
 * shutdown_timeout and kill_grace; a watched socket is no longer watched
 * (before psup closes it) | */
static void wait_shutdown_stops_servers_at_once(void **state)
{
    struct rt_test *t = *state;

    apply_doc(t, "{'services': [" SERVICE("s") ALWAYS "}, " SERVICE("t") WAIT "}]}");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN, WATCH);
    shutdown_begins(t);
    EXPECT_CALLS(t, UNWATCH, SIGNAL(-w, SIGTERM));
    expect_state(t, w, PSUP_WORKER_TERMINATING);
    advance(t, 8999);
    EXPECT_NO_CALLS(t);
    shutdown_timeout(t); /* psup's own deadline: nothing more for a server */
    EXPECT_NO_CALLS(t);
    advance(t, 1);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL));
    skip_log(t);
    reap(t, w, KILLED(SIGKILL));
    EXPECT_NO_CALLS(t);
    EXPECT_LOG(t, "event=server_exit outcome=stopped signal=KILL failure=false");
}

/* The stop proper can begin inside the loop's turn, after its expiry
 * (shutdown_delay over, an essential service failing): the servers get
 * their SIGTERM from psup_runtime_stop_accepting itself, not from a later
 * turn that may come only at shutdown_timeout. */
static void wait_shutdown_signals_servers_in_the_same_turn(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    t->draining = true;
    psup_runtime_stop_accepting(&t->rt, t->now);
    EXPECT_CALLS(t, SIGNAL(-w, SIGTERM));
    expect_state(t, w, PSUP_WORKER_TERMINATING);
    assert_int_equal(t->rt.n_listeners, 0); /* psup's copies closed at once */
}

/* | RUNNING | BUSY (stderr "log": the server's pipe) | unchanged | follow
 * the pipe; verdict `run` (flagged when psup cannot follow it) | */
static void wait_stderr_log_pipe_answered(void **state)
{
    struct rt_test *t = *state;

    apply(t, ALWAYS ", 'stderr': 'log'");
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    message(t, w, PSUP_MSG_BUSY, 1, 0);
    EXPECT_CALLS(t, {OP_VERDICT, w, 0,
                     psup_verdict_encode(PSUP_VERDICT_RUN, PSUP_VERDICT_NO_LOG_PIPE, 0, 1),
                     false});
    EXPECT_LOG(t, "event=stderr_fallback conn=1");
    expect_state(t, w, PSUP_WORKER_BUSY);
    assert_int_equal(svc(t)->counters.accepted, 0);
}

/* The loop cannot watch the sockets (epoll full): psup cannot wait for
 * demand, so it starts the servers at once. A failed creation keeps the
 * demand for the next try. */
static void wait_unwatchable_starts_at_once_and_spawn_failure_keeps_demand(void **state)
{
    struct rt_test *t = *state;

    t->fake.watch_error = -ENOSPC;
    t->fake.spawn_error = -EAGAIN;
    apply(t, WAIT);
    EXPECT_CALLS(t, UNWATCH); /* what was watched is undone */
    EXPECT_LOG(t, "event=spawn_failed errno=EAGAIN retry_ms=50");
    assert_true(svc(t)->demand);
    t->fake.spawn_error = 0;
    t->fake.watch_error = 0;
    advance(t, 50);
    EXPECT_CALLS(t, SPAWN);
    assert_false(svc(t)->demand);
}

/* The snapshot's mode. */
static void wait_stats_mode(void **state)
{
    struct rt_test *t = *state;
    struct seen_services seen = {0};

    apply_doc(t, "{'services': [" SERVICE("s") WAIT "}, " SERVICE("t") POOL1 "}]}");
    psup_runtime_stats(&t->rt, NULL, collect, &seen);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.s[0].mode, "wait");
    assert_string_equal(seen.s[1].mode, "accept");
    /* No spares for a wait service: instances servers at most. */
    assert_int_equal(seen.s[0].bounds.min_spare, 0);
    assert_int_equal(seen.s[0].bounds.max_spare, 0);
    assert_int_equal(seen.s[0].bounds.max_workers, 1);
}

/* ==== essential services ================================================= */

/* An essential service failing for fatal_after, counted from its first
 * delayed start, is named; a recovery starts the count over. */
static void essential_fails_after_fatal_after(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1 ", 'essential': true, 'fatal_after': 1");
    for (size_t i = 0; i < 3; i++) {
        t->now += 10;
        fail_worker(t, spawned(t, i));
    }
    uint64_t delayed = t->now; /* the third failure delays starts */
    assert_int_equal(svc(t)->failing_since, delayed);
    assert_null(psup_runtime_fatal_service(&t->rt, t->now));
    /* Every probe fails too. */
    for (size_t next = 3; t->now < delayed + 900;) {
        advance(t, 50);
        while (next < t->fake.n_spawned) {
            t->now += 1;
            fail_worker(t, spawned(t, next++));
        }
    }
    /* The deadline wakes the loop in time. */
    uint64_t next = psup_runtime_next_deadline(&t->rt, t->now);
    assert_true(next > t->now && next <= delayed + 1000);
    assert_null(psup_runtime_fatal_service(&t->rt, delayed + 999));
    assert_ptr_equal(psup_runtime_fatal_service(&t->rt, delayed + 1000), svc(t));
    /* A reload ends the streak: the count starts over. */
    apply(t, POOL1 ", 'essential': true, 'fatal_after': 1");
    assert_int_equal(svc(t)->failing_since, 0);
    assert_null(psup_runtime_fatal_service(&t->rt, t->now + 5000));
}

static void not_essential_is_never_fatal(void **state)
{
    struct rt_test *t = *state;

    apply(t, POOL1);
    for (size_t i = 0; i < 3; i++) {
        t->now += 10;
        fail_worker(t, spawned(t, i));
    }
    assert_true(svc(t)->failing_since > 0);
    assert_null(psup_runtime_fatal_service(&t->rt, t->now + 3600 * 1000));
}

/* ==== control requests (spec/control.md) ================================= */

#define POOL2 "'pool': {'min_spare': 2, 'max_spare': 2, 'max_workers': 4}"

static int pause_s(struct rt_test *t, bool pause, bool *changed)
{
    struct psup_requester by = {4242, 1000};
    int rc = psup_runtime_pause(&t->rt, "s", pause, &by, t->now, changed);

    progress(t);
    return rc;
}

/* Paused: the idle workers retire, a busy one runs on, none starts, ever;
 * resumed: the spares start again. */
static void control_pause_retires_idle_and_starts_none(void **state)
{
    struct rt_test *t = *state;
    bool changed;

    apply(t, POOL2);
    pid_t a = spawned(t, 0), b = spawned(t, 1);
    message(t, a, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    pid_t c = spawned(t, 2);
    skip_log(t);
    assert_int_equal(pause_s(t, true, &changed), 0);
    assert_true(changed);
    EXPECT_CALLS(t, SIGNAL(c, SIGURG), SIGNAL(b, SIGURG));
    EXPECT_LOG(t, "event=paused service=s changed=true remote_pid=4242 remote_uid=1000");
    expect_pool(t, 0, 1, 2, 0);
    reap(t, a, EXITED(0));
    reap(t, b, EXITED(PSUP_WORKER_EXIT_RETIRED));
    advance(t, 60000);
    EXPECT_NO_CALLS(t);
    assert_true(svc(t)->paused);
    skip_log(t);
    assert_int_equal(pause_s(t, true, &changed), 0);
    assert_false(changed);
    EXPECT_LOG(t, "event=paused service=s changed=false");
    assert_int_equal(pause_s(t, false, &changed), 0);
    assert_true(changed);
    EXPECT_CALLS(t, SPAWN, SPAWN);
    EXPECT_LOG(t, "event=resumed service=s changed=true");
    expect_pool(t, 2, 0, 1, 0);
}

/* A pause is psup's, not the file's: a reload keeps it (a new generation
 * starts nothing); a service removed and added again is not paused. */
static void control_pause_lasts_through_reloads(void **state)
{
    struct rt_test *t = *state;
    bool changed;

    apply(t, POOL2);
    pid_t a = spawned(t, 0);
    message(t, a, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN, SPAWN, SPAWN);
    pause_s(t, true, &changed);
    EXPECT_CALLS(t, SIGNAL(spawned(t, 2), SIGURG), SIGNAL(spawned(t, 1), SIGURG));
    reap(t, spawned(t, 2), EXITED(PSUP_WORKER_EXIT_RETIRED));
    reap(t, spawned(t, 1), EXITED(PSUP_WORKER_EXIT_RETIRED));
    apply(t, "'pool': {'min_spare': 3, 'max_spare': 3, 'max_workers': 4}");
    EXPECT_NO_CALLS(t); /* a new generation, paused: no spare */
    assert_true(svc(t)->paused);
    /* Removed while its handler runs, then added again: not paused. */
    apply_doc(t, "{'services': [" SERVICE("t") POOL1 "}]}");
    EXPECT_CALLS(t, SPAWN);
    apply_doc(t, "{'services': [" SERVICE("t") POOL1 "}, " SERVICE("s") POOL1 "}]}");
    EXPECT_CALLS(t, SPAWN);
    assert_false(svc(t)->paused);
    expect_state(t, a, PSUP_WORKER_BUSY);
}

static int scale_s(struct rt_test *t, long long mn, long long mx, long long mw,
                   struct psup_pool_limits *out, char *why, size_t size)
{
    struct psup_scale_request req = {mn, mx, mw};
    int rc = psup_runtime_scale(&t->rt, "s", &req, NULL, t->now, out, why, size);

    progress(t);
    return rc;
}

/* Bounds checked as the file's, in force at once, until the next reload. */
static void control_scale_checks_and_holds_until_reload(void **state)
{
    struct rt_test *t = *state;
    struct psup_pool_limits now;
    char why[160];

    apply(t, POOL1);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    assert_int_equal(scale_s(t, 3, -1, -1, &now, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "max_spare: must be >= min_spare (3), got 1");
    assert_int_equal(scale_s(t, -1, -1, 0, &now, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "max_workers: must be between 1 and 65536, got 0");
    assert_int_equal(scale_s(t, 3, 3, 2, &now, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "max_workers: must be >= max_spare (3), got 2");
    assert_int_equal(scale_s(t, -1, 70000, -1, &now, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "max_spare: must be between 1 and 65536, got 70000");
    EXPECT_NO_CALLS(t);
    EXPECT_QUIET_LOG(t);

    assert_int_equal(scale_s(t, 3, 3, -1, &now, why, sizeof(why)), 0);
    assert_int_equal(now.min_spare, 3);
    assert_int_equal(now.max_spare, 3);
    assert_int_equal(now.max_workers, 4); /* kept */
    EXPECT_CALLS(t, SPAWN, SPAWN);
    EXPECT_LOG(t, "event=scaled service=s min_spare=3 max_spare=3 max_workers=4 until=reload");
    struct seen_services seen = {0};
    psup_runtime_stats(&t->rt, NULL, collect, &seen);
    assert_int_equal(seen.s[0].bounds.min_spare, 3);
    assert_true(seen.s[0].scaled);

    assert_int_equal(scale_s(t, 1, 1, -1, &now, why, sizeof(why)), 0);
    EXPECT_CALLS(t, SIGNAL(spawned(t, 2), SIGURG), SIGNAL(spawned(t, 1), SIGURG));
    reap(t, spawned(t, 2), EXITED(PSUP_WORKER_EXIT_RETIRED));
    reap(t, spawned(t, 1), EXITED(PSUP_WORKER_EXIT_RETIRED));
    /* A lowered max_workers, as a reload's: no start while as many run
     * (the spare already idle within max_spare stays, spec/pool.md). */
    message(t, spawned(t, 0), PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN);
    assert_int_equal(scale_s(t, 1, 1, 1, &now, why, sizeof(why)), 0);
    EXPECT_NO_CALLS(t);
    message(t, spawned(t, 3), PSUP_MSG_RUNNING, 1, 2);
    reap(t, spawned(t, 0), EXITED(0));
    EXPECT_NO_CALLS(t); /* one runs: the limit */
    reap(t, spawned(t, 3), EXITED(0));
    EXPECT_CALLS(t, SPAWN);
    assert_int_equal(scale_s(t, 2, 2, 4, &now, why, sizeof(why)), 0);
    EXPECT_CALLS(t, SPAWN);

    /* The reload (the same file) goes back to the file's bounds. */
    apply(t, POOL1);
    EXPECT_CALLS(t, SIGNAL(spawned(t, 5), SIGURG));
    assert_false(svc(t)->scaled);
    memset(&seen, 0, sizeof(seen));
    psup_runtime_stats(&t->rt, NULL, collect, &seen);
    assert_int_equal(seen.s[0].bounds.min_spare, 1);
    assert_false(seen.s[0].scaled);
}

static void control_unknown_service_and_stopping(void **state)
{
    struct rt_test *t = *state;
    struct psup_pool_limits now;
    struct psup_scale_request req = {1, 1, 1};
    char why[160];
    bool changed;

    apply(t, POOL1);
    assert_int_equal(psup_runtime_pause(&t->rt, "nope", true, NULL, t->now, &changed), -ENOENT);
    assert_int_equal(psup_runtime_scale(&t->rt, "nope", &req, NULL, t->now, &now, why,
                                        sizeof(why)),
                     -ENOENT);
    shutdown_begins(t);
    assert_int_equal(psup_runtime_pause(&t->rt, "s", true, NULL, t->now, &changed), -ESHUTDOWN);
    assert_int_equal(psup_runtime_scale(&t->rt, "s", &req, NULL, t->now, &now, why, sizeof(why)),
                     -ESHUTDOWN);
}

/* A wait-mode service's servers accept by themselves: a pause could not
 * stop them, and it has no pool to scale, so both are refused
 * (spec/control.md). A pause carried over from accept mode by a reload
 * holds: no server starts, nothing is watched, until a resume. */
static void control_wait_mode_refuses_pause_and_scale(void **state)
{
    struct rt_test *t = *state;
    struct psup_pool_limits now;
    char why[160];
    bool changed;

    apply(t, ALWAYS);
    EXPECT_CALLS(t, SPAWN);
    skip_log(t);
    assert_int_equal(pause_s(t, true, &changed), -EOPNOTSUPP);
    assert_false(svc(t)->paused);
    assert_int_equal(scale_s(t, 2, 2, 2, &now, why, sizeof(why)), -EOPNOTSUPP);
    assert_string_equal(why, "service \"s\" is in wait mode: it runs instances servers, "
                             "not a pool of workers to scale");
    assert_false(svc(t)->scaled);
    EXPECT_NO_CALLS(t);
    EXPECT_QUIET_LOG(t);
    /* Resuming a service that is not paused changes nothing, as for any. */
    assert_int_equal(pause_s(t, false, &changed), 0);
    assert_false(changed);
    EXPECT_NO_CALLS(t);
}

static void control_pause_carried_into_wait_mode_starts_no_server(void **state)
{
    struct rt_test *t = *state;
    bool changed;

    apply(t, POOL1);
    EXPECT_CALLS(t, SPAWN);
    pause_s(t, true, &changed);
    EXPECT_CALLS(t, SIGNAL(spawned(t, 0), SIGURG));
    reap(t, spawned(t, 0), EXITED(PSUP_WORKER_EXIT_RETIRED));
    apply(t, ALWAYS);
    EXPECT_NO_CALLS(t);
    apply(t, WAIT);
    EXPECT_NO_CALLS(t); /* not even watched */
    assert_true(svc(t)->paused);
    skip_log(t);
    assert_int_equal(pause_s(t, false, &changed), 0);
    assert_true(changed);
    EXPECT_CALLS(t, WATCH);
    EXPECT_LOG(t, "event=resumed service=s changed=true");
}

/* ==== the backlog at shutdown ============================================ */

/* A connection in the backlog at the stop: the service keeps its pool
 * until the queue is empty, then retires its idle workers and closes its
 * listener. */
static void shutdown_serves_the_backlog_first(void **state)
{
    struct rt_test *t = *state;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    apply(t, POOL1);
    EXPECT_CALLS(t, SPAWN);
    int lfd = t->rt.listeners[0]->fd;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(client, (struct sockaddr *)&ss, len), 0);
    shutdown_begins(t);
    EXPECT_NO_CALLS(t); /* the idle worker stays for the queued client */
    assert_int_equal(t->rt.n_listeners, 1);
    assert_true(psup_runtime_next_deadline(&t->rt, t->now) > 0);
    /* The worker takes it (here the test does) and runs its handler. */
    int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(conn >= 0);
    message(t, spawned(t, 0), PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN); /* its spare, while the backlog is served */
    progress(t);            /* the queue is empty now */
    EXPECT_CALLS(t, SIGNAL(spawned(t, 1), SIGURG));
    assert_int_equal(t->rt.n_listeners, 0);
    close(conn);
    close(client);
}

/* ==== prestart (spec/prestart.md) ======================================== */

#define PRESTART POOL1 ", 'prestart': true"

/* | (none) | pool below min_spare, prestart | IDLE, not ready | clone a worker
 * that execs the program; it counts as a spare, and must say READY within
 * PSUP_PRESTART_TIMEOUT_MS | and | IDLE, not ready | READY | IDLE | the
 * deadline is gone | */
static void prestarted_worker_is_a_spare_and_ready_on_ready(void **state)
{
    struct rt_test *t = *state;

    apply(t, PRESTART);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, w, PSUP_WORKER_IDLE);
    expect_pool(t, 1, 0, 0, 0);
    assert_false(find_worker(t, w)->ready);
    advance(t, PSUP_PRESTART_TIMEOUT_MS - 1);
    EXPECT_NO_CALLS(t); /* no second spare started for it */
    message(t, w, PSUP_MSG_READY, 0, 0);
    assert_true(find_worker(t, w)->ready);
    advance(t, 10 * PSUP_PRESTART_TIMEOUT_MS);
    EXPECT_NO_CALLS(t);
    message(t, w, PSUP_MSG_RUNNING, 1, 1);
    EXPECT_CALLS(t, SPAWN);
    expect_state(t, w, PSUP_WORKER_BUSY);
    EXPECT_QUIET_LOG(t);
}

/* | IDLE, not ready | PSUP_PRESTART_TIMEOUT_MS passed | unchanged | SIGKILL
 * to the group; reaped, a failure (step prestart, ETIMEDOUT) | */
static void prestarted_worker_never_ready_is_killed_and_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, PRESTART);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    advance(t, PSUP_PRESTART_TIMEOUT_MS);
    EXPECT_CALLS(t, SIGNAL(-w, SIGKILL));
    reap(t, w, KILLED(SIGKILL));
    EXPECT_CALLS(t, SPAWN); /* the first failures are retried at once */
    EXPECT_LOG(t, "event=worker_failed step=prestart program=/bin/true errno=ETIMEDOUT");
    assert_int_equal(svc(t)->counters.failed, 1);
    assert_int_equal(svc(t)->backoff.failures, 1);
}

/* | IDLE, not ready | exited, no SETUP_FAILED | (gone) | a failure (step
 * prestart, ELIBACC: the program ran without the library) | */
static void prestarted_worker_exiting_before_ready_is_a_failure(void **state)
{
    struct rt_test *t = *state;

    apply(t, PRESTART);
    pid_t w = spawned(t, 0);
    EXPECT_CALLS(t, SPAWN);
    reap(t, w, EXITED(0));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=worker_failed step=prestart program=/bin/true errno=ELIBACC");
    assert_int_equal(svc(t)->counters.failed, 1);
    /* Ready, and then killed from outside: lost, not a failure. */
    pid_t next = spawned(t, 1);
    message(t, next, PSUP_MSG_READY, 0, 0);
    reap(t, next, KILLED(SIGKILL));
    EXPECT_CALLS(t, SPAWN);
    EXPECT_LOG(t, "event=worker_lost signal=KILL");
    assert_int_equal(svc(t)->counters.failed, 1);
}

#define ROW(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* spec/pool.md, "States and transitions", row by row. */
        ROW(none_to_idle_clone_up_to_min_spare),
        ROW(none_to_idle_held_while_slots_are_scarce),
        ROW(none_held_worker_killed_without_headroom),
        ROW(none_clone_fails),
        ROW(idle_busy_run_to_busy),
        ROW(idle_running_to_busy),
        ROW(retiring_busy_run_or_running_to_busy),
        ROW(busy_busy_or_running_again_unchanged),
        ROW(idle_busy_refused_per_source),
        ROW(idle_busy_refused_rate),
        ROW(idle_busy_refused_overload),
        ROW(retiring_busy_refused),
        ROW(busy_refused_while_stopping),
        ROW(unknown_pid_busy_gets_close),
        ROW(idle_denied_unchanged),
        ROW(idle_reading_to_reading),
        ROW(reading_busy_or_running_to_busy),
        ROW(reading_proxy_refused_to_idle),
        ROW(idle_proxy_refused_unchanged),
        ROW(reading_denied_to_idle),
        ROW(reading_killed_at_shutdown_timeout),
        ROW(cgi_timeout_is_a_backstop),
        ROW(idle_accept_failed_unchanged),
        ROW(busy_gave_up_to_idle),
        ROW(busy_gave_up_old_generation_to_retiring),
        ROW(idle_gave_up_after_refusal_unchanged),
        ROW(idle_new_generation_to_retiring),
        ROW(idle_service_removed_to_retiring),
        ROW(idle_shutdown_to_retiring),
        ROW(idle_stopped_to_stopped),
        ROW(stopped_continued_to_idle_surplus_retires),
        ROW(stopped_continued_old_generation_retires),
        ROW(busy_or_retiring_stopped_unchanged),
        ROW(busy_timeout_to_terminating),
        ROW(terminating_kill_grace_to_killing),
        ROW(shutdown_timeout_terminates_busy_kills_idle),
        ROW(kill_all_kills_every_group),
        ROW(busy_reaped_gone),
        ROW(terminating_reaped_gone),
        ROW(killing_reaped_gone),
        ROW(retiring_reaped_exit_0_nothing),
        ROW(idle_reaped_after_setup_failed_is_a_failure),
        ROW(idle_stopped_retiring_other_exit_is_a_failure),
        ROW(idle_stopped_retiring_killed_from_outside_is_lost),
        ROW(busy_reaped_after_exec_failed_is_a_failure),
        /* spec/prestart.md: the handshake. */
        ROW(prestarted_worker_is_a_spare_and_ready_on_ready),
        ROW(prestarted_worker_never_ready_is_killed_and_a_failure),
        ROW(prestarted_worker_exiting_before_ready_is_a_failure),
        /* "Failures and backoff". */
        ROW(backoff_delays_probes_and_a_handler_ends_it),
        ROW(backoff_ends_on_reload),
        /* essential, control, the backlog at shutdown. */
        ROW(essential_fails_after_fatal_after),
        ROW(not_essential_is_never_fatal),
        ROW(control_pause_retires_idle_and_starts_none),
        ROW(control_pause_lasts_through_reloads),
        ROW(control_scale_checks_and_holds_until_reload),
        ROW(control_unknown_service_and_stopping),
        ROW(control_wait_mode_refuses_pause_and_scale),
        ROW(control_pause_carried_into_wait_mode_starts_no_server),
        ROW(shutdown_serves_the_backlog_first),
        /* The snapshot. */
        ROW(stats_snapshot_per_service_and_runtime),
        ROW(stats_status_and_summary_records),
        ROW(stats_one_line_summary),
        ROW(stats_of_an_empty_runtime),
        /* spec/wait.md, "States and transitions". */
        ROW(wait_on_demand_watches_then_starts_on_demand),
        ROW(wait_always_starts_instances_at_once),
        ROW(wait_always_exit_is_a_failure_restarted_with_backoff),
        ROW(wait_on_demand_clean_exit_watches_again),
        ROW(wait_on_demand_exit_leaving_a_socket_readable_is_a_failure),
        ROW(wait_on_demand_exit_with_others_running_is_clean),
        ROW(wait_on_demand_crash_is_a_failure),
        ROW(wait_exec_failed_is_a_failure),
        ROW(wait_timeout_stops_the_server),
        ROW(wait_reload_starts_new_then_stops_old),
        ROW(wait_reload_on_demand_watches_while_the_old_server_stops),
        ROW(wait_service_removed_stops_its_servers),
        ROW(wait_shutdown_stops_servers_at_once),
        ROW(wait_shutdown_signals_servers_in_the_same_turn),
        ROW(wait_stderr_log_pipe_answered),
        ROW(wait_unwatchable_starts_at_once_and_spawn_failure_keeps_demand),
        ROW(wait_stats_mode),
    };

    psup_config_set_cgi_relay("/bin/true"); /* what psup-cgi is for cgi services here */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
