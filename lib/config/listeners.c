/* SPDX-License-Identifier: MIT */
/*
 * Listen addresses, a service's and the admin endpoint's, and the mode a
 * service's make (spec/config.md, "listen" and "mode"): each address
 * parsed, none twice, none overlapping another of its protocol on one
 * port, a service's all of the kind its mode takes (stream listeners for
 * accept, UDP for datagram). Tables of the addresses and of (protocol,
 * port, scope) seen in the whole file keep it linear.
 */
#include "config/config.h"
#include "config/internal.h"

#include <stdio.h>
#include <string.h>

bool cfg_same_addr(const void *a, const void *b)
{
    return psup_addr_same(a, b);
}

static const struct psup_addr *listen_at(const struct ctx *c, const struct cfg_entry *e)
{
    if (e->a == CFG_ADMIN_LISTENER)
        return &c->cfg->admin.listen[e->b];
    return &c->cfg->services[e->a].listen[e->b];
}

/* "services[0].listen[1]", or "admin.listen[1]". */
static const char *listen_path(const struct cfg_entry *e, char buf[64])
{
    if (e->a == CFG_ADMIN_LISTENER)
        snprintf(buf, 64, "admin.listen[%zu]", e->b);
    else
        snprintf(buf, 64, "services[%zu].listen[%zu]", e->a, e->b);
    return buf;
}

/* The key of (protocol, port, scope) in the table of scopes: TCP and UDP
 * ports never overlap each other. */
static uint64_t scope_key(const struct psup_addr *a, enum psup_addr_scope scope)
{
    uint64_t port = psup_sockaddr_port(&a->u.sa);

    return (port << 3 | (uint64_t)scope) << 1 | (a->proto == PSUP_PROTO_UDP);
}

/* The first earlier address on a's port that the kernel will not bind
 * beside a (a wildcard of the other's family), or NULL. */
static const struct cfg_entry *find_overlap(struct ctx *c, const struct psup_addr *a)
{
    enum psup_addr_scope scope = psup_addr_scope(a);
    const struct cfg_entry *first = NULL;

    for (int k = PSUP_SCOPE_V4_ONE; k <= PSUP_SCOPE_ALL; k++) {
        struct cfg_entry e = {.hash = scope_key(a, (enum psup_addr_scope)k)};
        const struct cfg_entry *o = psup_addr_scopes_overlap(scope, (enum psup_addr_scope)k)
                                        ? cfg_table_find(&c->listen_scopes, &e)
                                        : NULL;
        if (o && (!first || o->a < first->a || (o->a == first->a && o->b < first->b)))
            first = o;
    }
    return first;
}

void cfg_check_listen_unique(struct ctx *c, size_t owner, size_t i)
{
    struct cfg_entry e = {.a = owner, .b = i};
    const struct psup_addr *a = listen_at(c, &e);
    enum psup_addr_scope scope = psup_addr_scope(a);
    char text[PSUP_ADDR_STRLEN], other[PSUP_ADDR_STRLEN], where[64];
    const struct cfg_entry *first;

    if (a->proto != PSUP_PROTO_UNIX && psup_sockaddr_port(&a->u.sa) == 0)
        return;
    e.hash = psup_addr_hash(a);
    e.key = a;
    psup_addr_format(a, text, sizeof(text));
    if ((first = cfg_table_find(&c->listen_addrs, &e))) {
        cfg_fail(c, "%s is already used by %s", text, listen_path(first, where));
        return;
    }
    if (scope != PSUP_SCOPE_NONE && (first = find_overlap(c, a))) {
        psup_addr_format(listen_at(c, first), other, sizeof(other));
        cfg_fail(c, "%s overlaps %s (%s): the kernel does not bind a wildcard address beside "
                 "another of its family on the same port", text, listen_path(first, where), other);
        return;
    }
    cfg_table_add(c, &c->listen_addrs, &e);
    if (scope == PSUP_SCOPE_NONE)
        return;
    e.hash = scope_key(a, scope);
    e.key = NULL;
    cfg_table_add(c, &c->listen_scopes, &e);
}

void cfg_parse_address(struct ctx *c, const char *s, struct psup_addr *a, const char *no_udp)
{
    char v4[PSUP_ADDR_STRLEN];
    const char *why = NULL;
    int rc = psup_addr_parse(s, a, &why);

    if (rc == PSUP_ADDR_V4_MAPPED) {
        psup_addr_format(a, v4, sizeof(v4));
        cfg_fail(c, "invalid address %s: %s; write %s", cfg_quote(c, s), why, v4);
    } else if (rc < 0) {
        cfg_fail(c, "invalid address %s: %s", cfg_quote(c, s), why);
    } else if (a->proto == PSUP_PROTO_UDP && no_udp) {
        cfg_fail(c, "%s", no_udp);
    } else if (a->proto == PSUP_PROTO_UNIX) {
        cfg_check_unix_path(c, a);
    }
}

void cfg_parse_listen(struct ctx *c, const struct fields *f, int k_listen, size_t svc_index)
{
    struct psup_service_config *svc = &c->cfg->services[svc_index];
    const cJSON *v = cfg_enter(c, f, k_listen), *el;
    size_t i = 0;

    if (!v) {
        cfg_fail_at(c, f, k_listen, "missing (required)");
        return;
    }
    if (!cfg_want_array(c, v, "a non-empty array of addresses"))
        goto out;

    size_t n = (size_t)cJSON_GetArraySize(v);
    svc->listen = cfg_xcalloc(c, n, sizeof(*svc->listen));
    svc->listen_text = cfg_xcalloc(c, n + 1, sizeof(*svc->listen_text));
    if (!svc->listen || !svc->listen_text)
        goto out;
    svc->n_listen = n;
    cJSON_ArrayForEach(el, v) {
        const char *s;
        size_t before = c->n_problems;

        cfg_push_index(c, i);
        if (cfg_want_string(c, el, false, &s)) {
            svc->listen_text[i] = cfg_xstrdup(c, s);
            cfg_parse_address(c, s, &svc->listen[i], NULL);
            if (c->n_problems == before)
                cfg_check_listen_unique(c, svc_index, i);
        }

        /* An entry with a problem must not match a later one; its protocol
         * stays, as written, for the service's mode. */
        if (c->n_problems > before) {
            enum psup_proto proto = svc->listen[i].proto;
            memset(&svc->listen[i], 0, sizeof(svc->listen[i]));
            svc->listen[i].proto = proto;
        }
        cfg_path_pop(c);
        i++;
    }
out:
    cfg_path_pop(c);
}

/* An entry with a problem is zeroed: it says nothing about the service. */
static bool known(const struct psup_addr *a)
{
    return a->u.sa.sa_family != AF_UNSPEC;
}

bool cfg_has_listener(const struct psup_service_config *svc, bool udp)
{
    for (size_t i = 0; i < svc->n_listen; i++)
        if (!known(&svc->listen[i]) || (svc->listen[i].proto == PSUP_PROTO_UDP) == udp)
            return true;
    return false;
}

/* A service in accept or datagram mode has listeners of one kind: stream
 * (TCP, unix) for accept, UDP for datagram. Each listener of the other
 * kind is reported where it is. */
static void check_listener_kinds(struct ctx *c, const struct fields *f, int k_listen,
                                 const struct psup_service_config *svc, bool explicit)
{
    bool want_udp = svc->mode == PSUP_MODE_DATAGRAM;
    char text[PSUP_ADDR_STRLEN];

    if (!cfg_enter(c, f, k_listen))
        return;
    for (size_t i = 0; i < svc->n_listen; i++) {
        const struct psup_addr *a = &svc->listen[i];
        if (!known(a) || (a->proto == PSUP_PROTO_UDP) == want_udp)
            continue;
        psup_addr_format(a, text, sizeof(text));
        cfg_push_index(c, i);
        if (!explicit)
            cfg_fail(c, "%s is a %s listener and listen[0] a %s listener: a service has stream "
                     "listeners (TCP, unix) or UDP listeners, not both; make it two services",
                     text, want_udp ? "stream" : "UDP", want_udp ? "UDP" : "stream");
        else if (want_udp)
            cfg_fail(c, "%s is a stream listener: mode \"datagram\" takes UDP listeners "
                     "(udp://HOST:PORT)", text);
        else
            cfg_fail(c, "%s is a UDP listener: mode \"accept\" takes stream listeners (TCP, "
                     "unix); UDP listeners take mode \"datagram\"", text);
        cfg_path_pop(c);
    }
    cfg_path_pop(c);
}

/* The mode, "accept", "datagram" or "wait": by default datagram when the
 * first listener is UDP (as written, even if it has a problem), else
 * accept. A wait-mode server takes listeners of both kinds (spec/wait.md).
 * Returns false when the mode given is not one. */
bool cfg_parse_mode(struct ctx *c, const struct fields *f, int k_mode, int k_listen,
                    struct psup_service_config *svc)
{
    static const char *const modes[] = {"accept", "datagram", "wait", NULL};
    const cJSON *v = cfg_enter(c, f, k_mode);
    int mode;

    svc->mode = svc->n_listen && svc->listen[0].proto == PSUP_PROTO_UDP ? PSUP_MODE_DATAGRAM
                                                                        : PSUP_MODE_ACCEPT;
    if (v) {
        bool ok = cfg_want_choice(c, v, modes, &mode);
        cfg_path_pop(c);
        if (!ok)
            return false; /* the listeners are not judged against a mode that is not one */
        svc->mode = (enum psup_mode)mode;
    }
    if (svc->mode == PSUP_MODE_ACCEPT || svc->mode == PSUP_MODE_DATAGRAM)
        check_listener_kinds(c, f, k_listen, svc, v != NULL);
    return true;
}
