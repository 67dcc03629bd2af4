/* SPDX-License-Identifier: MIT */
/*
 * The top-level "admin" object: where psup's own HTTP endpoint listens
 * (spec/admin.md), how many clients it serves at once, and its unix socket
 * files. Its addresses are checked like a service's, and against every
 * service's (service.c): one socket address cannot be bound twice.
 */
#include "config/config.h"
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ADMIN_CLIENTS 1024

enum { A_LISTEN, A_MAX_CLIENTS, A_SOCKET_MODE, A_SOCKET_USER, A_SOCKET_GROUP };

static const char *const admin_keys[] = {
    "listen", "max_clients", "socket_mode", "socket_user", "socket_group", NULL,
};

static void parse_admin_address(struct ctx *c, const cJSON *el, size_t i)
{
    struct psup_admin_config *adm = &c->cfg->admin;
    size_t before = c->n_problems;
    const char *s;

    if (cfg_want_string(c, el, false, &s)) {
        adm->listen_text[i] = cfg_xstrdup(c, s);
        cfg_parse_address(c, s, &adm->listen[i],
                          "the admin endpoint speaks HTTP: use a TCP or unix: address");
        if (c->n_problems == before)
            cfg_check_listen_unique(c, CFG_ADMIN_LISTENER, i);
    }
    /* An entry with a problem must not match a later one. */
    if (c->n_problems > before)
        memset(&adm->listen[i], 0, sizeof(adm->listen[i]));
}

static void parse_admin_listen(struct ctx *c, const cJSON *v)
{
    struct psup_admin_config *adm = &c->cfg->admin;
    const cJSON *el;
    size_t i = 0;

    if (!cfg_want_array(c, v, "a non-empty array of addresses"))
        return;
    size_t n = (size_t)cJSON_GetArraySize(v);
    adm->listen = cfg_xcalloc(c, n, sizeof(*adm->listen));
    adm->listen_text = cfg_xcalloc(c, n + 1, sizeof(*adm->listen_text));
    if (!adm->listen || !adm->listen_text)
        return;
    adm->n_listen = n;
    cJSON_ArrayForEach(el, v) {
        cfg_push_index(c, i);
        parse_admin_address(c, el, i);
        cfg_path_pop(c);
        i++;
    }
}

/* socket_mode, socket_user, socket_group: as a service's (spec/config.md
 * 4.1), with mode 0600 when not set. */
static void parse_socket_file(struct ctx *c, const struct fields *f)
{
    static const int keys[] = {A_SOCKET_MODE, A_SOCKET_USER, A_SOCKET_GROUP};
    struct psup_admin_config *adm = &c->cfg->admin;

    cfg_parse_socket_file(c, f, keys, !adm->listen || cfg_has_unix_file(adm->listen, adm->n_listen),
                          &adm->socket_mode, &adm->socket_uid, &adm->socket_gid);
}

void cfg_parse_admin(struct ctx *c, const cJSON *v)
{
    struct psup_admin_config *adm = &c->cfg->admin;
    const cJSON *it;
    struct fields f;

    if (!cJSON_IsObject(v)) {
        cfg_fail(c, "expected an object with a \"listen\" array, got %s", cfg_type_name(v));
        return;
    }
    cfg_read_fields(c, v, admin_keys, &f);
    if ((it = cfg_enter(c, &f, A_LISTEN))) {
        parse_admin_listen(c, it);
        cfg_path_pop(c);
    } else {
        cfg_fail_at(c, &f, A_LISTEN, "missing (required)");
    }
    if ((it = cfg_enter(c, &f, A_MAX_CLIENTS))) {
        cfg_want_uint(c, it, 1, MAX_ADMIN_CLIENTS, &adm->max_clients);
        cfg_path_pop(c);
    }
    parse_socket_file(c, &f);
}

void cfg_admin_defaults(struct psup_admin_config *adm)
{
    adm->max_clients = 32;
    adm->socket_mode = 0600;
    adm->socket_uid = (uid_t)-1;
    adm->socket_gid = (gid_t)-1;
}

void cfg_free_admin(struct psup_admin_config *adm)
{
    for (size_t i = 0; adm->listen_text && i < adm->n_listen; i++)
        free(adm->listen_text[i]);
    free(adm->listen_text);
    free(adm->listen);
}
