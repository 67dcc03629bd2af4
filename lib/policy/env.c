/* SPDX-License-Identifier: MIT */
/*
 * Building a service's base environment. The result is one allocation (the
 * pointer array followed by the strings), so a plan can share it with every
 * worker and free it in one call.
 */
#include "policy/env.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envnames.h"

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Whether `env` of the service sets this name (it then wins). */
static bool set_by_service(const struct psup_service_config *svc, const char *name, size_t len)
{
    for (size_t i = 0; i < svc->n_env; i++)
        if (name_len(svc->env[i]) == len && memcmp(svc->env[i], name, len) == 0)
            return true;
    return false;
}

static bool passed(const struct psup_service_config *svc, const char *name, size_t len)
{
    for (size_t i = 0; i < svc->n_pass_env; i++)
        if (strlen(svc->pass_env[i]) == len && memcmp(svc->pass_env[i], name, len) == 0)
            return true;
    return false;
}

static bool user_variable(const char *name, size_t len)
{
    static const char *const names[] = {"HOME", "USER", "LOGNAME", NULL};

    for (const char *const *p = names; *p; p++)
        if (strlen(*p) == len && memcmp(*p, name, len) == 0)
            return true;
    return false;
}

static bool keep_inherited(const struct psup_service_config *svc, const char *entry)
{
    size_t len = name_len(entry);

    if (!strchr(entry, '=') || psup_env_is_reserved(entry, len) || set_by_service(svc, entry, len))
        return false;
    if (svc->user_name && user_variable(entry, len))
        return false; /* root's HOME must not survive `user` (supervisor#453) */
    return !svc->clear_env || passed(svc, entry, len);
}

/* The strings the base environment holds, in order. */
struct env_list {
    const char **items; /* room for every candidate, counted beforehand */
    char *owned[3]; /* HOME=, USER=, LOGNAME= built here */
    size_t n;
};

static void add(struct env_list *l, const char *s)
{
    l->items[l->n++] = s;
}

/* A wait-mode server's LISTEN_FDNAMES: one name per socket, the service's
 * name for each (as systemd names each after its socket unit), joined by
 * colons. Returns NULL when out of memory. */
static char *fd_names(const struct psup_service_config *svc)
{
    size_t len = strlen(svc->name);
    char *s = malloc(sizeof("LISTEN_FDNAMES=") + (len + 1) * svc->n_listen);

    if (!s)
        return NULL;
    char *p = s + sprintf(s, "LISTEN_FDNAMES=");
    for (size_t i = 0; i < svc->n_listen; i++) {
        if (i)
            *p++ = ':';
        memcpy(p, svc->name, len);
        p += len;
    }
    *p = '\0';
    return s;
}

char **psup_env_base(const struct psup_service_config *svc, char *const *psup_environ,
                     size_t *n)
{
    struct env_list *l = calloc(1, sizeof(*l));
    char service[128], fds[48];
    char *fdnames = NULL;
    char **out = NULL;
    size_t candidates = svc->n_env + 6;

    for (char *const *e = psup_environ; e && *e; e++)
        candidates++;
    if (l)
        l->items = malloc(candidates * sizeof(*l->items));
    /* A wait-mode server is given the sockets (spec/wait.md); only
     * LISTEN_PID, its own pid, is left for it to add. */
    if (l && svc->mode == PSUP_MODE_WAIT && !(fdnames = fd_names(svc))) {
        free(l->items);
        l->items = NULL;
    }
    if (!l || !l->items) {
        free(fdnames);
        free(l);
        return NULL;
    }
    for (char *const *e = psup_environ; e && *e; e++)
        if (keep_inherited(svc, *e))
            add(l, *e);
    for (size_t i = 0; i < svc->n_env; i++)
        add(l, svc->env[i]);
    if (svc->user_name) {
        const char *names[3] = {"HOME", "USER", "LOGNAME"};
        const char *val[3] = {svc->user_home, svc->user_name, svc->user_name};
        for (int i = 0; i < 3; i++) {
            if (!val[i] || set_by_service(svc, names[i], strlen(names[i])))
                continue;
            /* Exact sizes: a home directory may be as long as a path. */
            if (asprintf(&l->owned[i], "%s=%s", names[i], val[i]) < 0) {
                l->owned[i] = NULL;
                goto done;
            }
            add(l, l->owned[i]);
        }
    }
    snprintf(service, sizeof(service), "PSUP_SERVICE=%s", svc->name);
    add(l, service);
    if (fdnames) {
        snprintf(fds, sizeof(fds), "LISTEN_FDS=%zu", svc->n_listen);
        add(l, fds);
        add(l, fdnames);
    }

    size_t bytes = (l->n + 1) * sizeof(char *);
    for (size_t i = 0; i < l->n; i++)
        bytes += strlen(l->items[i]) + 1;
    out = malloc(bytes);
    if (out) {
        char *p = (char *)(out + l->n + 1);
        for (size_t i = 0; i < l->n; i++) {
            size_t len = strlen(l->items[i]) + 1;
            memcpy(p, l->items[i], len);
            out[i] = p;
            p += len;
        }
        out[l->n] = NULL;
        *n = l->n;
    }
done:
    for (int i = 0; i < 3; i++)
        free(l->owned[i]);
    free(fdnames);
    free(l->items);
    free(l);
    return out;
}
