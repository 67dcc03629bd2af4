/* SPDX-License-Identifier: MIT */
/*
 * Becoming the handler: the connection on fds 0 and 1, fd 2 per the
 * service's stderr setting, the process settings and credentials, nothing
 * of psup left open, an empty signal mask, then execve. The order of the
 * steps is spec/handler.md's; each comment names what its step prevents.
 * A prestarted worker (spec/prestart.md) takes the process settings and
 * credentials before its exec, and the connection after it, in the
 * program's process (psup_child_handoff). Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* /dev/null on fd. Returns 0 or -errno. */
static long devnull_on(int fd)
{
    long devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    long r;

    if (devnull < 0)
        return devnull;
    r = devnull == fd ? psup_sys(SYS_fcntl, fd, F_SETFD, 0) : psup_sys(SYS_dup3, devnull, fd, 0);
    if (devnull != fd)
        psup_child_close((int)devnull);
    return r < 0 ? r : 0;
}

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

/* The connection on 0 and 1, the stderr pipe on 2, the connection's
 * environment in *envp: what a handler gets, whether it is exec'd now or
 * was exec'd before the connection (prestart). Returns 0 or -errno. */
static long attach(struct psup_child *c, enum psup_step *step, char ***envp)
{
    const struct psup_plan *p = c->plan;
    struct psup_handover *h = &c->handover;
    const struct psup_plan_listener *l = &psup_plan_listeners(p)[h->listener];
    struct sockaddr_storage local = {0};
    socklen_t local_len = sizeof(local);
    long r;

    if (l->proto != PSUP_PROTO_UNIX)
        psup_sys(SYS_getsockname, h->conn, &local, &local_len);
    *envp = psup_child_env(c, l, (struct sockaddr *)&h->remote, (struct sockaddr *)&local,
                           &h->peer, h->connnum);

    /* The connection cannot already be 0 or 1: psup keeps 0-2 open from
     * the start (and a prestarted program had /dev/null there), so dup3
     * always clears CLOEXEC here. */
    *step = PSUP_STEP_SETUP;
    if ((r = psup_sys(SYS_dup3, h->conn, 0, 0)) < 0 || (r = psup_sys(SYS_dup3, h->conn, 1, 0)) < 0)
        return r;
    psup_child_close(h->conn);
    h->conn = -1;

    /* fd 2: the log pipe, /dev/null, or psup's stderr (nothing to do). A
     * prestarted program got /dev/null at its exec already. */
    *step = PSUP_STEP_STDERR;
    r = 0;
    if (h->log_pipe >= 0) {
        r = psup_sys(SYS_dup3, h->log_pipe, 2, 0);
        psup_child_close(h->log_pipe);
        h->log_pipe = -1;
    } else if (p->stderr_mode == PSUP_STDERR_NULL && !p->prestart) {
        r = devnull_on(2);
    }
    return r < 0 ? r : 0;
}

_Noreturn static void failed(const struct psup_child *c, enum psup_msg_kind kind,
                             enum psup_step step, long err, int status)
{
    psup_child_set_sigmask(~UINT64_C(0));
    psup_child_report(c, kind, step, err);
    psup_child_exit(status);
}

_Noreturn void psup_child_exec(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    enum psup_step step = PSUP_STEP_SETUP;
    char **envp;
    long r;

    /* 1. The connection on 0 and 1, fd 2, the environment. */
    if ((r = attach(c, &step, &envp)) < 0)
        failed(c, PSUP_MSG_EXEC_FAILED, step, r, 126);

    /* 2. The process: umask, cwd, limits, nice, then credentials. */
    if ((r = become_user(p, &step)) < 0)
        failed(c, PSUP_MSG_EXEC_FAILED, step, r, 126);

    /* 3. Do not tie the handler's life to psup's: a handler finishes its
     *    connection even if psup is killed. */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, 0);

    /* 4. Nothing of psup may reach the handler: mark every fd from 3 up
     *    close-on-exec (the channel stays usable to report an exec error). */
    if ((r = psup_child_cloexec_all(p)) < 0)
        failed(c, PSUP_MSG_EXEC_FAILED, PSUP_STEP_SETUP, r, 126);

    /* 5. An empty mask. A retire signal still pending is discarded as it
     *    is unblocked: its default action is to ignore it. */
    psup_child_set_sigmask(0);

    r = psup_sys(SYS_execve, psup_plan_str(p, p->program), c->argv, envp);
    /* Still here: report, and exit like a shell would (127: not found). */
    failed(c, PSUP_MSG_EXEC_FAILED, PSUP_STEP_EXEC, r,
           r == -ENOENT || r == -ENOTDIR ? 127 : 126);
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
    enum psup_step step = PSUP_STEP_SETUP;
    char **envp;
    long r;

    /* 1. The connection on 0 and 1, fd 2, the environment. */
    if ((r = attach(c, &step, &envp)) < 0)
        failed(c, PSUP_MSG_EXEC_FAILED, step, r, 126);

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
    return envp;
}
