/* SPDX-License-Identifier: MIT */
/*
 * The worker child's entry points: everything a worker does from clone to
 * execve, and what a prestarted worker's library runs after its exec. It
 * runs in a process that shares the supervisor's memory; the rules for
 * code in lib/child are in lib/child/README.md.
 */
#ifndef PSUP_CHILD_WORKER_H
#define PSUP_CHILD_WORKER_H

#include "proto/proto.h"

/* The worker's code, from clone to execve: arg is its struct psup_child. */
int psup_worker_main(void *arg);

/* Wait for a connection and take it (allow/deny, the verdict or the tally):
 * returns once one is admitted, described in c->handover; exits when the
 * supervisor retires the worker. The worker's process is ready: signals,
 * group, descriptors (psup_worker_main's steps, or the prestarted
 * program's exec). */
void psup_child_wait(struct psup_child *c);

/* A prestarted worker's connection, admitted by psup_child_wait: put it on
 * fds 0 and 1 (fd 2 per stderr), build its environment, close every
 * descriptor of psup's, unmap the tally and empty the signal mask, so that
 * returning into the program makes it the connection's handler. Returns
 * the environment the program must take; exits if a step fails. */
char **psup_child_handoff(struct psup_child *c);

#endif
