/* SPDX-License-Identifier: MIT */
/*
 * One event per line on stderr, as logfmt (key=value) or as JSON lines.
 * A record is built in a buffer and written with a single write(2), so
 * records from psup never interleave or tear (each is at most PIPE_BUF).
 *
 *     struct psup_log l;
 *     psup_log_begin(&l, PSUP_LOG_INFO, "conn_end");
 *     psup_log_str(&l, "service", name);
 *     psup_log_int(&l, "pid", pid);
 *     psup_log_end(&l);
 *
 * Keys are stable lowercase words: tests and users grep them.
 */
#ifndef PSUP_LOG_H
#define PSUP_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/diag.h"

enum psup_log_format {
    PSUP_LOG_TEXT,
    PSUP_LOG_JSON,
};

enum psup_log_level {
    PSUP_LOG_DEBUG,
    PSUP_LOG_INFO,
    PSUP_LOG_WARN,
    PSUP_LOG_ERROR,
};

/* The largest record: PIPE_BUF, so a write to a pipe is atomic. */
#define PSUP_LOG_MAX 4096

struct psup_log {
    char buf[PSUP_LOG_MAX];
    size_t len;
    bool skip;      /* below the threshold: nothing is built or written */
    bool truncated; /* a value did not fit and was cut */
};

/* Where records go and how they look. The defaults are fd 2, text, info. */
void psup_log_setup(int fd, enum psup_log_format format, enum psup_log_level threshold);
void psup_log_set_format(enum psup_log_format format);
enum psup_log_format psup_log_format(void);

void psup_log_begin(struct psup_log *l, enum psup_log_level level, const char *event);
void psup_log_str(struct psup_log *l, const char *key, const char *value);
/* A value of known length that may hold any bytes (handler output). */
void psup_log_bytes(struct psup_log *l, const char *key, const char *value, size_t len);
void psup_log_int(struct psup_log *l, const char *key, long long value);
void psup_log_uint(struct psup_log *l, const char *key, unsigned long long value);
void psup_log_bool(struct psup_log *l, const char *key, bool value);
/* A number with three decimals, for seconds. */
void psup_log_secs(struct psup_log *l, const char *key, double seconds);
/* errno=ENOENT error="No such file or directory" */
void psup_log_errno(struct psup_log *l, int err);
void psup_log_end(struct psup_log *l);

/* How a process ended, from a waitpid status: status=N, or signal=NAME
 * with core=dumped when there is a core. */
void psup_log_wait_status(struct psup_log *l, int status);

/* The last record of a run: event=exit status=N. */
void psup_log_exit(int status);

/* One record per problem of a configuration that did not load. */
void psup_log_problems(const char *event, const struct psup_diag *diag);

/* Where psup_log_escape writes n bytes: divisible when they are single-byte
 * characters (a sink short of room may take a part of them), else one
 * escape or character to take whole or not at all. Returns false to stop
 * (no room left). */
typedef bool (*psup_log_sink)(void *arg, const char *s, size_t n, bool divisible);

/* The escapes of a quoted log value, written to put_fn: quotes,
 * backslashes and control characters escaped (JSON's \u00XX or logfmt's
 * \xNN), a byte that is not valid UTF-8 as U+FFFD in JSON and \xNN in
 * text. Also what the admin endpoint's JSON uses. */
void psup_log_escape(const char *s, size_t n, bool json, psup_log_sink put_fn, void *arg);

/* The symbolic name of a signal ("TERM", "KILL", "RTMIN+1"). */
const char *psup_signal_name(int sig, char buf[16]);

#endif
