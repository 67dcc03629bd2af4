/* SPDX-License-Identifier: MIT */
/*
 * The spare-worker policy of a service: given how many workers are in each
 * state, how many to start or to retire now. Pure (spec/pool.md has the
 * states and the table this implements).
 */
#ifndef PSUP_POOL_H
#define PSUP_POOL_H

#include <stdbool.h>

struct psup_pool_counts {
    unsigned idle;     /* waiting for a connection, current generation */
    unsigned busy;     /* running a handler, any generation */
    unsigned retiring; /* idle but asked to leave (old generation, surplus) */
    unsigned stopped;  /* idle but stopped by a signal */
};

struct psup_pool_limits {
    unsigned min_spare;
    unsigned max_spare;
    unsigned max_workers;
    bool reject_overload; /* on_overload "reject": keep one spare at the limit */
};

/* Positive: start that many workers; negative: retire that many idle ones;
 * zero: nothing to do. Never exceeds max_workers (plus the one spare that
 * answers "overloaded" when reject_overload is set). */
int psup_pool_adjust(const struct psup_pool_counts *c, const struct psup_pool_limits *l);

#endif
