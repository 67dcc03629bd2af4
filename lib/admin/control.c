/* SPDX-License-Identifier: MIT */
/*
 * The control routes (spec/control.md): POST /reload, /pause, /resume and
 * /scale, taken on unix admin listeners only (dispatch.c answers 403 on
 * TCP ones). Parameters come in the query string and are read strictly:
 * known names, each once, plain values (a service name, decimal numbers),
 * no body. The action is the supervisor's (struct psup_admin_control);
 * the answer is one JSON object.
 */
#include "admin/render.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/json.h"

enum { P_SERVICE, P_MIN_SPARE, P_MAX_SPARE, P_MAX_WORKERS, P_COUNT };

static const char *const param_names[P_COUNT] = {"service", "min_spare", "max_spare",
                                                 "max_workers"};

struct params {
    bool seen[P_COUNT];
    char service[72];
    long long bound[3]; /* min_spare, max_spare, max_workers; -1: not given */
};

/* Every answer is one JSON object on a line. */
static void open_answer(struct psup_admin_response *resp, struct psup_json *j)
{
    resp->content_type = "application/json";
    psup_json_init(j, &resp->body);
    psup_json_object(j, NULL);
}

static void close_answer(struct psup_admin_response *resp, struct psup_json *j)
{
    psup_json_end_object(j);
    psup_buf_puts(&resp->body, "\n");
}

static void answer_error(struct psup_admin_response *resp, int status, const char *why)
{
    struct psup_json j;

    psup_buf_free(&resp->body);
    psup_buf_init(&resp->body, PSUP_ADMIN_MAX_RESPONSE);
    resp->status = status;
    open_answer(resp, &j);
    psup_json_string(&j, "error", why);
    close_answer(resp, &j);
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* One value: a service name, or a number of at most 9 digits (more than
 * any bound, and no overflow). */
static bool take_value(int k, const char *v, size_t n, struct params *p, char *why, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        if (k == P_SERVICE ? !name_char(v[i]) : (v[i] < '0' || v[i] > '9')) {
            snprintf(why, size, "%s: expected %s, without escapes", param_names[k],
                     k == P_SERVICE ? "a service name (A-Z a-z 0-9 _ . -)" : "a number");
            return false;
        }
    }
    if (n == 0 || n > (k == P_SERVICE ? 64 : 9)) {
        snprintf(why, size, "%s: expected %s", param_names[k],
                 k == P_SERVICE ? "a service name of 1 to 64 characters" : "a number up to 65536");
        return false;
    }
    if (k == P_SERVICE) {
        memcpy(p->service, v, n);
        p->service[n] = '\0';
        return true;
    }
    long long x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (v[i] - '0');
    p->bound[k - P_MIN_SPARE] = x;
    return true;
}

/* One "name=value" of the query; allowed is a mask of (1 << P_...). */
static bool take_param(const char *s, size_t n, unsigned allowed, struct params *p, char *why,
                       size_t size)
{
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    int k = -1;

    for (int i = 0; i < P_COUNT; i++)
        if ((allowed & (1u << i)) && strlen(param_names[i]) == klen &&
            memcmp(param_names[i], s, klen) == 0)
            k = i;
    if (k < 0) {
        snprintf(why, size, "unknown parameter \"%.*s\"", (int)(klen > 32 ? 32 : klen), s);
        return false;
    }
    if (p->seen[k] || !eq) {
        snprintf(why, size, p->seen[k] ? "%s: given twice" : "%s: needs a value",
                 param_names[k]);
        return false;
    }
    p->seen[k] = true;
    return take_value(k, eq + 1, n - klen - 1, p, why, size);
}

/* The query string, strictly; false with why for anything else. */
static bool read_params(const struct psup_admin_request *req, unsigned allowed,
                        struct params *p, char *why, size_t size)
{
    const char *q = req->query.p, *end = q + req->query.len;

    memset(p, 0, sizeof(*p));
    p->bound[0] = p->bound[1] = p->bound[2] = -1;
    if (req->body.len) {
        snprintf(why, size, "control requests take their parameters in the query string");
        return false;
    }
    for (const char *seg = q; q && req->query.len;) {
        const char *amp = memchr(seg, '&', (size_t)(end - seg));
        const char *stop = amp ? amp : end;
        if (stop == seg) {
            snprintf(why, size, "an empty parameter");
            return false;
        }
        if (!take_param(seg, (size_t)(stop - seg), allowed, p, why, size))
            return false;
        if (!amp)
            break;
        seg = amp + 1;
    }
    if ((allowed & (1u << P_SERVICE)) && !p->seen[P_SERVICE]) {
        snprintf(why, size, "service: missing (required)");
        return false;
    }
    return true;
}

/* The requester for the log: the unix client's credentials. */
static const struct psup_requester *requester(const struct psup_admin_request *req,
                                              struct psup_requester *by)
{
    if (!req->has_peer)
        return NULL;
    by->pid = req->peer_pid;
    by->uid = req->peer_uid;
    return by;
}

/* A control action's failure, as the answer says it. */
static void answer_failure(struct psup_admin_response *resp, int rc, const char *service,
                           const char *why)
{
    char text[160];

    if (rc == -ESHUTDOWN) {
        answer_error(resp, 409, "psup is shutting down");
    } else if (rc == -ENOENT) {
        snprintf(text, sizeof(text), "no service named \"%s\"", service ? service : "");
        answer_error(resp, 404, text);
    } else if (rc == -EOPNOTSUPP) {
        answer_error(resp, 409, why && *why ? why : "the service cannot do that");
    } else {
        answer_error(resp, rc == -EINVAL ? 400 : 500, why && *why ? why : "the request failed");
    }
}

static bool control_ready(const struct psup_admin_state *st, struct psup_admin_response *resp)
{
    if (st->control)
        return true;
    answer_error(resp, 503, "control is not available");
    return false;
}

/* ---- POST /reload ------------------------------------------------------- */

/* "a,b,c" (the apply report's lists) as a JSON array. */
static void put_names(struct psup_json *j, const char *key, const char *list)
{
    char name[72];

    psup_json_array(j, key);
    while (*list) {
        size_t n = strcspn(list, ",");
        snprintf(name, sizeof(name), "%.*s", (int)n, list);
        psup_json_string(j, NULL, name);
        list += n + (list[n] == ',');
    }
    psup_json_end_array(j);
}

struct reload_answer {
    const struct psup_admin_state *st;
    struct psup_admin_response *resp;
};

static void put_reload(void *ctx, const struct psup_admin_reload *r)
{
    struct reload_answer *a = ctx;
    struct psup_json j;

    a->resp->status = r->result == PSUP_RELOAD_OK        ? 200
                      : r->result == PSUP_RELOAD_INVALID ? 422
                                                         : 409;
    open_answer(a->resp, &j);
    psup_json_string(&j, "result", psup_reload_result_name(r->result));
    psup_json_string(&j, "config", a->st->config_path);
    if (r->result == PSUP_RELOAD_OK) {
        put_names(&j, "added", r->report->added);
        put_names(&j, "removed", r->report->removed);
        put_names(&j, "changed", r->report->changed);
        psup_json_uint(&j, "unchanged", r->report->unchanged);
        psup_json_uint(&j, "listeners_opened", r->report->listeners_opened);
        psup_json_uint(&j, "listeners_closed", r->report->listeners_closed);
    } else if (r->result == PSUP_RELOAD_INVALID) {
        psup_json_array(&j, "problems");
        for (size_t i = 0; i < r->problems->count; i++)
            psup_json_string(&j, NULL, r->problems->items[i]);
        psup_json_end_array(&j);
    } else {
        psup_json_string(&j, "error", r->reason);
    }
    close_answer(a->resp, &j);
}

void psup_admin_reload_route(const struct psup_admin_state *st,
                             const struct psup_admin_request *req,
                             struct psup_admin_response *resp)
{
    struct params p;
    struct psup_requester by;
    struct reload_answer a = {st, resp};
    char why[160];

    if (!read_params(req, 0, &p, why, sizeof(why))) {
        answer_error(resp, 400, why);
        return;
    }
    if (!control_ready(st, resp))
        return;
    int rc = st->control->reload(st->control->arg, requester(req, &by), put_reload, &a);
    if (rc < 0)
        answer_failure(resp, rc, NULL, NULL);
}

/* ---- POST /pause, /resume ------------------------------------------------- */

static void pause_or_resume(const struct psup_admin_state *st,
                            const struct psup_admin_request *req,
                            struct psup_admin_response *resp, bool pause)
{
    struct params p;
    struct psup_requester by;
    struct psup_json j;
    char why[256] = ""; /* a sentence with a service name */
    bool changed;

    if (!read_params(req, 1u << P_SERVICE, &p, why, sizeof(why))) {
        answer_error(resp, 400, why);
        return;
    }
    if (!control_ready(st, resp))
        return;
    int rc = st->control->pause(st->control->arg, p.service, pause, requester(req, &by),
                                &changed);
    if (rc == -EOPNOTSUPP) /* spec/control.md: a wait-mode service */
        snprintf(why, sizeof(why),
                 "service \"%s\" is in wait mode: its servers accept connections themselves, "
                 "psup cannot pause it",
                 p.service);
    if (rc < 0) {
        answer_failure(resp, rc, p.service, why);
        return;
    }
    open_answer(resp, &j);
    psup_json_string(&j, "service", p.service);
    psup_json_bool(&j, "paused", pause);
    psup_json_bool(&j, "changed", changed);
    close_answer(resp, &j);
}

void psup_admin_pause_route(const struct psup_admin_state *st,
                            const struct psup_admin_request *req,
                            struct psup_admin_response *resp)
{
    pause_or_resume(st, req, resp, true);
}

void psup_admin_resume_route(const struct psup_admin_state *st,
                             const struct psup_admin_request *req,
                             struct psup_admin_response *resp)
{
    pause_or_resume(st, req, resp, false);
}

/* ---- POST /scale ---------------------------------------------------------- */

void psup_admin_scale_route(const struct psup_admin_state *st,
                            const struct psup_admin_request *req,
                            struct psup_admin_response *resp)
{
    const unsigned allowed = (1u << P_SERVICE) | (1u << P_MIN_SPARE) | (1u << P_MAX_SPARE) |
                             (1u << P_MAX_WORKERS);
    struct psup_pool_limits now;
    struct params p;
    struct psup_requester by;
    struct psup_json j;
    char why[160] = "";

    if (!read_params(req, allowed, &p, why, sizeof(why))) {
        answer_error(resp, 400, why);
        return;
    }
    if (p.bound[0] < 0 && p.bound[1] < 0 && p.bound[2] < 0) {
        answer_error(resp, 400, "scale needs min_spare, max_spare or max_workers");
        return;
    }
    if (!control_ready(st, resp))
        return;
    struct psup_scale_request sr = {p.bound[0], p.bound[1], p.bound[2]};
    int rc = st->control->scale(st->control->arg, p.service, &sr, requester(req, &by), &now,
                                why, sizeof(why));
    if (rc < 0) {
        answer_failure(resp, rc, p.service, why);
        return;
    }
    open_answer(resp, &j);
    psup_json_string(&j, "service", p.service);
    psup_json_object(&j, "pool");
    psup_json_uint(&j, "min_spare", now.min_spare);
    psup_json_uint(&j, "max_spare", now.max_spare);
    psup_json_uint(&j, "max_workers", now.max_workers);
    psup_json_end_object(&j);
    psup_json_string(&j, "until", "reload");
    close_answer(resp, &j);
}
