/* SPDX-License-Identifier: MIT */
/*
 * One xinetd service, read and filled with its defaults, as a psup service:
 * first what decides whether it can be imported at all (its type, socket,
 * port, address and program), then each setting, reporting what has no
 * equivalent. A service xinetd itself would refuse (a missing attribute, a
 * port that disagrees with /etc/services, a datagram service that does not
 * wait) is reported and left out, as xinetd leaves it out.
 */
#include "import/xinetd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int psup_import_xinetd_refuse(struct xinetd_conv *v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = psup_import_lostv(v->ctx->r, &v->c->entry->where, v->what, fmt, ap);
    va_end(ap);
    return rc < 0 ? rc : XINETD_REFUSED;
}

#define refuse psup_import_xinetd_refuse

static const struct xinetd_attr *attr(const struct xinetd_conv *v, enum xinetd_attr_id id)
{
    return v->c->attr[id];
}

static const char *value(const struct xinetd_conv *v, enum xinetd_attr_id id)
{
    return psup_import_xinetd_value(v->c, id);
}

const struct xinetd_attr *psup_import_xinetd_filled(const struct xinetd_conv *v,
                                                    enum xinetd_attr_id id)
{
    return v->c->attr[id] ? v->c->attr[id] : v->ctx->defaults->attr[id];
}

static const char *filled_value(const struct xinetd_conv *v, enum xinetd_attr_id id)
{
    const struct xinetd_attr *a = psup_import_xinetd_filled(v, id);
    return a && a->values.count ? a->values.items[0] : NULL;
}

static bool is(const char *value, const char *text)
{
    return value && strcmp(value, text) == 0;
}

/* ------------------------------------------------------------------------ */
/* Whether it can be imported. */

static int kind(struct xinetd_conv *v)
{
    unsigned types = v->c->types;

    if (types & XT_RPC)
        return refuse(v, "an RPC service: psup does not register with the portmapper");
    if (types & (XT_TCPMUX | XT_TCPMUXPLUS))
        return refuse(v, "a TCPMUX service: psup has no TCPMUX multiplexer");
    if (types & XT_SPECIAL)
        return refuse(v, "one of xinetd's own SPECIAL services");
    if (v->c->flags & XF_SENSOR)
        return refuse(v, "a SENSOR: xinetd denies every client of it for deny_time; psup has no "
                         "such trap");
    if (attr(v, XA_REDIRECT))
        return refuse(v, "redirect: xinetd relays the connection to %s port %s itself; psup runs "
                         "a command per connection, which can relay it: "
                         "[\"socat\", \"-\", \"TCP:%s:%s\"]",
                      attr(v, XA_REDIRECT)->values.items[0], attr(v, XA_REDIRECT)->values.items[1],
                      attr(v, XA_REDIRECT)->values.items[0], attr(v, XA_REDIRECT)->values.items[1]);
    return 0;
}

/* socket_type, protocol and wait (service_fill derives one of the first
 * two from the other; check_entry refuses a datagram service that does not
 * wait). */
static int socket_kind(struct xinetd_conv *v, const char **proto)
{
    const char *type = value(v, XA_SOCKET_TYPE);

    *proto = value(v, XA_PROTOCOL);
    if (!type && is(*proto, "tcp"))
        type = "stream";
    if (!type && is(*proto, "udp"))
        type = "dgram";
    if (!type)
        return refuse(v, "no socket_type: xinetd refuses the service");
    if (!is(type, "stream") && !is(type, "dgram"))
        return refuse(v, "socket_type %s: psup serves stream and dgram sockets", type);
    v->dgram = is(type, "dgram");
    if (!*proto)
        *proto = v->dgram ? "udp" : "tcp";
    if (!is(*proto, "tcp") && !is(*proto, "udp"))
        return refuse(v, "protocol %s: psup serves tcp and udp", *proto);
    if (is(*proto, "udp") != v->dgram)
        return refuse(v, "protocol %s with socket_type %s: no such socket", *proto, type);
    if (!value(v, XA_WAIT))
        return refuse(v, "no wait: xinetd refuses the service");
    bool wait = is(value(v, XA_WAIT), "yes");
    if (v->dgram && !wait)
        return refuse(v, "socket_type dgram with wait = no: xinetd refuses it (a datagram "
                         "server must wait)");
    v->waits = wait && !(v->c->types & XT_INTERNAL);
    v->s->mode = v->waits ? PSUP_IMPORT_MODE_WAIT : PSUP_IMPORT_MODE_DEFAULT;
    return 0;
}

/* port, or the service's name in the services database. */
static int port_of(struct xinetd_conv *v, const char *proto, int *port)
{
    const char *given = value(v, XA_PORT);
    const char *name = v->c->entry->name;

    *port = given ? (int)psup_import_number(given, 65535) : -1;
    if (v->c->types & XT_UNLISTED)
        return given ? 0 : refuse(v, "type UNLISTED without port: xinetd refuses it");
    struct psup_import_services_db *db = v->ctx->services_db;
    const char *path = psup_import_services_path(db);
    int listed;
    int rc = psup_import_services_lookup(db, name, proto, &listed);
    if (rc == 1)
        return refuse(v, "%s/%s is not in %s and type is not UNLISTED: xinetd refuses it", name,
                      proto, path);
    if (rc < 0 && rc != -ENOMEM)
        return refuse(v, "cannot read %s (%s) for the port of %s/%s: set port and type = "
                         "UNLISTED, or name the file with --services",
                      path, strerror(-rc), name, proto);
    if (rc < 0)
        return rc;
    if (given && *port != listed)
        return refuse(v, "port %d, but %s gives %s/%s port %d: xinetd refuses it", *port, path,
                      name, proto, listed);
    *port = listed;
    return 0;
}

/* bind or interface: a numeric address, or localhost. *family is 4 or 6. */
static int bind_host(struct xinetd_conv *v, int *family, char *host, size_t size)
{
    const char *bind = filled_value(v, XA_BIND);
    struct in_addr in;
    struct in6_addr in6;
    int wanted = v->c->flags & XF_IPV6 ? 6 : v->c->flags & XF_IPV4 ? 4 : 0;

    *host = '\0';
    if (!bind) {
        *family = wanted ? wanted : 6; /* xinetd's default: an IPv6 socket */
        return 0;
    }
    if (is(bind, "localhost")) {
        *family = wanted ? wanted : 4;
        snprintf(host, size, "%s", *family == 4 ? "127.0.0.1" : "::1");
        return 0;
    }
    if (inet_pton(AF_INET, bind, &in) == 1)
        *family = 4;
    else if (inet_pton(AF_INET6, bind, &in6) == 1)
        *family = 6;
    else
        return refuse(v, "bind %s: psup binds addresses, not names; write its address", bind);
    if (wanted && wanted != *family)
        return refuse(v, "bind %s is IPv%d, flags say IPv%d: xinetd cannot bind it", bind,
                      *family, wanted);
    inet_ntop(*family == 4 ? AF_INET : AF_INET6, *family == 4 ? (void *)&in : (void *)&in6, host,
              (socklen_t)size);
    return 0;
}

/* A service's own v6only makes xinetd set IPV6_V6ONLY, whatever its value
 * (service.c: SC_SPECIFIED(scp, A_V6ONLY)); the defaults' never does. */
static int v6only(struct xinetd_conv *v, int family, const char *host, bool *only)
{
    const struct xinetd_attr *own = attr(v, XA_V6ONLY);
    const struct xinetd_attr *def = v->ctx->defaults->attr[XA_V6ONLY];
    int rc = 0;

    *only = own != NULL;
    if (family != 6 || (*host && strcmp(host, "::") != 0))
        return 0;
    if (own && is(own->values.items[0], "no"))
        rc = psup_import_note(v->ctx->r, &own->where, "v6only",
                              "xinetd sets IPV6_V6ONLY when a service names v6only at all, even "
                              "\"no\": IPv6 only, as under xinetd");
    if (rc == 0 && !own && def && is(def->values.items[0], "yes"))
        rc = psup_import_note(v->ctx->r, &def->where, "v6only",
                              "xinetd applies v6only only where a service sets it: IPv4 and "
                              "IPv6, as under xinetd");
    return rc;
}

static int listener(struct xinetd_conv *v, int port)
{
    char host[64] = "";
    int family = 0;
    bool only = false;
    int rc = bind_host(v, &family, host, sizeof(host));

    if (rc == 0)
        rc = v6only(v, family, host, &only);
    if (rc != 0)
        return rc;
    const char *h = *host ? host : NULL;
    /* A dual-stack IPv6 socket is psup's "*". */
    if (family == 6 && !only && (!h || strcmp(h, "::") == 0))
        h = "*", family = 0;
    return psup_import_strv_push_owned(&v->s->listen,
                                       psup_import_listen_address(h, family, port, v->dgram));
}

/* ------------------------------------------------------------------------ */
/* The command. */

static int internal_command(struct xinetd_conv *v)
{
    const char *name = v->c->entry->name;
    int rc = psup_import_internal_command(v->s, name, v->dgram);

    if (rc != -ENOENT)
        return rc;
    if (is(name, "servers") || is(name, "services"))
        return refuse(v, "xinetd's internal %s lists xinetd's own state; psup logs its own on "
                         "SIGUSR1", name);
    return refuse(v, "xinetd's internal %s/%s has no psup equivalent", name,
                  v->dgram ? "dgram" : "stream");
}

/* NAMEINARGS: server_args start with argv[0]. */
static int name_in_args(struct xinetd_conv *v, const char *server, const struct xinetd_attr *args)
{
    bool tcpd = strcmp(psup_import_basename(server), "tcpd") == 0;
    struct psup_import_argv0 a = {
        .r = v->ctx->r,
        .where = &attr(v, tcpd ? XA_SERVER : XA_SERVER_ARGS)->where,
        .name = tcpd ? "server" : "server_args",
        .server = server,
        .argv = args->values.items,
        .argc = args->values.count,
    };
    return psup_import_argv0_command(&a, v->s);
}

static int command(struct xinetd_conv *v)
{
    const char *server = value(v, XA_SERVER);
    const struct xinetd_attr *args = attr(v, XA_SERVER_ARGS);

    if (v->c->types & XT_INTERNAL)
        return internal_command(v);
    if (!server)
        return refuse(v, "no server: xinetd refuses the service");
    if (!value(v, XA_USER))
        return refuse(v, "no user: xinetd refuses the service");
    if (v->c->flags & XF_NAMEINARGS) {
        if (!args)
            return refuse(v, "flags NAMEINARGS without server_args: xinetd refuses it");
        return name_in_args(v, server, args);
    }
    int rc = psup_import_strv_push(&v->s->command, server);
    for (size_t i = 0; rc == 0 && args && i < args->values.count; i++)
        rc = psup_import_strv_push(&v->s->command, args->values.items[i]);
    return rc;
}

/* ------------------------------------------------------------------------ */

static int credentials(struct xinetd_conv *v)
{
    int rc = 0;

    if (value(v, XA_USER))
        rc = psup_import_set_id(&v->s->user, value(v, XA_USER));
    if (rc == 0 && value(v, XA_GROUP))
        rc = psup_import_set_id(&v->s->group, value(v, XA_GROUP));
    /* xinetd sets the user's other groups only with groups = yes
     * (child.c set_credentials); psup does by default. */
    if (v->s->user.text && !is(filled_value(v, XA_GROUPS), "yes"))
        v->s->supplementary_groups = 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Its name, and the address nobody else may use. */

static int name_and_address(struct xinetd_conv *v)
{
    struct psup_import_result *r = v->ctx->r;
    char *name = psup_import_service_name(v->id);
    int rc = 0;

    if (!name)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_services && !psup_import_listen_ephemeral(v->s->listen.items[0]); i++)
        if (psup_import_strv_find(&r->services[i]->listen, v->s->listen.items[0]) >= 0) {
            free(name);
            return refuse(v, "%s is already the address of %s: xinetd cannot bind it twice",
                          v->s->listen.items[0], r->services[i]->name);
        }
    if (strcmp(name, v->id) != 0)
        rc = psup_import_note(r, &v->c->entry->where, v->what, "named %s (psup names are 1 to 64 "
                              "characters from A-Z a-z 0-9 _ . -)", name);
    for (int n = 2; rc == 0 && psup_import_name_taken(r, name); n++) {
        char *other = NULL;
        if (asprintf(&other, "%.60s-%d", v->id, n) < 0) {
            free(name);
            return -ENOMEM;
        }
        free(name);
        name = psup_import_service_name(other);
        free(other);
        if (!name)
            return -ENOMEM;
        if (!psup_import_name_taken(r, name))
            rc = psup_import_note(r, &v->c->entry->where, v->what,
                                  "the name is taken: named %s", name);
    }
    v->s->name = name;
    return rc;
}

static int steps(struct xinetd_conv *v)
{
    const char *proto = NULL;
    int port = 0;
    int rc = kind(v);

    if (rc == 0)
        rc = socket_kind(v, &proto);
    if (rc == 0)
        rc = port_of(v, proto, &port);
    if (rc == 0)
        rc = listener(v, port);
    if (rc == 0)
        rc = command(v);
    if (rc == 0)
        rc = credentials(v);
    if (rc == 0)
        rc = psup_import_xinetd_access(v);
    if (rc == 0)
        rc = psup_import_xinetd_settings(v);
    if (rc == 0)
        rc = name_and_address(v);
    return rc;
}

int psup_import_xinetd_convert(struct xinetd_context *ctx, const struct xinetd_conf *c)
{
    const char *id = psup_import_xinetd_value(c, XA_ID);
    struct xinetd_conv v = {.ctx = ctx, .c = c, .id = id ? id : c->entry->name};
    const char *bad = NULL;

    snprintf(v.what, sizeof(v.what), "service %.80s", v.id);
    v.s = psup_import_service_new();
    if (!v.s)
        return -ENOMEM;
    int rc = steps(&v);
    if (rc == 0 && !psup_import_service_utf8(v.s, &bad))
        rc = refuse(&v, "\"%s\" is not UTF-8, which a JSON file cannot hold", bad);
    if (rc != 0) {
        psup_import_service_free(v.s);
        return rc == XINETD_REFUSED ? 0 : rc;
    }
    return psup_import_add_service(ctx->r, v.s);
}
