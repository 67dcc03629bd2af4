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

/* Send m on the channel, with log_fd (PSUP_MSG_FD_LOG) and reply_fd
 * (PSUP_MSG_FD_REPLY) attached unless -1. Returns the sendmsg result
 * (-errno on failure). */
long psup_child_send(const struct psup_child *c, struct psup_msg *m, int log_fd, int reply_fd);
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
 * keep_fds; mark every one from first up close-on-exec (3 for a handler,
 * past the sockets for a wait-mode server). Return 0 or -errno. */
long psup_child_close_others(const struct psup_plan *p);
long psup_child_cloexec_from(const struct psup_plan *p, unsigned first);

/* A connection was accepted on listener index: admit it (true, with
 * c->handover filled), or refuse and close it (false) (take.c). */
bool psup_child_take(struct psup_child *c, uint32_t index, int conn,
                     const struct sockaddr *remote);

/* Steps shared by connections and datagrams (take.c). Show the client in
 * this worker's tally entry; with count, return how many of the service's
 * handlers serve it now, this one included. */
unsigned psup_child_publish(const struct psup_child *c, const struct psup_peer *peer,
                            bool count);
/* For stderr "log": a pipe ([0] for the supervisor, [1] the handler's fd
 * 2), or -1, -1 (the handler then keeps psup's stderr). */
void psup_child_log_pipe(const struct psup_child *c, int log_pipe[2]);
/* Ask the supervisor (BUSY, with the stderr pipe's read end and a
 * datagram's reply socket where not -1) and wait for its verdict. Returns
 * the verdict, or one whose code is PSUP_VERDICT_CLOSE if none could be
 * had: the supervisor was not reachable, or did not answer in time (it is
 * then told so). */
uint64_t psup_child_ask(struct psup_child *c, struct psup_msg *m, int log_read, int reply);
/* The verdict said run: drop the log pipe the supervisor could not take
 * (PSUP_VERDICT_NO_LOG_PIPE), and publish the client in the tally. */
void psup_child_admitted(struct psup_child *c, const struct psup_peer *peer, uint64_t verdict,
                         int *log_write);

/* A datagram waits on listener index (epoll said so): read it, judge it,
 * and admit it (1, with c->handover filled: its pipe and reply socket), or
 * drop it and return 0 to wait again. Returns -errno when it could not be
 * read or handed over: the caller treats it as accept's errors
 * (datagram.c). */
long psup_child_receive(struct psup_child *c, uint32_t index);

/* Whether allow/deny let the address (psup_ip_key's form) in (take.c). */
bool psup_child_allowed(const struct psup_plan *p, const uint8_t addr[16]);

/* What an admitted client goes to the handler with (take.c). */
void psup_child_set_handover(struct psup_child *c, int in, int out, int log_pipe, char **envp);

/* The handler's environment for a connection or a datagram, in c->envp
 * (env.c): local is the address the client connected to (the socket's; on
 * TCP with a PROXY header, the header's destination; a datagram's
 * destination) and peer the client (with a PROXY header, its source);
 * proxy, NULL or of family 0 without a PROXY header, is the connection's
 * own peer (its TLVs are in c->proxy). */
char **psup_child_env(struct psup_child *c, const struct psup_plan_listener *l,
                      const struct psup_peer *local, const struct psup_peer *peer,
                      const struct psup_peer *proxy, unsigned connnum);

/* fd 2 per the service's stderr: /dev/null, the write end of the log pipe
 * (closed), or left as it is (exec.c). Returns 0 or -errno. */
long psup_child_stderr(const struct psup_plan *p, int log_pipe);

/* The process settings and credentials, the parent-death signal the
 * program keeps (0: none), every descriptor from first_closed up
 * close-on-exec, an empty mask, then execve of the service's program with
 * envp; reports a failure and exits (exec.c). */
_Noreturn void psup_child_become(struct psup_child *c, char *const *envp, unsigned first_closed,
                                 int death_signal);

/* Become the handler: in on fd 0, out on fd 1 (the same connection, or a
 * datagram's pipe and reply socket), its environment envp, process and
 * credentials, then execve (exec.c). log_pipe is the write end of the
 * stderr pipe, or -1. */
_Noreturn void psup_child_exec(struct psup_child *c, char **envp, int in, int out,
                               int log_pipe);

/* Prestart: set up the handler's process and credentials and exec its
 * program with psup's library, which waits for the connection after the
 * exec (exec.c). */
_Noreturn void psup_child_exec_prestarted(struct psup_child *c);

/* A wait-mode server: the listening sockets on 0, 1 and 3.., then execve
 * (server.c). Never returns. */
_Noreturn void psup_child_serve_wait(struct psup_child *c);

#endif
