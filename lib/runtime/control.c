/* SPDX-License-Identifier: MIT */
/*
 * Control requests on the runtime: pause, resume, scale (control.h). Each
 * changes a flag or the bounds of one service and lets the pool policy act
 * on it (psup_runtime_maintain): a paused service's idle workers retire
 * and none starts, so new connections wait in the kernel's backlog; a
 * scaled one is held to its new bounds. A wait-mode service can be neither
 * paused nor scaled: its servers accept by themselves.
 */
#include "runtime/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "config/config.h"
#include "runtime/generation.h"

struct psup_service *psup_runtime_find_service(const struct psup_runtime *rt, const char *name)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (s->current && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static void log_requester(struct psup_log *l, const struct psup_requester *by)
{
    if (!by)
        return;
    psup_log_int(l, "remote_pid", by->pid);
    psup_log_uint(l, "remote_uid", by->uid);
}

static bool is_wait(const struct psup_service *s)
{
    return s->current->svc->mode == PSUP_MODE_WAIT;
}

static int find_for_control(const struct psup_runtime *rt, const char *name,
                            struct psup_service **out)
{
    if (!rt->accepting)
        return -ESHUTDOWN;
    *out = psup_runtime_find_service(rt, name);
    return *out ? 0 : -ENOENT;
}

int psup_runtime_pause(struct psup_runtime *rt, const char *name, bool pause,
                       const struct psup_requester *by, uint64_t now, bool *changed)
{
    struct psup_service *s;
    struct psup_log l;
    int rc = find_for_control(rt, name, &s);

    if (rc < 0)
        return rc;
    /* A wait-mode server accepts by itself: a pause could not stop it
     * (spec/control.md). A pause carried over by a reload can end. */
    if (pause && is_wait(s))
        return -EOPNOTSUPP;
    *changed = s->paused != pause;
    s->paused = pause;
    psup_log_begin(&l, PSUP_LOG_INFO, pause ? "paused" : "resumed");
    psup_log_str(&l, "service", s->name);
    psup_log_bool(&l, "changed", *changed);
    log_requester(&l, by);
    psup_log_end(&l);
    /* Paused: the idle workers retire (a worker that has just taken a
     * connection serves it), none starts. Resumed: spares start, and
     * their first accept finds what waited in the backlog. */
    psup_runtime_maintain(rt, now);
    return 0;
}

/* One bound: the request's, or the current one; reported as the
 * configuration reports pool values. */
static bool pick(long long asked, unsigned current, const char *name, unsigned *out, char *why,
                 size_t size)
{
    if (asked < 0) {
        *out = current;
        return true;
    }
    if (asked < 1 || asked > PSUP_MAX_WORKERS) {
        snprintf(why, size, "%s: must be between 1 and %u, got %lld", name, PSUP_MAX_WORKERS,
                 asked);
        return false;
    }
    *out = (unsigned)asked;
    return true;
}

static bool check_scale(const struct psup_scale_request *req, const struct psup_pool_limits *now,
                        struct psup_pool_limits *out, char *why, size_t size)
{
    *out = *now;
    if (!pick(req->min_spare, now->min_spare, "min_spare", &out->min_spare, why, size) ||
        !pick(req->max_spare, now->max_spare, "max_spare", &out->max_spare, why, size) ||
        !pick(req->max_workers, now->max_workers, "max_workers", &out->max_workers, why, size))
        return false;
    if (out->max_spare < out->min_spare) {
        snprintf(why, size, "max_spare: must be >= min_spare (%u), got %u", out->min_spare,
                 out->max_spare);
        return false;
    }
    if (out->max_workers < out->max_spare) {
        snprintf(why, size, "max_workers: must be >= max_spare (%u), got %u", out->max_spare,
                 out->max_workers);
        return false;
    }
    return true;
}

int psup_runtime_scale(struct psup_runtime *rt, const char *name,
                       const struct psup_scale_request *req, const struct psup_requester *by,
                       uint64_t now, struct psup_pool_limits *out, char *why, size_t why_size)
{
    struct psup_service *s;
    struct psup_log l;
    int rc = find_for_control(rt, name, &s);

    if (rc < 0)
        return rc;
    if (is_wait(s)) {
        snprintf(why, why_size,
                 "service \"%s\" is in wait mode: it runs instances servers, not a pool of "
                 "workers to scale",
                 s->name);
        return -EOPNOTSUPP;
    }
    struct psup_pool_limits current = psup_service_limits(s);
    if (!check_scale(req, &current, out, why, why_size))
        return -EINVAL;
    s->scaled = true;
    s->scale = *out;
    psup_log_begin(&l, PSUP_LOG_INFO, "scaled");
    psup_log_str(&l, "service", s->name);
    psup_log_uint(&l, "min_spare", out->min_spare);
    psup_log_uint(&l, "max_spare", out->max_spare);
    psup_log_uint(&l, "max_workers", out->max_workers);
    psup_log_str(&l, "until", "reload");
    log_requester(&l, by);
    psup_log_end(&l);
    /* Surplus idle workers retire, missing spares start; busy handlers
     * above a lowered max_workers finish, and none starts until busy
     * drops below it. */
    psup_runtime_maintain(rt, now);
    return 0;
}
