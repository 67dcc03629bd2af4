/* SPDX-License-Identifier: MIT */
/*
 * Services and their generations: what owns them, how they are made and when
 * they are freed. A generation is the plan the workers of one configuration
 * of a service read; it lives while its workers do (a reference each, plus
 * one while it is the service's current one). A service lives while it is
 * configured or still has workers. apply.c makes them, runtime.c lets go.
 */
#include "runtime/generation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/env.h"

extern char **environ;

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* What a worker keeps open, sorted once here so that the worker (which
 * has no heap and a small stack) closes the gaps in one pass, whatever the
 * number of listeners. */
static int *keep_fds(const struct psup_runtime *rt, const struct psup_plan_listener *ls,
                     size_t n)
{
    int *fds = malloc((n + 1) * sizeof(*fds));

    if (!fds)
        return NULL;
    fds[0] = rt->channel_fd;
    for (size_t i = 0; i < n; i++)
        fds[i + 1] = ls[i].fd;
    qsort(fds, n + 1, sizeof(*fds), compare_ints);
    return fds;
}

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
    free(g->env_base);
    free(g->listeners);
    free(g->keep_fds);
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

struct psup_generation *psup_generation_new(const struct psup_runtime *rt,
                                            struct psup_config *cfg,
                                            const struct psup_service_config *svc,
                                            struct psup_listener *const *ls)
{
    struct psup_generation *g = calloc(1, sizeof(*g));

    if (!g)
        return NULL;
    g->config = psup_config_ref(cfg);
    g->listeners = calloc(svc->n_listen, sizeof(*g->listeners));
    g->env_base = psup_env_base(svc, environ, &g->plan.n_env_base);
    if (!g->listeners || !g->env_base) {
        psup_generation_free(g);
        return NULL;
    }
    for (size_t j = 0; j < svc->n_listen; j++) {
        struct psup_plan_listener *pl = &g->listeners[j];
        pl->fd = ls[j]->fd;
        pl->proto = svc->listen[j].proto;
        pl->family = ls[j]->family;
        pl->port = ls[j]->port;
        snprintf(pl->text, sizeof(pl->text), "%s", ls[j]->bound);
        /* "unix:/path" or "unix:@name": UNIXLOCALPATH is what follows. */
        pl->unix_path = pl->proto == PSUP_PROTO_UNIX ? pl->text + 5 : NULL;
    }
    g->keep_fds = keep_fds(rt, g->listeners, svc->n_listen);
    if (!g->keep_fds) {
        psup_generation_free(g);
        return NULL;
    }
    g->plan.svc = svc;
    g->plan.env_base = g->env_base;
    g->plan.listeners = g->listeners;
    g->plan.n_listeners = svc->n_listen;
    g->plan.keep_fds = g->keep_fds;
    g->plan.n_keep_fds = svc->n_listen + 1;
    g->plan.fd_closing = rt->fd_closing;
    g->plan.channel_fd = rt->channel_fd;
    g->plan.supervisor_pid = rt->self;
    g->plan.verdict_signal = rt->verdict_signal;
    g->plan.verdict_timeout_ms = rt->verdict_timeout_ms;
    g->plan.reset_signals = rt->reset_signals;
    g->plan.n_reset_signals = rt->n_reset_signals;
    g->plan.own_session = rt->handler_sessions;
    /* Without these the worker needs no answer: it counts TCPCONNNUM in
     * the tally itself and runs the handler at once. */
    g->plan.needs_verdict = svc->max_per_source || svc->rate > 0 ||
                            svc->on_overload == PSUP_OVERLOAD_REJECT ||
                            svc->stderr_mode == PSUP_STDERR_LOG;
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
    const struct psup_service_config *cfg = s->current->plan.svc;
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
