/* SPDX-License-Identifier: MIT */
/*
 * INTERNAL to lib/admin: the documents the routes render (router.c calls
 * them). Each writes its body into resp and sets status and content type.
 */
#ifndef PSUP_ADMIN_RENDER_H
#define PSUP_ADMIN_RENDER_H

#include <stdbool.h>

#include "admin/admin.h"
#include "runtime/stats.h"

/* metrics.c: GET /metrics, Prometheus text format 0.0.4. */
void psup_admin_metrics(const struct psup_admin_state *st, const struct psup_admin_request *req,
                        struct psup_admin_response *resp);

/* status.c: GET /status, JSON. */
void psup_admin_status(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       struct psup_admin_response *resp);

/* health.c: GET /livez and GET /readyz. */
void psup_admin_livez(const struct psup_admin_state *st, const struct psup_admin_request *req,
                      struct psup_admin_response *resp);
void psup_admin_readyz(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       struct psup_admin_response *resp);

/* Whether psup is ready (what /readyz answers 200 to); with out, one
 * reason a line for each thing that is not (health.c). */
bool psup_admin_ready(const struct psup_admin_state *st, struct psup_buf *out);

/* Whether a service counts against readiness, and why (NULL when it is
 * serving): paused, or backing off (health.c). */
const char *psup_admin_service_unready(const struct psup_service_stats *s);

/* control.c: POST /reload, /pause, /resume, /scale (spec/control.md). */
void psup_admin_reload_route(const struct psup_admin_state *st,
                             const struct psup_admin_request *req,
                             struct psup_admin_response *resp);
void psup_admin_pause_route(const struct psup_admin_state *st,
                            const struct psup_admin_request *req,
                            struct psup_admin_response *resp);
void psup_admin_resume_route(const struct psup_admin_state *st,
                             const struct psup_admin_request *req,
                             struct psup_admin_response *resp);
void psup_admin_scale_route(const struct psup_admin_state *st,
                            const struct psup_admin_request *req,
                            struct psup_admin_response *resp);

/* page.c (made from page.html at build time): GET /, the status page. */
void psup_admin_page(const struct psup_admin_state *st, const struct psup_admin_request *req,
                     struct psup_admin_response *resp);

/* process.c: what /proc says about psup itself, for process_* metrics. */
struct psup_process_stats {
    bool have_stat;      /* /proc/self/stat read */
    double cpu_seconds;  /* user + system */
    double start_time;   /* seconds since the epoch */
    unsigned long long virtual_bytes;
    unsigned long long resident_bytes;
    bool have_fds;
    unsigned long long open_fds;
    unsigned long long max_fds; /* RLIMIT_NOFILE's soft limit; 0: unlimited */
};

void psup_process_stats(struct psup_process_stats *out);

/* The name of an outcome in /metrics and /status ("ok", "exec_failed"). */
const char *psup_admin_outcome_name(enum psup_outcome o);

/* Seconds since the epoch as RFC 3339 UTC with milliseconds. */
void psup_admin_format_time(double t, char out[32]);

#endif
