/* SPDX-License-Identifier: MIT */
/*
 * A token bucket for a service's `rate`: `rate` tokens per second, at most
 * `burst` saved up. Pure: takes the time in milliseconds.
 */
#ifndef PSUP_RATE_H
#define PSUP_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct psup_rate {
    double tokens;
    uint64_t last; /* ms; 0: never used, the bucket starts full */
};

/* Take one token if there is one. rate <= 0 means unlimited. */
bool psup_rate_take(struct psup_rate *r, double rate, unsigned burst, uint64_t now);

#endif
