/* SPDX-License-Identifier: MIT */
/*
 * Failure accounting for a service's workers (spec/pool.md, "Failures and
 * backoff"). A failure is a worker that died before taking a connection or a
 * handler that could not be executed. The first PSUP_BACKOFF_FREE failures
 * in a row are retried at once. Then starts are delayed, doubling from
 * PSUP_BACKOFF_BASE_MS up to PSUP_BACKOFF_CAP_MS, with one probe worker per
 * delay; a probe that lives through two delays ends the streak, and so does
 * a handler that runs or a reload.
 *
 * Pure: every function takes the current time in milliseconds.
 */
#ifndef PSUP_BACKOFF_H
#define PSUP_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#define PSUP_BACKOFF_FREE 2
#define PSUP_BACKOFF_BASE_MS 100
#define PSUP_BACKOFF_CAP_MS 10000

struct psup_backoff {
    unsigned failures;     /* in the current streak */
    uint64_t delay_ms;     /* current delay; 0 while starts are free */
    uint64_t not_before;   /* no start before this time */
    uint64_t last_failure; /* time of the last counted failure */
};

/* Count the failure of a worker started at started_at. A worker started
 * before the last counted failure belongs to a batch already counted, so a
 * batch that fails together raises the delay once. Returns true when the
 * delay changed (worth a log line). */
bool psup_backoff_fail(struct psup_backoff *b, uint64_t started_at, uint64_t now);

/* How many workers may be started now: UINT32_MAX when starts are free,
 * else 1 once the delay has passed, else 0. */
unsigned psup_backoff_allowance(const struct psup_backoff *b, uint64_t now);

/* A worker was started now (while delayed, the next probe waits a delay). */
void psup_backoff_started(struct psup_backoff *b, uint64_t now);

/* End the streak if it has been quiet for two delays, or at once when force
 * is set. Returns true if starts were being delayed and no longer are. */
bool psup_backoff_settle(struct psup_backoff *b, uint64_t now, bool force);

/* When to look again (the next probe or the end of the quiet period), or 0
 * when starts are free. */
uint64_t psup_backoff_wakeup(const struct psup_backoff *b);

#endif
