/* SPDX-License-Identifier: MIT */
/*
 * The runtime's snapshot (stats.h): read only, allocation free, computed
 * from the runtime's records at the moment of the call.
 */
#include "runtime/stats.h"

#include "runtime/generation.h"

#include <stdio.h>
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

/* The mode of the current generation, or of the last one's handlers while
 * draining. */
static const char *service_mode(const struct psup_service *s)
{
    const struct psup_generation *g = s->current;

    if (!g && !psup_list_empty(&s->workers))
        g = PSUP_CONTAINER(s->workers.next, struct psup_worker, link)->gen;
    if (!g)
        return "accept";
    switch (g->svc->mode) {
    case PSUP_MODE_DATAGRAM: return "datagram";
    case PSUP_MODE_WAIT: return "wait";
    default: return "accept";
    }
}

/* What the current generation configures; zeros while draining. */
static void configured(const struct psup_service *s, struct psup_service_stats *st)
{
    const struct psup_generation *g = s->current;

    if (!g)
        return;
    const struct psup_service_config *cfg = g->svc;
    st->listeners = psup_plan_listeners(g->plan);
    st->n_listeners = g->plan->n_listeners;
    st->bounds = psup_service_limits(s);
    st->max_per_source = cfg->max_per_source;
    st->rate = cfg->rate;
    st->rate_burst = cfg->rate > 0 ? cfg->rate_burst : 0;
    st->timeout = cfg->timeout;
}

static void service_stats(const struct psup_service *s, struct psup_service_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->name = s->name;
    st->mode = service_mode(s);
    st->state = service_state(s);
    configured(s, st);
    st->pool = (struct psup_pool_counts){s->idle, s->busy, s->retiring, s->stopped};
    st->failures = s->backoff.failures;
    st->backoff_delay_ms = s->backoff.delay_ms;
    st->backoff_not_before = s->backoff.delay_ms ? s->backoff.not_before : 0;
    st->counters = s->counters;
    st->saturated = s->saturated;
    st->paused = s->paused;
    st->scaled = s->scaled && s->current;
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

struct summary_counts {
    size_t services;
    unsigned busy, paused, backoff;
};

static void count_service(void *arg, const struct psup_service_stats *st)
{
    struct summary_counts *c = arg;

    c->busy += st->pool.busy;
    if (st->state == PSUP_SERVICE_DRAINING)
        return; /* removed by a reload: only its handlers are left */
    c->services++;
    c->paused += st->paused;
    c->backoff += st->state == PSUP_SERVICE_BACKOFF;
}

void psup_runtime_summary(const struct psup_runtime *rt, char *buf, size_t size)
{
    struct summary_counts c = {0};
    struct psup_runtime_stats rs;

    psup_runtime_stats(rt, &rs, count_service, &c);
    int n = snprintf(buf, size, "%zu service%s, %zu worker%s, %u busy", c.services,
                     c.services == 1 ? "" : "s", rs.live, rs.live == 1 ? "" : "s", c.busy);
    if (c.paused && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", %u paused", c.paused);
    if (c.backoff && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", %u backing off", c.backoff);
}
