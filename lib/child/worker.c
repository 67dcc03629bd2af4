/* SPDX-License-Identifier: MIT */
/*
 * The worker: from its creation to the connection it takes. Its steps, in
 * order, and why each is where it is, are in spec/pool.md and
 * spec/handler.md; the comments below name the hazard each step prevents.
 * Taking a connection is take.c, becoming the handler exec.c. The waiting
 * (psup_child_wait) is also what the prestart library runs after a
 * prestarted worker's exec (spec/prestart.md).
 *
 * A worker shares the supervisor's memory until it execs, so this folder
 * calls no libc function that could touch errno, the heap, stdio or a lock,
 * and is built without sanitizers (lib/child/README.md).
 */
#include "child/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "child/child.h"

/* The kernel's struct sigaction (x86_64, aarch64 and the generic layout). */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* Accept failing for lack of resources: wait this long, doubling, then retry. */
#define ACCEPT_BACKOFF_MIN_NS 50000000L
#define ACCEPT_BACKOFF_MAX_NS 1000000000L

static void reset_disposition(int sig)
{
    struct kernel_sigaction sa = {.handler = SIG_DFL, .mask = ~UINT64_C(0)};

    psup_sys(SYS_rt_sigaction, sig, &sa, 0, PSUP_KSIGSET_SIZE);
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

/* The epoll tag of the retire signal's signalfd. */
#define RETIRE_TAG UINT32_MAX

/* The listeners, each EPOLLEXCLUSIVE, and a signalfd for the retire signal
 * (blocked, so it is only ever read from there). */
static int make_epoll(const struct psup_plan *p, int *retire_fd)
{
    const struct psup_plan_listener *ls = psup_plan_listeners(p);
    uint64_t retire = PSUP_KSIG(PSUP_SIG_RETIRE);
    long epfd = psup_sys(SYS_epoll_create1, EPOLL_CLOEXEC);
    long sfd = psup_sys(SYS_signalfd4, -1, &retire, PSUP_KSIGSET_SIZE, SFD_CLOEXEC | SFD_NONBLOCK);

    if (epfd < 0)
        return (int)epfd;
    if (sfd < 0)
        return (int)sfd;
    *retire_fd = (int)sfd;
    struct epoll_event rev = {.events = EPOLLIN, .data.u32 = RETIRE_TAG};
    long r = psup_sys(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, sfd, &rev);
    if (r < 0)
        return (int)r;
    for (size_t i = 0; i < p->n_listeners; i++) {
        /* EPOLLEXCLUSIVE: the kernel wakes one idle worker per connection,
         * not all of them (the thundering herd). */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (uint32_t)i};
        r = psup_sys(SYS_epoll_ctl, epfd, EPOLL_CTL_ADD, ls[i].fd, &ev);
        if (r < 0)
            return (int)r;
    }
    return (int)epfd;
}

static bool accept_error_is_transient(long err)
{
    /* The client went away, or another worker took the connection first:
     * not a failure of anything (systemd#7172, rinetd#31). */
    switch (-err) {
    case EAGAIN: case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN:
    case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
    case EOPNOTSUPP: case ENETUNREACH: case EPERM: case ECONNREFUSED:
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

    psup_sys(SYS_ppoll, &pfd, 1, &ts, 0, PSUP_KSIGSET_SIZE);
}

/* Take a connection from a stream listener. Returns 1 (admitted:
 * c->handover), 0 (taken and refused) or accept's -errno. */
static long take_connection(struct psup_child *c, uint32_t index)
{
    struct sockaddr_storage remote;
    socklen_t len = sizeof(remote);
    long conn = psup_sys(SYS_accept4, psup_plan_listeners(c->plan)[index].fd, &remote, &len,
                         SOCK_CLOEXEC);

    if (conn < 0)
        return conn;
    return psup_child_take(c, index, (int)conn, (struct sockaddr *)&remote) ? 1 : 0;
}

/* Take what a listener that epoll reported holds: a connection, or a
 * datagram (datagram.c). Returns 1 when one was admitted (c->handover), 0
 * when there was nothing to take (or it was taken and refused), -1 to back
 * off. */
static int accept_one(struct psup_child *c, uint32_t index, long *backoff, int retire_fd)
{
    long r = psup_plan_listeners(c->plan)[index].proto == PSUP_PROTO_UDP
                 ? psup_child_receive(c, index)
                 : take_connection(c, index);

    if (r >= 0) {
        *backoff = 0;
        return (int)r;
    }
    if (accept_error_is_transient(r))
        return 0;
    if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM) {
        /* Out of resources: a connection stays in the backlog (a datagram
         * read meanwhile is lost). Say so, wait, and try again. */
        psup_child_report(c, PSUP_MSG_ACCEPT_FAILED, PSUP_STEP_SETUP, r);
        *backoff = *backoff ? *backoff * 2 : ACCEPT_BACKOFF_MIN_NS;
        if (*backoff > ACCEPT_BACKOFF_MAX_NS)
            *backoff = ACCEPT_BACKOFF_MAX_NS;
        backoff_sleep(retire_fd, *backoff);
        return -1;
    }
    psup_child_setup_failed(c, PSUP_STEP_SETUP, r); /* EBADF, EINVAL: a bug */
}

/* The idle loop. Connections first: a worker woken for a connection takes it
 * even if it was asked to retire at the same moment, so an EPOLLEXCLUSIVE
 * wake-up is never lost. Returns once a connection was admitted; a retire
 * signal still pending then is discarded before the handler runs. */
static void serve(struct psup_child *c, int epfd, int retire_fd)
{
    long backoff = 0;

    for (;;) {
        struct epoll_event ev[8];
        bool retire = false;
        long n = psup_sys(SYS_epoll_pwait, epfd, ev, 8, -1, 0, PSUP_KSIGSET_SIZE);
        for (long i = 0; i < n; i++) {
            int r = 0;
            if (ev[i].data.u32 == RETIRE_TAG)
                retire = true;
            else if ((r = accept_one(c, ev[i].data.u32, &backoff, retire_fd)) > 0)
                return;
            if (r < 0)
                break;
        }
        if (retire)
            psup_child_exit(PSUP_WORKER_EXIT_RETIRED);
    }
}

void psup_child_wait(struct psup_child *c)
{
    int retire_fd = -1;
    int epfd = make_epoll(c->plan, &retire_fd);

    if (epfd < 0)
        psup_child_setup_failed(c, PSUP_STEP_SETUP, epfd);
    /* A prestarted worker's program was exec'd with psup's library, which
     * runs this: say so, or the supervisor takes it for a program that
     * ignored the library (spec/prestart.md). Before the first wait, so
     * READY precedes any message about a connection. */
    if (c->plan->prestart) {
        struct psup_msg m = {.kind = PSUP_MSG_READY};
        if (psup_child_send(c, &m, -1, -1) < 0)
            psup_child_exit(PSUP_WORKER_EXIT_RETIRED); /* psup is gone */
    }
    c->epoll_fd = epfd;
    c->retire_fd = retire_fd;
    serve(c, epfd, retire_fd);
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
        psup_child_exit(PSUP_WORKER_EXIT_RETIRED);

    /* 3. Its own process group, which the handler inherits: psup signals
     *    -pid to reach everything the handler starts, and a Ctrl-C on
     *    psup's terminal does not reach handlers. Its own session too when
     *    psup has a terminal, to be detached from it; not otherwise: on
     *    Linux every session is also a scheduling autogroup, which costs
     *    time per connection and widens latency tails (spec/handler.md). */
    r = p->own_session ? psup_sys(SYS_setsid, 0) : psup_sys(SYS_setpgid, 0, 0);
    if (r < 0)
        psup_child_setup_failed(c, PSUP_STEP_SETUP, r);

    /* A wait-mode server takes no connection: it is given the sockets. */
    if (p->mode == PSUP_MODE_WAIT)
        psup_child_serve_wait(c);

    /* 4. Only this service's listeners and the channel stay open: another
     *    service's listener held here would keep its port open after a
     *    reload removed it (close-on-exec alone would act only at exec). */
    if ((r = psup_child_close_others(p)) < 0)
        psup_child_setup_failed(c, PSUP_STEP_SETUP, r);

    /* 5. Default for everything but the protocol's two signals, which are
     *    only ever taken on purpose (sigtimedwait, signalfd), so an idle
     *    worker dies of SIGTERM like any process. */
    psup_child_set_sigmask(PSUP_KSIG(p->verdict_signal) | PSUP_KSIG(PSUP_SIG_RETIRE));

    /* 6. A program removed or broken after load: fail now, before taking a
     *    connection, so clients wait in the backlog while psup backs off.
     *    A cgi service needs the relay and the script it runs. */
    if ((r = psup_sys(SYS_faccessat, AT_FDCWD, psup_plan_str(p, p->program), X_OK)) < 0 ||
        (p->script && (r = psup_sys(SYS_faccessat, AT_FDCWD, psup_plan_str(p, p->script),
                                    X_OK)) < 0))
        psup_child_setup_failed(c, PSUP_STEP_PROGRAM, r);

    /* 7. Processes are scarce: wait until the supervisor has checked that
     *    the handler this worker becomes can still create one of its own. */
    if (c->hold) {
        uint64_t go;
        if (psup_child_wait_verdict(p, 0, &go) < 0 || psup_verdict_code(go) != PSUP_VERDICT_RUN)
            psup_child_exit(PSUP_WORKER_EXIT_RETIRED);
    }

    /* 8. Prestart: become the program now, with psup's library, which
     *    waits for the connection in the program's process (exec.c). */
    if (p->prestart)
        psup_child_exec_prestarted(c);

    psup_child_wait(c);
    struct psup_handover *h = &c->handover;
    psup_child_exec(c, h->envp, h->in, h->out, h->log_pipe);
}

