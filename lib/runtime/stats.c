/* SPDX-License-Identifier: MIT */
/*
 * The runtime's snapshot (stats.h): read only, allocation free, computed
 * from the runtime's records at the moment of the call.
 */
#include "runtime/stats.h"

#include <string.h>

const char *psup_service_state_name(enum psup_service_state state)
{
    switch (state) {
    case PSUP_SERVICE_BACKOFF: return "backoff";
    case PSUP_SERVICE_SATURATED: return "saturated";
    case PSUP_SERVICE_DRAINING: return "draining";
    default: return "serving";
    }
}

/* Draining wins: a removed service no longer starts anything to back off. */
static enum psup_service_state service_state(const struct psup_service *s)
{
    if (!s->current)
        return PSUP_SERVICE_DRAINING;
    if (s->backoff.delay_ms)
        return PSUP_SERVICE_BACKOFF;
    return s->saturated ? PSUP_SERVICE_SATURATED : PSUP_SERVICE_SERVING;
}

/* What the current generation configures; zeros while draining. */
static void configured(const struct psup_generation *g, struct psup_service_stats *st)
{
    if (!g)
        return;
    const struct psup_service_config *cfg = g->svc;
    st->listeners = psup_plan_listeners(g->plan);
    st->n_listeners = g->plan->n_listeners;
    st->bounds = (struct psup_pool_limits){cfg->min_spare, cfg->max_spare, cfg->max_workers,
                                           cfg->on_overload == PSUP_OVERLOAD_REJECT};
    st->max_per_source = cfg->max_per_source;
    st->rate = cfg->rate;
    st->rate_burst = cfg->rate > 0 ? cfg->rate_burst : 0;
    st->timeout = cfg->timeout;
}

static void service_stats(const struct psup_service *s, struct psup_service_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->name = s->name;
    st->mode = "accept";
    st->state = service_state(s);
    configured(s->current, st);
    st->pool = (struct psup_pool_counts){s->idle, s->busy, s->retiring, s->stopped};
    st->failures = s->backoff.failures;
    st->backoff_delay_ms = s->backoff.delay_ms;
    st->backoff_not_before = s->backoff.delay_ms ? s->backoff.not_before : 0;
    st->counters = s->counters;
    st->saturated = s->saturated;
    st->paused = s->paused;
    st->saturated_since = s->saturated ? s->saturated_since : 0;
    st->last_error = s->last_error;
    st->last_step = s->last_step;
}

void psup_runtime_stats(const struct psup_runtime *rt, struct psup_runtime_stats *out,
                        void (*each)(void *arg, const struct psup_service_stats *s), void *arg)
{
    size_t n = 0;

    for (const struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service_stats st;
        service_stats(PSUP_CONTAINER(p, struct psup_service, link), &st);
        if (each)
            each(arg, &st);
        n++;
    }
    if (!out)
        return;
    out->services = n;
    out->listeners = rt->n_listeners;
    out->live = rt->live;
    out->accepting = rt->accepting;
    out->spawn_failing = rt->spawn_failing;
}
