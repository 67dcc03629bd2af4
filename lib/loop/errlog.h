/* SPDX-License-Identifier: MIT */
/*
 * Capture of a handler's stderr (`stderr: "log"`): the supervisor reads the
 * pipe without ever blocking and re-emits it as log records, one per line,
 * tagged with service, connection id and pid. A line longer than
 * PSUP_ERRLOG_LINE bytes (fewer when its bytes need escaping) is cut into
 * numbered parts, so no record is torn or truncated;
 * a handler that floods stderr fills its pipe and waits, psup does not:
 * no read loops until a pipe is empty.
 */
#ifndef PSUP_ERRLOG_H
#define PSUP_ERRLOG_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "base/list.h"

#define PSUP_ERRLOG_LINE 3000

struct psup_errlog;

/* Start following fd (the read end of a handler's stderr pipe; taken
 * over) and store the capture in *slot, which is set to NULL when the
 * capture ends. Returns false if the loop cannot watch it (fd is closed). */
bool psup_errlog_open(uv_loop_t *loop, struct psup_list *all, int fd, const char *service,
                      unsigned long long conn, pid_t pid, struct psup_errlog **slot);

/* The handler was reaped: log what the pipe holds now (at most 64 KiB),
 * never more, since a process it started may hold the pipe and write for
 * ever. The capture stays open while such a process holds the pipe, logging
 * what it writes a budget per loop turn, and frees itself at EOF. */
void psup_errlog_handler_gone(struct psup_errlog *e);

/* At exit: read at most 64 KiB more of every pipe and close them all. */
void psup_errlog_close_all(struct psup_list *all);

#endif
