/* SPDX-License-Identifier: MIT */
/*
 * The runtime: workers' lives from spawn to reap (their records are
 * worker.c's; wait-mode servers are server.c's). Every decision about a
 * connection the supervisor makes (the verdict: run, or refuse for
 * per-source, rate or overload) is made here, in order, by the single thread
 * that owns the counters; that is what makes the limits exact. No event loop
 * here, and no blocking call. apply.c feeds it configurations.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fd.h"
#include "base/helpers.h"
#include "base/log.h"
#include "policy/pool.h"
#include "proto/rawsys.h"
#include "runtime/generation.h"
#include "runtime/internal.h"
#include "runtime/reply.h"
#include "runtime/report.h"

/* ------------------------------------------------------------------------ */
/* The real operations on processes (struct psup_runtime_ops); arg is the
 * runtime. */

static int real_stack_map(void *arg, struct psup_stack *stack)
{
    (void)arg;
    return psup_stack_map(stack);
}

static void real_stack_unmap(void *arg, struct psup_stack *stack)
{
    (void)arg;
    psup_stack_unmap(stack);
}

static pid_t real_spawn(void *arg, struct psup_child *child, const struct psup_stack *stack)
{
    const struct psup_runtime *rt = arg;

    return psup_worker_spawn(child, stack, rt->share_memory);
}

static int real_signal(void *arg, pid_t pid, int sig)
{
    (void)arg;
    return kill(pid, sig) < 0 ? -errno : 0;
}

/* sigqueue() without glibc's getpid() and getuid() on every call: the
 * verdict is on the client's path. */
static int real_verdict(void *arg, pid_t pid, uint64_t value)
{
    const struct psup_runtime *rt = arg;
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    info.si_signo = rt->verdict_signal;
    info.si_code = SI_QUEUE;
    info.si_pid = rt->self;
    info.si_uid = rt->uid;
    info.si_value.sival_ptr = (void *)(uintptr_t)value;
    return syscall(SYS_rt_sigqueueinfo, pid, rt->verdict_signal, &info) < 0 ? -errno : 0;
}

static int real_probe(void *arg, const struct psup_stack *stack)
{
    (void)arg;
    return psup_probe_slot(stack);
}

static int real_readable(void *arg, int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;

    (void)arg;
    while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    return n > 0 && (pfd.revents & POLLIN);
}

/* ------------------------------------------------------------------------ */
/* Life of the runtime. */

/* A test knob (PSUP_TEST_*_MS): a shorter wait than the default, so that
 * tests reach a timeout in a second, not a minute. */
static int test_knob_ms(const char *name, int normal)
{
    const char *knob = getenv(name);
    long ms = knob ? strtol(knob, NULL, 10) : 0;

    return ms > 0 && ms <= normal ? (int)ms : normal;
}

/* How workers will close descriptors (lib/child/fds.c). close_range with
 * CLOSE_RANGE_CLOEXEC needs Linux 5.11 (5.9 without the flag: EINVAL), and
 * a container runtime's seccomp profile may refuse close_range altogether
 * (ENOSYS, EPERM). Asked about a range that holds no descriptor, the
 * kernel changes nothing. */
static enum psup_fd_closing choose_fd_closing(void)
{
    if (syscall(SYS_close_range, ~0U, ~0U, PSUP_CLOSE_RANGE_CLOEXEC) == 0)
        return PSUP_FDS_CLOSE_RANGE;
    int err = errno;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    enum psup_fd_closing how = dir >= 0 ? PSUP_FDS_PROC : PSUP_FDS_RLIMIT;
    struct psup_log l;

    psup_fd_close(dir);
    psup_log_begin(&l, PSUP_LOG_WARN, "close_range_fallback");
    psup_log_errno(&l, err);
    psup_log_str(&l, "fallback", how == PSUP_FDS_PROC ? "proc" : "rlimit");
    psup_log_end(&l);
    return how;
}

int psup_runtime_init(struct psup_runtime *rt, int channel_fd, bool share_memory)
{
    memset(rt, 0, sizeof(*rt));
    psup_list_init(&rt->services);
    psup_list_init(&rt->timed);
    rt->channel_fd = channel_fd;
    rt->self = getpid();
    rt->uid = getuid();
    rt->verdict_signal = PSUP_SIG_VERDICT;
    rt->verdict_timeout_ms = test_knob_ms("PSUP_TEST_VERDICT_TIMEOUT_MS", PSUP_VERDICT_TIMEOUT_MS);
    rt->prestart_timeout_ms = test_knob_ms("PSUP_TEST_PRESTART_TIMEOUT_MS",
                                           PSUP_PRESTART_TIMEOUT_MS);
    rt->prestart_library = psup_prestart_library();
    rt->fd_closing = choose_fd_closing();
    /* Sharing memory needs the raw system calls (rawsys.h). */
    rt->share_memory = share_memory && PSUP_RAW_SYSCALLS;
    rt->accepting = true;
    rt->ops = (struct psup_runtime_ops){.stack_map = real_stack_map,
                                        .stack_unmap = real_stack_unmap,
                                        .spawn = real_spawn,
                                        .signal = real_signal,
                                        .verdict = real_verdict,
                                        .probe = real_probe,
                                        .readable = real_readable,
                                        .arg = rt};
    struct rlimit nproc;
    if (getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY)
        rt->nproc_limit = nproc.rlim_cur;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Worker bookkeeping. */

static bool is_busy(const struct psup_worker *w)
{
    return w->state >= PSUP_WORKER_BUSY;
}

/* The max_workers a busy worker of generation g counts against: the
 * service's bounds now for the current generation, g's own for an old
 * one (a reload does not end its handlers). */
static unsigned max_workers_of(const struct psup_service *s, const struct psup_generation *g)
{
    return g == s->current ? psup_service_limits(s).max_workers : g->svc->max_workers;
}

/* Whether the service's workers should wait for connections: it is
 * configured and not paused, and psup is not stopping, or is, but still
 * serves the service's backlogs (psup_runtime_stop_accepting). */
static bool takes_connections(const struct psup_runtime *rt, const struct psup_service *s)
{
    return s->current && !s->paused && (rt->accepting || s->listening);
}

/* Saturation is logged when busy reaches max_workers, and its end only
 * once a slot has stayed free for SATURATION_CALM_MS: clients queued in the
 * backlog take freed slots at once, and the log must not flap with them. */
#define SATURATION_CALM_MS 1000

static void set_saturated(struct psup_service *s, bool saturated, uint64_t now)
{
    psup_report_saturation(s, saturated, saturated ? 0 : now - s->saturated_since);
    s->saturated = saturated;
    s->below_limit_since = 0;
    if (saturated)
        s->saturated_since = now;
}

static void track_saturation(struct psup_service *s, unsigned max_workers, uint64_t now)
{
    if (s->busy >= max_workers) {
        if (!s->saturated)
            set_saturated(s, true, now);
        s->below_limit_since = 0;
    } else if (s->saturated && !s->below_limit_since) {
        s->below_limit_since = now;
    } else if (s->saturated && now >= s->below_limit_since + SATURATION_CALM_MS) {
        set_saturated(s, false, s->below_limit_since);
    }
}

/* ------------------------------------------------------------------------ */
/* Starting and retiring workers. */

/* Creating a worker failed for lack of processes or memory. RLIMIT_NPROC
 * counts handlers and their children too, so psup now shares scarce slots
 * with them: until SPAWN_CALM_MS pass without a failure it keeps at most one
 * spare per service and starts workers only from its timer, SPAWN_YIELD_MS
 * after a connection was taken or a child exited, so that a handler just
 * started gets the slots it needs for its own children first. */
#define SPAWN_YIELD_MS 20
#define SPAWN_CALM_MS 1000

/* Leave the scarce mode once starts have worked for a calm period. */
static void spawn_settle(struct psup_runtime *rt, uint64_t now)
{
    if (!rt->spawn_failing || now < rt->spawn_last_failure + SPAWN_CALM_MS)
        return;
    rt->spawn_failing = false;
    rt->spawn_delay = 0;
    rt->spawn_blocked_until = 0;
    psup_report_spawn_recovered();
}

/* After a connection was taken or a child exited while slots are scarce:
 * start no worker before the new handler had time to create its own. A
 * wait already running is not extended, so a steady stream of exits cannot
 * postpone starts for ever. */
static void spawn_yield(struct psup_runtime *rt, uint64_t now)
{
    if (rt->spawn_blocked_until <= now)
        rt->spawn_blocked_until = now + SPAWN_YIELD_MS;
}

/* Whether process slots are scarce: clone failed and has not worked for a
 * calm period since, or psup's workers already fill a third of RLIMIT_NPROC
 * (handlers often need two or three processes: a shell and what it runs). */
static bool slots_scarce(const struct psup_runtime *rt)
{
    return rt->spawn_failing || (rt->nproc_limit && (rt->live + 1) * 3 >= rt->nproc_limit);
}

/* When slots are scarce, a new worker must leave one free for the handler it
 * will become: it waits (hold) while psup checks that one more process can
 * be created, and is released, or killed before it took anything. Without
 * this, the worker takes the last slot, its handler's shell cannot fork, and
 * every client that reaches it fails. Returns 0 or -errno (EAGAIN). */
static int start_with_headroom(struct psup_runtime *rt, struct psup_service *s, uint64_t now)
{
    bool careful = slots_scarce(rt);
    struct psup_worker *w;
    int rc = psup_runtime_spawn(rt, s, now, careful, &w);

    if (rc < 0 || !careful)
        return rc;
    struct psup_stack probe;
    rc = psup_runtime_stack_acquire(rt, &probe);
    if (rc == 0) {
        rc = rt->ops.probe(rt->ops.arg, &probe);
        psup_runtime_stack_release(rt, &probe);
    }
    if (rc == 0)
        rc = psup_runtime_send_verdict(rt, w->pid, psup_verdict_encode(PSUP_VERDICT_RUN, 0, 0, 0));
    if (rc < 0) {
        /* No headroom, or the go could not be sent: the held worker has
         * taken nothing and would only wait for a go that never comes. */
        psup_runtime_signal(rt, w->pid, SIGKILL);
        w->signalled = true; /* not a failure of the service */
    }
    return rc;
}

static void retire(const struct psup_runtime *rt, struct psup_worker *w)
{
    /* The worker leaves if it is waiting; if it just took a connection the
     * signal stays blocked and is discarded before exec (spec/pool.md). */
    psup_runtime_signal(rt, w->pid, PSUP_SIG_RETIRE);
    psup_runtime_set_state(w, PSUP_WORKER_RETIRING);
}

/* Retire up to n idle workers, newest first: with EPOLLEXCLUSIVE the oldest
 * waiter is woken first, so the newest are the least likely to be busy. */
static void retire_idle(const struct psup_runtime *rt, struct psup_service *s, unsigned n)
{
    for (struct psup_list *p = s->workers.prev; p != &s->workers && n; p = p->prev) {
        struct psup_worker *w = PSUP_CONTAINER(p, struct psup_worker, link);
        if (w->state == PSUP_WORKER_IDLE) {
            retire(rt, w);
            n--;
        }
    }
}

void psup_runtime_end_backoff(struct psup_service *s, uint64_t now)
{
    if (psup_backoff_settle(&s->backoff, now, true))
        psup_runtime_recovered(s);
}

static void maintain_service(struct psup_runtime *rt, struct psup_service *s, uint64_t now)
{
    if (psup_backoff_settle(&s->backoff, now, false))
        psup_runtime_recovered(s);
    if (!s->backoff.delay_ms)
        s->failing_since = 0;
    if (s->current && s->current->svc->mode == PSUP_MODE_WAIT) {
        retire_idle(rt, s, s->idle); /* of an accept-mode generation before */
        psup_runtime_maintain_servers(rt, s, now);
        return;
    }
    if (s->saturated && s->current)
        track_saturation(s, psup_service_limits(s).max_workers, now);
    if (!takes_connections(rt, s)) {
        retire_idle(rt, s, s->idle);
        return;
    }
    struct psup_pool_counts counts = {s->idle, s->busy, s->retiring, s->stopped};
    struct psup_pool_limits limits = psup_service_limits(s);
    if (slots_scarce(rt))
        limits.min_spare = limits.max_spare = 1; /* leave slots to handlers */
    int n = psup_pool_adjust(&counts, &limits);
    if (n < 0) {
        retire_idle(rt, s, (unsigned)-n);
        return;
    }
    if (n == 0 || now < rt->spawn_blocked_until)
        return;
    unsigned allowance = psup_backoff_allowance(&s->backoff, now);
    for (unsigned i = 0; i < (unsigned)n && i < allowance; i++) {
        int rc = start_with_headroom(rt, s, now);
        if (rc < 0) {
            psup_runtime_spawn_failed(rt, s, rc, now);
            return;
        }
        psup_backoff_started(&s->backoff, now);
    }
}

void psup_runtime_switch_generation(struct psup_runtime *rt, struct psup_service *s,
                                    struct psup_generation *gen, uint64_t now)
{
    struct psup_generation *old = s->current;
    struct psup_list *p;

    /* Count the old idle workers as leaving, start the new generation's
     * spares, and only then tell the old ones to go: capacity never dips,
     * and the listeners stay open throughout, so nothing is refused. */
    for (p = s->workers.next; p != &s->workers; p = p->next) {
        struct psup_worker *w = PSUP_CONTAINER(p, struct psup_worker, link);
        if (w->state == PSUP_WORKER_IDLE)
            psup_runtime_set_state(w, PSUP_WORKER_RETIRING);
    }
    psup_runtime_unwatch(rt, s); /* the sockets watched were old's */
    if (!gen || gen->svc->mode != PSUP_MODE_WAIT)
        s->demand = false;
    s->current = gen;
    if (gen)
        maintain_service(rt, s, now);
    /* Wait-mode servers of the old generation are asked to stop once the
     * new ones are started (spec/wait.md, "Reload"). */
    psup_runtime_stop_old_servers(rt, s, now);
    for (p = s->workers.next; p != &s->workers; p = p->next) {
        struct psup_worker *w = PSUP_CONTAINER(p, struct psup_worker, link);
        if (w->state == PSUP_WORKER_RETIRING && w->gen == old)
            psup_runtime_signal(rt, w->pid, PSUP_SIG_RETIRE);
    }
    if (old)
        psup_generation_unref(old);
}

void psup_runtime_maintain(struct psup_runtime *rt, uint64_t now)
{
    struct psup_list *p, *tmp;

    spawn_settle(rt, now);
    psup_list_foreach_safe(p, tmp, &rt->services)
        maintain_service(rt, PSUP_CONTAINER(p, struct psup_service, link), now);
}

/* ------------------------------------------------------------------------ */
/* Messages from workers: the verdict. */

/* Decide what happens to a connection a worker took. Checks run in this
 * order so that a refused connection consumes nothing: the service's limit,
 * the client's limit, then the rate. */
static enum psup_verdict decide(struct psup_runtime *rt, struct psup_worker *w, uint64_t now,
                                unsigned *connnum)
{
    struct psup_service *s = w->service;
    const struct psup_service_config *cfg = w->gen->svc;

    if (rt->closing)
        return PSUP_VERDICT_CLOSE;
    if (cfg->on_overload == PSUP_OVERLOAD_REJECT && s->busy >= max_workers_of(s, w->gen))
        return PSUP_VERDICT_OVERLOAD;
    unsigned current = psup_sources_count(&s->sources, &w->source);
    if (cfg->max_per_source && current >= cfg->max_per_source)
        return PSUP_VERDICT_PER_SOURCE;
    if (!psup_rate_take(&s->rate, cfg->rate, cfg->rate_burst, now))
        return PSUP_VERDICT_RATE;
    unsigned counted = psup_sources_add(&s->sources, &w->source);
    w->counted = counted > 0;
    *connnum = w->counted ? counted : current + 1;
    return PSUP_VERDICT_RUN;
}

static void refused(struct psup_worker *w, enum psup_verdict v, uint64_t now)
{
    struct psup_service *s = w->service;

    switch (v) {
    case PSUP_VERDICT_PER_SOURCE:
        s->counters.per_source++;
        psup_report_refusal(s, PSUP_LIMIT_PER_SOURCE, w->pid, &w->peer, &w->proxy, now);
        break;
    case PSUP_VERDICT_RATE:
        s->counters.rate++;
        psup_report_refusal(s, PSUP_LIMIT_RATE, w->pid, &w->peer, &w->proxy, now);
        break;
    case PSUP_VERDICT_OVERLOAD:
        s->counters.overload++;
        psup_report_refusal(s, PSUP_LIMIT_OVERLOAD, w->pid, &w->peer, &w->proxy, now);
        break;
    default:
        break;
    }
}

/* What a worker's BUSY or RUNNING says about its connection. */
static void note_connection(struct psup_worker *w, const struct psup_msg *m)
{
    w->peer = m->peer;
    w->proxy = m->proxy;
    w->route = m->route;
    w->listener = m->listener;
    w->seq = m->seq;
    psup_peer_source(&w->peer, w->gen->svc->per_source_ipv6_prefix, &w->source);
}

/* The connection goes to a handler: replace the spare, watch the timeout. */
static void became_busy(struct psup_runtime *rt, struct psup_worker *w, uint64_t now)
{
    psup_runtime_set_state(w, PSUP_WORKER_BUSY);
    w->busy_since = now;
    w->service->counters.accepted++;
    if (w->gen->timeout_ms)
        psup_runtime_set_deadline(rt, w, now + w->gen->timeout_ms);
    track_saturation(w->service, max_workers_of(w->service, w->gen), now);
    /* Replace the spare at once, not on a timer (unless processes are
     * scarce: then the new handler's children go first). */
    if (slots_scarce(rt))
        spawn_yield(rt, now);
    else
        maintain_service(rt, w->service, now);
}

/* A PROXY header is being read (spec/proxy.md): the worker counts as busy,
 * so a spare replaces it, but runs no handler yet. */
static void on_reading(struct psup_runtime *rt, struct psup_worker *w, uint64_t now)
{
    if (w->state != PSUP_WORKER_IDLE && w->state != PSUP_WORKER_RETIRING)
        return;
    psup_runtime_set_state(w, PSUP_WORKER_READING);
    if (slots_scarce(rt))
        spawn_yield(rt, now);
    else
        maintain_service(rt, w->service, now);
}

/* A worker that read a PROXY header and runs no handler (refused) is idle
 * again, and leaves if its configuration is gone meanwhile, or its service
 * paused. */
static void done_reading(struct psup_runtime *rt, struct psup_worker *w)
{
    psup_runtime_set_state(w, PSUP_WORKER_IDLE);
    if (w->gen != w->service->current || !takes_connections(rt, w->service))
        retire(rt, w);
}

static void on_proxy_refused(struct psup_runtime *rt, struct psup_worker *w,
                             const struct psup_msg *m, uint64_t now)
{
    w->service->counters.proxy_refused++;
    psup_report_proxy_refused(w->service, w->pid, &m->proxy, m->err, now);
    if (w->state == PSUP_WORKER_READING)
        done_reading(rt, w);
}

static void on_busy(struct psup_runtime *rt, struct psup_worker *w, const struct psup_msg *m,
                    const struct psup_passed_fds *fds, uint64_t now)
{
    const struct psup_service_config *cfg = w->gen->svc;
    unsigned connnum = 0;
    unsigned flags = 0;

    if (w->exited) {
        /* Killed before the verdict: nothing to answer, nothing to count
         * (its pid, already reaped, may be another process's by now). */
        psup_fd_close(fds->log);
        psup_fd_close(fds->reply);
        return;
    }
    /* Counted busy while it read a PROXY header: idle for the decision,
     * which counts the handlers that run. */
    bool was_reading = w->state == PSUP_WORKER_READING;
    if (was_reading)
        psup_runtime_set_state(w, PSUP_WORKER_IDLE);
    note_connection(w, m);
    enum psup_verdict v = decide(rt, w, now, &connnum);
    if (v == PSUP_VERDICT_RUN && cfg->stderr_mode == PSUP_STDERR_LOG) {
        if (!psup_runtime_follow_stderr(rt, w, fds->log)) {
            flags |= PSUP_VERDICT_NO_LOG_PIPE;
            psup_report_stderr_fallback(w, now);
        }
    } else {
        psup_fd_close(fds->log);
    }
    /* Followed before the verdict is sent: the handler may write as soon
     * as it runs. A refused datagram's socket is simply closed. */
    if (v == PSUP_VERDICT_RUN)
        psup_reply_follow(rt, w, fds->reply, now);
    else
        psup_fd_close(fds->reply);

    if (psup_runtime_send_verdict(rt, w->pid, psup_verdict_encode(v, flags, connnum, w->seq)) < 0 &&
        v == PSUP_VERDICT_RUN) {
        /* It died meanwhile, or its signal queue is full (it then gives
         * the client up after its timeout): it never became busy, so give
         * its count back here (only a busy worker's exit releases one). */
        if (w->counted)
            psup_sources_remove(&w->service->sources, &w->source);
        w->counted = false;
        v = PSUP_VERDICT_CLOSE;
        psup_reply_end(rt, w);
    }
    if (v != PSUP_VERDICT_RUN) {
        refused(w, v, now);
        if (was_reading)
            done_reading(rt, w);
        return;
    }
    became_busy(rt, w, now);
}

/* A worker that needs no verdict is already running its handler: count its
 * source (for a reload that sets max_per_source) and take it as busy. */
static void on_running(struct psup_runtime *rt, struct psup_worker *w,
                       const struct psup_msg *m, int reply_fd, uint64_t now)
{
    if (w->state == PSUP_WORKER_READING)
        psup_runtime_set_state(w, PSUP_WORKER_IDLE);
    note_connection(w, m);
    /* A handler that has exited already no longer counts. */
    w->counted = !w->exited && psup_sources_add(&w->service->sources, &w->source) > 0;
    psup_reply_follow(rt, w, reply_fd, now);
    became_busy(rt, w, now);
}

/* The worker waited too long for the verdict on request m->seq, closed that
 * client and is idle again: whatever the verdict was, no handler runs. */
static void on_gave_up(struct psup_runtime *rt, struct psup_worker *w,
                       const struct psup_msg *m, uint64_t now)
{
    struct psup_service *s = w->service;

    psup_report_gave_up(w, m);
    if (!is_busy(w) || w->seq != m->seq)
        return; /* the verdict was a refusal, or never sent */
    if (w->counted)
        psup_sources_remove(&s->sources, &w->source);
    w->counted = false;
    psup_list_remove(&w->timer_link);
    if (w->errlog && rt->hooks.stderr_done)
        rt->hooks.stderr_done(rt->hooks.arg, w->errlog);
    psup_reply_end(rt, w);
    s->counters.accepted--;
    psup_runtime_set_state(w, PSUP_WORKER_IDLE);
    if (w->gen != s->current || !takes_connections(rt, s))
        retire(rt, w); /* its configuration is gone meanwhile, or paused */
    if (s->current)
        track_saturation(s, psup_service_limits(s).max_workers, now);
}

/* A prestarted worker's library runs (READY), or has even taken a
 * connection: it is a spare like any other now. */
static void mark_ready(struct psup_worker *w)
{
    if (w->ready)
        return;
    w->ready = true;
    psup_list_remove(&w->timer_link);
}

void psup_runtime_on_message(struct psup_runtime *rt, const struct psup_msg *m,
                             const struct psup_passed_fds *fds, uint64_t now)
{
    struct psup_worker *w = psup_runtime_find_worker(rt, m->pid);
    struct psup_passed_fds left = *fds;

    if (!w) {
        /* Not one of ours (or already reaped): a worker waiting for a
         * verdict gives the connection up after its timeout; answer now. */
        if (m->kind == PSUP_MSG_BUSY)
            psup_runtime_send_verdict(rt, m->pid,
                                      psup_verdict_encode(PSUP_VERDICT_CLOSE, 0, 0, m->seq));
        psup_fd_close(fds->log);
        psup_fd_close(fds->reply);
        return;
    }
    if (psup_runtime_is_server(w)) {
        psup_runtime_server_message(rt, w, m, fds, now);
        return;
    }
    switch (m->kind) {
    case PSUP_MSG_READY:
        mark_ready(w);
        break;
    case PSUP_MSG_BUSY:
        mark_ready(w);
        if (!is_busy(w)) {
            on_busy(rt, w, m, fds, now);
            return;
        }
        break;
    case PSUP_MSG_RUNNING:
        mark_ready(w);
        if (!is_busy(w)) {
            on_running(rt, w, m, fds->reply, now);
            left.reply = -1;
        }
        break;
    case PSUP_MSG_DENIED:
        w->service->counters.denied++;
        psup_report_refusal(w->service, PSUP_LIMIT_DENIED, w->pid, &m->peer, &m->proxy, now);
        if (w->state == PSUP_WORKER_READING)
            done_reading(rt, w); /* the header's client is denied */
        break;
    case PSUP_MSG_SETUP_FAILED:
    case PSUP_MSG_EXEC_FAILED:
        /* Counted as accepted when it took the connection, but no handler
         * ran: the connection counts as a failure instead. */
        if (m->kind == PSUP_MSG_EXEC_FAILED && is_busy(w) && !w->exec_failed)
            w->service->counters.accepted--;
        w->error = m->err;
        w->step = m->step;
        w->exec_failed = m->kind == PSUP_MSG_EXEC_FAILED;
        break;
    case PSUP_MSG_ACCEPT_FAILED:
        psup_report_accept_failed(w, m->err, now);
        break;
    case PSUP_MSG_GAVE_UP:
        on_gave_up(rt, w, m, now);
        break;
    case PSUP_MSG_READING:
        on_reading(rt, w, now);
        break;
    case PSUP_MSG_PROXY_REFUSED:
        on_proxy_refused(rt, w, m, now);
        break;
    default:
        break;
    }
    psup_fd_close(left.log);
    psup_fd_close(left.reply);
}

/* ------------------------------------------------------------------------ */
/* Exits. */

void psup_runtime_note_exit(struct psup_runtime *rt, pid_t pid)
{
    struct psup_worker *w = psup_runtime_find_worker(rt, pid);

    if (!w)
        return;
    w->exited = true;
    if (w->counted)
        psup_sources_remove(&w->service->sources, &w->source);
    w->counted = false;
    if (w->child.tally_slot != PSUP_TALLY_NONE)
        psup_tally_withdraw(w->service->tally.shared, w->child.tally_slot);
}

static void idle_exit(struct psup_runtime *rt, struct psup_worker *w, int status, uint64_t now)
{
    bool retired = WIFEXITED(status) && WEXITSTATUS(status) == PSUP_WORKER_EXIT_RETIRED &&
                   (w->state == PSUP_WORKER_RETIRING || !rt->accepting || !w->service->current);

    if (retired || w->signalled)
        return;
    if (!w->ready && !w->error && WIFEXITED(status)) {
        /* A prestarted program that exited before psup's library said
         * READY, and without a word from it: the library was not loaded
         * (LD_PRELOAD ignored, or the library unreadable for the user),
         * and the program ran as if it had no connection. */
        w->error = ELIBACC;
        w->step = PSUP_STEP_PRESTART;
    }
    if (WIFSIGNALED(status) && !w->error) {
        /* Killed from outside while idle (an operator, the OOM killer):
         * replaced at once, not held against the service. */
        psup_report_worker_lost(w, status);
        return;
    }
    psup_runtime_count_failure(w, status, now);
}

/* The outcome and run time of a connection, counted as its conn_end
 * record is written: the admin endpoint's counts match the log's. */
static void count_end(struct psup_worker *w, int status, uint64_t now)
{
    struct psup_counters *c = &w->service->counters;
    enum psup_outcome o = w->exec_failed       ? PSUP_OUTCOME_EXEC_FAILED
                          : w->timed_out       ? PSUP_OUTCOME_TIMEOUT
                          : WIFSIGNALED(status) ? PSUP_OUTCOME_SIGNAL
                          : WEXITSTATUS(status) ? PSUP_OUTCOME_ERROR
                                                : PSUP_OUTCOME_OK;

    c->ended[o]++;
    psup_durations_add(&c->durations, now > w->busy_since ? now - w->busy_since : 0);
}

static void busy_exit(struct psup_worker *w, int status, uint64_t now)
{
    struct psup_service *s = w->service;

    if (w->counted)
        psup_sources_remove(&s->sources, &w->source);
    psup_report_conn_end(w, status, now);
    count_end(w, status, now);
    if (w->exec_failed)
        psup_runtime_count_failure(w, status, now);
    else if (psup_backoff_settle(&s->backoff, now, true))
        psup_runtime_recovered(s);
}

bool psup_runtime_on_exit(struct psup_runtime *rt, pid_t pid, int status, uint64_t now)
{
    struct psup_worker *w = psup_runtime_find_worker(rt, pid);

    if (!w)
        return false;
    struct psup_service *s = w->service;
    /* What the handler wrote to stderr comes before its conn_end line, and
     * so do the replies it left (counted in conn_end). */
    if (w->errlog && rt->hooks.stderr_done)
        rt->hooks.stderr_done(rt->hooks.arg, w->errlog);
    psup_reply_end(rt, w);
    if (psup_runtime_is_server(w))
        psup_runtime_server_exit(rt, w, status, now);
    else if (is_busy(w))
        busy_exit(w, status, now);
    else
        idle_exit(rt, w, status, now);
    psup_runtime_free_worker(rt, w);
    if (s->saturated && s->current)
        track_saturation(s, psup_service_limits(s).max_workers, now);
    psup_service_release(s);
    /* A process slot was freed: a blocked start may work now, a little
     * later if slots are scarce. */
    if (slots_scarce(rt))
        spawn_yield(rt, now);
    else
        rt->spawn_blocked_until = 0;
    return true;
}

void psup_runtime_on_stop(struct psup_runtime *rt, pid_t pid, bool stopped)
{
    struct psup_worker *w = psup_runtime_find_worker(rt, pid);

    if (!w || is_busy(w))
        return;
    /* A stopped idle worker cannot take connections: count it apart so a
     * spare replaces it, and count it back when it continues. */
    if (stopped && w->state == PSUP_WORKER_IDLE) {
        psup_runtime_set_state(w, PSUP_WORKER_STOPPED);
    } else if (!stopped && w->state == PSUP_WORKER_STOPPED) {
        psup_runtime_set_state(w, PSUP_WORKER_IDLE);
        if (w->gen != w->service->current || !takes_connections(rt, w->service))
            retire(rt, w); /* it belongs to a configuration that is gone */
    }
}

/* ------------------------------------------------------------------------ */
/* Deadlines: handler timeouts and the TERM -> KILL escalation. */

static uint64_t kill_grace_ms(const struct psup_runtime *rt)
{
    return (uint64_t)(rt->config->kill_grace * 1000.0);
}

static void terminate(struct psup_runtime *rt, struct psup_worker *w, uint64_t now)
{
    psup_runtime_signal_group(rt, w, SIGTERM);
    psup_runtime_set_state(w, PSUP_WORKER_TERMINATING);
    psup_runtime_set_deadline(rt, w, now + kill_grace_ms(rt));
}

void psup_runtime_expire(struct psup_runtime *rt, uint64_t now)
{
    while (!psup_list_empty(&rt->timed)) {
        struct psup_worker *w = PSUP_CONTAINER(rt->timed.next, struct psup_worker, timer_link);
        if (w->deadline > now)
            break;
        psup_list_remove(&w->timer_link);
        if (w->state == PSUP_WORKER_BUSY) {
            w->timed_out = true;
            w->service->counters.timed_out++;
            psup_report_timeout(w);
            terminate(rt, w, now);
        } else if (w->state == PSUP_WORKER_TERMINATING) {
            psup_runtime_signal_group(rt, w, SIGKILL);
            psup_runtime_set_state(w, PSUP_WORKER_KILLING);
        } else if (!w->ready) {
            /* A prestarted program that neither said READY nor exited:
             * it ignored psup's library and runs without a connection.
             * Stopped, and a failure of the service (not signalled: the
             * reason is this error, not psup's signal). */
            w->error = ETIMEDOUT;
            w->step = PSUP_STEP_PRESTART;
            if (psup_runtime_signal(rt, -w->pid, SIGKILL) == -ESRCH)
                psup_runtime_signal(rt, w->pid, SIGKILL);
        }
    }
}

/* When an essential service that keeps failing makes psup give up. */
static uint64_t fatal_at(const struct psup_service *s)
{
    return s->failing_since + (uint64_t)(s->current->svc->fatal_after * 1000.0);
}

/* How often the backlogs are looked at while they are served at shutdown:
 * a connection is accepted within this much of the moment the last one
 * before it was (the workers accept at once; this is about closing). */
#define BACKLOG_CHECK_MS 20

/* The earliest of a and b that is still to come (after now), or 0. */
static uint64_t next_after(uint64_t now, uint64_t a, uint64_t b)
{
    if (a <= now)
        return b > now ? b : 0;
    if (b <= now)
        return a;
    return a < b ? a : b;
}

uint64_t psup_runtime_next_deadline(const struct psup_runtime *rt, uint64_t now)
{
    uint64_t next = 0;
    const struct psup_list *p;

    /* Only deadlines still to come: one already past has been acted on by
     * the maintain and expire calls that precede this one (a past deadline
     * here would make the timer fire again at once, forever). */
    if (!psup_list_empty(&rt->timed))
        next = PSUP_CONTAINER(rt->timed.next, struct psup_worker, timer_link)->deadline;
    next = next_after(now, next, rt->spawn_blocked_until);
    if (rt->spawn_failing)
        next = next_after(now, next, rt->spawn_last_failure + SPAWN_CALM_MS);
    for (p = rt->services.next; p != &rt->services; p = p->next) {
        const struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        next = next_after(now, next, psup_backoff_wakeup(&s->backoff));
        if (s->below_limit_since)
            next = next_after(now, next, s->below_limit_since + SATURATION_CALM_MS);
        if (s->failing_since && s->current && s->current->svc->essential)
            next = next_after(now, next, fatal_at(s));
    }
    /* While backlogs are served at shutdown: look at them again soon. */
    if (!rt->accepting && rt->n_listeners)
        next = next_after(now, next, now + BACKLOG_CHECK_MS);
    return next;
}

const struct psup_service *psup_runtime_fatal_service(const struct psup_runtime *rt, uint64_t now)
{
    for (const struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        const struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (s->failing_since && s->current && s->current->svc->essential &&
            now >= fatal_at(s))
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Shutdown. */

/* A watched socket must leave the loop's watch before its descriptor is
 * closed: epoll would keep reporting it while a server holds a copy. */
static void unwatch_all(struct psup_runtime *rt)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next)
        psup_runtime_unwatch(rt, PSUP_CONTAINER(p, struct psup_service, link));
}

static void close_listeners(struct psup_runtime *rt)
{
    for (size_t i = 0; i < rt->n_listeners; i++) {
        psup_listener_close(rt->listeners[i]);
        free(rt->listeners[i]);
    }
    free(rt->listeners);
    rt->listeners = NULL;
    rt->n_listeners = 0;
}

/* Close the listeners of generation g (its plan names them by fd). */
static void close_listeners_of(struct psup_runtime *rt, const struct psup_generation *g)
{
    size_t kept = 0;

    for (size_t i = 0; i < rt->n_listeners; i++) {
        struct psup_listener *l = rt->listeners[i];
        bool of_g = false;
        for (size_t j = 0; j < g->plan->n_listeners && !of_g; j++)
            of_g = psup_plan_listeners(g->plan)[j].fd == l->fd;
        if (!of_g) {
            rt->listeners[kept++] = l;
            continue;
        }
        psup_listener_close(l);
        free(l);
    }
    rt->n_listeners = kept;
}

static bool backlog_empty(const struct psup_generation *g)
{
    for (size_t i = 0; i < g->plan->n_listeners; i++)
        if (psup_listener_fd_has_queued(psup_plan_listeners(g->plan)[i].fd))
            return false;
    return true;
}

/* A service is done with its backlogs once none of its listeners holds a
 * connection: its idle workers retire and its listeners close, together
 * and only then (its workers' plan names all of them, and a worker started
 * later must not find one of the numbers closed, or reused by another
 * descriptor of the supervisor). A paused service, or one removed by a
 * reload (whose listeners are already closed), is done at once. */
static void end_listening(struct psup_runtime *rt, struct psup_service *s)
{
    s->listening = false;
    retire_idle(rt, s, s->idle);
    if (s->current)
        close_listeners_of(rt, s->current);
}

void psup_runtime_stop_accepting(struct psup_runtime *rt, uint64_t now)
{
    struct psup_list *p;

    rt->accepting = false;
    unwatch_all(rt);
    /* A wait-mode service's sockets are its servers': what is queued there
     * is theirs to take or leave as they stop (spec/wait.md, "Shutdown"),
     * so psup closes its copies at once and puts no filter on them. */
    for (p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        s->listening = s->current && !s->paused && s->current->svc->mode != PSUP_MODE_WAIT;
        if (!s->listening)
            end_listening(rt, s);
    }
    for (size_t i = 0; i < rt->n_listeners; i++)
        psup_listener_refuse_new(rt->listeners[i]);
    /* Now, not at the next expiry: the stop may begin after this turn's
     * (shutdown_delay over), and the next may be shutdown_timeout away. */
    psup_runtime_stop_servers(rt, now);
    psup_runtime_drain_backlogs(rt, now);
}

bool psup_runtime_drain_backlogs(struct psup_runtime *rt, uint64_t now)
{
    (void)now;
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (s->listening && backlog_empty(s->current))
            end_listening(rt, s);
    }
    if (!rt->n_listeners) {
        free(rt->listeners);
        rt->listeners = NULL;
    }
    return rt->n_listeners > 0;
}

static void for_each_worker(struct psup_runtime *rt,
                            void (*fn)(struct psup_runtime *, struct psup_worker *, uint64_t),
                            uint64_t now)
{
    struct psup_list *p, *q, *tmp;

    for (p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        psup_list_foreach_safe(q, tmp, &s->workers)
            fn(rt, PSUP_CONTAINER(q, struct psup_worker, link), now);
    }
}

static void terminate_one(struct psup_runtime *rt, struct psup_worker *w, uint64_t now)
{
    if (w->state == PSUP_WORKER_BUSY)
        terminate(rt, w, now);
    else if (!is_busy(w))
        psup_runtime_signal_group(rt, w, SIGKILL); /* an idle worker that did not retire */
}

void psup_runtime_terminate_all(struct psup_runtime *rt, uint64_t now)
{
    struct psup_list *p;

    /* Time is up: what is still queued is not served (the kernel resets
     * it as the listeners close). */
    for (p = rt->services.next; p != &rt->services; p = p->next)
        PSUP_CONTAINER(p, struct psup_service, link)->listening = false;
    close_listeners(rt);
    rt->closing = true;
    for_each_worker(rt, terminate_one, now);
}

static void kill_one(struct psup_runtime *rt, struct psup_worker *w, uint64_t now)
{
    (void)now;
    psup_runtime_signal_group(rt, w, SIGKILL);
    if (w->state == PSUP_WORKER_BUSY || w->state == PSUP_WORKER_TERMINATING)
        psup_runtime_set_state(w, PSUP_WORKER_KILLING);
}

void psup_runtime_kill_all(struct psup_runtime *rt)
{
    rt->accepting = false;
    rt->closing = true;
    unwatch_all(rt);
    close_listeners(rt);
    for_each_worker(rt, kill_one, 0);
}

void psup_runtime_free(struct psup_runtime *rt)
{
    struct psup_list *p, *tmp;

    unwatch_all(rt);
    psup_list_foreach_safe(p, tmp, &rt->services) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (s->current)
            psup_runtime_switch_generation(rt, s, NULL, 0);
        psup_service_free(s);
    }
    close_listeners(rt);
    for (size_t i = 0; i < rt->n_stack_cache; i++)
        rt->ops.stack_unmap(rt->ops.arg, &rt->stack_cache[i]);
    free(rt->table);
    if (rt->config)
        psup_config_unref(rt->config);
    memset(rt, 0, sizeof(*rt));
}
