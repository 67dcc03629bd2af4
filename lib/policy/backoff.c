/* SPDX-License-Identifier: MIT */
/* Exponential, capped, self-healing backoff for failing services. Pure. */
#include "policy/backoff.h"

bool psup_backoff_fail(struct psup_backoff *b, uint64_t started_at, uint64_t now)
{
    if (b->failures && started_at < b->last_failure)
        return false;
    b->failures++;
    b->last_failure = now;
    if (b->failures <= PSUP_BACKOFF_FREE)
        return false;
    uint64_t delay = b->delay_ms ? b->delay_ms * 2 : PSUP_BACKOFF_BASE_MS;
    b->delay_ms = delay > PSUP_BACKOFF_CAP_MS ? PSUP_BACKOFF_CAP_MS : delay;
    b->not_before = now + b->delay_ms;
    return true;
}

unsigned psup_backoff_allowance(const struct psup_backoff *b, uint64_t now)
{
    if (b->delay_ms == 0)
        return UINT32_MAX;
    return now >= b->not_before ? 1 : 0;
}

void psup_backoff_started(struct psup_backoff *b, uint64_t now)
{
    if (b->delay_ms)
        b->not_before = now + b->delay_ms;
}

bool psup_backoff_settle(struct psup_backoff *b, uint64_t now, bool force)
{
    if (b->failures == 0)
        return false;
    uint64_t quiet = b->delay_ms ? 2 * b->delay_ms : PSUP_BACKOFF_BASE_MS;
    if (!force && now < b->last_failure + quiet)
        return false;
    bool was_delayed = b->delay_ms > 0;
    b->failures = 0;
    b->delay_ms = 0;
    b->not_before = 0;
    return was_delayed;
}

uint64_t psup_backoff_wakeup(const struct psup_backoff *b)
{
    if (b->failures == 0)
        return 0;
    uint64_t quiet_end = b->last_failure + (b->delay_ms ? 2 * b->delay_ms : PSUP_BACKOFF_BASE_MS);
    if (b->delay_ms && b->not_before < quiet_end)
        return b->not_before;
    return quiet_end;
}
