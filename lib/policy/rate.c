/* SPDX-License-Identifier: MIT */
/* Token bucket: refill by elapsed time, cap at the burst, take one. */
#include "policy/rate.h"

bool psup_rate_take(struct psup_rate *r, double rate, unsigned burst, uint64_t now)
{
    if (rate <= 0)
        return true;
    if (r->last == 0) {
        r->tokens = burst;
    } else if (now > r->last) {
        r->tokens += (double)(now - r->last) * rate / 1000.0;
        if (r->tokens > burst)
            r->tokens = burst;
    }
    r->last = now ? now : 1;
    if (r->tokens < 1.0)
        return false;
    r->tokens -= 1.0;
    return true;
}
