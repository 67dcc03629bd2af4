/* SPDX-License-Identifier: MIT */
/*
 * Applying a configuration to the runtime, at start and on every reload:
 * mark and sweep as inetd does. Listeners whose address is unchanged keep
 * their socket; new ones are bound before anything else changes, so a
 * listener that cannot be bound leaves the running configuration intact.
 * Services are matched by name; an unchanged one keeps its workers, a
 * changed one gets a new generation, a removed one drains.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/generation.h"
#include "runtime/internal.h"
#include "base/fd.h"
#include "base/log.h"

/* ------------------------------------------------------------------------ */
/* Listeners. */

/* The existing listener for addr not yet taken by this configuration. */
static struct psup_listener *find_listener(const struct psup_runtime *rt, bool *taken,
                                           const struct psup_addr *addr, const char *owner)
{
    for (size_t i = 0; i < rt->n_listeners; i++) {
        if (!taken[i] && psup_listener_matches(rt->listeners[i], addr, owner)) {
            taken[i] = true;
            return rt->listeners[i];
        }
    }
    return NULL;
}

/* A listener psup holds that addr overlaps ("*:P" and "127.0.0.1:P"), or
 * NULL. A reload binds its new listeners before it closes the old ones, so
 * that a failure changes nothing; the kernel then refuses such a move with
 * EADDRINUSE, against psup's own socket. */
static const struct psup_listener *held_overlap(const struct psup_runtime *rt,
                                                const struct psup_addr *addr)
{
    for (size_t i = 0; i < rt->n_listeners; i++) {
        if (psup_addr_overlap(&rt->listeners[i]->addr, addr))
            return rt->listeners[i];
    }
    return NULL;
}

static void log_bind_failure(const struct psup_runtime *rt, const struct psup_service_config *svc,
                             size_t j, const char *what, int err)
{
    const struct psup_listener *held = err == -EADDRINUSE ? held_overlap(rt, &svc->listen[j]) : NULL;
    struct psup_log l;
    char hint[512];

    psup_log_begin(&l, PSUP_LOG_ERROR, "bind_failed");
    psup_log_str(&l, "service", svc->name);
    psup_log_str(&l, "addr", svc->listen_text[j]);
    psup_log_str(&l, "step", what);
    psup_log_errno(&l, -err);
    if (held) {
        snprintf(hint, sizeof(hint), "overlaps %s, which psup holds for service %s until the "
                 "reload is applied: remove it in one reload, add the new address in the next",
                 held->bound, held->owner);
        psup_log_str(&l, "hint", hint);
    }
    psup_log_end(&l);
}

/* A kept listener could not take its new settings: it keeps the old ones.
 * The reload goes on (it is past its commit point). */
static void log_update_failure(const struct psup_listener *ls, const char *what, int err)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "listener_update_failed");
    psup_log_str(&l, "service", ls->owner);
    psup_log_str(&l, "addr", ls->bound);
    psup_log_str(&l, "step", what);
    psup_log_errno(&l, -err);
    psup_log_end(&l);
}

static struct psup_socket_perms socket_perms(const struct psup_service_config *svc)
{
    return (struct psup_socket_perms){svc->socket_mode, svc->socket_uid, svc->socket_gid};
}

/* A UDP listener got a smaller receive buffer than asked for: without
 * CAP_NET_ADMIN the kernel caps it at net.core.rmem_max. Bursts beyond it
 * are dropped by the kernel (spec/udp.md). */
static void log_recv_buffer(const struct psup_listener *l)
{
    struct psup_log lg;

    if (l->addr.proto != PSUP_PROTO_UDP || l->recv_buffer_got >= l->recv_buffer)
        return;
    psup_log_begin(&lg, PSUP_LOG_WARN, "recv_buffer_limited");
    psup_log_str(&lg, "service", l->owner);
    psup_log_str(&lg, "addr", l->bound);
    psup_log_uint(&lg, "asked", (unsigned)l->recv_buffer);
    psup_log_uint(&lg, "got", (unsigned)l->recv_buffer_got);
    psup_log_str(&lg, "hint", "raise net.core.rmem_max, or give psup CAP_NET_ADMIN");
    psup_log_end(&lg);
}

static size_t count_addresses(const struct psup_config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_services; i++)
        n += cfg->services[i].n_listen;
    return n;
}

struct listener_plan {
    struct psup_listener **next; /* in configuration order */
    bool *fresh;                 /* bound by this apply */
    bool *taken;                 /* rt->listeners[i] is kept */
    size_t n;
};

static void listener_plan_free(struct listener_plan *lp)
{
    free(lp->next);
    free(lp->fresh);
    free(lp->taken);
}

/* Close the listeners this apply bound (it is being abandoned). */
static void close_fresh(struct listener_plan *lp)
{
    for (size_t i = 0; i < lp->n; i++) {
        if (lp->fresh[i]) {
            psup_listener_close(lp->next[i]);
            free(lp->next[i]);
        }
    }
}

/* Find or bind every listener of cfg without changing rt. On failure, what
 * was bound is closed again and -errno returned. */
static int plan_listeners(const struct psup_runtime *rt, const struct psup_config *cfg,
                          struct listener_plan *lp)
{
    size_t total = count_addresses(cfg);
    int rc = 0;

    lp->n = 0;
    lp->next = calloc(total + 1, sizeof(*lp->next));
    lp->fresh = calloc(total + 1, sizeof(*lp->fresh));
    lp->taken = calloc(rt->n_listeners + 1, sizeof(*lp->taken));
    if (!lp->next || !lp->fresh || !lp->taken)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_services && rc == 0; i++) {
        const struct psup_service_config *svc = &cfg->services[i];
        for (size_t j = 0; j < svc->n_listen && rc == 0; j++) {
            struct psup_listener *l = find_listener(rt, lp->taken, &svc->listen[j], svc->name);
            const char *what = "socket";
            if (!l) {
                struct psup_socket_perms perms = socket_perms(svc);
                struct psup_socket_sizes sizes = {svc->backlog, svc->recv_buffer};
                l = calloc(1, sizeof(*l));
                rc = l ? psup_listener_open(l, &svc->listen[j], &sizes, &perms, svc->name, &what)
                       : -ENOMEM;
                if (rc < 0) {
                    log_bind_failure(rt, svc, j, what, rc);
                    free(l);
                    break;
                }
                log_recv_buffer(l);
                lp->fresh[lp->n] = true;
            }
            lp->next[lp->n++] = l;
        }
    }
    if (rc < 0)
        close_fresh(lp);
    return rc;
}

/* A kept listener takes the new configuration's backlog (or receive
 * buffer) and socket file settings. */
static void update_kept(struct psup_listener *l, const struct psup_service_config *svc)
{
    struct psup_socket_perms perms = socket_perms(svc);
    const char *what = "listen";
    int rc = psup_listener_set_backlog(l, svc->backlog);
    int asked = l->recv_buffer;

    if (rc < 0)
        log_update_failure(l, what, rc);
    if ((rc = psup_listener_set_recv_buffer(l, svc->recv_buffer)) < 0)
        log_update_failure(l, "recv_buffer", rc);
    else if (l->recv_buffer != asked)
        log_recv_buffer(l);
    if ((rc = psup_listener_set_perms(l, &perms, &what)) < 0)
        log_update_failure(l, what, rc);
}

/* O_NONBLOCK belongs to the socket's open file description, which psup
 * shares with whoever it gives the socket to. Workers accept after epoll
 * and need EAGAIN when another took the connection; a wait-mode server
 * gets the socket itself, and servers expect a blocking one (FreeBSD's
 * tftpd exits when a read finds nothing). psup itself never reads or
 * accepts on a listener, so it can hand either over. It sets the flag when
 * it binds the socket, and again only when a reload gives the socket to a
 * service of the other kind (which changes it under the old workers or
 * servers still leaving: spec/wait.md); never while a server uses it: a
 * server that made it non-blocking (gunicorn does) keeps it so, and so
 * does the next server, as under systemd. */
static void set_blocking(struct psup_listener *l, const struct psup_service_config *svc,
                         bool fresh)
{
    bool wait = svc->mode == PSUP_MODE_WAIT;

    if (!fresh && l->handed_over == wait)
        return;
    int rc = psup_fd_set_nonblock(l->fd, !wait);
    if (rc < 0)
        log_update_failure(l, "fcntl", rc);
    else
        l->handed_over = wait;
}

/* Make the planned set the runtime's: close what is no longer used, apply
 * backlog and socket file changes to what is kept. */
static void commit_listeners(struct psup_runtime *rt, const struct psup_config *cfg,
                             struct listener_plan *lp, struct psup_apply_report *rep)
{
    size_t k = 0;

    for (size_t i = 0; i < rt->n_listeners; i++) {
        if (!lp->taken[i]) {
            psup_listener_close(rt->listeners[i]);
            free(rt->listeners[i]);
            rep->listeners_closed++;
        }
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct psup_service_config *svc = &cfg->services[i];
        for (size_t j = 0; j < svc->n_listen; j++, k++) {
            struct psup_listener *l = lp->next[k];
            snprintf(l->owner, sizeof(l->owner), "%s", svc->name);
            if (lp->fresh[k])
                rep->listeners_opened++;
            else
                update_kept(l, svc);
            set_blocking(l, svc, lp->fresh[k]);
        }
    }
    free(rt->listeners);
    rt->listeners = lp->next;
    rt->n_listeners = lp->n;
    lp->next = NULL;
}

/* ------------------------------------------------------------------------ */
/* Services and generations. */

static struct psup_service *find_service(const struct psup_runtime *rt, const char *name)
{
    for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* The same JSON is not enough: what it was resolved to at load (a program
 * found on PATH, a user's groups) may have changed since, and xinetd's
 * users expect a SIGHUP to pick that up. */
static bool unchanged(const struct psup_service *s, const struct psup_service_config *svc)
{
    return s->current && psup_config_service_same(s->current->svc, svc);
}

static void append_name(char *list, size_t size, const char *name)
{
    size_t len = strlen(list);

    if (len + strlen(name) + 2 < size)
        snprintf(list + len, size - len, "%s%s", len ? "," : "", name);
}

static void free_generations(struct psup_generation **gens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gens[i])
            psup_generation_free(gens[i]);
}

/* Whether one of a service's listeners is new: its workers must get it. */
static bool any_fresh(const bool *fresh, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fresh[i])
            return true;
    return false;
}

/* Build the generations of every new or changed service, and of one whose
 * listener was bound anew (its socket file was deleted); NULL for an
 * unchanged one. fresh[i] is the service made for a new name. Returns
 * -ENOMEM (having freed what it built) or 0. */
static int build_generations(const struct psup_runtime *rt, struct psup_config *cfg,
                             const struct listener_plan *lp, struct psup_service **fresh,
                             struct psup_generation **gens)
{
    size_t k = 0;

    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct psup_service_config *svc = &cfg->services[i];
        struct psup_service *s = find_service(rt, svc->name);
        if (!s || !unchanged(s, svc) || any_fresh(lp->fresh + k, svc->n_listen)) {
            gens[i] = psup_generation_new(rt, cfg, svc, s ? s : fresh[i], lp->next + k);
            if (!gens[i]) {
                free_generations(gens, i);
                return -ENOMEM;
            }
        }
        k += svc->n_listen;
    }
    return 0;
}

static void free_services(struct psup_service **fresh, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (fresh[j])
            psup_service_free(fresh[j]);
}

/* fresh[i]: a new service for each name the runtime does not have yet.
 * Returns 0, or -ENOMEM having made none. */
static int new_services(const struct psup_runtime *rt, const struct psup_config *cfg,
                        struct psup_service **fresh)
{
    for (size_t i = 0; i < cfg->n_services; i++) {
        if (find_service(rt, cfg->services[i].name))
            continue;
        if (!(fresh[i] = psup_service_new(cfg->services[i].name))) {
            free_services(fresh, i);
            return -ENOMEM;
        }
    }
    return 0;
}

static void apply_services(struct psup_runtime *rt, struct psup_config *cfg,
                           struct psup_generation **gens, struct psup_service **fresh,
                           uint64_t now, struct psup_apply_report *rep)
{
    struct psup_list *p, *tmp;

    for (size_t i = 0; i < cfg->n_services; i++) {
        const char *name = cfg->services[i].name;
        struct psup_service *s = find_service(rt, name);
        if (!s) {
            s = fresh[i];
            psup_list_append(&rt->services, &s->link);
            append_name(rep->added, sizeof(rep->added), name);
        } else if (!s->current) {
            /* Removed by an earlier reload and still draining: the
             * configuration adds it again. Its handlers, counts and
             * counters carry on. */
            append_name(rep->added, sizeof(rep->added), name);
        } else if (gens[i]) {
            append_name(rep->changed, sizeof(rep->changed), name);
        } else {
            rep->unchanged++;
        }
        s->seen = true;
        /* Pool bounds set at run time last until a reload (a pause lasts
         * until a resume: spec/control.md). */
        s->scaled = false;
        /* A reload is also the operator saying "try again now". */
        psup_runtime_end_backoff(s, now);
        if (gens[i]) {
            gens[i]->service = s;
            psup_runtime_switch_generation(rt, s, gens[i], now);
        }
    }
    psup_list_foreach_safe(p, tmp, &rt->services) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (!s->seen && s->current) {
            append_name(rep->removed, sizeof(rep->removed), s->name);
            s->paused = s->scaled = false; /* a service added again is new */
            psup_runtime_switch_generation(rt, s, NULL, now);
        }
        if (!s->seen && psup_list_empty(&s->workers) && !s->replying)
            psup_service_free(s);
        else
            s->seen = false;
    }
}

int psup_runtime_apply(struct psup_runtime *rt, struct psup_config *cfg, uint64_t now,
                       struct psup_apply_report *rep)
{
    struct listener_plan lp = {0};
    struct psup_generation **gens = calloc(cfg->n_services + 1, sizeof(*gens));
    struct psup_service **fresh = calloc(cfg->n_services + 1, sizeof(*fresh));
    int rc = gens && fresh ? plan_listeners(rt, cfg, &lp) : -ENOMEM;

    memset(rep, 0, sizeof(*rep));
    if (rc == 0) {
        /* Everything that can fail, before anything changes. The services
         * first: a plan names its service's tally. */
        rc = new_services(rt, cfg, fresh);
        if (rc == 0 && (rc = build_generations(rt, cfg, &lp, fresh, gens)) < 0)
            free_services(fresh, cfg->n_services);
        if (rc < 0)
            close_fresh(&lp);
    }
    if (rc == 0) {
        /* From here on nothing can fail: the new configuration takes over.
         * No socket may stay watched while listeners are closed or change
         * hands: the services watch again as they are maintained. */
        for (struct psup_list *p = rt->services.next; p != &rt->services; p = p->next)
            psup_runtime_unwatch(rt, PSUP_CONTAINER(p, struct psup_service, link));
        commit_listeners(rt, cfg, &lp, rep);
        struct psup_config *old = rt->config;
        rt->config = psup_config_ref(cfg);
        apply_services(rt, cfg, gens, fresh, now, rep);
        if (old)
            psup_config_unref(old);
    }
    listener_plan_free(&lp);
    free(gens);
    free(fresh);
    return rc;
}

void psup_runtime_log_listeners(const struct psup_runtime *rt)
{
    for (size_t i = 0; i < rt->n_listeners; i++) {
        struct psup_log l;
        psup_log_begin(&l, PSUP_LOG_INFO, "listening");
        psup_log_str(&l, "service", rt->listeners[i]->owner);
        psup_log_str(&l, "addr", rt->listeners[i]->bound);
        psup_log_end(&l);
    }
}
