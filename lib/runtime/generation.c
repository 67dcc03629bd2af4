/* SPDX-License-Identifier: MIT */
/*
 * Services and their generations: what owns them, how they are made and when
 * they are freed. A generation is the plan the workers of one configuration
 * of a service read; it lives while its workers do (a reference each, plus
 * one while it is the service's current one). A service lives while it is
 * configured or still has workers. apply.c makes them, runtime.c lets go.
 */
#include "runtime/generation.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/env.h"
#include "runtime/plan.h"

extern char **environ;

struct psup_service *psup_service_new(const char *name)
{
    struct psup_service *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    if (psup_tally_init(&s->tally) < 0) {
        free(s);
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    psup_list_init(&s->workers);
    psup_list_init(&s->link);
    return s;
}

void psup_service_release(struct psup_service *s)
{
    if (!s->current && psup_list_empty(&s->workers) && !s->replying)
        psup_service_free(s);
}

void psup_service_free(struct psup_service *s)
{
    psup_list_remove(&s->link);
    psup_sources_free(&s->sources);
    psup_tally_free(&s->tally);
    free(s);
}

void psup_generation_free(struct psup_generation *g)
{
    free(g->plan);
    free(g->env_base);
    if (g->exec_env) {
        free(g->exec_env[0]); /* LD_PRELOAD=..., the only string of its own */
        free(g->exec_env);
    }
    if (g->plan_fd >= 0)
        close(g->plan_fd);
    psup_config_unref(g->config);
    free(g);
}

/* How long a handler may run before psup stops it (0: no limit): the
 * service's timeout. A cgi service's relay answers 504 at the timeout and
 * stops the script within kill_grace (its --kill-grace is this
 * configuration's); psup's SIGTERM at the same moment would make it answer
 * 503 instead, so psup's timer is a backstop kill_grace + 1 s later
 * (spec/cgi.md). */
static uint64_t handler_timeout_ms(const struct psup_config *cfg,
                                   const struct psup_service_config *svc)
{
    double secs = svc->timeout;

    if (secs <= 0)
        return 0;
    if (svc->protocol == PSUP_PROTOCOL_CGI)
        secs += cfg->kill_grace + 1.0;
    return (uint64_t)(secs * 1000.0);
}

/* The environment a prestarted program is exec'd with: the base one, with
 * psup's library appended to LD_PRELOAD (a user's own entries stay first,
 * and initialise after psup's, so they see the connection's environment),
 * and LD_BIND_NOW unless the base sets it: every symbol is resolved before
 * the connection, not on its path. LD_PRELOAD comes first in the array, so
 * that freeing is simple. */
static int build_exec_env(struct psup_generation *g, const char *library, size_t n_env)
{
    const char *user = NULL;
    bool bind_now_set = false;
    size_t n = 0;

    for (size_t i = 0; i < n_env; i++) {
        if (strncmp(g->env_base[i], "LD_PRELOAD=", 11) == 0)
            user = g->env_base[i] + 11;
        bind_now_set |= strncmp(g->env_base[i], "LD_BIND_NOW=", 12) == 0;
    }
    if (!(g->exec_env = calloc(n_env + 3, sizeof(char *))))
        return -ENOMEM;
    char *preload = malloc(strlen("LD_PRELOAD=") + (user ? strlen(user) + 1 : 0) +
                           strlen(library) + 1);
    if (!preload)
        return -ENOMEM;
    sprintf(preload, "LD_PRELOAD=%s%s%s", user && *user ? user : "", user && *user ? ":" : "",
            library);
    g->exec_env[n++] = preload;
    if (!bind_now_set)
        g->exec_env[n++] = "LD_BIND_NOW=1";
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(g->env_base[i], "LD_PRELOAD=", 11) != 0)
            g->exec_env[n++] = g->env_base[i];
    g->n_exec_env = n;
    return 0;
}

static int make_plan(const struct psup_runtime *rt, struct psup_generation *g,
                     const struct psup_service_config *svc, const struct psup_service *s,
                     struct psup_listener *const *ls, size_t n_env)
{
    struct psup_plan_input in = {.rt = rt, .svc = svc, .listeners = ls, .tally = &s->tally,
                                 .env = g->env_base, .n_env = n_env, .plan_fd = -1};
    int rc;

    if (svc->prestart) {
        if (!rt->prestart_library)
            return -ENOENT;
        if ((rc = build_exec_env(g, rt->prestart_library, n_env)) < 0)
            return rc;
        if ((rc = g->plan_fd = psup_plan_memfd()) < 0)
            return rc;
        in.plan_fd = g->plan_fd;
    }
    if (!(g->plan = psup_plan_build(&in)))
        return -ENOMEM;
    if (svc->prestart && (rc = psup_plan_seal(g->plan_fd, g->plan)) < 0)
        return rc;
    return 0;
}

struct psup_generation *psup_generation_new(const struct psup_runtime *rt,
                                            struct psup_config *cfg,
                                            const struct psup_service_config *svc,
                                            struct psup_service *s,
                                            struct psup_listener *const *ls)
{
    struct psup_generation *g = calloc(1, sizeof(*g));
    size_t n_env = 0;

    if (!g)
        return NULL;
    g->plan_fd = -1;
    g->config = psup_config_ref(cfg);
    g->svc = svc;
    g->env_base = psup_env_base(svc, environ, &n_env);
    if (!g->env_base || make_plan(rt, g, svc, s, ls, n_env) < 0) {
        psup_generation_free(g);
        return NULL;
    }
    g->timeout_ms = handler_timeout_ms(cfg, svc);
    g->refs = 1;
    return g;
}

void psup_generation_unref(struct psup_generation *g)
{
    if (--g->refs == 0)
        psup_generation_free(g);
}

struct psup_pool_limits psup_service_limits(const struct psup_service *s)
{
    const struct psup_service_config *cfg = s->current->svc;
    struct psup_pool_limits l = {cfg->min_spare, cfg->max_spare, cfg->max_workers,
                                 cfg->on_overload == PSUP_OVERLOAD_REJECT};

    if (cfg->mode == PSUP_MODE_WAIT) /* no spares: instances servers at most */
        return (struct psup_pool_limits){0, 0, cfg->instances, false};
    if (s->scaled) {
        l.min_spare = s->scale.min_spare;
        l.max_spare = s->scale.max_spare;
        l.max_workers = s->scale.max_workers;
    }
    return l;
}
