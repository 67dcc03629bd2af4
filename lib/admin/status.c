/* SPDX-License-Identifier: MIT */
/*
 * GET /status: psup and every service as one JSON document, for scripts,
 * `psup ctl status` and the status page (spec/admin.md has its fields).
 */
#include "admin/render.h"

#include <string.h>

#include "admin/json.h"
#include "runtime/report.h"

static void put_outcomes(struct psup_json *j, const struct psup_counters *c)
{
    psup_json_object(j, "connections");
    for (int o = 0; o < PSUP_OUTCOMES; o++)
        psup_json_uint(j, psup_admin_outcome_name((enum psup_outcome)o), c->ended[o]);
    psup_json_end_object(j);
}

static void put_counters(struct psup_json *j, const struct psup_counters *c)
{
    psup_json_object(j, "counters");
    psup_json_uint(j, "accepted", c->accepted);
    put_outcomes(j, c);
    psup_json_object(j, "refused");
    psup_json_uint(j, "denied", c->denied);
    psup_json_uint(j, "per_source", c->per_source);
    psup_json_uint(j, "rate", c->rate);
    psup_json_uint(j, "overload", c->overload);
    psup_json_uint(j, "proxy", c->proxy_refused);
    psup_json_end_object(j);
    psup_json_uint(j, "worker_failures", c->failed);
    psup_json_uint(j, "timed_out", c->timed_out);
    psup_json_secs(j, "handler_seconds", (double)c->durations.sum_ms / 1000.0);
    psup_json_end_object(j);
}

static void put_pool(struct psup_json *j, const struct psup_service_stats *s)
{
    psup_json_object(j, "pool");
    psup_json_uint(j, "idle", s->pool.idle);
    psup_json_uint(j, "busy", s->pool.busy);
    psup_json_uint(j, "retiring", s->pool.retiring);
    psup_json_uint(j, "stopped", s->pool.stopped);
    psup_json_uint(j, "min_spare", s->bounds.min_spare);
    psup_json_uint(j, "max_spare", s->bounds.max_spare);
    psup_json_uint(j, "max_workers", s->bounds.max_workers);
    psup_json_end_object(j);
}

static void put_limits(struct psup_json *j, const struct psup_service_stats *s)
{
    psup_json_object(j, "limits");
    psup_json_uint(j, "max_per_source", s->max_per_source);
    psup_json_secs(j, "rate", s->rate);
    psup_json_uint(j, "rate_burst", s->rate_burst);
    psup_json_secs(j, "timeout", s->timeout);
    psup_json_string(j, "on_overload", s->bounds.reject_overload ? "reject" : "queue");
    psup_json_end_object(j);
}

static void put_backoff(struct psup_json *j, const struct psup_service_stats *s, uint64_t now)
{
    uint64_t wait = s->backoff_not_before > now ? s->backoff_not_before - now : 0;

    psup_json_object(j, "backoff");
    psup_json_bool(j, "active", s->backoff_delay_ms > 0);
    psup_json_uint(j, "failures", s->failures);
    psup_json_secs(j, "delay", (double)s->backoff_delay_ms / 1000.0);
    psup_json_secs(j, "next_start_in", (double)wait / 1000.0);
    psup_json_end_object(j);
}

static void put_last_error(struct psup_json *j, const struct psup_service_stats *s)
{
    char buf[128];
    const char *name;

    if (!s->last_error) {
        psup_json_null(j, "last_error");
        return;
    }
    name = strerrorname_np(s->last_error);
    psup_json_object(j, "last_error");
    psup_json_string(j, "step", psup_report_step_name(s->last_step));
    psup_json_string(j, "errno", name ? name : "unknown");
    psup_json_string(j, "error", strerror_r(s->last_error, buf, sizeof(buf)));
    psup_json_end_object(j);
}

struct status_pass {
    struct psup_json *j;
    uint64_t now;
};

static void put_service(void *arg, const struct psup_service_stats *s)
{
    struct status_pass *p = arg;
    struct psup_json *j = p->j;

    psup_json_object(j, NULL);
    psup_json_string(j, "name", s->name);
    psup_json_string(j, "mode", s->mode);
    psup_json_string(j, "state", psup_service_state_name(s->state));
    psup_json_bool(j, "paused", s->paused);
    psup_json_bool(j, "ready", !psup_admin_service_unready(s));
    psup_json_array(j, "listeners");
    for (size_t i = 0; i < s->n_listeners; i++)
        psup_json_string(j, NULL, s->listeners[i].text);
    psup_json_end_array(j);
    put_pool(j, s);
    put_limits(j, s);
    put_backoff(j, s, p->now);
    psup_json_bool(j, "saturated", s->saturated);
    psup_json_secs(j, "saturated_for",
                   s->saturated && p->now > s->saturated_since
                       ? (double)(p->now - s->saturated_since) / 1000.0
                       : 0);
    put_counters(j, &s->counters);
    put_last_error(j, s);
    psup_json_end_object(j);
}

static void put_reloads(struct psup_json *j, const struct psup_admin_state *st)
{
    char when[32];

    psup_json_object(j, "reloads");
    for (int r = 0; r < PSUP_RELOAD_RESULTS; r++)
        psup_json_uint(j, psup_reload_result_name((enum psup_reload_result)r), st->reloads[r]);
    psup_json_end_object(j);
    if (st->last_reload == 0) {
        psup_json_null(j, "last_reload");
        return;
    }
    psup_admin_format_time(st->last_reload, when);
    psup_json_object(j, "last_reload");
    psup_json_string(j, "time", when);
    psup_json_string(j, "result", psup_reload_result_name(st->last_reload_result));
    psup_json_uint(j, "problems", st->last_reload_problems);
    psup_json_end_object(j);
}

void psup_admin_status(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       struct psup_admin_response *resp)
{
    struct psup_runtime_stats rs;
    struct psup_json j;
    char started[32];

    (void)req;
    resp->content_type = "application/json";
    psup_runtime_stats(st->rt, &rs, NULL, NULL);
    psup_admin_format_time(st->started, started);
    psup_json_init(&j, &resp->body);
    psup_json_object(&j, NULL);
    psup_json_string(&j, "version", PSUP_VERSION);
    psup_json_int(&j, "pid", st->pid);
    psup_json_string(&j, "started", started);
    psup_json_secs(&j, "uptime", (double)(st->now_ms - st->started_ms) / 1000.0);
    psup_json_string(&j, "config", st->config_path);
    psup_json_string(&j, "state", !rs.accepting ? "stopping" : st->draining ? "draining" : "running");
    psup_json_bool(&j, "ready", psup_admin_ready(st, NULL));
    psup_json_uint(&j, "workers", rs.live);
    put_reloads(&j, st);
    struct status_pass p = {&j, st->now_ms};
    psup_json_array(&j, "services");
    psup_runtime_stats(st->rt, NULL, put_service, &p);
    psup_json_end_array(&j);
    psup_json_end_object(&j);
    psup_buf_puts(&resp->body, "\n");
}
