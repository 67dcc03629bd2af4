/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's event loop. Every signal arrives through a uv_signal_t
 * (libuv's self-pipe): no work happens in a signal handler. Workers' messages
 * arrive on one socket; one timer serves every deadline. Nothing here blocks
 * except writing the log.
 *
 * Shutdown phases: RUNNING -> DELAYING (shutdown_delay: still serving,
 * not ready) -> DRAINING (no new connection; the backlogs served, then the
 * listeners closed and idle workers retired; handlers finishing) ->
 * TERMINATING (SIGTERM, then SIGKILL after kill_grace) -> REAPING (orphans
 * adopted as subreaper or PID 1 get the same treatment) -> the loop stops
 * once waitpid reports no child at all.
 */
#include "loop/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "loop/admin.h"
#include "loop/children.h"
#include "loop/errlog.h"
#include "loop/replies.h"
#include "loop/notify.h"
#include "base/fd.h"
#include "base/log.h"
#include "runtime/control.h"
#include "runtime/report.h"
#include "runtime/runtime.h"
#include "runtime/stats.h"

enum phase {
    PHASE_RUNNING,
    PHASE_DELAYING,
    PHASE_DRAINING,
    PHASE_TERMINATING,
    PHASE_REAPING,
};

/* SIG_ and SIG[A-Z] names are reserved by POSIX (<signal.h>). */
static const int watched_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
#define N_WATCHED (sizeof(watched_signals) / sizeof(watched_signals[0]))

struct psup_supervisor {
    uv_loop_t loop;
    uv_signal_t signals[N_WATCHED];
    uv_poll_t channel_poll;
    uv_poll_t watch_poll;
    int watch_fd;   /* epoll of the sockets wait-mode services watch */
    uv_timer_t timer;
    int channel[2]; /* [0] the supervisor's end, [1] the workers' */
    struct psup_runtime rt;
    struct psup_list errlogs;
    struct psup_notify notify;
    struct psup_admin_server *admin;
    struct psup_admin_state admin_state; /* what the admin endpoint reports */
    struct psup_list replies;
    struct psup_admin_control control;   /* and what its control requests do */
    const struct psup_supervisor_options *opts;
    enum phase phase;
    bool loop_ready;
    bool stopped_now;         /* an immediate stop began */
    int exit_code;
    uint64_t phase_deadline;  /* end of the delay, of draining, or of the
                                 orphans' grace */
    bool orphans_signalled;
    bool orphans_killed;
    bool orphans_unseen;      /* psup cannot list its children */
};

static uint64_t now_ms(struct psup_supervisor *sup)
{
    uv_update_time(&sup->loop);
    return uv_now(&sup->loop);
}

/* ------------------------------------------------------------------------ */
/* Messages from workers, and their exits. */

/* Exits taken from the kernel but not handled yet: an exit is handled only
 * once every message its worker sent before exiting has been read. */
#define EXITS_AT_ONCE 256

struct exits {
    size_t n;
    pid_t pid[EXITS_AT_ONCE];
    int status[EXITS_AT_ONCE];
};

/* Take every exited child from the kernel (while there is room): the
 * runtime stops counting each as running at once (psup_runtime_note_exit),
 * and handles the exit after the channel is read (take_exits). Stops and
 * continues need no message: handled here. */
static void collect_exits(struct psup_supervisor *sup, struct exits *ex)
{
    while (ex->n < EXITS_AT_ONCE) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG | WUNTRACED | WCONTINUED);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return; /* 0: none ready; ECHILD: none left. SIGCHLD coalesces. */
        if (WIFSTOPPED(status) || WIFCONTINUED(status)) {
            psup_runtime_on_stop(&sup->rt, pid, WIFSTOPPED(status));
            continue;
        }
        psup_runtime_note_exit(&sup->rt, pid);
        ex->pid[ex->n] = pid;
        ex->status[ex->n++] = status;
    }
}

/* The descriptors a message carried, by the bits of m->fds, in order, and
 * its sender's pid (SO_PASSCRED: the kernel's word, not the message's).
 * Out of descriptors, the kernel passes fewer (MSG_CTRUNC): the last ones
 * are missing (a handler then keeps psup's stderr, spec/handler.md; a
 * datagram handler cannot reply, spec/udp.md). */
static struct psup_passed_fds passed_fds(struct msghdr *mh, const struct psup_msg *m,
                                         pid_t *sender)
{
    struct psup_passed_fds fds = {-1, -1};
    int got[2] = {-1, -1};
    size_t n = 0;

    *sender = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && !n) {
            n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            n = n > 2 ? 2 : n;
            memcpy(got, CMSG_DATA(h), n * sizeof(int));
        } else if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(h), sizeof(cred));
            *sender = cred.pid;
        }
    }
    size_t i = 0;
    if (m->fds & PSUP_MSG_FD_LOG)
        fds.log = got[i++];
    if (m->fds & PSUP_MSG_FD_REPLY)
        fds.reply = got[i++];
    for (; i < n; i++)
        psup_fd_close(got[i]); /* more than it said: not ours to keep */
    return fds;
}

/* Read every queued message. Before a request for a verdict, the exits that
 * happened before it are taken: a handler that has exited must not count
 * against max_per_source, though its exit is handled only later. */
static void read_channel(struct psup_supervisor *sup, struct exits *ex)
{
    uint64_t now = now_ms(sup);

    for (;;) {
        struct psup_msg m;
        union {
            struct cmsghdr hdr;
            char buf[CMSG_SPACE(2 * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf)};
        ssize_t n = recvmsg(sup->channel[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* EAGAIN: all read */
        pid_t sender;
        bool ours = (size_t)n == sizeof(m);
        if (!ours)
            m.fds = 0; /* not a message of ours: whatever came is closed */
        struct psup_passed_fds fds = passed_fds(&mh, &m, &sender);
        /* A message is taken as its sender's, whatever pid it says: a
         * prestarted program holds the channel before psup's library runs
         * in it (spec/prestart.md). */
        if (!ours || sender <= 0) {
            psup_fd_close(fds.log);
            psup_fd_close(fds.reply);
            continue;
        }
        m.pid = sender;
        if (m.kind == PSUP_MSG_BUSY)
            collect_exits(sup, ex);
        psup_runtime_on_message(&sup->rt, &m, &fds, now);
    }
}

/* Messages and exits, in an order that keeps both exact: exits are taken
 * first, then every queued message is read (a worker's last message,
 * RUNNING or EXEC_FAILED, was queued before it exited: a worker that needs
 * no verdict execs right after RUNNING, so its handler can exit before the
 * loop has read it), then the exits are handled, each with the time taken
 * after the reading, so no conn_end ends before its connection began. */
static void take_exits(struct psup_supervisor *sup)
{
    struct exits ex;

    do {
        ex.n = 0;
        collect_exits(sup, &ex);
        read_channel(sup, &ex);
        for (size_t i = 0; i < ex.n; i++)
            if (!psup_runtime_on_exit(&sup->rt, ex.pid[i], ex.status[i], now_ms(sup)))
                psup_children_log_reaped(ex.pid[i], ex.status[i]);
    } while (ex.n == EXITS_AT_ONCE);
}

/* ------------------------------------------------------------------------ */
/* Progress of everything time-driven, after any event. */

static uint64_t kill_grace_ms(const struct psup_supervisor *sup)
{
    return (uint64_t)(sup->rt.config->kill_grace * 1000.0);
}

/* Signal the orphans; if psup cannot list its children (no /proc), it can
 * neither signal nor know them: it waits kill_grace for them, then leaves
 * them to whoever reaps above it. */
static void signal_orphans(struct psup_supervisor *sup, int sig, uint64_t now)
{
    if (psup_children_signal(sig) < 0 && !sup->orphans_unseen) {
        sup->orphans_unseen = true;
        sup->phase_deadline = now + kill_grace_ms(sup);
    }
}

static void handle_orphans(struct psup_supervisor *sup, uint64_t now)
{
    if (!psup_children_any()) {
        uv_stop(&sup->loop);
        return;
    }
    if (sup->orphans_unseen) {
        if (now >= sup->phase_deadline) {
            psup_children_log_left();
            uv_stop(&sup->loop);
        }
        return;
    }
    /* Handlers' descendants that left their group (setsid, double fork)
     * came back to psup; shutdown waits for them too (tini#180). */
    if (!sup->orphans_signalled) {
        sup->orphans_signalled = true;
        sup->phase_deadline = now + kill_grace_ms(sup);
        signal_orphans(sup, SIGTERM, now);
    } else if (sup->orphans_killed || now >= sup->phase_deadline) {
        /* Again at every wake-up once it is time: an orphan's own children
         * come back to psup when it dies (a SIGCHLD wakes us), and one
         * whose parent outlived the first SIGKILL comes back later. */
        sup->orphans_killed = true;
        signal_orphans(sup, SIGKILL, now);
    }
}

static void schedule(struct psup_supervisor *sup, uint64_t now);
static void begin_stop(struct psup_supervisor *sup, int sig, const char *essential);
static void end_delay(struct psup_supervisor *sup, int sig);

/* An essential service failing for fatal_after: psup stops gracefully and
 * exits 4, so that whatever runs it (an orchestrator, systemd) restarts
 * it or reports it, instead of running on without the service. */
static void check_essential(struct psup_supervisor *sup, uint64_t now)
{
    const struct psup_service *s = psup_runtime_fatal_service(&sup->rt, now);
    struct psup_log l;

    if (!s)
        return;
    psup_log_begin(&l, PSUP_LOG_ERROR, "essential_failed");
    psup_log_str(&l, "service", s->name);
    psup_log_uint(&l, "failures", s->backoff.failures);
    psup_log_secs(&l, "failing_for", (double)(now - s->failing_since) / 1000.0);
    psup_log_secs(&l, "fatal_after", s->current->svc->fatal_after);
    psup_log_end(&l);
    sup->exit_code = PSUP_EXIT_ESSENTIAL;
    begin_stop(sup, 0, s->name);
}

static void make_progress(struct psup_supervisor *sup)
{
    uint64_t now = now_ms(sup);

    psup_runtime_expire(&sup->rt, now);
    psup_report_flush(&sup->rt, now, false);
    if (sup->phase == PHASE_RUNNING)
        check_essential(sup, now);
    if (sup->phase == PHASE_DELAYING && now >= sup->phase_deadline)
        end_delay(sup, 0);
    if (sup->phase == PHASE_DRAINING)
        psup_runtime_drain_backlogs(&sup->rt, now);
    /* While draining, services that still serve their backlogs keep their
     * pools; the others' idle workers are retired. */
    if (sup->phase <= PHASE_DRAINING)
        psup_runtime_maintain(&sup->rt, now);
    if (sup->phase == PHASE_DRAINING && sup->rt.live && now >= sup->phase_deadline) {
        struct psup_log l;
        psup_log_begin(&l, PSUP_LOG_WARN, "shutdown_timeout");
        psup_log_uint(&l, "workers", sup->rt.live);
        psup_log_end(&l);
        /* From here the runtime's own deadlines escalate TERM to KILL. */
        psup_runtime_terminate_all(&sup->rt, now);
        sup->phase = PHASE_TERMINATING;
        sup->phase_deadline = 0;
    }
    if (sup->phase != PHASE_RUNNING && sup->rt.live == 0) {
        if (sup->phase != PHASE_REAPING) {
            sup->phase = PHASE_REAPING;
            sup->phase_deadline = 0;
        }
        handle_orphans(sup, now);
    }
    schedule(sup, now);
}

static void timer_cb(uv_timer_t *t)
{
    make_progress(t->data);
}

static void schedule(struct psup_supervisor *sup, uint64_t now)
{
    uint64_t next = psup_runtime_next_deadline(&sup->rt, now);
    uint64_t flush = psup_report_next_flush(&sup->rt);

    /* The end of a burst of refusals, to log its last suppressed count
     * (due now if a message arrived since make_progress). */
    if (flush && (!next || flush < next))
        next = flush;

    /* The drain deadline, or the orphans' grace; orphans exiting wake the
     * loop through SIGCHLD. */
    if (sup->phase != PHASE_RUNNING && sup->phase_deadline > now &&
        (!next || sup->phase_deadline < next))
        next = sup->phase_deadline;
    if (!next) {
        uv_timer_stop(&sup->timer);
        return;
    }
    /* Never 0: libuv runs a timer re-armed with 0 from its own callback
     * again in the same loop turn. */
    uv_timer_start(&sup->timer, timer_cb, next > now ? next - now : 1, 0);
}

/* ------------------------------------------------------------------------ */
/* Signals. */

/* A stop begins: on a signal, or (sig 0) for the essential service named. */
static void log_shutdown(const struct psup_supervisor *sup, int sig, bool graceful,
                         const char *essential)
{
    const struct psup_config *cfg = sup->rt.config;
    struct psup_log l;
    char buf[16];

    psup_log_begin(&l, graceful ? PSUP_LOG_INFO : PSUP_LOG_WARN, "shutdown");
    if (sig) {
        psup_log_str(&l, "signal", psup_signal_name(sig, buf));
    } else {
        psup_log_str(&l, "reason", "essential");
        psup_log_str(&l, "service", essential);
    }
    psup_log_str(&l, "mode", graceful ? "graceful" : "immediate");
    psup_log_uint(&l, "workers", sup->rt.live);
    if (graceful && cfg->shutdown_delay > 0)
        psup_log_secs(&l, "delay", cfg->shutdown_delay);
    if (graceful)
        psup_log_secs(&l, "timeout", cfg->shutdown_timeout);
    psup_log_end(&l);
}

/* The stop proper: no new connection; the backlogs, then the handlers,
 * finish within shutdown_timeout. */
static void begin_draining(struct psup_supervisor *sup)
{
    uint64_t now = now_ms(sup);

    sup->phase = PHASE_DRAINING;
    sup->phase_deadline = now + (uint64_t)(sup->rt.config->shutdown_timeout * 1000.0);
    psup_runtime_stop_accepting(&sup->rt, now);
}

static void end_delay(struct psup_supervisor *sup, int sig)
{
    struct psup_log l;
    char buf[16];

    psup_log_begin(&l, PSUP_LOG_INFO, "shutdown_delay_over");
    psup_log_str(&l, "reason", sig ? "signal" : "elapsed");
    if (sig)
        psup_log_str(&l, "signal", psup_signal_name(sig, buf));
    psup_log_end(&l);
    begin_draining(sup);
}

static void begin_stop(struct psup_supervisor *sup, int sig, const char *essential)
{
    double delay = sup->rt.config->shutdown_delay;
    char status[PSUP_NOTIFY_MAX], buf[16];

    log_shutdown(sup, sig, true, essential);
    if (sig)
        snprintf(status, sizeof(status), "Stopping on %s", psup_signal_name(sig, buf));
    else
        snprintf(status, sizeof(status), "Stopping: essential service %s kept failing",
                 essential);
    psup_notify_stopping(&sup->notify, status);
    if (delay <= 0) {
        begin_draining(sup);
        return;
    }
    /* shutdown_delay: serve on, not ready (/readyz), while load balancers
     * take psup out of their rotation. */
    sup->admin_state.draining = true;
    sup->phase = PHASE_DELAYING;
    sup->phase_deadline = now_ms(sup) + (uint64_t)(delay * 1000.0);
}

static void stop_now(struct psup_supervisor *sup, int sig)
{
    char status[PSUP_NOTIFY_MAX], buf[16];

    log_shutdown(sup, sig, false, NULL);
    if (sup->phase == PHASE_RUNNING) {
        snprintf(status, sizeof(status), "Stopping at once on %s", psup_signal_name(sig, buf));
        psup_notify_stopping(&sup->notify, status);
    }
    sup->stopped_now = true;
    sup->exit_code = 128 + sig;
    psup_runtime_kill_all(&sup->rt);
    sup->phase = PHASE_REAPING;
    sup->phase_deadline = 0;
    sup->orphans_signalled = sup->orphans_killed = true;
    signal_orphans(sup, SIGKILL, now_ms(sup));
}

static void log_reload_result(const struct psup_apply_report *rep)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "reloaded");
    psup_log_str(&l, "added", rep->added);
    psup_log_str(&l, "removed", rep->removed);
    psup_log_str(&l, "changed", rep->changed);
    psup_log_uint(&l, "unchanged", rep->unchanged);
    psup_log_uint(&l, "listeners_opened", rep->listeners_opened);
    psup_log_uint(&l, "listeners_closed", rep->listeners_closed);
    psup_log_end(&l);
}

static double wall_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* For the admin endpoint: psup_reloads_total and /status's last_reload. */
static void note_reload(struct psup_supervisor *sup, enum psup_reload_result result,
                        unsigned problems)
{
    struct psup_admin_state *st = &sup->admin_state;

    st->reloads[result]++;
    st->last_reload = wall_clock();
    st->last_reload_result = result;
    st->last_reload_problems = problems;
}

/* What a reload did: for the log, for sd_notify, and for a control
 * request, which answers with it (the problems of an invalid file too). */
struct reload_outcome {
    enum psup_reload_result result;
    struct psup_diag problems;       /* PSUP_RELOAD_INVALID */
    struct psup_apply_report report; /* PSUP_RELOAD_OK */
    const char *reason;              /* PSUP_RELOAD_FAILED */
};

static void reject_reload(struct psup_supervisor *sup, struct reload_outcome *out,
                          const char *reason)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "reload_rejected");
    psup_log_str(&l, "reason", reason);
    psup_log_str(&l, "kept", "running configuration");
    psup_log_end(&l);
    out->result = PSUP_RELOAD_FAILED;
    out->reason = reason;
    note_reload(sup, PSUP_RELOAD_FAILED, 0);
}

/* Apply a loaded configuration: the admin listeners are found or bound
 * first, so that either part failing leaves everything as it was. */
static void apply_reload(struct psup_supervisor *sup, struct psup_config *cfg,
                         struct reload_outcome *out)
{
    struct psup_admin_plan plan;

    if (psup_admin_server_plan(sup->admin, &cfg->admin, &plan) < 0) {
        reject_reload(sup, out, "an admin listener could not be bound");
        return;
    }
    if (psup_runtime_apply(&sup->rt, cfg, now_ms(sup), &out->report) < 0) {
        psup_admin_server_abandon(&plan);
        reject_reload(sup, out, "a listener could not be bound");
        return;
    }
    psup_admin_server_commit(sup->admin, &cfg->admin, &plan);
    if (!sup->opts->log_format_forced && cfg->log_format_set)
        psup_log_set_format(cfg->log_format);
    log_reload_result(&out->report);
    if (out->report.listeners_opened)
        psup_runtime_log_listeners(&sup->rt);
    out->result = PSUP_RELOAD_OK;
    note_reload(sup, PSUP_RELOAD_OK, 0);
}

static void reload(struct psup_supervisor *sup, struct reload_outcome *out)
{
    struct psup_log l;

    psup_diag_init(&out->problems);
    struct psup_config *cfg = psup_config_load(sup->opts->config_path, &out->problems);
    if (!cfg) {
        out->result = PSUP_RELOAD_INVALID;
        psup_log_problems("reload_failed", &out->problems);
        psup_log_begin(&l, PSUP_LOG_ERROR, "reload_rejected");
        psup_log_uint(&l, "problems", out->problems.count);
        psup_log_str(&l, "config", sup->opts->config_path);
        psup_log_str(&l, "kept", "running configuration");
        psup_log_end(&l);
        note_reload(sup, PSUP_RELOAD_INVALID, (unsigned)out->problems.count);
        return;
    }
    apply_reload(sup, cfg, out);
    psup_config_unref(cfg);
}

/* STATUS=, for systemctl status: "4 services, 11 workers, 2 busy", and
 * what a stop is at. */
static void summary_cb(void *arg, char *buf, size_t size)
{
    struct psup_supervisor *sup = arg;
    const char *prefix = sup->phase == PHASE_RUNNING    ? ""
                         : sup->phase == PHASE_DELAYING ? "Stopping after shutdown_delay: "
                                                        : "Stopping: ";
    int n = snprintf(buf, size, "%s", prefix);

    if (n >= 0 && (size_t)n < size)
        psup_runtime_summary(&sup->rt, buf + n, size - (size_t)n);
}

/* A reload between RELOADING=1 and READY=1, whatever its result: after a
 * rejected one psup serves on, with the configuration it had. */
static void reload_notified(struct psup_supervisor *sup, struct reload_outcome *out)
{
    char status[PSUP_NOTIFY_MAX], now[PSUP_NOTIFY_MAX / 2];

    psup_notify_reloading(&sup->notify);
    reload(sup, out);
    make_progress(sup); /* the new pools, before they are summed up */
    summary_cb(sup, now, sizeof(now));
    if (out->result == PSUP_RELOAD_OK)
        snprintf(status, sizeof(status), "Reloaded: %s", now);
    else if (out->result == PSUP_RELOAD_INVALID)
        snprintf(status, sizeof(status), "Reload rejected (%zu problem%s in %s), running "
                 "configuration kept: %s", out->problems.count,
                 out->problems.count == 1 ? "" : "s", sup->opts->config_path, now);
    else
        snprintf(status, sizeof(status), "Reload rejected (%s), running configuration "
                 "kept: %s", out->reason, now);
    psup_notify_ready(&sup->notify, status);
}

/* ------------------------------------------------------------------------ */
/* Control requests from the admin endpoint (spec/control.md). */

static void log_requester(struct psup_log *l, const struct psup_requester *by)
{
    if (!by)
        return;
    psup_log_int(l, "remote_pid", by->pid);
    psup_log_uint(l, "remote_uid", by->uid);
}

static int control_reload(void *arg, const struct psup_requester *by,
                          void (*answer)(void *ctx, const struct psup_admin_reload *r), void *ctx)
{
    struct psup_supervisor *sup = arg;
    struct reload_outcome out;
    struct psup_log l;

    if (sup->phase != PHASE_RUNNING)
        return -ESHUTDOWN; /* as SIGHUP: ignored once a stop has begun */
    psup_log_begin(&l, PSUP_LOG_INFO, "reload_requested");
    log_requester(&l, by);
    psup_log_end(&l);
    reload_notified(sup, &out);
    struct psup_admin_reload r = {out.result, &out.problems, &out.report, out.reason};
    answer(ctx, &r);
    psup_diag_free(&out.problems);
    return 0;
}

static int control_pause(void *arg, const char *service, bool pause,
                         const struct psup_requester *by, bool *changed)
{
    struct psup_supervisor *sup = arg;

    if (sup->phase != PHASE_RUNNING)
        return -ESHUTDOWN;
    int rc = psup_runtime_pause(&sup->rt, service, pause, by, now_ms(sup), changed);
    make_progress(sup);
    return rc;
}

static int control_scale(void *arg, const char *service, const struct psup_scale_request *req,
                         const struct psup_requester *by, struct psup_pool_limits *out,
                         char *why, size_t why_size)
{
    struct psup_supervisor *sup = arg;

    if (sup->phase != PHASE_RUNNING)
        return -ESHUTDOWN;
    int rc = psup_runtime_scale(&sup->rt, service, req, by, now_ms(sup), out, why, why_size);
    make_progress(sup);
    return rc;
}

/* ------------------------------------------------------------------------ */

static void signal_cb(uv_signal_t *h, int sig)
{
    struct psup_supervisor *sup = h->data;

    switch (sig) {
    case SIGCHLD:
        take_exits(sup);
        break;
    case SIGTERM:
    case SIGINT:
        /* Graceful the first time; during shutdown_delay another one ends
         * the delay; once the stop proper has begun, one more means now. */
        if (sup->phase == PHASE_RUNNING)
            begin_stop(sup, sig, NULL);
        else if (sup->phase == PHASE_DELAYING)
            end_delay(sup, sig);
        else if (!sup->stopped_now)
            stop_now(sup, sig);
        break;
    case SIGQUIT:
        if (!sup->stopped_now)
            stop_now(sup, sig);
        break;
    case SIGHUP:
        if (sup->phase == PHASE_RUNNING) {
            struct reload_outcome out;
            reload_notified(sup, &out);
            psup_diag_free(&out.problems);
        }
        break;
    case SIGUSR1:
        psup_runtime_log_status(&sup->rt);
        break;
    default:
        break;
    }
    make_progress(sup);
}

static void channel_cb(uv_poll_t *h, int status, int events)
{
    struct psup_supervisor *sup = h->data;

    (void)status;
    (void)events;
    take_exits(sup);
    schedule(sup, now_ms(sup));
}

/* ------------------------------------------------------------------------ */
/* Hooks for the runtime: handler stderr capture. */

static bool stderr_pipe_hook(void *arg, int fd, const char *service, unsigned long long conn,
                             pid_t pid, struct psup_errlog **slot)
{
    struct psup_supervisor *sup = arg;

    return psup_errlog_open(&sup->loop, &sup->errlogs, fd, service, conn, pid, slot);
}

static void stderr_done_hook(void *arg, struct psup_errlog *e)
{
    (void)arg;
    psup_errlog_handler_gone(e);
}

static bool reply_socket_hook(void *arg, struct psup_reply *r)
{
    struct psup_supervisor *sup = arg;

    return psup_replies_watch(&sup->loop, &sup->replies, r);
}

static void reply_done_hook(void *arg, struct psup_reply *r)
{
    (void)arg;
    psup_replies_handler_gone(r);
}

/* Wait-mode services' sockets are watched in an epoll set of psup's own,
 * which the loop watches: libuv would watch each socket itself with
 * uv_poll, whose uv_poll_init makes the socket non-blocking, and
 * O_NONBLOCK belongs to the open file description psup shares with the
 * servers (spec/wait.md wants theirs blocking). The runtime removes a
 * socket before its descriptor is closed: epoll would otherwise keep
 * reporting it as long as a server holds a copy. */
static int watch_hook(void *arg, int fd, bool on)
{
    struct psup_supervisor *sup = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

    if (epoll_ctl(sup->watch_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0)
        return 0;
    if ((on && errno == EEXIST) || (!on && errno == ENOENT))
        return 0;
    return -errno;
}

static void watch_cb(uv_poll_t *h, int status, int events)
{
    struct psup_supervisor *sup = h->data;
    struct epoll_event ev[16];
    int n;

    (void)status;
    (void)events;
    while ((n = epoll_wait(sup->watch_fd, ev, 16, 0)) < 0 && errno == EINTR)
        ;
    /* Each socket reported starts its service's servers, which stops the
     * watch of every socket of that service: a later entry in ev may name
     * one no longer watched, which the runtime ignores. */
    for (int i = 0; i < n; i++)
        psup_runtime_on_ready(&sup->rt, ev[i].data.fd, now_ms(sup));
    make_progress(sup);
}

/* ------------------------------------------------------------------------ */
/* Start-up and tear-down. */

/* Record every signal whose disposition is not SIG_DFL now: the worker
 * resets exactly these (raw rt_sigaction sees glibc's internal ones too). */
static void find_changed_signals(struct psup_runtime *rt)
{
    rt->n_reset_signals = 0;
    for (int sig = 1; sig < 65 && rt->n_reset_signals < 64; sig++) {
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            unsigned long long mask;
        } old = {0};
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) == 0 && old.handler != NULL)
            rt->reset_signals[rt->n_reset_signals++] = sig;
    }
}

static int start_signals(struct psup_supervisor *sup)
{
    for (size_t i = 0; i < N_WATCHED; i++) {
        int rc = uv_signal_init(&sup->loop, &sup->signals[i]);
        if (rc == 0)
            rc = uv_signal_start(&sup->signals[i], signal_cb, watched_signals[i]);
        if (rc < 0)
            return rc;
        sup->signals[i].data = sup;
    }
    return 0;
}

static int open_watch(struct psup_supervisor *sup)
{
    sup->watch_fd = epoll_create1(EPOLL_CLOEXEC);
    if (sup->watch_fd < 0)
        return -errno;
    int rc = uv_poll_init(&sup->loop, &sup->watch_poll, sup->watch_fd);
    if (rc == 0)
        rc = uv_poll_start(&sup->watch_poll, UV_READABLE, watch_cb);
    sup->watch_poll.data = sup;
    return rc;
}

static int open_channel(struct psup_supervisor *sup)
{
    /* SOCK_SEQPACKET: one message per send, whole, from any worker. With
     * SO_PASSCRED the kernel tells who sent each one: a prestarted
     * program holds the workers' end before psup's library runs in it
     * (spec/prestart.md), and must not speak for another worker. */
    int on = 1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup->channel) < 0)
        return -errno;
    if (setsockopt(sup->channel[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
        return -errno;
    int rc = psup_fd_set_nonblock(sup->channel[0], true);
    if (rc == 0)
        rc = uv_poll_init(&sup->loop, &sup->channel_poll, sup->channel[0]);
    if (rc == 0)
        rc = uv_poll_start(&sup->channel_poll, UV_READABLE, channel_cb);
    sup->channel_poll.data = sup;
    return rc;
}

static void log_start(const struct psup_supervisor *sup, const struct psup_config *cfg)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "start");
    psup_log_str(&l, "version", PSUP_VERSION);
    psup_log_int(&l, "pid", getpid());
    psup_log_str(&l, "config", sup->opts->config_path);
    psup_log_uint(&l, "services", cfg->n_services);
    psup_log_str(&l, "spawn", sup->rt.share_memory ? "clone_vm" : "fork");
    psup_log_str(&l, "reaper", getpid() == 1 ? "pid1" : "subreaper");
    psup_log_secs(&l, "shutdown_budget",
                  cfg->shutdown_delay + cfg->shutdown_timeout + cfg->kill_grace);
    psup_log_end(&l);
}

static void log_ready(const struct psup_supervisor *sup)
{
    struct psup_log l;

    char addrs[2048] = "";
    size_t used = 0;

    for (size_t i = 0; i < sup->rt.n_listeners; i++) {
        int n = snprintf(addrs + used, sizeof(addrs) - used, "%s%s", i ? "," : "",
                         sup->rt.listeners[i]->bound);
        if (n < 0 || (size_t)n >= sizeof(addrs) - used)
            break; /* every address is on its own listening line anyway */
        used += (size_t)n;
    }
    psup_log_begin(&l, PSUP_LOG_INFO, "ready");
    psup_log_uint(&l, "services", sup->rt.config->n_services);
    psup_log_uint(&l, "listeners", sup->rt.n_listeners);
    psup_log_uint(&l, "workers", sup->rt.live);
    psup_log_str(&l, "addrs", addrs);
    psup_log_end(&l);
}

static void log_fatal(const char *what, int err)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "fatal");
    psup_log_str(&l, "step", what);
    psup_log_errno(&l, err < 0 ? -err : err);
    psup_log_end(&l);
}

/* Whether psup has a controlling terminal that handlers must be detached
 * from (spec/handler.md, "Process group and session"). */
static bool has_terminal(void)
{
    int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* The first configuration: the admin endpoint's listeners and the
 * services'. Either failing to bind is exit status 3, with the address and
 * the reason logged. */
static int apply_first(struct psup_supervisor *sup, struct psup_config *cfg)
{
    struct psup_admin_state *st = &sup->admin_state;
    struct psup_apply_report rep;
    struct psup_admin_plan plan;
    int rc;

    st->rt = &sup->rt;
    st->config_path = sup->opts->config_path;
    st->pid = getpid();
    st->started = wall_clock();
    st->started_ms = now_ms(sup);
    sup->control = (struct psup_admin_control){control_reload, control_pause, control_scale,
                                               sup};
    st->control = &sup->control;
    if (!(sup->admin = psup_admin_server_new(&sup->loop, st)))
        return log_fatal("admin", -ENOMEM), -ENOMEM;
    if ((rc = psup_admin_server_plan(sup->admin, &cfg->admin, &plan)) < 0)
        return rc;
    if ((rc = psup_runtime_apply(&sup->rt, cfg, now_ms(sup), &rep)) < 0) {
        psup_admin_server_abandon(&plan);
        return rc;
    }
    psup_admin_server_commit(sup->admin, &cfg->admin, &plan);
    return 0;
}

static int setup(struct psup_supervisor *sup, struct psup_config *cfg)
{
    int rc;

    /* Adopt orphaned descendants of handlers, so they are reaped here
     * (as PID 1 this is already so). */
    if (getpid() != 1)
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    /* A parent may have left signals blocked (a blocked SIGCHLD would leave
     * every child a zombie); psup starts from an empty mask. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = uv_loop_init(&sup->loop)) < 0)
        return log_fatal("uv_loop_init", rc), rc;
    sup->loop_ready = true;
    /* Signals before anything is bound: a SIGTERM from here on is handled,
     * as PID 1 too. */
    if ((rc = start_signals(sup)) < 0)
        return log_fatal("signals", rc), rc;
    if ((rc = open_channel(sup)) < 0)
        return log_fatal("channel", rc), rc;
    if ((rc = open_watch(sup)) < 0)
        return log_fatal("watch", rc), rc;
    uv_timer_init(&sup->loop, &sup->timer);
    sup->timer.data = sup;
    psup_runtime_init(&sup->rt, sup->channel[1], !sup->opts->use_fork);
    sup->rt.hooks = (struct psup_runtime_hooks){.stderr_pipe = stderr_pipe_hook,
                                                .stderr_done = stderr_done_hook,
                                                .reply_socket = reply_socket_hook,
                                                .reply_done = reply_done_hook,
                                                .watch = watch_hook,
                                                .arg = sup};
    sup->rt.handler_sessions = has_terminal();
    find_changed_signals(&sup->rt);
    log_start(sup, cfg);
    psup_notify_init(&sup->notify, &sup->loop, sup->opts->ready_fd, summary_cb, sup);
    if ((rc = apply_first(sup, cfg)) < 0)
        return rc; /* the listener and its reason are logged */
    psup_runtime_log_listeners(&sup->rt);
    log_ready(sup);
    char status[PSUP_NOTIFY_MAX];
    summary_cb(sup, status, sizeof(status));
    psup_notify_ready(&sup->notify, status);
    schedule(sup, now_ms(sup)); /* a start that failed is retried by the timer */
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void walk_close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

static void teardown(struct psup_supervisor *sup)
{
    psup_notify_close(&sup->notify);
    if (sup->loop_ready) {
        psup_errlog_close_all(&sup->errlogs);
        psup_admin_server_close(sup->admin);
        psup_replies_close_all(&sup->replies);
        uv_walk(&sup->loop, walk_close_cb, NULL);
        uv_run(&sup->loop, UV_RUN_DEFAULT);
        psup_admin_server_free(sup->admin);
        int rc = uv_loop_close(&sup->loop);
        if (rc < 0)
            log_fatal("uv_loop_close", rc);
    }
    psup_runtime_free(&sup->rt);
    psup_fd_close(sup->channel[0]);
    psup_fd_close(sup->channel[1]);
    psup_fd_close(sup->watch_fd);
}

/* Could not start: stop the workers psup made and wait for them, by pid
 * and for at most a second (they were sent SIGKILL). Never waitpid(-1):
 * psup may have inherited children it did not make ("sh -c 'sleep 15 &
 * exec psup cfg.json'"), and must not wait for those. */
static void abandon_start(struct psup_supervisor *sup)
{
    const struct timespec nap = {.tv_nsec = 5 * 1000 * 1000};
    uint64_t deadline = now_ms(sup) + 1000;

    psup_runtime_kill_all(&sup->rt);
    for (struct psup_list *p = sup->rt.services.next; p != &sup->rt.services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        for (struct psup_list *q = s->workers.next; q != &s->workers; q = q->next) {
            pid_t pid = PSUP_CONTAINER(q, struct psup_worker, link)->pid;
            while (waitpid(pid, NULL, WNOHANG) == 0 && now_ms(sup) < deadline)
                nanosleep(&nap, NULL);
        }
    }
}

int psup_supervisor_run(struct psup_config *cfg, const struct psup_supervisor_options *opts)
{
    struct psup_supervisor *sup = calloc(1, sizeof(*sup));

    if (!sup) {
        psup_log_exit(PSUP_EXIT_START);
        return PSUP_EXIT_START;
    }
    sup->opts = opts;
    sup->channel[0] = sup->channel[1] = -1;
    sup->watch_fd = -1;
    sup->notify.fd = sup->notify.ready_fd = -1; /* until psup_notify_init */
    psup_list_init(&sup->errlogs);
    psup_list_init(&sup->replies);
    int rc = setup(sup, cfg);
    if (rc == 0) {
        uv_run(&sup->loop, UV_RUN_DEFAULT);
        psup_report_flush(&sup->rt, 0, true);
        psup_runtime_log_summary(&sup->rt);
    } else {
        if (sup->rt.services.next) /* the runtime was set up */
            abandon_start(sup);
        sup->exit_code = PSUP_EXIT_START;
    }
    teardown(sup);
    int code = sup->exit_code;
    psup_log_exit(code);
    free(sup);
    return code;
}
