/* SPDX-License-Identifier: MIT */
/*
 * A histogram of durations with fixed buckets: how long handlers ran, per
 * service, for the admin endpoint's psup_handler_duration_seconds. Fixed
 * bounds keep it a few counters, with nothing to allocate, and let
 * Prometheus add the histograms of many psup instances.
 *
 * Pure.
 */
#ifndef PSUP_DURATIONS_H
#define PSUP_DURATIONS_H

#include <stddef.h>
#include <stdint.h>

#define PSUP_DURATION_BUCKETS 15

/* The buckets' upper bounds in milliseconds, increasing: 5 ms to 30 min. */
extern const uint32_t psup_duration_bounds_ms[PSUP_DURATION_BUCKETS];

struct psup_durations {
    /* Durations in each bucket (not cumulative): in[i] counts those above
     * bound i-1 and at most bound i; in[PSUP_DURATION_BUCKETS] the longer. */
    unsigned long long in[PSUP_DURATION_BUCKETS + 1];
    unsigned long long count;
    unsigned long long sum_ms;
};

void psup_durations_add(struct psup_durations *d, uint64_t ms);

/* How many durations are at most bound i (cumulative, as Prometheus's
 * buckets); i == PSUP_DURATION_BUCKETS gives the count. */
unsigned long long psup_durations_at_most(const struct psup_durations *d, size_t i);

#endif
