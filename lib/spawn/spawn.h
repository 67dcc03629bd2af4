/* SPDX-License-Identifier: MIT */
/*
 * Creating workers, on the supervisor's side: their stacks, the clone
 * itself, and the probe for a free process slot. The worker's own code,
 * from clone to execve, is in lib/child.
 */
#ifndef PSUP_SPAWN_H
#define PSUP_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proto/proto.h"

/* A worker's stack, used until it is reaped. */
struct psup_stack {
    void *base;
    size_t size;
};

/* Map a stack with a guard page below it. Returns 0 or -errno. */
int psup_stack_map(struct psup_stack *stack);
void psup_stack_unmap(struct psup_stack *stack);

/* Check that one more process can be created now (RLIMIT_NPROC): a child
 * that exits at once, created and reaped before returning. Every signal is
 * blocked meanwhile. Returns 0 or -errno (EAGAIN). */
int psup_probe_slot(const struct psup_stack *stack);

/* Start a worker. share_memory selects clone(CLONE_VM) (the default where
 * PSUP_RAW_SYSCALLS is 1) or a copy of the supervisor's memory like fork.
 * Every signal is blocked around the clone so that no handler of the
 * supervisor can run in the new process. Returns the pid or -errno. */
pid_t psup_worker_spawn(struct psup_child *child, const struct psup_stack *stack,
                        bool share_memory);

#endif
