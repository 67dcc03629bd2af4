/* SPDX-License-Identifier: MIT */
/* The spare-worker policy: min_spare <= idle <= max_spare, total <= max_workers. */
#include "policy/pool.h"

int psup_pool_adjust(const struct psup_pool_counts *c, const struct psup_pool_limits *l)
{
    /* Retiring and stopped workers still exist: they count against the
     * limit, so the number of processes never exceeds it. */
    unsigned total = c->idle + c->busy + c->retiring + c->stopped;
    unsigned limit = l->max_workers + (l->reject_overload ? 1 : 0);

    if (c->idle < l->min_spare) {
        unsigned want = l->min_spare - c->idle;
        unsigned room = total < limit ? limit - total : 0;
        return (int)(want < room ? want : room);
    }
    if (c->idle > l->max_spare)
        return -(int)(c->idle - l->max_spare);
    return 0;
}
