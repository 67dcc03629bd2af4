/* SPDX-License-Identifier: MIT */
/*
 * Formatting the records about workers and connections (report.h). Every
 * field name here is part of the interface: spec/logging.md lists them and
 * tests/system/test_docs.py checks the manual page against this file.
 */
#include "runtime/report.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "runtime/stats.h"


static void log_identity(struct psup_log *l, const struct psup_worker *w)
{
    psup_log_str(l, "service", w->service->name);
    psup_log_uint(l, "conn", w->child.conn_id);
    psup_log_int(l, "pid", w->pid);
}

static void log_peer(struct psup_log *l, const struct psup_peer *peer)
{
    if (peer->family == AF_UNSPEC)
        return; /* a wait-mode server: no connection psup saw */
    if (peer->family == AF_UNIX) {
        psup_log_int(l, "remote_pid", peer->pid);
        psup_log_uint(l, "remote_uid", peer->uid);
        return;
    }
    char ip[PSUP_IP_STRLEN];
    psup_ip_key_format(peer->addr, ip);
    psup_log_str(l, "remote_ip", ip);
    psup_log_uint(l, "remote_port", peer->port);
}

/* The balancer that sent a PROXY header (spec/proxy.md), if any. */
static void log_proxy(struct psup_log *l, const struct psup_peer *proxy)
{
    char ip[PSUP_IP_STRLEN];

    if (!proxy->family)
        return;
    psup_ip_key_format(proxy->addr, ip);
    psup_log_str(l, "proxy_ip", ip);
    psup_log_uint(l, "proxy_port", proxy->port);
}

/* Why a PROXY connection was refused, as spec/proxy.md names it; NULL for
 * a failure of the socket (then logged by its errno). */
static const char *proxy_reason(int err)
{
    switch (err) {
    case EACCES: return "proxy_from";
    case EPROTO: return "malformed";
    case EPROTONOSUPPORT: return "unsupported";
    case EMSGSIZE: return "too_long";
    case ETIMEDOUT: return "timeout";
    case ECONNRESET: return "closed";
    default: return NULL;
    }
}

static void log_proxy_refused(struct psup_log *l, const struct psup_service *s,
                              const struct psup_limited_event *ev)
{
    const char *reason = proxy_reason(ev->err);

    psup_log_begin(l, PSUP_LOG_WARN, "proxy_refused");
    psup_log_str(l, "service", s->name);
    psup_log_int(l, "pid", ev->pid);
    psup_log_str(l, "reason", reason ? reason : "error");
    if (!reason)
        psup_log_errno(l, ev->err);
    log_proxy(l, &ev->proxy);
}

/* A SIGKILL psup did not send is usually the OOM killer: say so. */
static void log_status(struct psup_log *l, int status, bool signalled_by_psup)
{
    psup_log_wait_status(l, status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !signalled_by_psup)
        psup_log_str(l, "hint", "oom_or_external_kill");
}

const char *psup_report_step_name(uint32_t step)
{
    static const char *const names[] = {
        [PSUP_STEP_SETUP] = "setup", [PSUP_STEP_PROGRAM] = "program",
        [PSUP_STEP_STDERR] = "stderr", [PSUP_STEP_CWD] = "cwd",
        [PSUP_STEP_UMASK] = "umask", [PSUP_STEP_RLIMIT] = "rlimits",
        [PSUP_STEP_NICE] = "nice", [PSUP_STEP_CREDENTIALS] = "credentials",
        [PSUP_STEP_EXEC] = "exec", [PSUP_STEP_PRESTART] = "prestart",
    };
    return step < sizeof(names) / sizeof(names[0]) && names[step] ? names[step] : "unknown";
}

/* The rate-limited lines: refusals (one per reason), accept errors and
 * stderr fallbacks, per service. Five at once, then one a second, the next
 * line carrying how many were left out since the last. The last one left
 * out is kept and logged once the burst is over (psup_report_flush). */

static const char *const limit_reasons[] = {
    [PSUP_LIMIT_PER_SOURCE] = "max_per_source",
    [PSUP_LIMIT_RATE] = "rate",
    [PSUP_LIMIT_OVERLOAD] = "overload",
};

/* A burst is over when nothing was left out for this long. */
#define BURST_QUIET_MS 1000

static void log_limited(const struct psup_service *s, enum psup_limit_reason reason,
                        const struct psup_limited_event *ev, unsigned long long suppressed)
{
    struct psup_log l;

    switch (reason) {
    case PSUP_LIMIT_ACCEPT:
        psup_log_begin(&l, PSUP_LOG_ERROR, "accept_failed");
        psup_log_str(&l, "service", s->name);
        psup_log_int(&l, "pid", ev->pid);
        psup_log_errno(&l, ev->err);
        break;
    case PSUP_LIMIT_REPLY:
        psup_log_begin(&l, PSUP_LOG_WARN, "reply_failed");
        psup_log_str(&l, "service", s->name);
        psup_log_uint(&l, "conn", ev->conn);
        psup_log_int(&l, "pid", ev->pid);
        log_peer(&l, &ev->peer);
        psup_log_str(&l, "step", ev->step);
        psup_log_errno(&l, ev->err);
        break;
    case PSUP_LIMIT_STDERR:
        psup_log_begin(&l, PSUP_LOG_WARN, "stderr_fallback");
        psup_log_str(&l, "service", s->name);
        psup_log_uint(&l, "conn", ev->conn);
        psup_log_int(&l, "pid", ev->pid);
        psup_log_str(&l, "stderr", "inherit");
        break;
    case PSUP_LIMIT_PROXY:
        log_proxy_refused(&l, s, ev);
        break;
    default:
        psup_log_begin(&l, PSUP_LOG_WARN, reason == PSUP_LIMIT_DENIED ? "denied" : "limited");
        psup_log_str(&l, "service", s->name);
        if (reason != PSUP_LIMIT_DENIED)
            psup_log_str(&l, "reason", limit_reasons[reason]);
        psup_log_int(&l, "pid", ev->pid);
        log_peer(&l, &ev->peer);
        log_proxy(&l, &ev->proxy);
        break;
    }
    if (suppressed)
        psup_log_uint(&l, "suppressed", suppressed);
    psup_log_end(&l);
}

/* Log ev now if the limiter lets it through (with the count of those left
 * out since the last line), or keep it as the burst's last. */
static void report_limited(struct psup_service *s, enum psup_limit_reason reason,
                           const struct psup_limited_event *ev, uint64_t now)
{
    struct psup_log_limit *lim = &s->limits[reason];

    if (!psup_rate_take(&lim->bucket, 1.0, 5, now)) {
        lim->suppressed++;
        lim->last_suppressed = now;
        lim->last = *ev;
        return;
    }
    log_limited(s, reason, ev, lim->suppressed);
    lim->suppressed = 0;
}

/* The kept line of a burst that is over, or of every burst (at exit). */
static void flush_limit(struct psup_service *s, enum psup_limit_reason reason, uint64_t now,
                        bool all)
{
    struct psup_log_limit *lim = &s->limits[reason];

    if (!lim->suppressed || (!all && now < lim->last_suppressed + BURST_QUIET_MS))
        return;
    /* The kept event is one of those left out: its line counts the rest. */
    log_limited(s, reason, &lim->last, lim->suppressed - 1);
    lim->suppressed = 0;
}

void psup_report_flush(struct psup_runtime *rt, uint64_t now, bool all)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        for (int r = 0; r < PSUP_LIMIT_COUNT; r++)
            flush_limit(s, (enum psup_limit_reason)r, now, all);
    }
}

uint64_t psup_report_next_flush(const struct psup_runtime *rt)
{
    uint64_t next = 0;

    for (const struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        const struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        for (int r = 0; r < PSUP_LIMIT_COUNT; r++) {
            const struct psup_log_limit *lim = &s->limits[r];
            uint64_t due = lim->last_suppressed + BURST_QUIET_MS;
            if (lim->suppressed && (!next || due < next))
                next = due;
        }
    }
    return next;
}

void psup_report_refusal(struct psup_service *s, enum psup_limit_reason reason, pid_t pid,
                         const struct psup_peer *peer, const struct psup_peer *proxy,
                         uint64_t now)
{
    struct psup_limited_event ev = {.pid = pid, .peer = *peer, .proxy = *proxy};

    report_limited(s, reason, &ev, now);
}

void psup_report_proxy_refused(struct psup_service *s, pid_t pid, const struct psup_peer *proxy,
                               int err, uint64_t now)
{
    struct psup_limited_event ev = {.pid = pid, .err = err, .proxy = *proxy};

    report_limited(s, PSUP_LIMIT_PROXY, &ev, now);
}

void psup_report_gave_up(const struct psup_worker *w, const struct psup_msg *m)
{
    struct psup_log l;

    /* No conn: the id is the worker's, and goes to the next client it
     * serves; the given-up client never had a handler. */
    psup_log_begin(&l, PSUP_LOG_ERROR, "verdict_timeout");
    psup_log_str(&l, "service", w->service->name);
    psup_log_int(&l, "pid", w->pid);
    log_peer(&l, &m->peer);
    log_proxy(&l, &m->proxy);
    psup_log_str(&l, "outcome", "closed");
    psup_log_end(&l);
}

void psup_report_accept_failed(struct psup_worker *w, int err, uint64_t now)
{
    struct psup_limited_event ev = {.pid = w->pid, .err = err};

    report_limited(w->service, PSUP_LIMIT_ACCEPT, &ev, now);
}

/* stderr "log" could not be set up (psup out of descriptors): the handler
 * keeps psup's stderr. */
void psup_report_stderr_fallback(struct psup_worker *w, uint64_t now)
{
    struct psup_limited_event ev = {.pid = w->pid, .conn = w->child.conn_id};

    report_limited(w->service, PSUP_LIMIT_STDERR, &ev, now);
}

void psup_report_reply_failed(struct psup_service *s, unsigned long long conn, pid_t pid,
                              const struct psup_peer *peer, int err, const char *step,
                              uint64_t now)
{
    struct psup_limited_event ev = {.pid = pid, .conn = conn, .err = err, .peer = *peer,
                                    .step = step};

    report_limited(s, PSUP_LIMIT_REPLY, &ev, now);
}

void psup_report_saturation(const struct psup_service *s, bool saturated, uint64_t duration_ms)
{
    struct psup_log l;

    psup_log_begin(&l, saturated ? PSUP_LOG_WARN : PSUP_LOG_INFO,
                   saturated ? "saturated" : "saturation_ended");
    psup_log_str(&l, "service", s->name);
    psup_log_uint(&l, "busy", s->busy);
    if (!saturated)
        psup_log_secs(&l, "duration", (double)duration_ms / 1000.0);
    psup_log_end(&l);
}

void psup_report_failure(const struct psup_worker *w, int status)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, w->exec_failed ? "exec_failed" : "worker_failed");
    log_identity(&l, w);
    if (w->error) {
        const struct psup_service_config *svc = w->gen->svc;
        psup_log_str(&l, "step", psup_report_step_name(w->step));
        /* A cgi service execs the relay (prestarted, too), which execs
         * the program. */
        bool relay = w->step == PSUP_STEP_EXEC || w->step == PSUP_STEP_PRESTART;
        psup_log_str(&l, "program", svc->relay && relay ? svc->relay : svc->program);
        psup_log_errno(&l, w->error);
    } else {
        log_status(&l, status, w->signalled);
    }
    psup_log_end(&l);
}

void psup_report_backoff(const struct psup_service *s)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "backoff");
    psup_log_str(&l, "service", s->name);
    psup_log_uint(&l, "failures", s->backoff.failures);
    psup_log_secs(&l, "delay", (double)s->backoff.delay_ms / 1000.0);
    if (s->last_error) {
        psup_log_str(&l, "step", psup_report_step_name(s->last_step));
        psup_log_errno(&l, s->last_error);
    }
    psup_log_end(&l);
}

void psup_report_recovered(const struct psup_service *s)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "recovered");
    psup_log_str(&l, "service", s->name);
    psup_log_end(&l);
}

void psup_report_worker_lost(const struct psup_worker *w, int status)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "worker_lost");
    log_identity(&l, w);
    log_status(&l, status, false);
    psup_log_end(&l);
}

void psup_report_spawn_failed(const struct psup_service *s, int err, uint64_t retry_ms)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "spawn_failed");
    psup_log_str(&l, "service", s->name);
    psup_log_errno(&l, err);
    psup_log_uint(&l, "retry_ms", retry_ms);
    psup_log_end(&l);
}

void psup_report_spawn_recovered(void)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "spawn_recovered");
    psup_log_end(&l);
}

void psup_report_conn_end(const struct psup_worker *w, int status, uint64_t now)
{
    struct psup_log l;
    const struct psup_generation *g = w->gen;

    psup_log_begin(&l, PSUP_LOG_INFO, "conn_end");
    log_identity(&l, w);
    log_peer(&l, &w->peer);
    log_proxy(&l, &w->proxy);
    if (w->listener < g->plan->n_listeners)
        psup_log_str(&l, "listener", psup_plan_listeners(g->plan)[w->listener].text);
    if (w->exec_failed)
        psup_log_str(&l, "outcome", "exec_failed");
    else if (w->timed_out)
        psup_log_str(&l, "outcome", "timeout");
    log_status(&l, status, w->signalled);
    psup_log_uint(&l, "duration_ms", now - w->busy_since);
    if (g->svc->mode == PSUP_MODE_DATAGRAM)
        psup_log_uint(&l, "replies", w->replies);
    psup_log_end(&l);
}

void psup_report_server_started(const struct psup_worker *w)
{
    const struct psup_service_config *cfg = w->gen->svc;
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "server_started");
    log_identity(&l, w);
    psup_log_str(&l, "start", cfg->start == PSUP_START_ALWAYS ? "always" : "on_demand");
    psup_log_end(&l);
}

/* Why psup ended it, if it did. */
static const char *server_outcome(const struct psup_worker *w)
{
    if (w->error)
        return w->exec_failed ? "exec_failed" : "setup_failed";
    if (w->timed_out)
        return "timeout";
    return w->signalled ? "stopped" : NULL;
}

void psup_report_server_exit(const struct psup_worker *w, int status, uint64_t now,
                             bool failure, bool pending)
{
    const char *outcome = server_outcome(w);
    struct psup_log l;

    psup_log_begin(&l, failure ? PSUP_LOG_WARN : PSUP_LOG_INFO, "server_exit");
    log_identity(&l, w);
    if (outcome)
        psup_log_str(&l, "outcome", outcome);
    log_status(&l, status, w->signalled);
    psup_log_uint(&l, "duration_ms", now - w->busy_since);
    psup_log_bool(&l, "failure", failure);
    if (pending)
        psup_log_bool(&l, "pending", true);
    psup_log_end(&l);
}

void psup_report_timeout(const struct psup_worker *w)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "timeout");
    log_identity(&l, w);
    log_peer(&l, &w->peer);
    log_proxy(&l, &w->proxy);
    psup_log_str(&l, "key", "timeout");
    psup_log_secs(&l, "limit", (double)w->gen->timeout_ms / 1000.0);
    psup_log_end(&l);
}

static void log_summary(void *arg, const struct psup_service_stats *s)
{
    struct psup_log l;

    (void)arg;
    psup_log_begin(&l, PSUP_LOG_INFO, "summary");
    psup_log_str(&l, "service", s->name);
    psup_log_uint(&l, "accepted", s->counters.accepted);
    psup_log_uint(&l, "denied", s->counters.denied);
    psup_log_uint(&l, "limited_per_source", s->counters.per_source);
    psup_log_uint(&l, "limited_rate", s->counters.rate);
    psup_log_uint(&l, "limited_overload", s->counters.overload);
    psup_log_uint(&l, "failed", s->counters.failed);
    psup_log_uint(&l, "timed_out", s->counters.timed_out);
    psup_log_uint(&l, "proxy_refused", s->counters.proxy_refused);
    if (strcmp(s->mode, "datagram") == 0) {
        psup_log_uint(&l, "replies", s->counters.replies);
        psup_log_uint(&l, "replies_failed", s->counters.replies_failed);
    }
    psup_log_end(&l);
}

void psup_runtime_log_summary(const struct psup_runtime *rt)
{
    psup_runtime_stats(rt, NULL, log_summary, NULL);
}

static void log_pool_status(void *arg, const struct psup_service_stats *s)
{
    struct psup_log l;

    (void)arg;
    psup_log_begin(&l, PSUP_LOG_INFO, "status");
    psup_log_str(&l, "service", s->name);
    psup_log_str(&l, "state", psup_service_state_name(s->state));
    psup_log_uint(&l, "idle", s->pool.idle);
    psup_log_uint(&l, "busy", s->pool.busy);
    psup_log_uint(&l, "retiring", s->pool.retiring);
    psup_log_uint(&l, "stopped", s->pool.stopped);
    psup_log_uint(&l, "accepted", s->counters.accepted);
    if (s->paused)
        psup_log_bool(&l, "paused", true); /* spec/control.md */
    psup_log_end(&l);
}

void psup_runtime_log_status(const struct psup_runtime *rt)
{
    psup_runtime_stats(rt, NULL, log_pool_status, NULL);
}
