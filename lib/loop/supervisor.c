/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's event loop. Every signal arrives through a uv_signal_t
 * (libuv's self-pipe): no work happens in a signal handler. Workers' messages
 * arrive on one socket; one timer serves every deadline. Nothing here blocks
 * except writing the log.
 *
 * Shutdown phases: RUNNING -> DRAINING (listeners closed, idle workers
 * retired, handlers finishing) -> TERMINATING (SIGTERM, then SIGKILL after
 * kill_grace) -> REAPING (orphans adopted as subreaper or PID 1 get the same
 * treatment) -> the loop stops once waitpid reports no child at all.
 */
#include "loop/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "loop/admin.h"
#include "loop/errlog.h"
#include "base/fd.h"
#include "base/log.h"
#include "runtime/report.h"
#include "runtime/runtime.h"

enum phase {
    PHASE_RUNNING,
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
    uv_timer_t timer;
    int channel[2]; /* [0] the supervisor's end, [1] the workers' */
    struct psup_runtime rt;
    struct psup_list errlogs;
    struct psup_admin_server *admin;
    struct psup_admin_state admin_state; /* what the admin endpoint reports */
    const struct psup_supervisor_options *opts;
    enum phase phase;
    bool loop_ready;
    int exit_code;
    uint64_t phase_deadline;  /* end of draining, or of the orphans' grace */
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
/* Children that are not workers: orphans adopted as PID 1 or subreaper. */

/* Whether any child is left, exited or not. */
static bool have_children(void)
{
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Signal every child listed in /proc/self/task/TID/children (psup has a
 * single thread). Returns 0, or -errno if the file cannot be read: the
 * kernel lists children there only with CONFIG_PROC_CHILDREN. */
static int signal_listed_children(int sig)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
    FILE *f = fopen(path, "re");

    if (!f)
        return -errno;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
        kill((pid_t)pid, sig);
    fclose(f);
    return 0;
}

/* The parent named by /proc/PID/stat ("PID (COMM) STATE PPID ..."; COMM
 * may hold spaces and parentheses, so read after the last ')'), or -1. */
static long parent_of(int proc, const char *pid)
{
    char buf[512];
    int fd = openat(proc, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    int stat = openat(fd, "stat", O_RDONLY | O_CLOEXEC);
    close(fd);
    if (stat < 0)
        return -1;
    ssize_t n = read(stat, buf, sizeof(buf) - 1);
    close(stat);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *end = strrchr(buf, ')');
    long ppid;
    return end && sscanf(end + 1, " %*c %ld", &ppid) == 1 ? ppid : -1;
}

/* Without the children file: every process names its parent in
 * /proc/PID/stat. Returns 0, or -ENOENT if /proc is not there (no entry
 * for psup itself: not mounted, or something else mounted there). */
static int signal_children_by_scan(int sig)
{
    DIR *dir = opendir("/proc");

    if (!dir)
        return -errno;
    long self = getpid();
    bool seen_self = false;
    struct dirent *d;
    while ((d = readdir(dir))) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        long pid = strtol(d->d_name, NULL, 10);
        seen_self |= pid == self;
        if (parent_of(dirfd(dir), d->d_name) == self)
            kill((pid_t)pid, sig);
    }
    closedir(dir);
    return seen_self ? 0 : -ENOENT;
}

/* Signal every child of psup (workers, handlers, and the orphans that came
 * back to it). Returns 0, or -errno if psup cannot list its children. */
static int signal_children(int sig)
{
    int rc = signal_listed_children(sig);

    return rc == -ENOENT ? signal_children_by_scan(sig) : rc;
}

static void log_orphan(pid_t pid, int status)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_DEBUG, "reaped_orphan");
    psup_log_int(&l, "pid", pid);
    psup_log_wait_status(&l, status);
    psup_log_end(&l);
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
            char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf)};
        ssize_t n = recvmsg(sup->channel[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* EAGAIN: all read */
        int fd = -1;
        pid_t sender = 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(h), sizeof(int));
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(h), sizeof(cred));
                sender = cred.pid;
            }
        }
        /* Out of descriptors, the kernel drops the fd (MSG_CTRUNC): the
         * handler then keeps psup's stderr (spec/handler.md). A message
         * is taken as its sender's, whatever pid it says. */
        if ((size_t)n != sizeof(m) || sender <= 0) {
            psup_fd_close(fd);
            continue;
        }
        m.pid = sender;
        if (m.kind == PSUP_MSG_BUSY)
            collect_exits(sup, ex);
        psup_runtime_on_message(&sup->rt, &m, fd, now);
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
                log_orphan(ex.pid[i], ex.status[i]);
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
    if (signal_children(sig) < 0 && !sup->orphans_unseen) {
        sup->orphans_unseen = true;
        sup->phase_deadline = now + kill_grace_ms(sup);
    }
}

static void log_orphans_left(void)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "orphans_left");
    psup_log_str(&l, "reason", "cannot list children (/proc)");
    psup_log_end(&l);
}

static void handle_orphans(struct psup_supervisor *sup, uint64_t now)
{
    if (!have_children()) {
        uv_stop(&sup->loop);
        return;
    }
    if (sup->orphans_unseen) {
        if (now >= sup->phase_deadline) {
            log_orphans_left();
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

static void make_progress(struct psup_supervisor *sup)
{
    uint64_t now = now_ms(sup);

    psup_runtime_expire(&sup->rt, now);
    psup_report_flush(&sup->rt, now, false);
    if (sup->phase == PHASE_RUNNING) {
        psup_runtime_maintain(&sup->rt, now);
    } else if (sup->phase == PHASE_DRAINING && sup->rt.live && now >= sup->phase_deadline) {
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

static void log_shutdown(const struct psup_supervisor *sup, int sig, bool graceful)
{
    struct psup_log l;
    char buf[16];

    psup_log_begin(&l, graceful ? PSUP_LOG_INFO : PSUP_LOG_WARN, "shutdown");
    psup_log_str(&l, "signal", psup_signal_name(sig, buf));
    psup_log_str(&l, "mode", graceful ? "graceful" : "immediate");
    psup_log_uint(&l, "workers", sup->rt.live);
    if (graceful)
        psup_log_secs(&l, "timeout", sup->rt.config->shutdown_timeout);
    psup_log_end(&l);
}

static void begin_graceful(struct psup_supervisor *sup, int sig)
{
    uint64_t now = now_ms(sup);

    log_shutdown(sup, sig, true);
    sup->phase = PHASE_DRAINING;
    sup->phase_deadline = now + (uint64_t)(sup->rt.config->shutdown_timeout * 1000.0);
    psup_runtime_stop_accepting(&sup->rt);
}

static void stop_now(struct psup_supervisor *sup, int sig)
{
    log_shutdown(sup, sig, false);
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

static void reject_reload(struct psup_supervisor *sup, const char *reason)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "reload_rejected");
    psup_log_str(&l, "reason", reason);
    psup_log_str(&l, "kept", "running configuration");
    psup_log_end(&l);
    note_reload(sup, PSUP_RELOAD_FAILED, 0);
}

/* Apply a loaded configuration: the admin listeners are found or bound
 * first, so that either part failing leaves everything as it was. */
static void apply_reload(struct psup_supervisor *sup, struct psup_config *cfg)
{
    struct psup_apply_report rep;
    struct psup_admin_plan plan;

    if (psup_admin_server_plan(sup->admin, &cfg->admin, &plan) < 0) {
        reject_reload(sup, "an admin listener could not be bound");
        return;
    }
    if (psup_runtime_apply(&sup->rt, cfg, now_ms(sup), &rep) < 0) {
        psup_admin_server_abandon(&plan);
        reject_reload(sup, "a listener could not be bound");
        return;
    }
    psup_admin_server_commit(sup->admin, &cfg->admin, &plan);
    if (!sup->opts->log_format_forced && cfg->log_format_set)
        psup_log_set_format(cfg->log_format);
    log_reload_result(&rep);
    if (rep.listeners_opened)
        psup_runtime_log_listeners(&sup->rt);
    note_reload(sup, PSUP_RELOAD_OK, 0);
}

static void reload(struct psup_supervisor *sup)
{
    struct psup_diag diag;
    struct psup_log l;

    psup_diag_init(&diag);
    struct psup_config *cfg = psup_config_load(sup->opts->config_path, &diag);
    if (!cfg) {
        psup_log_problems("reload_failed", &diag);
        psup_log_begin(&l, PSUP_LOG_ERROR, "reload_rejected");
        psup_log_uint(&l, "problems", diag.count);
        psup_log_str(&l, "config", sup->opts->config_path);
        psup_log_str(&l, "kept", "running configuration");
        psup_log_end(&l);
        note_reload(sup, PSUP_RELOAD_INVALID, (unsigned)diag.count);
        psup_diag_free(&diag);
        return;
    }
    psup_diag_free(&diag);
    apply_reload(sup, cfg);
    psup_config_unref(cfg);
}

static void signal_cb(uv_signal_t *h, int sig)
{
    struct psup_supervisor *sup = h->data;

    switch (sig) {
    case SIGCHLD:
        take_exits(sup);
        break;
    case SIGTERM:
    case SIGINT:
        /* Graceful the first time; a second one means now. */
        if (sup->phase == PHASE_RUNNING)
            begin_graceful(sup, sig);
        else if (sup->exit_code == 0)
            stop_now(sup, sig);
        break;
    case SIGQUIT:
        if (sup->exit_code == 0)
            stop_now(sup, sig);
        break;
    case SIGHUP:
        if (sup->phase == PHASE_RUNNING)
            reload(sup);
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
    psup_log_secs(&l, "shutdown_budget", cfg->shutdown_timeout + cfg->kill_grace);
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
    uv_timer_init(&sup->loop, &sup->timer);
    sup->timer.data = sup;
    psup_runtime_init(&sup->rt, sup->channel[1], !sup->opts->use_fork);
    sup->rt.hooks = (struct psup_runtime_hooks){stderr_pipe_hook, stderr_done_hook, sup};
    sup->rt.handler_sessions = has_terminal();
    find_changed_signals(&sup->rt);
    log_start(sup, cfg);
    if ((rc = apply_first(sup, cfg)) < 0)
        return rc; /* the listener and its reason are logged */
    psup_runtime_log_listeners(&sup->rt);
    log_ready(sup);
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
    if (sup->loop_ready) {
        psup_errlog_close_all(&sup->errlogs);
        psup_admin_server_close(sup->admin);
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
    psup_list_init(&sup->errlogs);
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
