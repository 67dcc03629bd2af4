/* SPDX-License-Identifier: MIT */
/*
 * Internal to lib/child: the worker's steps that its files share. Every
 * function here runs in a process that shares the supervisor's memory
 * (lib/child/README.md): system calls through psup_sys(), nothing of libc
 * that could touch errno, the heap, stdio or a lock.
 */
#ifndef PSUP_CHILD_H
#define PSUP_CHILD_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "child/worker.h"
#include "proto/proto.h"
#include "proto/rawsys.h"

/* The kernel's sigset is 64 bits: bit (sig - 1) for each signal. */
#define PSUP_KSIG(sig) (UINT64_C(1) << ((sig) - 1))
#define PSUP_KSIGSET_SIZE 8

_Noreturn static inline void psup_child_exit(int status)
{
    for (;;)
        psup_sys(SYS_exit_group, status);
}

static inline long psup_child_set_sigmask(uint64_t mask)
{
    return psup_sys(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, PSUP_KSIGSET_SIZE);
}

static inline void psup_child_close(int fd)
{
    if (fd >= 0)
        psup_sys(SYS_close, fd);
}

static inline int64_t psup_child_monotonic_ms(void)
{
    struct timespec ts = {0};

    psup_sys(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Talking to the supervisor (channel.c). */

/* Send m on the channel, with pass_fd attached unless it is -1. Returns the
 * sendmsg result (-errno on failure). */
long psup_child_send(const struct psup_child *c, struct psup_msg *m, int pass_fd);
void psup_child_report(const struct psup_child *c, enum psup_msg_kind kind,
                       enum psup_step step, long err);
/* Report a failure before any connection was taken, and leave. */
_Noreturn void psup_child_setup_failed(const struct psup_child *c, enum psup_step step,
                                       long err);
/* Wait for the verdict that answers request seq (0: the go of a held
 * worker); verdicts for other requests are late answers and are dropped.
 * Returns 0 with *verdict set, or -ETIMEDOUT. */
int psup_child_wait_verdict(const struct psup_plan *p, uint32_t seq, uint64_t *verdict);

/* Descriptors (fds.c). Close every descriptor from 3 up but the plan's
 * keep_fds; mark every one from 3 up close-on-exec. Return 0 or -errno. */
long psup_child_close_others(const struct psup_plan *p);
long psup_child_cloexec_all(const struct psup_plan *p);

/* A connection was accepted on listener index: admit it (true, with
 * c->handover filled), or refuse and close it (false) (take.c). */
bool psup_child_take(struct psup_child *c, uint32_t index, int conn,
                     const struct sockaddr *remote);

/* The handler's environment for a connection, in c->envp (env.c). */
char **psup_child_env(struct psup_child *c, const struct psup_plan_listener *l,
                      const struct sockaddr *remote, const struct sockaddr *local,
                      const struct psup_peer *peer, unsigned connnum);

/* Become the handler of the admitted connection: its descriptors,
 * environment, process and credentials, then execve (exec.c). */
_Noreturn void psup_child_exec(struct psup_child *c);

/* Prestart: set up the handler's process and credentials and exec its
 * program with psup's library, which waits for the connection after the
 * exec (exec.c). */
_Noreturn void psup_child_exec_prestarted(struct psup_child *c);

#endif
