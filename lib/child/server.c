/* SPDX-License-Identifier: MIT */
/*
 * Becoming a wait-mode server (spec/wait.md): the service's listening
 * sockets as fds 3, 4, ... in `listen` order and the first also as fds 0
 * and 1, LISTEN_FDS, LISTEN_PID (this process's pid, so that
 * sd_listen_fds() accepts them) and LISTEN_FDNAMES, then the handler
 * contract's process settings, credentials and execve. worker.c has already
 * reset the signals (all still blocked), armed the parent-death signal and
 * made the process group. Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>

/* Where the sockets go, 3 .. 3 + n - 1, may hold anything now, the
 * sockets themselves included (listener 1 may be fd 3, and listener 0 may
 * have to go there). So every socket and the channel are first copied
 * above every descriptor that matters (close-on-exec), and only then
 * copied down: nothing is overwritten before it has a copy. Returns 0 or
 * -errno. */
static long place_sockets(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    const struct psup_plan_listener *ls = psup_plan_listeners(p);
    const int32_t *keep = psup_plan_at(p, p->keep_fds);
    unsigned n = (unsigned)p->n_listeners;
    unsigned high = 3 + n;
    long r;

    /* keep_fds is ascending: its last is the highest of the sockets and
     * the channel. dup3 onto a number above all of them closes nothing
     * this process still needs. */
    if ((unsigned)keep[p->n_keep_fds - 1] >= high)
        high = (unsigned)keep[p->n_keep_fds - 1] + 1;
    if ((r = psup_sys(SYS_dup3, p->channel_fd, high, O_CLOEXEC)) < 0)
        return r;
    c->channel_fd = (int)high; /* failures are still reported from here */
    for (unsigned i = 0; i < n; i++)
        if ((r = psup_sys(SYS_dup3, ls[i].fd, high + 1 + i, O_CLOEXEC)) < 0)
            return r;
    /* dup3 with flags 0 clears close-on-exec on the copy: these survive
     * execve. A copy is never onto itself (dup3 would refuse). */
    for (unsigned i = 0; i < n; i++)
        if ((r = psup_sys(SYS_dup3, high + 1 + i, 3 + i, 0)) < 0)
            return r;
    if ((r = psup_sys(SYS_dup3, 3, 0, 0)) < 0 || (r = psup_sys(SYS_dup3, 3, 1, 0)) < 0)
        return r;
    return 0;
}

/* stderr "log": a pipe whose read end the supervisor follows. It is made
 * after the sockets are in place, so it cannot land among them, and handed
 * over with a BUSY that the supervisor answers as it does a handler's: a
 * verdict saying whether it follows the pipe (otherwise psup's stderr
 * stays). Sets *write_end to the pipe's write end or -1 (psup's stderr);
 * returns 0 or -errno. */
static long log_pipe(struct psup_child *c, int *write_end)
{
    struct psup_msg m = {.kind = PSUP_MSG_BUSY, .listener = UINT32_MAX};
    uint64_t verdict = 0;
    int fds[2];

    *write_end = -1;
    if (c->plan->stderr_mode != PSUP_STDERR_LOG ||
        psup_sys(SYS_pipe2, fds, O_CLOEXEC) < 0)
        return 0; /* without a pipe the supervisor sees no fd: inherit */
    m.seq = ++c->seq;
    long r = psup_child_send(c, &m, fds[0], -1);
    psup_child_close(fds[0]);
    if (r >= 0)
        r = psup_child_wait_verdict(c->plan, m.seq, &verdict);
    if (r >= 0 && psup_verdict_code(verdict) != PSUP_VERDICT_RUN)
        r = -ECANCELED; /* psup is stopping */
    if (r < 0 || (verdict & PSUP_VERDICT_NO_LOG_PIPE)) {
        psup_child_close(fds[1]);
        return r < 0 ? r : 0;
    }
    *write_end = fds[1];
    return 0;
}

/* The base environment (LISTEN_FDS and LISTEN_FDNAMES included, built by
 * the supervisor) and LISTEN_PID, which only this process knows. */
static char **server_env(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    static const char name[] = "LISTEN_PID=";
    char digits[24];

    psup_fmt_uint((unsigned long long)c->pid, digits);
    memcpy(c->envp, c->env_base, p->n_env * sizeof(char *));
    memcpy(c->envbuf, name, sizeof(name) - 1);
    memcpy(c->envbuf + sizeof(name) - 1, digits, strlen(digits) + 1);
    c->envp[p->n_env] = c->envbuf;
    c->envp[p->n_env + 1] = NULL;
    return c->envp;
}

_Noreturn void psup_child_serve_wait(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    long r;

    /* 1. A program removed or broken after load: fail before anything is
     *    moved, and count it as a failure of the service. */
    if ((r = psup_sys(SYS_faccessat, AT_FDCWD, psup_plan_str(p, p->program), X_OK)) < 0)
        psup_child_setup_failed(c, PSUP_STEP_PROGRAM, r);

    /* 2. The sockets on 0, 1 and 3.., then fd 2. */
    if ((r = place_sockets(c)) < 0)
        psup_child_setup_failed(c, PSUP_STEP_SETUP, r);
    int pipe_end;
    if ((r = log_pipe(c, &pipe_end)) < 0 || (r = psup_child_stderr(p, pipe_end)) < 0)
        psup_child_setup_failed(c, PSUP_STEP_STDERR, r);

    /* 3. The process, its credentials, nothing of psup past the sockets,
     *    execve. The server keeps SIGTERM as its parent-death signal: it
     *    must not outlive psup with psup's sockets (spec/wait.md). */
    psup_child_become(c, server_env(c), 3 + (unsigned)p->n_listeners, SIGTERM);
}
