/* SPDX-License-Identifier: MIT */
/*
 * /livez and /readyz (spec/admin.md). Liveness is that the loop answered
 * at all; readiness is that psup wants new clients: every service serving
 * (not paused, not backing off) and no shutdown begun or announced.
 */
#include "admin/render.h"

#include <string.h>

const char *psup_admin_service_unready(const struct psup_service_stats *s)
{
    if (s->state == PSUP_SERVICE_DRAINING)
        return NULL; /* removed by a reload: not part of what psup serves */
    if (s->paused)
        return "paused";
    if (s->state == PSUP_SERVICE_BACKOFF)
        return "backing off";
    return NULL;
}

struct readiness {
    struct psup_buf *out;
    const struct psup_admin_state *st;
    bool ready;
};

static void check_service(void *arg, const struct psup_service_stats *s)
{
    struct readiness *r = arg;
    const char *why = psup_admin_service_unready(s);

    if (!why)
        return;
    r->ready = false;
    if (!r->out)
        return;
    psup_buf_printf(r->out, "service %s is %s", s->name, why);
    if (s->state == PSUP_SERVICE_BACKOFF && !s->paused) {
        uint64_t now = r->st->now_ms;
        uint64_t wait = s->backoff_not_before > now ? s->backoff_not_before - now : 0;
        psup_buf_printf(r->out, " (%u failures, next start in %.1f s)", s->failures,
                        (double)wait / 1000.0);
    }
    psup_buf_puts(r->out, "\n");
}

/* What psup as a whole is doing: NULL while it wants clients. */
static const char *psup_unready(const struct psup_admin_state *st)
{
    struct psup_runtime_stats rs;

    psup_runtime_stats(st->rt, &rs, NULL, NULL);
    if (!rs.accepting)
        return "shutting down";
    return st->draining ? "draining before it shuts down" : NULL;
}

bool psup_admin_ready(const struct psup_admin_state *st, struct psup_buf *out)
{
    struct readiness r = {out, st, true};
    const char *why = psup_unready(st);

    if (why) {
        r.ready = false;
        if (out)
            psup_buf_printf(out, "psup is %s\n", why);
    }
    psup_runtime_stats(st->rt, NULL, check_service, &r);
    return r.ready;
}

void psup_admin_livez(const struct psup_admin_state *st, const struct psup_admin_request *req,
                      struct psup_admin_response *resp)
{
    (void)st;
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    psup_buf_puts(&resp->body, "ok\n");
}

/* ?verbose: one line per check, [+] passed or [-] failed, as Kubernetes'
 * own /readyz?verbose does. */
static void verbose_service(void *arg, const struct psup_service_stats *s)
{
    struct psup_buf *out = arg;
    const char *why = psup_admin_service_unready(s);

    if (s->state != PSUP_SERVICE_DRAINING)
        psup_buf_printf(out, "[%c] service %s: %s\n", why ? '-' : '+', s->name,
                        why ? why : psup_service_state_name(s->state));
}

void psup_admin_readyz(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       struct psup_admin_response *resp)
{
    bool ready;

    resp->content_type = "text/plain; charset=utf-8";
    if (psup_admin_query_has(req, "verbose")) {
        const char *why = psup_unready(st);
        psup_buf_printf(&resp->body, "[%c] psup: %s\n", why ? '-' : '+', why ? why : "running");
        psup_runtime_stats(st->rt, NULL, verbose_service, &resp->body);
        ready = psup_admin_ready(st, NULL);
        psup_buf_puts(&resp->body, ready ? "ready\n" : "not ready\n");
    } else {
        ready = psup_admin_ready(st, &resp->body);
        if (ready)
            psup_buf_puts(&resp->body, "ok\n");
    }
    resp->status = ready ? 200 : 503;
}
