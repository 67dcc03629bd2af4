/* SPDX-License-Identifier: MIT */
/*
 * Becoming the handler: the connection on fds 0 and 1 (a datagram: its
 * pipe on 0, the reply socket on 1), fd 2 per the service's stderr
 * setting, the process settings and credentials, nothing of psup left
 * open, an empty signal mask, then execve. The order of the
 * steps is spec/handler.md's; each comment names what its step prevents.
 * Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>

/* fd 2 for the handler: psup's stderr (nothing to do), /dev/null, or the
 * write end of the log pipe. Returns 0 or -errno. */
long psup_child_stderr(const struct psup_service_config *svc, int log_pipe)
{
    long r = 0;

    if (svc->stderr_mode == PSUP_STDERR_NULL) {
        long devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0)
            return devnull;
        r = psup_sys(SYS_dup3, devnull, 2, 0);
        psup_child_close((int)devnull);
    } else if (log_pipe >= 0) {
        r = psup_sys(SYS_dup3, log_pipe, 2, 0);
        psup_child_close(log_pipe);
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
    if (svc->uid != 0 && psup_sys(SYS_setuid, 0) == 0)
        return -EPERM;
    return 0;
}

/* The end both ways of becoming the program share (a handler here, a
 * wait-mode server in server.c), once its descriptors are in place. */
_Noreturn void psup_child_become(struct psup_child *c, char *const *envp, unsigned first_closed,
                                 int death_signal)
{
    const struct psup_service_config *svc = c->plan->svc;
    /* A cgi service runs the relay, which runs the command (spec/cgi.md);
     * never a wait-mode server: "cgi" is an error in wait mode. */
    const char *program = svc->relay ? svc->relay : svc->program;
    char *const *argv = svc->relay ? svc->relay_argv : svc->argv;
    enum psup_step step = PSUP_STEP_SETUP;
    long r;

    /* 1. The process: umask, cwd, limits, nice, then credentials. */
    if ((r = apply_limits(svc, &step)) < 0)
        goto fail;
    step = PSUP_STEP_CREDENTIALS;
    if ((r = drop_privileges(svc)) < 0)
        goto fail;

    /* 2. A handler's life is not tied to psup's: it finishes its
     *    connection even if psup is killed (death_signal 0). A server's is
     *    (spec/wait.md): it holds psup's listening sockets, and would keep
     *    the next psup from binding them. Set after the credentials, whose
     *    change clears it; psup may have died before: then leave now. With
     *    no_new_privileges, execve grants nothing (set-user-ID bits and
     *    file capabilities are ignored, for the program and all it
     *    starts). */
    psup_sys(SYS_prctl, PR_SET_PDEATHSIG, death_signal);
    if (death_signal && psup_sys(SYS_getppid, 0) != c->plan->supervisor_pid)
        psup_child_exit(PSUP_WORKER_EXIT_RETIRED);
    if (svc->no_new_privileges &&
        (r = psup_sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0)
        goto fail;

    /* 3. Nothing of psup may reach the program: mark every fd from
     *    first_closed up close-on-exec (the channel stays usable to report
     *    an exec error). */
    step = PSUP_STEP_SETUP;
    if ((r = psup_child_cloexec_from(c->plan, first_closed)) < 0)
        goto fail;

    /* 4. An empty mask. A retire signal still pending is discarded as it
     *    is unblocked: its default action is to ignore it. */
    psup_child_set_sigmask(0);

    r = psup_sys(SYS_execve, program, argv, envp);
    /* Still here: report, and exit like a shell would (127: not found). */
    psup_child_set_sigmask(~UINT64_C(0));
    psup_child_report(c, PSUP_MSG_EXEC_FAILED, PSUP_STEP_EXEC, r);
    psup_child_exit(r == -ENOENT || r == -ENOTDIR ? 127 : 126);

fail:
    psup_child_set_sigmask(~UINT64_C(0));
    psup_child_report(c, PSUP_MSG_EXEC_FAILED, step, r);
    psup_child_exit(126);
}

_Noreturn void psup_child_exec(struct psup_child *c, char **envp, int in, int out,
                               int log_pipe)
{
    const struct psup_service_config *svc = c->plan->svc;
    enum psup_step step = PSUP_STEP_SETUP;
    long r;

    /* 1. The connection on 0 and 1. Neither can already be 0 or 1: psup
     *    keeps 0-2 open from the start, so dup3 always clears CLOEXEC here. */
    if ((r = psup_sys(SYS_dup3, in, 0, 0)) < 0 || (r = psup_sys(SYS_dup3, out, 1, 0)) < 0)
        goto fail;
    psup_child_close(in);
    if (out != in)
        psup_child_close(out);
    step = PSUP_STEP_STDERR;
    if ((r = psup_child_stderr(svc, log_pipe)) < 0)
        goto fail;

    /* 2. The process, its credentials, nothing of psup, execve. */
    psup_child_become(c, envp, 3, 0);

fail:
    psup_child_set_sigmask(~UINT64_C(0));
    psup_child_report(c, PSUP_MSG_EXEC_FAILED, step, r);
    psup_child_exit(126);
}
