/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of the channel: messages to the supervisor on the
 * shared SOCK_SEQPACKET socket, and the verdicts it answers with as a
 * real-time signal (proto/proto.h). Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

long psup_child_send(const struct psup_child *c, struct psup_msg *m, int log_fd, int reply_fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int fds[2];
    size_t n = 0;
    long r;

    m->pid = c->pid;
    m->fds = 0;
    /* In the order of the PSUP_MSG_FD_* bits: the supervisor assigns what
     * it receives by them. */
    if (log_fd >= 0) {
        fds[n++] = log_fd;
        m->fds |= PSUP_MSG_FD_LOG;
    }
    if (reply_fd >= 0) {
        fds[n++] = reply_fd;
        m->fds |= PSUP_MSG_FD_REPLY;
    }
    if (n) {
        memset(&control, 0, sizeof(control));
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(h), fds, n * sizeof(int));
    }
    int fd = c->channel_fd > 0 ? c->channel_fd : c->plan->channel_fd;
    do {
        r = psup_sys(SYS_sendmsg, fd, &mh, MSG_NOSIGNAL);
    } while (r == -EINTR);
    return r;
}

void psup_child_report(const struct psup_child *c, enum psup_msg_kind kind,
                       enum psup_step step, long err)
{
    struct psup_msg m = {.kind = kind, .step = step, .err = (int32_t)-err};

    psup_child_send(c, &m, -1, -1);
}

_Noreturn void psup_child_setup_failed(const struct psup_child *c, enum psup_step step,
                                       long err)
{
    psup_child_report(c, PSUP_MSG_SETUP_FAILED, step, err);
    psup_child_exit(PSUP_WORKER_EXIT_SETUP);
}

/* The supervisor answers in microseconds unless it is stopped (a debugger,
 * SIGSTOP, a log reader that stopped reading): then the worker gives the
 * client up after the plan's timeout, and a verdict that arrives later
 * carries a seq that is no longer awaited. */
int psup_child_wait_verdict(const struct psup_plan *p, uint32_t seq, uint64_t *verdict)
{
    uint64_t set = PSUP_KSIG(p->verdict_signal);
    int64_t deadline = psup_child_monotonic_ms() + p->verdict_timeout_ms;
    siginfo_t info;

    for (;;) {
        int64_t left = deadline - psup_child_monotonic_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct timespec timeout = {.tv_sec = left / 1000, .tv_nsec = left % 1000 * 1000000};
        long r = psup_sys(SYS_rt_sigtimedwait, &set, &info, &timeout, PSUP_KSIGSET_SIZE);
        if (r == -EINTR)
            continue;
        if (r != p->verdict_signal)
            return -ETIMEDOUT;
        uint64_t v = (uint64_t)(uintptr_t)info.si_value.sival_ptr;
        if (info.si_code == SI_QUEUE && info.si_pid == p->supervisor_pid &&
            psup_verdict_seq(v) == seq) {
            *verdict = v;
            return 0;
        }
    }
}
