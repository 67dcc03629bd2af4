/* SPDX-License-Identifier: MIT */
/*
 * Internal to lib/runtime: what runtime.c (workers and their life) and
 * server.c (wait-mode servers) share. The structs are in runtime.h.
 */
#ifndef PSUP_RUNTIME_INTERNAL_H
#define PSUP_RUNTIME_INTERNAL_H

#include "runtime/runtime.h"

/* ---- worker.c: worker records (workers and servers alike) ------------- */

/* The live worker (or server) pid, or NULL. */
struct psup_worker *psup_runtime_find_worker(const struct psup_runtime *rt, pid_t pid);
/* Unlink and free a reaped worker: its table entry, counts, tally entry,
 * stack (back to the cache) and generation reference. */
void psup_runtime_free_worker(struct psup_runtime *rt, struct psup_worker *w);
/* A stack from the cache, or a new one; back to the cache when there is
 * room. Returns 0 or -errno. */
int psup_runtime_stack_acquire(struct psup_runtime *rt, struct psup_stack *stack);
void psup_runtime_stack_release(struct psup_runtime *rt, struct psup_stack *stack);
/* kill(2) through the seam: pid, or -pid for its group. */
int psup_runtime_signal(const struct psup_runtime *rt, pid_t pid, int sig);

/* Create a worker of s's current generation, IDLE (held until a go when
 * hold is set). Returns 0 or -errno (the process could not be created). */
int psup_runtime_spawn(struct psup_runtime *rt, struct psup_service *s, uint64_t now, bool hold,
                       struct psup_worker **out);
/* Creating a process failed (EAGAIN, ENOMEM): starts wait, logged once. */
void psup_runtime_spawn_failed(struct psup_runtime *rt, struct psup_service *s, int err,
                               uint64_t now);
void psup_runtime_set_state(struct psup_worker *w, enum psup_worker_state st);
/* Keep rt->timed sorted by deadline. */
void psup_runtime_set_deadline(struct psup_runtime *rt, struct psup_worker *w, uint64_t deadline);
/* Signal the worker's process group (and mark it signalled by psup). */
void psup_runtime_signal_group(const struct psup_runtime *rt, struct psup_worker *w, int sig);
int psup_runtime_send_verdict(const struct psup_runtime *rt, pid_t pid, uint64_t value);
/* stderr "log": follow the pipe fd (taken over); false if it cannot be. */
bool psup_runtime_follow_stderr(struct psup_runtime *rt, struct psup_worker *w, int fd);
/* A failure of the service: counted, the first of a kind logged, backoff. */
void psup_runtime_count_failure(struct psup_worker *w, int status, uint64_t now);
/* The backoff's part of a failure: the delay grows (logged when it
 * changes), and an essential service's fatal_after counts from the first
 * delayed start (spec/signals.md). */
void psup_runtime_back_off(struct psup_worker *w, uint64_t now);
/* A failure streak ended: log it, forget the last error. */
void psup_runtime_recovered(struct psup_service *s);

/* ---- server.c: wait-mode services (spec/wait.md) ---------------------- */

static inline bool psup_runtime_is_server(const struct psup_worker *w)
{
    return w->gen->svc->mode == PSUP_MODE_WAIT;
}

/* Start, watch or stop watching for s's servers (s's current generation
 * is in wait mode, or s is removed). */
void psup_runtime_maintain_servers(struct psup_runtime *rt, struct psup_service *s, uint64_t now);
/* Stop watching s's sockets (before they may be closed or s changes). */
void psup_runtime_unwatch(struct psup_runtime *rt, struct psup_service *s);
/* The servers of s of another generation than its current one get
 * SIGTERM, their groups SIGKILL after shutdown_timeout and kill_grace (a
 * reload replaced them, or removed s). */
void psup_runtime_stop_old_servers(struct psup_runtime *rt, struct psup_service *s,
                                   uint64_t now);
/* Shutdown: every running server's group gets SIGTERM, SIGKILL after
 * shutdown_timeout and kill_grace. */
void psup_runtime_stop_servers(struct psup_runtime *rt, uint64_t now);
void psup_runtime_server_message(struct psup_runtime *rt, struct psup_worker *w,
                                 const struct psup_msg *m, const struct psup_passed_fds *fds,
                                 uint64_t now);
void psup_runtime_server_exit(struct psup_runtime *rt, struct psup_worker *w, int status,
                              uint64_t now);

#endif
