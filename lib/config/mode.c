/* SPDX-License-Identifier: MIT */
/*
 * Wait mode's keys (spec/config.md, "mode"; spec/wait.md): "wait" runs
 * servers that are given the listening sockets themselves (listeners.c
 * reads the mode). start and instances belong to wait mode. A wait-mode
 * server accepts its connections itself, so psup never sees them: the keys
 * that judge single connections (the pool, allow/deny, the limits and
 * their messages) cannot apply, and are errors rather than settings that
 * would silently do nothing.
 */
#include "config/config.h"
#include "config/internal.h"

#include <string.h>

#define MAX_INSTANCES 65536 /* as many as a pool's max_workers */

enum { K_START, K_INSTANCES };

static bool parse_start(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    static const char *const starts[] = {"on_demand", "always", NULL};
    int start;

    if (!cfg_want_choice(c, v, starts, &start))
        return false;
    svc->start = (enum psup_start)start;
    return true;
}

static void reject_per_connection(struct ctx *c, const struct fields *f, int k)
{
    if (!f->item[k])
        return;
    if (strcmp(f->names[k], "pool") == 0)
        cfg_fail_at(c, f, k, "does not apply in wait mode: psup starts \"instances\" "
                    "servers, not a pool of workers");
    else
        cfg_fail_at(c, f, k, "does not apply in wait mode: the server accepts its "
                    "connections itself, psup never sees them");
}

void cfg_parse_wait(struct ctx *c, const struct fields *f, const int keys[2], bool mode_ok,
                    const int *per_connection, size_t n, struct psup_service_config *svc)
{
    const cJSON *v;

    /* A bad mode is one problem, not also one per key it would explain;
     * a bad value is not also said to have no effect. */
    bool wait = svc->mode == PSUP_MODE_WAIT;
    if ((v = cfg_enter(c, f, keys[K_START]))) {
        if (parse_start(c, v, svc) && mode_ok && !wait)
            cfg_fail(c, "has no effect unless mode is \"wait\"");
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, keys[K_INSTANCES]))) {
        if (cfg_want_uint(c, v, 1, MAX_INSTANCES, &svc->instances) && mode_ok && !wait)
            cfg_fail(c, "has no effect unless mode is \"wait\"");
        cfg_path_pop(c);
    }
    for (size_t i = 0; wait && i < n; i++)
        reject_per_connection(c, f, per_connection[i]);
}
