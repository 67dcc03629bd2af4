/* SPDX-License-Identifier: MIT */
/*
 * The supervisor: one libuv loop that turns signals, worker messages and
 * timers into calls on the runtime, and runs reloads and shutdown.
 * spec/signals.md is the reference for what each signal does.
 */
#ifndef PSUP_SUPERVISOR_H
#define PSUP_SUPERVISOR_H

#include <stdbool.h>

#include "config/config.h"

/* Exit statuses of psup (spec/signals.md). */
#define PSUP_EXIT_OK 0
#define PSUP_EXIT_CONFIG 1
#define PSUP_EXIT_USAGE 2
#define PSUP_EXIT_START 3 /* could not start: a listener, the loop, memory */
#define PSUP_EXIT_ESSENTIAL 4 /* an essential service kept failing (fatal_after) */

struct psup_supervisor_options {
    const char *config_path; /* re-read on SIGHUP */
    bool log_format_forced;  /* --log-format given: the file's is ignored */
    bool use_fork;           /* create workers by copying memory (PSUP_SPAWN=fork) */
    int ready_fd;            /* --ready-fd: s6's notification descriptor, or -1 */
};

/* Run until stopped. Takes a reference to cfg. Returns psup's exit status:
 * 0 after a graceful stop, PSUP_EXIT_START if it could not start,
 * PSUP_EXIT_ESSENTIAL after a graceful stop an essential service caused,
 * 128+N after an immediate stop by signal N. */
int psup_supervisor_run(struct psup_config *cfg, const struct psup_supervisor_options *opts);

#endif
