/* SPDX-License-Identifier: MIT */
/*
 * The worker child's entry point: everything a worker does from clone to
 * execve. It runs in a process that shares the supervisor's memory; the
 * rules for code in lib/child are in lib/child/README.md.
 */
#ifndef PSUP_CHILD_WORKER_H
#define PSUP_CHILD_WORKER_H

/* The worker's code, from clone to execve: arg is its struct psup_child. */
int psup_worker_main(void *arg);

#endif
