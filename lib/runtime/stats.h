/* SPDX-License-Identifier: MIT */
/*
 * A read-only snapshot of the runtime, per service and runtime-wide: what
 * the status record (SIGUSR1), the shutdown summary and the metrics endpoint
 * report, read from one place so they cannot disagree. Nothing is allocated:
 * each service's values are handed to a callback in a record that lives on
 * the stack for the length of the call, so a scrape costs no memory.
 */
#ifndef PSUP_STATS_H
#define PSUP_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/pool.h"
#include "runtime/runtime.h"

/* What a service is doing, as the status record's `state` names it. */
enum psup_service_state {
    PSUP_SERVICE_SERVING,
    PSUP_SERVICE_BACKOFF,   /* starts are being delayed after failures */
    PSUP_SERVICE_SATURATED, /* every max_workers slot is busy */
    PSUP_SERVICE_DRAINING,  /* removed by a reload: its handlers finish */
};

struct psup_service_stats {
    const char *name;
    const char *mode;             /* "accept", "datagram" or "wait" */
    enum psup_service_state state;
    /* The bound listeners (listeners[i].text, with the kernel's port for
     * port 0); none while draining. */
    const struct psup_plan_listener *listeners;
    size_t n_listeners;
    struct psup_pool_counts pool;   /* idle, busy, retiring, stopped */
    struct psup_pool_limits bounds; /* min_spare, max_spare, max_workers (0
                                       while draining), on_overload reject:
                                       those in force (a scale request's);
                                       wait mode: 0, 0, instances */
    unsigned max_per_source;        /* 0: unlimited */
    double rate;                    /* connections a second; 0: unlimited */
    unsigned rate_burst;
    double timeout;                 /* seconds; 0: none */
    unsigned failures;              /* in the current failure streak */
    uint64_t backoff_delay_ms;      /* 0 while starts are free */
    uint64_t backoff_not_before;    /* ms, the runtime's clock; 0 when free */
    struct psup_counters counters;
    bool saturated;
    bool paused;                    /* not taking new connections on purpose */
    bool scaled;                    /* bounds set by a control request */
    uint64_t saturated_since;       /* ms, the runtime's clock, if saturated */
    int last_error;                 /* errno of the last failure logged, or 0 */
    uint32_t last_step;             /* its enum psup_step */
};

struct psup_runtime_stats {
    size_t services;
    size_t listeners;
    size_t live;        /* workers of every service, idle or busy */
    bool accepting;     /* false once shutdown began */
    bool spawn_failing; /* process slots are scarce (spec/pool.md) */
};

/* The name of a state ("serving", "backoff", "saturated", "draining"). */
const char *psup_service_state_name(enum psup_service_state state);

/* Fill *out (if not NULL) with the runtime-wide values and call each (if
 * not NULL) once per service, in the runtime's order, with arg. The record
 * and what it points to are valid during the call only, and each must not
 * change the runtime. */
void psup_runtime_stats(const struct psup_runtime *rt, struct psup_runtime_stats *out,
                        void (*each)(void *arg, const struct psup_service_stats *s), void *arg);

/* One line for people (sd_notify's STATUS=, spec/readiness.md): "4
 * services, 11 workers, 2 busy", then ", N paused" and ", N backing off"
 * when there are. Services a reload removed are not counted; their
 * handlers are, as busy. */
void psup_runtime_summary(const struct psup_runtime *rt, char *buf, size_t size);

#endif
