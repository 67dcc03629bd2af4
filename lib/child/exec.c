/* SPDX-License-Identifier: MIT */
/*
 * Becoming the handler: the connection on fds 0 and 1 (a datagram: its
 * pipe on 0, the reply socket on 1), fd 2 per the service's stderr
 * setting, the process settings and credentials, nothing of psup left
 * open, an empty signal mask, then execve. The order of the
 * steps is spec/handler.md's; each comment names what its step prevents.
 * A prestarted worker (spec/prestart.md) takes the process settings and
 * credentials before its exec, and the connection after it, in the
 * program's process (psup_child_handoff). Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

/* /dev/null on fds 0 to n - 1, opened once. Returns 0 or -errno. */
static long devnull_on_stdio(int n)
{
    long devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    long r = 0;

    if (devnull < 0)
        return devnull;
    /* psup keeps 0-2 open: /dev/null lands above them, dup3 clears CLOEXEC. */
    for (int fd = 0; fd < n && r >= 0; fd++)
        r = psup_sys(SYS_dup3, devnull, fd, 0);
    psup_child_close((int)devnull);
    return r < 0 ? r : 0;
}

long psup_child_stderr(const struct psup_plan *p, int log_pipe)
{
    long r = 0;

    if (log_pipe >= 0) {
        r = psup_sys(SYS_dup3, log_pipe, 2, 0);
        psup_child_close(log_pipe);
    } else if (p->stderr_mode == PSUP_STDERR_NULL && !p->prestart) {
        /* (A prestarted program got /dev/null there at its exec.) */
        long devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0)
            return devnull;
        r = psup_sys(SYS_dup3, devnull, 2, 0);
        psup_child_close((int)devnull);
    }
    return r < 0 ? r : 0;
}

static long apply_limits(const struct psup_plan *p, enum psup_step *step)
{
    const struct psup_plan_rlimit *rl = psup_plan_at(p, p->rlimits);
    long r;

    *step = PSUP_STEP_UMASK;
    if (p->umask >= 0)
        psup_sys(SYS_umask, p->umask);
    *step = PSUP_STEP_CWD;
    if (p->cwd && (r = psup_sys(SYS_chdir, psup_plan_str(p, p->cwd))) < 0)
        return r;
    *step = PSUP_STEP_RLIMIT;
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit value = {.rlim_cur = rl[i].cur, .rlim_max = rl[i].max};
        r = psup_sys(SYS_prlimit64, 0, rl[i].resource, &value, 0);
        if (r < 0)
            return r;
    }
    *step = PSUP_STEP_NICE;
    if (p->set_nice && (r = psup_sys(SYS_setpriority, PRIO_PROCESS, 0, p->nice)) < 0)
        return r;
    return 0;
}

/* setgroups, setgid, setuid, in that order: the supplementary groups must go
 * while we may still change them, and the uid last, since after it nothing
 * can be changed back. Then check that root cannot be regained. */
static long drop_privileges(const struct psup_plan *p)
{
    long r;

    if (!p->set_ids)
        return 0;
    if ((r = psup_sys(SYS_setgroups, p->n_groups, psup_plan_at(p, p->groups))) < 0)
        return r;
    if ((r = psup_sys(SYS_setresgid, p->gid, p->gid, p->gid)) < 0)
        return r;
    if ((r = psup_sys(SYS_setresuid, p->uid, p->uid, p->uid)) < 0)
        return r;
    /* Until execve this process still shares (CLONE_VM), or holds a copy
     * of, the root supervisor's memory, now under the handler's uid: a
     * process of that uid must not attach to it or read its memory. The
     * change of uid made it non-dumpable already unless fs.suid_dumpable
     * is 1 (a debugging setting); make sure. It cannot be done before: the
     * kernel sets the flag from fs.suid_dumpable at every change of ids.
     * execve makes the handler dumpable again, as any program its user
     * runs (spec/handler.md). */
    if ((r = psup_sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0)) < 0)
        return r;
    if (p->uid != 0 && psup_sys(SYS_setuid, 0) == 0)
        return -EPERM;
    return 0;
}

/* The process settings and credentials, and what comes with dropping them:
 * umask, cwd, limits, nice, ids, no_new_privileges. */
static long become_user(const struct psup_plan *p, enum psup_step *step)
{
    long r;

    if ((r = apply_limits(p, step)) < 0)
        return r;
    *step = PSUP_STEP_CREDENTIALS;
    if ((r = drop_privileges(p)) < 0)
        return r;
    /* With no_new_privileges, execve grants nothing (set-user-ID bits and
     * file capabilities are ignored, for the handler and all it starts). */
    if (p->no_new_privileges && (r = psup_sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0)
        return r;
    return 0;
}

_Noreturn static void failed(const struct psup_child *c, enum psup_step step, long err,
                             int status)
{
    psup_child_set_sigmask(~UINT64_C(0));
    psup_child_report(c, PSUP_MSG_EXEC_FAILED, step, err);
    psup_child_exit(status);
}

/* in on fd 0, out on fd 1 (the same connection, or a datagram's pipe and
 * reply socket), fd 2 per stderr: what a handler gets, whether it is
 * exec'd now or was exec'd before (prestart). Returns 0 or -errno. */
static long place_stdio(const struct psup_plan *p, const struct psup_handover *h,
                        enum psup_step *step)
{
    long r;

    /* Neither can already be 0 or 1: psup keeps 0-2 open from the start
     * (a prestarted program has /dev/null there), so dup3 always clears
     * CLOEXEC here. */
    *step = PSUP_STEP_SETUP;
    if ((r = psup_sys(SYS_dup3, h->in, 0, 0)) < 0 || (r = psup_sys(SYS_dup3, h->out, 1, 0)) < 0)
        return r;
    psup_child_close(h->in);
    if (h->out != h->in)
        psup_child_close(h->out);
    *step = PSUP_STEP_STDERR;
    return psup_child_stderr(p, h->log_pipe);
}

/* The end both ways of becoming the program share (a handler here, a
 * wait-mode server in server.c), once its descriptors are in place. */
_Noreturn void psup_child_become(struct psup_child *c, char *const *envp, unsigned first_closed,
                                 int death_signal)
{
    const struct psup_plan *p = c->plan;
    enum psup_step step = PSUP_STEP_SETUP;
    long r;

    /* 1. The process: umask, cwd, limits, nice, then credentials, and
     *    no_new_privileges. */
    if ((r = become_user(p, &step)) < 0)
        failed(c, step, r, 126);

    /* 2. A handler's life is not tied to psup's: it finishes its
     *    connection even if psup is killed (death_signal 0). A server's is
     *    (spec/wait.md): it holds psup's listening sockets, and would keep
     *    the next psup from binding them. Set after the credentials, whose
     *    change clears it; psup may have died before: then leave now. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, death_signal);
    if (death_signal && psup_sys(SYS_getppid, 0) != p->supervisor_pid)
        psup_child_exit(PSUP_WORKER_EXIT_RETIRED);

    /* 3. Nothing of psup may reach the program: mark every fd from
     *    first_closed up close-on-exec (the channel stays usable to report
     *    an exec error). */
    if ((r = psup_child_cloexec_from(p, first_closed)) < 0)
        failed(c, PSUP_STEP_SETUP, r, 126);

    /* 4. An empty mask. A retire signal still pending is discarded as it
     *    is unblocked: its default action is to ignore it. */
    psup_child_set_sigmask(0);

    r = psup_sys(SYS_execve, psup_plan_str(p, p->program), c->argv, envp);
    /* Still here: report, and exit like a shell would (127: not found). */
    failed(c, PSUP_STEP_EXEC, r, r == -ENOENT || r == -ENOTDIR ? 127 : 126);
}

_Noreturn void psup_child_exec(struct psup_child *c, char **envp, int in, int out,
                               int log_pipe)
{
    struct psup_handover h = {.in = in, .out = out, .log_pipe = log_pipe, .envp = envp};
    enum psup_step step;
    long r;

    /* 1. The connection on 0 and 1, fd 2. */
    if ((r = place_stdio(c->plan, &h, &step)) < 0)
        failed(c, step, r, 126);

    /* 2. The process, its credentials, nothing of psup, execve. */
    psup_child_become(c, envp, 3, 0);
}

/* ------------------------------------------------------------------------ */
/* Prestart: the program exec'd before the connection (spec/prestart.md). */

/* The prestarted program's environment: the exec-time one the supervisor
 * built (the base with psup's library in LD_PRELOAD), and PSUP_PRESTART,
 * which tells the library where its plan is and which worker it is. */
static char **prestart_env(struct psup_child *c)
{
    char *s = c->envbuf; /* three numbers: well inside it */
    size_t n = c->n_exec_env;

    memcpy(c->envp, c->exec_env, n * sizeof(char *));
    c->envp[n++] = s;
    memcpy(s, PSUP_PRESTART_VAR "=", sizeof(PSUP_PRESTART_VAR));
    s += sizeof(PSUP_PRESTART_VAR);
    s += psup_fmt_uint((unsigned)c->plan->plan_fd, s);
    *s++ = ':';
    s += psup_fmt_uint(c->conn_id, s);
    *s++ = ':';
    s += psup_fmt_uint(c->tally_slot, s);
    c->envp[n] = NULL;
    return c->envp;
}

_Noreturn void psup_child_exec_prestarted(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    const int32_t *keep = psup_plan_at(p, p->keep_fds);
    enum psup_step step = PSUP_STEP_STDERR;
    long r = 0;

    /* 1. Until its connection the program reads nothing and writes
     *    nowhere: /dev/null on 0 and 1, and on 2 unless stderr is inherit
     *    (a log pipe is per connection, made by the library). */
    if ((r = devnull_on_stdio(p->stderr_mode == PSUP_STDERR_INHERIT ? 2 : 3)) < 0)
        psup_child_setup_failed(c, step, r);

    /* 2. The process settings and credentials, as for any handler but at
     *    the exec: a prestarted program has them from its start. */
    if ((r = become_user(p, &step)) < 0)
        psup_child_setup_failed(c, step, r);

    /* 3. The change of ids cleared the parent-death signal, and the
     *    program waits for its connection holding the listeners: set it
     *    again (execve keeps it), and leave if psup died meanwhile. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (psup_sys(SYS_getppid, 0) != p->supervisor_pid)
        psup_child_exit(PSUP_WORKER_EXIT_RETIRED);

    /* 4. What the library needs crosses the exec: the channel, the
     *    listeners, the plan and the tally (step 4 of the worker closed
     *    every other descriptor). Nothing else does. */
    step = PSUP_STEP_SETUP;
    for (size_t i = 0; i < p->n_keep_fds; i++)
        if ((r = psup_sys(SYS_fcntl, keep[i], F_SETFD, 0)) < 0)
            psup_child_setup_failed(c, step, r);

    /* 5. The mask stays as it is, the verdict and retire signals blocked:
     *    a retire sent before the library runs waits, pending, for its
     *    signalfd. */
    r = psup_sys(SYS_execve, psup_plan_str(p, p->program), c->argv, prestart_env(c));
    psup_child_setup_failed(c, PSUP_STEP_EXEC, r);
}

char **psup_child_handoff(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    const int32_t *keep = psup_plan_at(p, p->keep_fds);
    enum psup_step step;
    long r;

    /* 1. The connection (or the datagram's pipe and reply socket) on 0
     *    and 1, fd 2. */
    if ((r = place_stdio(p, &c->handover, &step)) < 0)
        failed(c, step, r, 126);

    /* 2. A running handler finishes its connection even if psup is
     *    killed, as an exec'd one does. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, 0);

    /* 3. Nothing of psup's stays: the channel, the listeners, the plan's
     *    and the tally's files, the epoll set and the signalfd are closed,
     *    and the tally, shared with the supervisor, is unmapped. The plan
     *    stays mapped: the base environment's strings are in it. */
    for (size_t i = 0; i < p->n_keep_fds; i++)
        psup_child_close(keep[i]);
    psup_child_close(c->epoll_fd);
    psup_child_close(c->retire_fd);
    psup_sys(SYS_munmap, c->tally, p->tally_size);
    c->tally = NULL;

    /* 4. An empty mask. A retire signal still pending is discarded as it
     *    is unblocked: its default action is to ignore it. */
    psup_child_set_sigmask(0);
    return c->handover.envp;
}
