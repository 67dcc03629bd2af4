/* SPDX-License-Identifier: MIT */
/*
 * The worker: everything a process does between its creation and execve.
 *
 * A worker shares the supervisor's memory until it execs (see worker.h), so
 * this file calls no libc function that could touch errno, the heap, stdio
 * or a lock: system calls go through psup_sys() from rawsys.h, and the only
 * library calls are memcpy/memset-like pure functions. The supervisor side of
 * the other side (creating the process, its stack) is in spawn.c.
 *
 * The file is built without sanitizers: AddressSanitizer keeps per-thread
 * state that this process would share with the supervisor's main thread.
 *
 * The steps, in order, and why each is where it is, are in spec/pool.md and
 * spec/handler.md; the comments below name the hazard each step prevents.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "rawsys.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The kernel's sigset is 64 bits: bit (sig - 1) for each signal. */
#define KSIG(sig) (UINT64_C(1) << ((sig) - 1))
#define KSIGSET_SIZE 8

/* The kernel's struct sigaction (x86_64, aarch64 and the generic layout). */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* How long a worker waits for the supervisor's verdict before giving the
 * connection up; the supervisor answers in microseconds unless it is
 * stopped (a debugger, SIGSTOP). */
#define VERDICT_TIMEOUT_SECONDS 60

/* Accept failing for lack of resources: wait this long, doubling, then retry. */
#define ACCEPT_BACKOFF_MIN_NS 50000000L
#define ACCEPT_BACKOFF_MAX_NS 1000000000L

/* ------------------------------------------------------------------------ */
/* Small helpers that are safe in a process sharing the supervisor's memory. */

_Noreturn static void worker_exit(int status)
{
    for (;;)
        psup_sys(SYS_exit_group, status);
}

static long set_sigmask(uint64_t mask)
{
    return psup_sys(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, KSIGSET_SIZE);
}

static void reset_disposition(int sig)
{
    struct kernel_sigaction sa = {.handler = SIG_DFL, .mask = ~UINT64_C(0)};

    psup_sys(SYS_rt_sigaction, sig, &sa, 0, KSIGSET_SIZE);
}

static void close_fd(int fd)
{
    if (fd >= 0)
        psup_sys(SYS_close, fd);
}

static long send_msg(const struct psup_child *c, struct psup_msg *m, int pass_fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    long r;

    m->pid = c->pid;
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof(control));
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof(control.buf);
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
    }
    do {
        r = psup_sys(SYS_sendmsg, c->plan->channel_fd, &mh, MSG_NOSIGNAL);
    } while (r == -EINTR);
    return r;
}

static void report(const struct psup_child *c, enum psup_msg_kind kind,
                   enum psup_step step, long err)
{
    struct psup_msg m = {.kind = kind, .step = step, .err = (int32_t)-err};

    send_msg(c, &m, -1);
}

/* Report a failure before any connection was taken, and leave. */
_Noreturn static void setup_failed(const struct psup_child *c, enum psup_step step,
                                   long err)
{
    report(c, PSUP_MSG_SETUP_FAILED, step, err);
    worker_exit(PSUP_WORKER_EXIT_SETUP);
}

/* Best-effort write of a refusal message to a client we are about to close:
 * never blocks, never raises SIGPIPE. */
static void send_message(int fd, const char *text)
{
    size_t len = text ? strlen(text) : 0;

    if (len)
        psup_sys(SYS_sendto, fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Getting ready: signals, session, descriptors. */

static void reset_signals(const struct psup_plan *p)
{
    /* The supervisor's dispositions were copied into this process: libuv's
     * handler would write into the supervisor's signal pipe, so a SIGTERM
     * sent to this worker would look like one sent to psup. Every signal is
     * still blocked here (psup_worker_spawn blocked them around clone). */
    for (size_t i = 0; i < p->n_reset_signals; i++)
        reset_disposition(p->reset_signals[i]);
}

static void sort_ints(int *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* Close every descriptor from 3 up except the listeners and the channel:
 * another service's listener held here would keep its port open after a
 * reload removed it. CLOEXEC alone would only act at exec. */
static long close_all_but_ours(const struct psup_plan *p)
{
    int keep[64];
    size_t n = 0;
    unsigned next = 3;
    long r = 0;

    keep[n++] = p->channel_fd;
    for (size_t i = 0; i < p->n_listeners && n < 64; i++)
        keep[n++] = p->listeners[i].fd;
    sort_ints(keep, n);
    for (size_t i = 0; i < n && r == 0; i++) {
        if ((unsigned)keep[i] > next)
            r = psup_sys(SYS_close_range, next, keep[i] - 1, 0);
        if ((unsigned)keep[i] >= next)
            next = (unsigned)keep[i] + 1;
    }
    if (r == 0)
        r = psup_sys(SYS_close_range, next, ~0U, 0);
    return r;
}

/* The epoll tag of the retire signal's signalfd. */
#define RETIRE_TAG UINT32_MAX

/* The listeners, each EPOLLEXCLUSIVE, and a signalfd for the retire signal
 * (blocked, so it is only ever read from there). */
static int make_epoll(const struct psup_plan *p, int *retire_fd)
{
    uint64_t retire = KSIG(PSUP_SIG_RETIRE);
    long epfd = psup_sys(SYS_epoll_create1, EPOLL_CLOEXEC);
    long sfd = psup_sys(SYS_signalfd4, -1, &retire, KSIGSET_SIZE, SFD_CLOEXEC | SFD_NONBLOCK);

    if (epfd < 0)
        return (int)epfd;
    if (sfd < 0)
        return (int)sfd;
    struct epoll_event rev = {.events = EPOLLIN, .data.u32 = RETIRE_TAG};
    long r = psup_sys(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, sfd, &rev);
    if (r < 0)
        return (int)r;
    *retire_fd = (int)sfd;
    for (size_t i = 0; i < p->n_listeners; i++) {
        /* EPOLLEXCLUSIVE: the kernel wakes one idle worker per connection,
         * not all of them (the thundering herd). */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (uint32_t)i};
        r = psup_sys(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, p->listeners[i].fd, &ev);
        if (r < 0)
            return (int)r;
    }
    return (int)epfd;
}

/* ------------------------------------------------------------------------ */
/* The handler's environment. */

struct env_writer {
    char **envp;
    size_t n;
    char *buf;
    size_t used;
};

static char *env_start(struct env_writer *w, const char *name)
{
    size_t len = strlen(name);
    char *s = w->buf + w->used;

    memcpy(s, name, len);
    s[len] = '=';
    w->envp[w->n++] = s;
    w->used += len + 1;
    return w->buf + w->used;
}

static void env_end(struct env_writer *w, size_t value_len)
{
    w->buf[w->used + value_len] = '\0';
    w->used += value_len + 1;
}

static void env_str(struct env_writer *w, const char *name, const char *value)
{
    size_t len = strlen(value);

    if (w->used + strlen(name) + len + 2 > PSUP_ENVBUF_SIZE)
        return;
    memcpy(env_start(w, name), value, len);
    env_end(w, len);
}

static void env_uint(struct env_writer *w, const char *name, unsigned long long v)
{
    char digits[24];

    psup_fmt_uint(v, digits);
    env_str(w, name, digits);
}

static void env_ip(struct env_writer *w, const char *name, const struct sockaddr *sa)
{
    char ip[PSUP_IP_STRLEN];

    psup_ip_format(sa, ip);
    env_str(w, name, ip);
}

static char **build_env(struct psup_child *c, const struct psup_plan_listener *l,
                        const struct sockaddr *remote, const struct sockaddr *local,
                        const struct psup_peer *peer, unsigned connnum)
{
    const struct psup_plan *p = c->plan;
    struct env_writer w = {.envp = c->envp, .buf = c->envbuf};

    memcpy(w.envp, p->env_base, p->n_env_base * sizeof(char *));
    w.n = p->n_env_base;
    if (l->proto == PSUP_PROTO_UNIX) {
        env_str(&w, "PROTO", "UNIX");
        env_str(&w, "UNIXLOCALPATH", l->unix_path ? l->unix_path : "");
        env_uint(&w, "UNIXREMOTEEUID", peer->uid);
        env_uint(&w, "UNIXREMOTEEGID", peer->gid);
        env_uint(&w, "UNIXREMOTEPID", (unsigned long long)peer->pid);
    } else {
        /* PROTO=TCP for IPv6 too, as s6-tcpserver does. */
        env_str(&w, "PROTO", "TCP");
        env_ip(&w, "TCPLOCALIP", local);
        env_uint(&w, "TCPLOCALPORT", psup_sockaddr_port(local));
        env_ip(&w, "TCPREMOTEIP", remote);
        env_uint(&w, "TCPREMOTEPORT", psup_sockaddr_port(remote));
        env_uint(&w, "TCPCONNNUM", connnum);
        env_ip(&w, "REMOTE_ADDR", remote);
        env_uint(&w, "REMOTE_PORT", psup_sockaddr_port(remote));
    }
    env_uint(&w, "PSUP_CONN_ID", c->conn_id);
    w.envp[w.n] = NULL;
    return w.envp;
}

/* ------------------------------------------------------------------------ */
/* From accepted connection to execve. */

/* fd 2 for the handler: psup's stderr (nothing to do), /dev/null, or the
 * write end of the log pipe. Returns 0 or -errno. */
static long setup_stderr(const struct psup_service_config *svc, int log_pipe)
{
    long r = 0;

    if (svc->stderr_mode == PSUP_STDERR_NULL) {
        long devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0)
            return devnull;
        r = psup_sys(SYS_dup3, devnull, 2, 0);
        close_fd((int)devnull);
    } else if (log_pipe >= 0) {
        r = psup_sys(SYS_dup3, log_pipe, 2, 0);
        close_fd(log_pipe);
    }
    return r < 0 ? r : 0;
}

static long apply_limits(const struct psup_service_config *svc, enum psup_step *step)
{
    long r;

    *step = PSUP_STEP_UMASK;
    if (svc->umask >= 0)
        psup_sys(SYS_umask, svc->umask);
    *step = PSUP_STEP_CWD;
    if (svc->cwd && (r = psup_sys(SYS_chdir, svc->cwd)) < 0)
        return r;
    *step = PSUP_STEP_RLIMIT;
    for (size_t i = 0; i < svc->n_rlimits; i++) {
        r = psup_sys(SYS_prlimit64, 0, svc->rlimits[i].resource, &svc->rlimits[i].value, 0);
        if (r < 0)
            return r;
    }
    *step = PSUP_STEP_NICE;
    if (svc->set_nice && (r = psup_sys(SYS_setpriority, PRIO_PROCESS, 0, svc->nice)) < 0)
        return r;
    return 0;
}

/* setgroups, setgid, setuid, in that order: the supplementary groups must go
 * while we may still change them, and the uid last, since after it nothing
 * can be changed back. Then check that root cannot be regained. */
static long drop_privileges(const struct psup_service_config *svc)
{
    long r;

    if (!svc->set_ids)
        return 0;
    if ((r = psup_sys(SYS_setgroups, svc->n_groups, svc->groups)) < 0)
        return r;
    if ((r = psup_sys(SYS_setresgid, svc->gid, svc->gid, svc->gid)) < 0)
        return r;
    if ((r = psup_sys(SYS_setresuid, svc->uid, svc->uid, svc->uid)) < 0)
        return r;
    if (svc->uid != 0 && psup_sys(SYS_setuid, 0) == 0)
        return -EPERM;
    return 0;
}

_Noreturn static void become_handler(struct psup_child *c, const struct psup_plan_listener *l,
                                     int conn, const struct sockaddr *remote,
                                     const struct psup_peer *peer, int verdict, int log_pipe)
{
    const struct psup_service_config *svc = c->plan->svc;
    struct sockaddr_storage local = {0};
    socklen_t local_len = sizeof(local);
    enum psup_step step = PSUP_STEP_SETUP;
    long r;

    if (l->proto != PSUP_PROTO_UNIX)
        psup_sys(SYS_getsockname, conn, &local, &local_len);
    char **envp = build_env(c, l, remote, (struct sockaddr *)&local, peer,
                            (unsigned)verdict >> 16);

    /* 1. The connection on 0 and 1. It cannot already be 0 or 1: psup keeps
     *    0-2 open from the start, so dup3 always clears CLOEXEC here. */
    if ((r = psup_sys(SYS_dup3, conn, 0, 0)) < 0 || (r = psup_sys(SYS_dup3, conn, 1, 0)) < 0)
        goto fail;
    close_fd(conn);
    step = PSUP_STEP_STDERR;
    if ((r = setup_stderr(svc, log_pipe)) < 0)
        goto fail;

    /* 2. The process: umask, cwd, limits, nice, then credentials. */
    if ((r = apply_limits(svc, &step)) < 0)
        goto fail;
    step = PSUP_STEP_CREDENTIALS;
    if ((r = drop_privileges(svc)) < 0)
        goto fail;

    /* 3. Do not tie the handler's life to psup's: a handler finishes its
     *    connection even if psup is killed. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, 0);

    /* 4. Nothing of psup may reach the handler: mark every fd from 3 up
     *    close-on-exec (the channel stays usable to report an exec error). */
    step = PSUP_STEP_SETUP;
    if ((r = psup_sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC)) < 0)
        goto fail;

    /* 5. An empty mask. A retire signal still pending is discarded as it
     *    is unblocked: its default action is to ignore it. */
    set_sigmask(0);

    r = psup_sys(SYS_execve, svc->program, svc->argv, envp);
    /* Still here: report, and exit like a shell would (127: not found). */
    set_sigmask(~UINT64_C(0));
    report(c, PSUP_MSG_EXEC_FAILED, PSUP_STEP_EXEC, r);
    worker_exit(r == -ENOENT || r == -ENOTDIR ? 127 : 126);

fail:
    set_sigmask(~UINT64_C(0));
    report(c, PSUP_MSG_EXEC_FAILED, step, r);
    worker_exit(126);
}

/* Wait for the supervisor's answer to BUSY. Returns the encoded verdict or
 * -1 if none came (the connection is then closed). */
static int wait_verdict(const struct psup_plan *p)
{
    uint64_t set = KSIG(p->verdict_signal);
    struct timespec timeout = {.tv_sec = VERDICT_TIMEOUT_SECONDS};
    siginfo_t info;

    for (;;) {
        long r = psup_sys(SYS_rt_sigtimedwait, &set, &info, &timeout, KSIGSET_SIZE);
        if (r == p->verdict_signal && info.si_code == SI_QUEUE &&
            info.si_pid == p->supervisor_pid)
            return info.si_value.sival_int;
        if (r != -EINTR && r != p->verdict_signal)
            return -1;
    }
}

static void describe_peer(int conn, const struct psup_plan_listener *l,
                          const struct sockaddr *remote, struct psup_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    if (l->proto == PSUP_PROTO_UNIX) {
        struct ucred cred = {0};
        socklen_t len = sizeof(cred);
        psup_sys(SYS_getsockopt, conn, SOL_SOCKET, SO_PEERCRED, &cred, &len);
        peer->family = AF_UNIX;
        peer->pid = cred.pid;
        peer->uid = cred.uid;
        peer->gid = cred.gid;
        return;
    }
    peer->family = AF_INET6;
    peer->port = (uint16_t)psup_sockaddr_port(remote);
    psup_ip_key(remote, peer->addr);
}

static const char *refusal_text(const struct psup_service_config *svc, int code)
{
    switch (code) {
    case PSUP_VERDICT_PER_SOURCE: return svc->per_source_message;
    case PSUP_VERDICT_RATE: return svc->rate_message;
    case PSUP_VERDICT_OVERLOAD: return svc->overload_message;
    default: return NULL;
    }
}

/* Show the client in this worker's tally entry; with count, return how many
 * of the service's handlers serve it now, this one included. */
static unsigned publish_source(const struct psup_child *c, const struct psup_peer *peer,
                               bool count)
{
    struct psup_source src;

    psup_peer_source(peer, c->plan->svc->per_source_ipv6_prefix, &src);
    return psup_tally_publish(c->plan->tally, c->tally_slot, c->conn_id, &src, count);
}

/* No limit to check: count the client's connections in the tally, tell the
 * supervisor, and become the handler. Returns only if the supervisor could
 * not be told (the connection is then closed). */
static void run_without_verdict(struct psup_child *c, const struct psup_plan_listener *l,
                                int conn, const struct sockaddr *remote, struct psup_msg *m)
{
    unsigned connnum = publish_source(c, &m->peer, true);

    m->kind = PSUP_MSG_RUNNING;
    if (send_msg(c, m, -1) < 0) {
        psup_tally_withdraw(c->plan->tally, c->tally_slot);
        return;
    }
    become_handler(c, l, conn, remote, &m->peer,
                   psup_verdict_encode(PSUP_VERDICT_RUN, 0, connnum), -1);
}

/* A connection was accepted: check it, ask the supervisor if a limit needs
 * it, and either become the handler (no return) or close it and go back to
 * waiting. */
static void take_connection(struct psup_child *c, uint32_t index, int conn,
                            const struct sockaddr *remote)
{
    const struct psup_plan *p = c->plan;
    const struct psup_plan_listener *l = &p->listeners[index];
    const struct psup_service_config *svc = p->svc;
    struct psup_msg m = {.listener = index};
    int log_pipe[2] = {-1, -1};

    describe_peer(conn, l, remote, &m.peer);

    /* allow/deny are decided here, without a round trip: a denied client
     * costs one accept and one message, never a process. */
    if (l->proto != PSUP_PROTO_UNIX &&
        !psup_access_allowed(svc->allow, svc->n_allow, svc->deny, svc->n_deny, m.peer.addr)) {
        send_message(conn, svc->deny_message);
        close_fd(conn);
        m.kind = PSUP_MSG_DENIED;
        send_msg(c, &m, -1);
        return;
    }

    if (!p->needs_verdict && c->tally_slot != PSUP_TALLY_NONE) {
        run_without_verdict(c, l, conn, remote, &m);
        close_fd(conn);
        return;
    }

    if (svc->stderr_mode == PSUP_STDERR_LOG &&
        psup_sys(SYS_pipe2, log_pipe, O_CLOEXEC) < 0)
        log_pipe[0] = log_pipe[1] = -1; /* the supervisor sees no fd: inherit */
    m.kind = PSUP_MSG_BUSY;
    long sent = send_msg(c, &m, log_pipe[0]);
    close_fd(log_pipe[0]);

    int verdict = sent < 0 ? -1 : wait_verdict(p);
    int code = verdict < 0 ? PSUP_VERDICT_CLOSE : verdict & 0xff;
    if (code == PSUP_VERDICT_RUN) {
        if (verdict & PSUP_VERDICT_NO_LOG_PIPE) {
            close_fd(log_pipe[1]);
            log_pipe[1] = -1;
        }
        /* Visible to the TCPCONNNUM of workers that need no verdict (a
         * reload may leave both kinds running). */
        if (c->tally_slot != PSUP_TALLY_NONE)
            publish_source(c, &m.peer, false);
        become_handler(c, l, conn, remote, &m.peer, verdict, log_pipe[1]);
    }
    send_message(conn, refusal_text(svc, code));
    close_fd(conn);
    close_fd(log_pipe[1]);
}

static bool accept_error_is_transient(long err)
{
    /* The client went away, or another worker took the connection first:
     * not a failure of anything (systemd#7172, rinetd#31). */
    switch (-err) {
    case EAGAIN: case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN:
    case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
    case EOPNOTSUPP: case ENETUNREACH: case EPERM:
        return true;
    default:
        return false;
    }
}

/* Wait up to ns, or until a retire signal is pending. */
static void backoff_sleep(int retire_fd, long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
    struct pollfd pfd = {.fd = retire_fd, .events = POLLIN};

    psup_sys(SYS_ppoll, &pfd, 1, &ts, 0, KSIGSET_SIZE);
}

/* Accept on a listener that epoll reported. Returns 0 when there was
 * nothing to take (or it was taken and refused), -1 to back off. */
static int accept_one(struct psup_child *c, uint32_t index, long *backoff, int retire_fd)
{
    struct sockaddr_storage remote;
    socklen_t len = sizeof(remote);
    long conn = psup_sys(SYS_accept4, c->plan->listeners[index].fd, &remote, &len, SOCK_CLOEXEC);

    if (conn >= 0) {
        *backoff = 0;
        take_connection(c, index, (int)conn, (struct sockaddr *)&remote);
        return 0;
    }
    if (accept_error_is_transient(conn))
        return 0;
    if (conn == -EMFILE || conn == -ENFILE || conn == -ENOBUFS || conn == -ENOMEM) {
        /* Out of resources: the connection stays in the backlog. Say so,
         * wait, and try again. */
        report(c, PSUP_MSG_ACCEPT_FAILED, PSUP_STEP_SETUP, conn);
        *backoff = *backoff ? *backoff * 2 : ACCEPT_BACKOFF_MIN_NS;
        if (*backoff > ACCEPT_BACKOFF_MAX_NS)
            *backoff = ACCEPT_BACKOFF_MAX_NS;
        backoff_sleep(retire_fd, *backoff);
        return -1;
    }
    setup_failed(c, PSUP_STEP_SETUP, conn); /* EBADF, EINVAL: a bug */
}

/* The idle loop. Connections first: a worker woken for a connection takes it
 * even if it was asked to retire at the same moment, so an EPOLLEXCLUSIVE
 * wake-up is never lost. Never returns. */
_Noreturn static void serve(struct psup_child *c, int epfd, int retire_fd)
{
    long backoff = 0;

    for (;;) {
        struct epoll_event ev[8];
        bool retire = false;
        long n = psup_sys(SYS_epoll_pwait, epfd, ev, 8, -1, 0, KSIGSET_SIZE);
        for (long i = 0; i < n; i++) {
            if (ev[i].data.u32 == RETIRE_TAG)
                retire = true;
            else if (accept_one(c, ev[i].data.u32, &backoff, retire_fd) < 0)
                break;
        }
        if (retire)
            worker_exit(PSUP_WORKER_EXIT_RETIRED);
    }
}

int psup_worker_main(void *arg)
{
    struct psup_child *c = arg;
    const struct psup_plan *p = c->plan;
    long r;

    /* 1. Signals (all blocked until step 5). */
    c->pid = (pid_t)psup_sys(SYS_getpid, 0);
    reset_signals(p);

    /* 2. An idle worker must not outlive the supervisor: it would hold the
     *    listeners open and keep the port from being bound again. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (psup_sys(SYS_getppid, 0) != p->supervisor_pid)
        worker_exit(PSUP_WORKER_EXIT_RETIRED);

    /* 3. Its own process group, which the handler inherits: psup signals
     *    -pid to reach everything the handler starts, and a Ctrl-C on
     *    psup's terminal does not reach handlers. Its own session too when
     *    psup has a terminal, to be detached from it; not otherwise: on
     *    Linux every session is also a scheduling autogroup, which costs
     *    time per connection and widens latency tails (spec/handler.md). */
    r = p->own_session ? psup_sys(SYS_setsid, 0) : psup_sys(SYS_setpgid, 0, 0);
    if (r < 0)
        setup_failed(c, PSUP_STEP_SETUP, r);

    /* 4. Only this service's listeners and the channel stay open. */
    if ((r = close_all_but_ours(p)) < 0)
        setup_failed(c, PSUP_STEP_SETUP, r);

    /* 5. Default for everything but the protocol's two signals, which are
     *    only ever taken on purpose (sigtimedwait, signalfd), so an idle
     *    worker dies of SIGTERM like any process. */
    set_sigmask(KSIG(p->verdict_signal) | KSIG(PSUP_SIG_RETIRE));

    /* 6. A program removed or broken after load: fail now, before taking a
     *    connection, so clients wait in the backlog while psup backs off. */
    if ((r = psup_sys(SYS_faccessat, AT_FDCWD, p->svc->program, X_OK)) < 0)
        setup_failed(c, PSUP_STEP_PROGRAM, r);

    /* 7. Processes are scarce: wait until the supervisor has checked that
     *    the handler this worker becomes can still create one of its own. */
    if (c->hold) {
        int go = wait_verdict(p);
        if (go < 0 || (go & 0xff) != PSUP_VERDICT_RUN)
            worker_exit(PSUP_WORKER_EXIT_RETIRED);
    }

    int retire_fd = -1;
    int epfd = make_epoll(p, &retire_fd);
    if (epfd < 0)
        setup_failed(c, PSUP_STEP_SETUP, epfd);
    serve(c, epfd, retire_fd);
}
