/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the Prometheus text exposition format 0.0.4. One family at
 * a time, its # HELP and # TYPE first, then a sample for every service
 * (every outcome and reason too, zeros included, so that rate() has a
 * start). Labels carry only bounded values: service names, outcomes,
 * reasons, reload results, the version. spec/admin.md lists the families.
 */
#include "admin/render.h"

#include <string.h>

#include "base/durations.h"

/* Label values escape backslash, double quote and line feed (0.0.4). */
static void put_label_value(struct psup_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            psup_buf_puts(b, "\\\\");
        else if (*v == '"')
            psup_buf_puts(b, "\\\"");
        else if (*v == '\n')
            psup_buf_puts(b, "\\n");
        else
            psup_buf_put(b, v, 1);
    }
}

static void family(struct psup_buf *b, const char *name, const char *type, const char *help)
{
    psup_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{service="S"[,key="value"]} */
static void series(struct psup_buf *b, const char *name, const char *service, const char *key,
                   const char *value)
{
    psup_buf_printf(b, "%s{service=\"", name);
    put_label_value(b, service);
    if (key) {
        psup_buf_printf(b, "\",%s=\"", key);
        put_label_value(b, value);
    }
    psup_buf_puts(b, "\"} ");
}

/* ------------------------------------------------------------------------ */
/* Per-service families: one pass over the services each. A family is
 * either one sample a service, its value read by value_fn, or several,
 * written by sample_fn. */

typedef void (*sample_fn)(struct psup_buf *b, const struct psup_service_stats *s);
typedef double (*value_fn)(const struct psup_service_stats *s);

struct service_family {
    const char *name, *type, *help;
    value_fn value;
    sample_fn samples;
};

struct pass {
    struct psup_buf *b;
    const struct service_family *f;
};

static void each_service(void *arg, const struct psup_service_stats *s)
{
    struct pass *p = arg;

    if (p->f->samples) {
        p->f->samples(p->b, s);
        return;
    }
    double v = p->f->value(s);
    series(p->b, p->f->name, s->name, NULL, NULL);
    /* Counts as integers (exact up to 2^53), seconds with milliseconds. */
    if (v == (double)(unsigned long long)v)
        psup_buf_printf(p->b, "%llu\n", (unsigned long long)v);
    else
        psup_buf_printf(p->b, "%.3f\n", v);
}

static double busy(const struct psup_service_stats *s) { return s->pool.busy; }
static double idle(const struct psup_service_stats *s) { return s->pool.idle; }
static double max_workers(const struct psup_service_stats *s) { return s->bounds.max_workers; }
static double failures(const struct psup_service_stats *s) { return (double)s->counters.failed; }
static double paused(const struct psup_service_stats *s) { return s->paused; }

static double backoff(const struct psup_service_stats *s)
{
    return (double)s->backoff_delay_ms / 1000.0;
}

static void connections(struct psup_buf *b, const struct psup_service_stats *s)
{
    for (int o = 0; o < PSUP_OUTCOMES; o++) {
        series(b, "psup_connections_total", s->name, "outcome",
               psup_admin_outcome_name((enum psup_outcome)o));
        psup_buf_printf(b, "%llu\n", s->counters.ended[o]);
    }
}

static void refused(struct psup_buf *b, const struct psup_service_stats *s)
{
    const char *const reasons[] = {"denied", "per_source", "rate", "overload"};
    const unsigned long long counts[] = {s->counters.denied, s->counters.per_source,
                                         s->counters.rate, s->counters.overload};

    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        series(b, "psup_refused_total", s->name, "reason", reasons[i]);
        psup_buf_printf(b, "%llu\n", counts[i]);
    }
}

/* Datagram mode: each write of a handler is a reply, sent or dropped. */
static void replies(struct psup_buf *b, const struct psup_service_stats *s)
{
    series(b, "psup_replies_total", s->name, "result", "sent");
    psup_buf_printf(b, "%llu\n", s->counters.replies);
    series(b, "psup_replies_total", s->name, "result", "failed");
    psup_buf_printf(b, "%llu\n", s->counters.replies_failed);
}

/* The bound as Prometheus writes le: the shortest decimal ("0.005", "1",
 * "1800"). */
static void put_le(struct psup_buf *b, uint32_t ms)
{
    if (ms % 1000 == 0)
        psup_buf_printf(b, "%u", ms / 1000);
    else if (ms % 100 == 0)
        psup_buf_printf(b, "%u.%u", ms / 1000, ms % 1000 / 100);
    else if (ms % 10 == 0)
        psup_buf_printf(b, "%u.%02u", ms / 1000, ms % 1000 / 10);
    else
        psup_buf_printf(b, "%u.%03u", ms / 1000, ms % 1000);
}

static void durations(struct psup_buf *b, const struct psup_service_stats *s)
{
    const struct psup_durations *d = &s->counters.durations;
    const char *name = "psup_handler_duration_seconds";

    for (size_t i = 0; i <= PSUP_DURATION_BUCKETS; i++) {
        psup_buf_printf(b, "%s_bucket{service=\"", name);
        put_label_value(b, s->name);
        psup_buf_puts(b, "\",le=\"");
        if (i < PSUP_DURATION_BUCKETS)
            put_le(b, psup_duration_bounds_ms[i]);
        else
            psup_buf_puts(b, "+Inf");
        psup_buf_printf(b, "\"} %llu\n", psup_durations_at_most(d, i));
    }
    series(b, "psup_handler_duration_seconds_sum", s->name, NULL, NULL);
    psup_buf_printf(b, "%.3f\n", (double)d->sum_ms / 1000.0);
    series(b, "psup_handler_duration_seconds_count", s->name, NULL, NULL);
    psup_buf_printf(b, "%llu\n", d->count);
}

static const struct service_family service_families[] = {
    {"psup_connections_total", "counter",
     "Connections whose handler ended, by outcome (as its conn_end log record says).", NULL,
     connections},
    {"psup_handlers", "gauge", "Handlers running now (busy workers).", busy, NULL},
    {"psup_workers_idle", "gauge", "Idle workers waiting for a connection.", idle, NULL},
    {"psup_workers_max", "gauge", "The service's max_workers (0 while it drains after a reload).",
     max_workers, NULL},
    {"psup_worker_failures_total", "counter",
     "Workers that failed before taking a connection, and handlers that could not be executed.",
     failures, NULL},
    {"psup_refused_total", "counter", "Connections refused, by reason.", NULL, refused},
    {"psup_replies_total", "counter",
     "Datagram mode: replies sent to clients, and those dropped (reply_failed).", NULL, replies},
    {"psup_backoff_seconds", "gauge",
     "The delay between worker starts after repeated failures (0 while starts are free).", backoff,
     NULL},
    {"psup_service_paused", "gauge", "1 while the service is paused.", paused, NULL},
    {"psup_handler_duration_seconds", "histogram", "How long handlers ran, counted as each ended.",
     NULL, durations},
};

static void service_metrics(const struct psup_admin_state *st, struct psup_buf *b)
{
    for (size_t i = 0; i < sizeof(service_families) / sizeof(service_families[0]); i++) {
        struct pass p = {b, &service_families[i]};
        family(b, p.f->name, p.f->type, p.f->help);
        psup_runtime_stats(st->rt, NULL, each_service, &p);
    }
}

/* ------------------------------------------------------------------------ */
/* psup itself. */

static void psup_metrics(const struct psup_admin_state *st, struct psup_buf *b)
{
    family(b, "psup_reloads_total", "counter", "Reloads (SIGHUP), by result.");
    for (int r = 0; r < PSUP_RELOAD_RESULTS; r++)
        psup_buf_printf(b, "psup_reloads_total{result=\"%s\"} %llu\n",
                        psup_reload_result_name((enum psup_reload_result)r), st->reloads[r]);
    family(b, "psup_ready", "gauge", "1 when /readyz answers 200.");
    psup_buf_printf(b, "psup_ready %d\n", psup_admin_ready(st, NULL) ? 1 : 0);
    family(b, "psup_build_info", "gauge", "psup's version, as a label; the value is 1.");
    psup_buf_puts(b, "psup_build_info{version=\"");
    put_label_value(b, PSUP_VERSION);
    psup_buf_puts(b, "\"} 1\n");
}

static void process_metrics(struct psup_buf *b)
{
    struct psup_process_stats p;

    psup_process_stats(&p);
    if (p.have_stat) {
        family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        psup_buf_printf(b, "process_cpu_seconds_total %.2f\n", p.cpu_seconds);
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since the epoch, in seconds.");
        psup_buf_printf(b, "process_start_time_seconds %.2f\n", p.start_time);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        psup_buf_printf(b, "process_virtual_memory_bytes %llu\n", p.virtual_bytes);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        psup_buf_printf(b, "process_resident_memory_bytes %llu\n", p.resident_bytes);
    }
    if (p.have_fds) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        psup_buf_printf(b, "process_open_fds %llu\n", p.open_fds);
        if (p.max_fds) {
            family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
            psup_buf_printf(b, "process_max_fds %llu\n", p.max_fds);
        }
    }
}

void psup_admin_metrics(const struct psup_admin_state *st, const struct psup_admin_request *req,
                        struct psup_admin_response *resp)
{
    (void)req;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    service_metrics(st, &resp->body);
    psup_metrics(st, &resp->body);
    process_metrics(&resp->body);
}
