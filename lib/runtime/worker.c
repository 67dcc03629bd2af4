/* SPDX-License-Identifier: MIT */
/*
 * Worker records, which both workers (runtime.c) and wait-mode servers
 * (server.c) are: the pid table, stacks, creation through the process seam
 * (struct psup_runtime_ops), states and their counts, deadlines, signals
 * and verdicts, and what a failure or the end of a streak does. Below
 * runtime.c and server.c, calling neither.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <stdlib.h>

#include "base/fd.h"
#include "runtime/generation.h"
#include "runtime/report.h"

/* ------------------------------------------------------------------------ */
/* The pid table. */


static size_t slot_of(const struct psup_runtime *rt, pid_t pid)
{
    return ((size_t)pid * 2654435761u) & (rt->table_size - 1);
}

static int table_grow(struct psup_runtime *rt)
{
    size_t size = rt->table_size ? rt->table_size * 2 : 256;
    struct psup_worker **table = calloc(size, sizeof(*table));

    if (!table)
        return -ENOMEM;
    struct psup_worker **old = rt->table;
    size_t old_size = rt->table_size;
    rt->table = table;
    rt->table_size = size;
    for (size_t i = 0; i < old_size; i++) {
        while (old[i]) {
            struct psup_worker *w = old[i];
            old[i] = w->hash_next;
            size_t slot = slot_of(rt, w->pid);
            w->hash_next = rt->table[slot];
            rt->table[slot] = w;
        }
    }
    free(old);
    return 0;
}

struct psup_worker *psup_runtime_find_worker(const struct psup_runtime *rt, pid_t pid)
{
    if (!rt->table_size)
        return NULL;
    struct psup_worker *w = rt->table[slot_of(rt, pid)];
    while (w && w->pid != pid)
        w = w->hash_next;
    return w;
}

static void table_remove(struct psup_runtime *rt, struct psup_worker *w)
{
    struct psup_worker **p = &rt->table[slot_of(rt, w->pid)];

    while (*p != w)
        p = &(*p)->hash_next;
    *p = w->hash_next;
    rt->live--;
}

/* ------------------------------------------------------------------------ */
/* States, deadlines, stacks, records. */

static unsigned *state_counter(struct psup_service *s, enum psup_worker_state st)
{
    switch (st) {
    case PSUP_WORKER_IDLE: return &s->idle;
    case PSUP_WORKER_RETIRING: return &s->retiring;
    case PSUP_WORKER_STOPPED: return &s->stopped;
    default: return &s->busy;
    }
}

void psup_runtime_set_state(struct psup_worker *w, enum psup_worker_state st)
{
    (*state_counter(w->service, w->state))--;
    w->state = st;
    (*state_counter(w->service, st))++;
}

/* Keep rt->timed sorted by deadline; new deadlines are usually the latest,
 * so search from the tail. The worker is unlinked before the tail is read:
 * a worker that is already last would otherwise be its own insertion point
 * and drop out of the list, losing its timeout and any TERM -> KILL. */
void psup_runtime_set_deadline(struct psup_runtime *rt, struct psup_worker *w,
                               uint64_t deadline)
{
    psup_list_remove(&w->timer_link);

    struct psup_list *pos = rt->timed.prev;
    w->deadline = deadline;
    while (pos != &rt->timed &&
           PSUP_CONTAINER(pos, struct psup_worker, timer_link)->deadline > deadline)
        pos = pos->prev;
    psup_list_insert_after(pos, &w->timer_link);
}

void psup_runtime_stack_release(struct psup_runtime *rt, struct psup_stack *stack)
{
    if (rt->n_stack_cache < sizeof(rt->stack_cache) / sizeof(rt->stack_cache[0]))
        rt->stack_cache[rt->n_stack_cache++] = *stack;
    else
        rt->ops.stack_unmap(rt->ops.arg, stack);
}

int psup_runtime_stack_acquire(struct psup_runtime *rt, struct psup_stack *stack)
{
    /* Reusing a stack saves the mmap and, more, its page faults. */
    if (rt->n_stack_cache) {
        *stack = rt->stack_cache[--rt->n_stack_cache];
        return 0;
    }
    return rt->ops.stack_map(rt->ops.arg, stack);
}

void psup_runtime_free_worker(struct psup_runtime *rt, struct psup_worker *w)
{
    table_remove(rt, w);
    psup_list_remove(&w->link);
    psup_list_remove(&w->timer_link);
    (*state_counter(w->service, w->state))--;
    psup_tally_release(&w->service->tally, w->child.tally_slot);
    psup_runtime_stack_release(rt, &w->stack);
    psup_generation_unref(w->gen);
    free(w->child.dgram);
    free(w);
}

/* ------------------------------------------------------------------------ */
/* Acting on processes. */

int psup_runtime_signal(const struct psup_runtime *rt, pid_t pid, int sig)
{
    return rt->ops.signal(rt->ops.arg, pid, sig);
}

/* Signal a worker's process group: the handler and everything it started
 * (its own group since the worker's setsid). */
void psup_runtime_signal_group(const struct psup_runtime *rt, struct psup_worker *w, int sig)
{
    if (psup_runtime_signal(rt, -w->pid, sig) == -ESRCH)
        psup_runtime_signal(rt, w->pid, sig); /* the group is gone but the process may not be */
    w->signalled = true;
}

/* Returns 0 or -errno: ESRCH (the worker is gone), EAGAIN
 * (RLIMIT_SIGPENDING: the queue of pending signals is full). */
int psup_runtime_send_verdict(const struct psup_runtime *rt, pid_t pid, uint64_t value)
{
    return rt->ops.verdict(rt->ops.arg, pid, value);
}

/* ------------------------------------------------------------------------ */
/* Creating workers, and failures. */

/* Creating a process failed (EAGAIN, ENOMEM): starts wait 50 ms, doubling
 * to 2 s (runtime.c says what else changes while slots are scarce). */
void psup_runtime_spawn_failed(struct psup_runtime *rt, struct psup_service *s, int err,
                               uint64_t now)
{
    rt->spawn_delay = rt->spawn_delay ? rt->spawn_delay * 2 : 50;
    if (rt->spawn_delay > 2000)
        rt->spawn_delay = 2000;
    rt->spawn_blocked_until = now + rt->spawn_delay;
    rt->spawn_last_failure = now;
    if (rt->spawn_failing)
        return; /* logged once per burst */
    rt->spawn_failing = true;
    psup_report_spawn_failed(s, -err, rt->spawn_delay);
}

int psup_runtime_spawn(struct psup_runtime *rt, struct psup_service *s, uint64_t now, bool hold,
                       struct psup_worker **out)
{
    struct psup_generation *g = s->current;
    size_t slots = g->plan->n_env + PSUP_ENV_DYNAMIC + 1;
    struct psup_worker *w = calloc(1, sizeof(*w) + slots * sizeof(char *));
    int rc;

    if (!w)
        return -ENOMEM;
    if (rt->live + 1 > rt->table_size && (rc = table_grow(rt)) < 0)
        goto fail;
    /* Not calloc: a datagram is written over it; 64 KiB zeroed per
     * datagram would cost more than the rest of taking it. A prestarted
     * worker's library maps its own after the exec. */
    if (g->svc->mode == PSUP_MODE_DATAGRAM && !g->plan->prestart &&
        !(w->child.dgram = malloc(PSUP_DGRAM_MAX))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = psup_runtime_stack_acquire(rt, &w->stack)) < 0)
        goto fail;
    w->child.plan = g->plan;
    w->child.tally = s->tally.shared;
    /* A cgi service's worker execs the relay (the plan's program). */
    w->child.argv = g->svc->relay ? g->svc->relay_argv : g->svc->argv;
    w->child.env_base = g->env_base;
    w->child.exec_env = g->exec_env;
    w->child.n_exec_env = g->n_exec_env;
    w->child.conn_id = ++rt->next_conn_id;
    w->child.envp = w->envp;
    w->child.hold = hold;
    /* TCPCONNNUM counts handlers; a wait-mode server takes none. */
    w->child.tally_slot = g->svc->mode == PSUP_MODE_WAIT ? PSUP_TALLY_NONE
                                                         : psup_tally_claim(&s->tally);
    pid_t pid = rt->ops.spawn(rt->ops.arg, &w->child, &w->stack);
    if (pid < 0) {
        rc = pid;
        psup_tally_release(&s->tally, w->child.tally_slot);
        psup_runtime_stack_release(rt, &w->stack);
        goto fail;
    }
    w->pid = pid;
    w->service = s;
    w->gen = g;
    g->refs++;
    w->state = PSUP_WORKER_IDLE;
    s->idle++;
    w->started = now;
    psup_list_init(&w->timer_link);
    /* A prestarted worker counts as a spare from now, so that no second
     * one is started for it, but it takes connections only once its
     * library says READY; one that never does is stopped (expire). */
    w->ready = !g->plan->prestart;
    if (!w->ready)
        psup_runtime_set_deadline(rt, w, now + (uint64_t)rt->prestart_timeout_ms);
    psup_list_append(&s->workers, &w->link);
    size_t slot = slot_of(rt, pid);
    w->hash_next = rt->table[slot];
    rt->table[slot] = w;
    rt->live++;
    *out = w;
    return 0;
fail:
    free(w->child.dgram);
    free(w);
    return rc;
}

void psup_runtime_recovered(struct psup_service *s)
{
    s->failing_since = 0;
    psup_report_recovered(s);
    s->last_error = 0;
    s->last_step = 0;
}

/* stderr "log": follow the pipe the worker passed (taken over). Returns
 * false if there is none or it cannot be followed: the handler then keeps
 * psup's stderr. */
bool psup_runtime_follow_stderr(struct psup_runtime *rt, struct psup_worker *w, int fd)
{
    if (fd >= 0 && rt->hooks.stderr_pipe)
        return rt->hooks.stderr_pipe(rt->hooks.arg, fd, w->service->name, w->child.conn_id,
                                     w->pid, &w->errlog);
    psup_fd_close(fd);
    return false;
}

/* A failure of the service: log the first of a burst with its reason, then
 * only changes of the delay. */
void psup_runtime_count_failure(struct psup_worker *w, int status, uint64_t now)
{
    struct psup_service *s = w->service;
    /* A new streak logs each kind of failure (its step) once again. */
    if (s->backoff.failures == 0)
        s->logged_steps = 0;
    bool first = !(s->logged_steps & (1u << (w->step & 31)));
    s->logged_steps |= 1u << (w->step & 31);

    s->counters.failed++;
    if (first) {
        psup_report_failure(w, status);
        s->last_error = w->error;
        s->last_step = w->step;
    }
    psup_runtime_back_off(w, now);
}

void psup_runtime_back_off(struct psup_worker *w, uint64_t now)
{
    struct psup_service *s = w->service;

    if (psup_backoff_fail(&s->backoff, w->started, now))
        psup_report_backoff(s);
    if (s->backoff.delay_ms && !s->failing_since)
        s->failing_since = now; /* fatal_after counts from here */
}
