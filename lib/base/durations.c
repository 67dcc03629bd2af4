/* SPDX-License-Identifier: MIT */
/*
 * The duration histogram (durations.h).
 */
#include "base/durations.h"

/* Prometheus's default buckets from 5 ms to 10 s, and beyond them what
 * handlers of long connections take: 30 s, 1 min, 5 min, 30 min. */
const uint32_t psup_duration_bounds_ms[PSUP_DURATION_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 1800000,
};

void psup_durations_add(struct psup_durations *d, uint64_t ms)
{
    size_t i = 0;

    while (i < PSUP_DURATION_BUCKETS && ms > psup_duration_bounds_ms[i])
        i++;
    d->in[i]++;
    d->count++;
    d->sum_ms += ms;
}

unsigned long long psup_durations_at_most(const struct psup_durations *d, size_t i)
{
    unsigned long long n = 0;

    for (size_t k = 0; k <= i && k <= PSUP_DURATION_BUCKETS; k++)
        n += d->in[k];
    return n;
}
