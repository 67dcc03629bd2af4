/* SPDX-License-Identifier: MIT */
/*
 * Wait-mode services (spec/wait.md): servers given the listening sockets
 * themselves. Started at once and kept running (`start: "always"`), or
 * started when the loop, which watches the sockets while no server runs,
 * reports the first connection or datagram (`"on_demand"`). The decisions
 * are lib/policy/wait.c's; here they are gathered and acted on, through the
 * same seams as workers (struct psup_runtime_ops, hooks).
 *
 * A server is a worker record whose generation is in wait mode. It is BUSY
 * from the moment it is created (it never waits for a connection psup
 * could see), TERMINATING once psup asked it to stop, KILLING after that.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "base/fd.h"
#include "policy/wait.h"
#include "runtime/generation.h"
#include "runtime/report.h"

static bool is_running(const struct psup_worker *w)
{
    return w->state == PSUP_WORKER_BUSY;
}

/* Servers of s's current generation that psup has not asked to stop,
 * other than except (NULL: none). */
static unsigned count_running(const struct psup_service *s, const struct psup_worker *except)
{
    unsigned n = 0;

    for (const struct psup_list *p = s->workers.next; p != &s->workers; p = p->next) {
        const struct psup_worker *w = PSUP_CONTAINER(p, const struct psup_worker, link);
        if (w != except && w->gen == s->current && psup_runtime_is_server(w) && is_running(w))
            n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Watching the sockets (on_demand). */

static int watch_listeners(struct psup_runtime *rt, struct psup_generation *g, bool on)
{
    int rc = 0;

    if (!rt->hooks.watch)
        return on ? -ENOSYS : 0;
    for (size_t i = 0; i < g->plan->n_listeners; i++) {
        int r = rt->hooks.watch(rt->hooks.arg, psup_plan_listeners(g->plan)[i].fd, on);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

void psup_runtime_unwatch(struct psup_runtime *rt, struct psup_service *s)
{
    if (!s->watched)
        return;
    watch_listeners(rt, s->watched, false);
    psup_generation_unref(s->watched);
    s->watched = NULL;
}

/* Returns 0, or -errno when the loop cannot watch the sockets (then they
 * are not watched at all). */
static int watch(struct psup_runtime *rt, struct psup_service *s)
{
    if (s->watched == s->current)
        return 0;
    psup_runtime_unwatch(rt, s);
    int rc = watch_listeners(rt, s->current, true);
    if (rc < 0) {
        watch_listeners(rt, s->current, false);
        return rc;
    }
    s->watched = s->current;
    s->current->refs++;
    return 0;
}

void psup_runtime_on_ready(struct psup_runtime *rt, int fd, uint64_t now)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        const struct psup_generation *g = s->watched;
        for (size_t i = 0; g && i < g->plan->n_listeners; i++) {
            if (psup_plan_listeners(g->plan)[i].fd != fd)
                continue;
            /* The watch is level-triggered: it would fire again at once
             * until a server takes what is waiting. */
            s->demand = true;
            psup_runtime_unwatch(rt, s);
            psup_runtime_maintain_servers(rt, s, now);
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Starting. */

static int start_server(struct psup_runtime *rt, struct psup_service *s, uint64_t now)
{
    const struct psup_service_config *cfg = s->current->svc;
    struct psup_worker *w;
    int rc = psup_runtime_spawn(rt, s, now, false, &w);

    if (rc < 0)
        return rc;
    psup_runtime_set_state(w, PSUP_WORKER_BUSY);
    w->busy_since = now;
    w->listener = UINT32_MAX; /* no connection */
    if (cfg->timeout > 0)
        psup_runtime_set_deadline(rt, w, now + (uint64_t)(cfg->timeout * 1000.0));
    psup_report_server_started(w);
    return 0;
}

void psup_runtime_maintain_servers(struct psup_runtime *rt, struct psup_service *s, uint64_t now)
{
    if (!s->current)
        return;
    const struct psup_service_config *cfg = s->current->svc;
    struct psup_wait_facts f = {
        .start = cfg->start,
        .instances = cfg->instances,
        .running = count_running(s, NULL),
        .allowance = now < rt->spawn_blocked_until ? 0 : psup_backoff_allowance(&s->backoff, now),
        /* A pause a reload carried over from accept mode holds until a
         * resume (a wait-mode service cannot be paused itself). */
        .serving = rt->accepting && !s->paused,
        .demand = s->demand,
    };
    struct psup_wait_action a = psup_wait_decide(&f);

    if (!a.watch) {
        psup_runtime_unwatch(rt, s);
    } else if (watch(rt, s) < 0) {
        /* psup cannot watch the sockets (no room in epoll): it cannot
         * wait for demand, so it starts the servers now. */
        f.demand = s->demand = true;
        a = psup_wait_decide(&f);
    }
    for (unsigned i = 0; i < a.start; i++) {
        int rc = start_server(rt, s, now);
        if (rc < 0) {
            psup_runtime_spawn_failed(rt, s, rc, now);
            return; /* the demand stays: the next start serves it */
        }
        psup_backoff_started(&s->backoff, now);
        s->demand = false;
    }
}

/* ------------------------------------------------------------------------ */
/* Stopping. */

static uint64_t stop_budget_ms(const struct psup_runtime *rt)
{
    return (uint64_t)((rt->config->shutdown_timeout + rt->config->kill_grace) * 1000.0);
}

/* SIGTERM now, SIGKILL to its group once psup's whole shutdown budget has
 * passed: a server has no connection of psup's to finish first, so it is
 * told at once and given all of that time. At shutdown the group gets the
 * SIGTERM too (everything stops); when a reload replaces or removes the
 * service only the server does, and decides itself how to stop: what it
 * started (in.tftpd's transfers, each a process of its own) finishes, and
 * comes back to psup as an orphan. */
static void stop_server(struct psup_runtime *rt, struct psup_worker *w, uint64_t now,
                        bool whole_group)
{
    if (whole_group) {
        psup_runtime_signal_group(rt, w, SIGTERM);
    } else {
        psup_runtime_signal(rt, w->pid, SIGTERM);
        w->signalled = true;
    }
    psup_runtime_set_state(w, PSUP_WORKER_TERMINATING);
    psup_runtime_set_deadline(rt, w, now + stop_budget_ms(rt));
}

void psup_runtime_stop_old_servers(struct psup_runtime *rt, struct psup_service *s,
                                   uint64_t now)
{
    struct psup_list *p, *tmp;

    psup_list_foreach_safe(p, tmp, &s->workers) {
        struct psup_worker *w = PSUP_CONTAINER(p, struct psup_worker, link);
        if (w->gen != s->current && psup_runtime_is_server(w) && is_running(w))
            stop_server(rt, w, now, false);
    }
}

void psup_runtime_stop_servers(struct psup_runtime *rt, uint64_t now)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        struct psup_list *q, *tmp;
        psup_list_foreach_safe(q, tmp, &s->workers) {
            struct psup_worker *w = PSUP_CONTAINER(q, struct psup_worker, link);
            if (psup_runtime_is_server(w) && is_running(w))
                stop_server(rt, w, now, true);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Messages and exits. */

void psup_runtime_server_message(struct psup_runtime *rt, struct psup_worker *w,
                                 const struct psup_msg *m, const struct psup_passed_fds *fds,
                                 uint64_t now)
{
    int passed_fd = fds->log;

    psup_fd_close(fds->reply); /* a server has no datagram to answer */
    switch (m->kind) {
    case PSUP_MSG_BUSY: {
        /* stderr "log": the server hands its pipe over before it execs. */
        unsigned flags = 0;
        enum psup_verdict v = rt->closing || w->exited ? PSUP_VERDICT_CLOSE : PSUP_VERDICT_RUN;
        if (v == PSUP_VERDICT_RUN && !psup_runtime_follow_stderr(rt, w, passed_fd)) {
            flags |= PSUP_VERDICT_NO_LOG_PIPE;
            psup_report_stderr_fallback(w, now);
        } else if (v != PSUP_VERDICT_RUN) {
            psup_fd_close(passed_fd);
        }
        if (!w->exited)
            psup_runtime_send_verdict(rt, w->pid, psup_verdict_encode(v, flags, 0, m->seq));
        return;
    }
    case PSUP_MSG_SETUP_FAILED:
    case PSUP_MSG_EXEC_FAILED:
        w->error = m->err;
        w->step = m->step;
        w->exec_failed = m->kind == PSUP_MSG_EXEC_FAILED;
        break;
    default:
        break;
    }
    psup_fd_close(passed_fd);
}

/* Whether a socket of w's generation still has something waiting: what
 * woke the server, or what came after it. */
static bool left_pending(struct psup_runtime *rt, const struct psup_worker *w)
{
    const struct psup_generation *g = w->gen;

    for (size_t i = 0; i < g->plan->n_listeners; i++)
        if (rt->ops.readable(rt->ops.arg, psup_plan_listeners(g->plan)[i].fd) > 0)
            return true;
    return false;
}

static void count_failure(struct psup_worker *w, int status, uint64_t now)
{
    struct psup_service *s = w->service;

    /* An exec or setup error is logged with its step and reason, as a
     * handler's; any other exit's status is in server_exit already. */
    if (w->error) {
        psup_runtime_count_failure(w, status, now);
        return;
    }
    s->counters.failed++;
    psup_runtime_back_off(w, now);
}

void psup_runtime_server_exit(struct psup_runtime *rt, struct psup_worker *w, int status,
                              uint64_t now)
{
    struct psup_service *s = w->service;
    const struct psup_service_config *cfg = w->gen->svc;
    /* Whatever ends while psup is stopping ends because it is (a server
     * told to go before it could exec reports a failed setup). */
    struct psup_wait_exit e = {
        .start = cfg->start,
        .failed_to_start = w->error != 0 && rt->accepting,
        .stopped_by_psup = w->signalled || !rt->accepting,
        .exit_zero = WIFEXITED(status) && WEXITSTATUS(status) == 0,
    };

    /* Only the last server of the current generation to leave can have
     * left something for nobody: the others still take what arrives. */
    if (!e.failed_to_start && !e.stopped_by_psup && cfg->start == PSUP_START_ON_DEMAND &&
        w->gen == s->current && rt->accepting && !count_running(s, w))
        e.left_pending = left_pending(rt, w);
    enum psup_wait_verdict v = psup_wait_judge_exit(&e);

    psup_report_server_exit(w, status, now, v == PSUP_WAIT_FAILED, e.left_pending);
    if (v == PSUP_WAIT_FAILED)
        count_failure(w, status, now);
    else if (v == PSUP_WAIT_CLEAN && psup_backoff_settle(&s->backoff, now, true))
        psup_runtime_recovered(s);
}
