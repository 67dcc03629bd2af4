/* SPDX-License-Identifier: MIT */
/*
 * psup's children, workers or not (children.c): for the last phase of a
 * stop, when the orphans of handlers that came back to psup are signalled
 * and waited for (spec/signals.md, "Graceful stop").
 */
#ifndef PSUP_CHILDREN_H
#define PSUP_CHILDREN_H

#include <stdbool.h>
#include <sys/types.h>

/* Whether psup has any child left, exited or not. */
bool psup_children_any(void);

/* Signal every child of psup (workers, handlers, and the orphans that came
 * back to it), found in /proc/self/task/PID/children, or by the parent each
 * /proc/PID/stat names. Returns 0, or -errno if psup cannot list them. */
int psup_children_signal(int sig);

/* event=reaped_orphan (debug): a child that is not a worker was reaped. */
void psup_children_log_reaped(pid_t pid, int status);

/* event=orphans_left: psup cannot list its children and exits without
 * them. */
void psup_children_log_left(void);

#endif
