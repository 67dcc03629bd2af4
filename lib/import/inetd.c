/* SPDX-License-Identifier: MIT */
/*
 * inetd.conf, in the forms of the inetds Debian ships (openbsd-inetd,
 * inetutils-inetd, busybox) and FreeBSD's:
 *
 *   [HOST:]SERVICE SOCKET-TYPE PROTOCOL WAIT USER[:GROUP] SERVER [ARGV0 ARGS...]
 *
 * - '#' starts a comment line; a line that starts with a blank continues
 *   the entry before it (openbsd-inetd); "HOST:" alone sets the host of the
 *   entries after it ("*" is every address);
 * - SERVICE is a name of the services database or a port number; for the
 *   unix protocol, a socket path; "tcpmux/NAME" is a TCPMUX service;
 * - PROTOCOL is tcp or udp (IPv4), tcp6 or udp6 (IPv6), tcp46 or udp46
 *   (both), unix, or rpc/... (not imported);
 * - WAIT is wait or nowait, with ".MAX" (":MAX") the starts allowed a
 *   minute before inetd stops the service, or FreeBSD's
 *   "/MAX-CHILD[/MAX-CONNECTIONS-PER-IP-PER-MINUTE[/MAX-CHILD-PER-IP]]";
 * - USER[:GROUP] or USER[.GROUP], FreeBSD's "/LOGIN-CLASS" after them;
 * - SERVER is a program and the arguments start with argv[0]; "internal"
 *   is one of inetd's own services.
 */
#include "import/import_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFUSED 1
#define MAX_WORKERS 65536
#define MAX_PER_SOURCE 65536

/* One entry: its words (continuation lines joined) and its first line. */
struct line {
    struct psup_import_strv words;
    struct psup_import_where where;
};

struct inetd {
    const struct psup_import_options *opts;
    struct psup_import_result *r;
    struct psup_import_services_db *db;
    char *default_host; /* NULL: every address */
};

/* An entry being translated. */
struct entry {
    struct inetd *in;
    const struct line *line;
    struct psup_import_service *s;
    char what[96]; /* "service NAME" */
    const char *service;
    char *host;
    bool dgram;
    bool unix_socket;
    int family; /* 4, 6, or 0 for both */
    const char *proto;   /* "tcp" or "udp", for the services database */
    const char *server;
};

/* One of the six fields every entry has (import_entry checks). */
static const char *field(const struct entry *e, size_t i)
{
    return e->line->words.items[i];
}

static bool is(const char *value, const char *text)
{
    return value && strcmp(value, text) == 0;
}

static int refuse(struct entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(struct entry *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = psup_import_lostv(e->in->r, &e->line->where, e->what, fmt, ap);
    va_end(ap);
    return rc < 0 ? rc : REFUSED;
}

/* ------------------------------------------------------------------------ */
/* Fields. */

/* [HOST:]SERVICE; HOST may be [V6]. */
static int host_and_service(struct entry *e)
{
    const char *first = field(e, 0);
    const char *colon = strrchr(first, ':');

    e->service = colon ? colon + 1 : first;
    if (colon) {
        size_t n = (size_t)(colon - first);
        if (n >= 2 && first[0] == '[' && first[n - 1] == ']')
            e->host = strndup(first + 1, n - 2);
        else
            e->host = strndup(first, n);
    } else if (e->in->default_host) {
        e->host = strdup(e->in->default_host);
    }
    if ((colon || e->in->default_host) && !e->host)
        return -ENOMEM;
    snprintf(e->what, sizeof(e->what), "service %.80s", e->service);
    if (strncmp(e->service, "tcpmux/", 7) == 0)
        return refuse(e, "a TCPMUX service: psup has no TCPMUX multiplexer");
    return 0;
}

static int socket_and_protocol(struct entry *e)
{
    const char *type = field(e, 1);
    char proto[32];

    snprintf(proto, sizeof(proto), "%s", field(e, 2));
    char *comma = strchr(proto, ',');
    if (comma) {
        *comma = '\0';
        int rc = psup_import_lost(e->in->r, &e->line->where, "protocol",
                                  "%s: psup sets no socket buffer sizes", comma + 1);
        if (rc < 0)
            return rc;
    }
    if (!is(type, "stream") && !is(type, "dgram"))
        return refuse(e, "socket type %s: psup serves stream and dgram sockets", type);
    e->dgram = is(type, "dgram");
    if (strncmp(proto, "rpc/", 4) == 0)
        return refuse(e, "an RPC service: psup does not register with the portmapper");
    e->unix_socket = is(proto, "unix");
    if (e->unix_socket && !e->dgram)
        return 0;
    static const struct { const char *name; int family; } protos[] = {
        {"tcp", 4}, {"tcp4", 4}, {"tcp6", 6}, {"tcp46", 0},
        {"udp", 4}, {"udp4", 4}, {"udp6", 6}, {"udp46", 0}};
    for (size_t i = 0; i < sizeof(protos) / sizeof(*protos); i++) {
        if (!is(proto, protos[i].name))
            continue;
        e->family = protos[i].family;
        e->proto = proto[0] == 't' ? "tcp" : "udp";
        if (is(e->proto, "udp") != e->dgram)
            return refuse(e, "protocol %s with socket type %s: no such socket", proto, type);
        return 0;
    }
    return refuse(e, "protocol %s: psup serves tcp, tcp6, tcp46, udp, udp6, udp46 and unix "
                     "streams", proto);
}

/* A host: numeric, "*", or localhost; written back into e->host. */
static int host_address(struct entry *e)
{
    struct in_addr in;
    struct in6_addr in6;
    char text[INET6_ADDRSTRLEN];

    if (!e->host || is(e->host, "*"))
        return 0;
    if (is(e->host, "localhost"))
        snprintf(text, sizeof(text), "%s", e->family == 6 ? "::1" : "127.0.0.1");
    else if (inet_pton(AF_INET, e->host, &in) == 1 && e->family != 6)
        inet_ntop(AF_INET, &in, text, sizeof(text));
    else if (inet_pton(AF_INET6, e->host, &in6) == 1 && e->family != 4)
        inet_ntop(AF_INET6, &in6, text, sizeof(text));
    else if (inet_pton(AF_INET, e->host, &in) == 1 || inet_pton(AF_INET6, e->host, &in6) == 1)
        return refuse(e, "host %s does not match protocol %s", e->host, field(e, 2));
    else
        return refuse(e, "host %s: psup binds addresses, not names; write its address", e->host);
    free(e->host);
    e->host = strdup(text);
    return e->host ? 0 : -ENOMEM;
}

static int listener(struct entry *e)
{
    char *address = NULL;
    int port;

    if (e->unix_socket) {
        if (asprintf(&address, "unix:%s", e->service) < 0)
            return -ENOMEM;
        return psup_import_strv_push_owned(&e->s->listen, address);
    }
    int rc = host_address(e);
    if (rc != 0)
        return rc;
    port = (int)psup_import_number(e->service, 65535);
    if (port < 0) {
        rc = psup_import_services_lookup(e->in->db, e->service, e->proto, &port);
        const char *path = psup_import_services_path(e->in->db);
        if (rc == 1)
            return refuse(e, "%s/%s is not in %s", e->service, e->proto, path);
        if (rc < 0 && rc != -ENOMEM)
            return refuse(e, "cannot read %s (%s) for the port of %s/%s: write the port number "
                             "instead, or name the file with --services",
                          path, strerror(-rc), e->service, e->proto);
        if (rc < 0)
            return rc;
    }
    return psup_import_strv_push_owned(
        &e->s->listen, psup_import_listen_address(e->host, e->family, port, e->dgram));
}

/* ------------------------------------------------------------------------ */
/* wait / nowait and the limits written with it. */

static int per_minute(struct entry *e, const char *max)
{
    long n = psup_import_number(max, 1000000);

    if (n <= 0)
        return psup_import_lost(e->in->r, &e->line->where, "wait", "%s: expected a number of "
                                "starts a minute above 0", max);
    if (e->s->mode == PSUP_IMPORT_MODE_WAIT)
        return psup_import_lost(e->in->r, &e->line->where, "wait",
                                ".%s: a wait-mode server is started once and restarted with "
                                "psup's backoff", max);
    e->s->rate = (double)n / 60;
    e->s->rate_burst = n;
    return psup_import_note(e->in->r, &e->line->where, "wait",
                            ".%s: rate %ld a minute; above it inetd stops the service for ten "
                            "minutes, psup refuses only the connections over the rate", max, n);
}

/* FreeBSD: /MAX-CHILD/MAX-CONNECTIONS-PER-IP-PER-MINUTE/MAX-CHILD-PER-IP. */
static int freebsd_limits(struct entry *e, char *limits)
{
    char *save = NULL;
    int rc = 0;

    for (int i = 0; rc == 0 && i < 3; i++) {
        char *field = strtok_r(i == 0 ? limits : NULL, "/", &save);
        long n = field ? psup_import_number(field, 2147483647L) : 0;
        if (n <= 0 || e->s->mode == PSUP_IMPORT_MODE_WAIT)
            continue;
        if (i == 0)
            e->s->max_workers = n > MAX_WORKERS ? MAX_WORKERS : n;
        else if (i == 1)
            rc = psup_import_lost(e->in->r, &e->line->where, "wait",
                                  "%ld connections per address a minute: psup limits the "
                                  "connections of an address at once (max_per_source), not a "
                                  "minute", n);
        else
            e->s->max_per_source = n > MAX_PER_SOURCE ? MAX_PER_SOURCE : n;
    }
    return rc;
}

static int wait_field(struct entry *e)
{
    char text[64];

    snprintf(text, sizeof(text), "%s", field(e, 3));
    char *freebsd = strchr(text, '/');
    char *max = freebsd ? NULL : strpbrk(text, ".:");
    if (freebsd)
        *freebsd++ = '\0';
    if (max)
        *max++ = '\0';
    if (!is(text, "wait") && !is(text, "nowait"))
        return refuse(e, "expected wait or nowait, got %s", field(e, 3));
    bool internal = is(e->server, "internal");
    bool wait = is(text, "wait") || (e->dgram && !internal);
    e->s->mode = wait && !internal ? PSUP_IMPORT_MODE_WAIT : PSUP_IMPORT_MODE_DEFAULT;
    int rc = 0;
    if (e->dgram && !internal && is(text, "nowait"))
        rc = psup_import_note(e->in->r, &e->line->where, "wait",
                              "nowait on a datagram socket: inetd gives the server the socket "
                              "whenever it is readable; psup's wait mode runs one server at a "
                              "time");
    if (rc == 0 && max)
        rc = per_minute(e, max);
    if (rc == 0 && freebsd)
        rc = freebsd_limits(e, freebsd);
    return rc;
}

/* USER[:GROUP] or USER[.GROUP], then FreeBSD's /LOGIN-CLASS. */
static int user_field(struct entry *e)
{
    char *user = strdup(field(e, 4));

    if (!user)
        return -ENOMEM;
    char *class = strchr(user, '/');
    if (class)
        *class++ = '\0';
    char *group = strchr(user, ':');
    if (!group)
        group = strchr(user, '.');
    if (group)
        *group++ = '\0';
    int rc = psup_import_set_id(&e->s->user, user);
    if (rc == 0 && group && *group)
        rc = psup_import_set_id(&e->s->group, group);
    if (rc == 0 && class)
        rc = psup_import_lost(e->in->r, &e->line->where, "user",
                              "login class %s: psup has no login classes", class);
    free(user);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The program: the arguments start with argv[0]. */

static int program(struct entry *e)
{
    const struct psup_import_strv *words = &e->line->words;

    if (is(e->server, "internal")) {
        int rc = psup_import_internal_command(e->s, e->service, e->dgram);
        return rc == -ENOENT ? refuse(e, "inetd's internal %s/%s has no psup equivalent",
                                      e->service, e->dgram ? "dgram" : "stream")
                             : rc;
    }
    struct psup_import_argv0 a = {
        .r = e->in->r,
        .where = &e->line->where,
        .name = "server",
        .server = e->server,
        .argv = words->items + 6,
        .argc = words->count - 6,
    };
    int rc = psup_import_argv0_command(&a, e->s);
    return rc == -ENOENT ? refuse(e, "tcpd without the program it runs") : rc;
}

/* ------------------------------------------------------------------------ */

static int name_of(struct entry *e)
{
    struct psup_import_result *r = e->in->r;
    const char *base = e->unix_socket ? psup_import_basename(e->service) : e->service;
    char *name = psup_import_service_name(base);

    for (size_t i = 0; name && i < r->n_services && !psup_import_listen_ephemeral(e->s->listen.items[0]); i++)
        if (psup_import_strv_find(&r->services[i]->listen, e->s->listen.items[0]) >= 0) {
            free(name);
            return refuse(e, "%s is already the address of %s", e->s->listen.items[0],
                          r->services[i]->name);
        }
    /* The same service over another protocol: "echo-udp"; then numbers. */
    for (int n = 1; name && psup_import_name_taken(r, name); n++) {
        char *other = NULL;
        int len = n == 1 ? asprintf(&other, "%.50s-%s", base, field(e, 2))
                         : asprintf(&other, "%.50s-%s-%d", base, field(e, 2), n);
        free(name);
        name = len < 0 ? NULL : psup_import_service_name(other);
        free(other);
    }
    e->s->name = name;
    return name ? 0 : -ENOMEM;
}

static int translate(struct entry *e)
{
    int rc = host_and_service(e);

    if (rc == 0)
        rc = socket_and_protocol(e);
    if (rc == 0)
        rc = listener(e);
    if (rc == 0)
        rc = wait_field(e);
    if (rc == 0)
        rc = user_field(e);
    if (rc == 0)
        rc = program(e);
    if (rc == 0)
        rc = name_of(e);
    return rc;
}

static int import_entry(struct inetd *in, const struct line *line)
{
    static const char *const fields[] = {"a socket type", "a protocol", "wait or nowait",
                                         "a user", "a server program"};
    struct entry e = {.in = in, .line = line};
    const char *bad = NULL;

    if (line->words.count < 6)
        return psup_import_fail(in->r, &line->where, "expected %s after \"%s\"",
                                fields[line->words.count - 1],
                                line->words.items[line->words.count - 1]);
    e.server = line->words.items[5];
    e.s = psup_import_service_new();
    if (!e.s)
        return -ENOMEM;
    int rc = translate(&e);
    if (rc == 0 && !psup_import_service_utf8(e.s, &bad))
        rc = refuse(&e, "\"%s\" is not UTF-8, which a JSON file cannot hold", bad);
    free(e.host);
    if (rc != 0) {
        psup_import_service_free(e.s);
        return rc == REFUSED ? 0 : rc;
    }
    return psup_import_add_service(in->r, e.s);
}

/* ------------------------------------------------------------------------ */
/* Lines. */

static int split_words(const char *text, size_t len, struct psup_import_strv *v)
{
    size_t i = 0;

    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
            i++;
        size_t start = i;
        while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
            i++;
        if (i > start) {
            int rc = psup_import_strv_push_owned(v, strndup(text + start, i - start));
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* "HOST:" alone: the host of the entries that follow ("*": every address). */
static int default_host(struct inetd *in, const struct line *line)
{
    const char *w = line->words.items[0];
    size_t n = strlen(w) - 1;

    free(in->default_host);
    in->default_host = NULL;
    if (n == 1 && w[0] == '*')
        return 0;
    if (n >= 2 && w[0] == '[' && w[n - 1] == ']')
        in->default_host = strndup(w + 1, n - 2);
    else
        in->default_host = strndup(w, n);
    return in->default_host ? 0 : -ENOMEM;
}

static int finish_line(struct inetd *in, struct line *line)
{
    int rc = 0;

    if (line->words.count == 1 && line->words.items[0][strlen(line->words.items[0]) - 1] == ':')
        rc = default_host(in, line);
    else if (line->words.count)
        rc = import_entry(in, line);
    psup_import_strv_clear(&line->words);
    return rc;
}

static int import_text(struct inetd *in, const char *origin, const char *text)
{
    struct line line = {.where = {.file = origin}};
    int number = 0;
    int rc = 0;

    for (const char *p = text; rc == 0 && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t lead = strspn(p, " \t");
        number++;
        bool comment = lead < len && p[lead] == '#';
        bool empty = strspn(p, " \t\r") >= len;
        /* A line starting with a blank continues the entry (openbsd-inetd). */
        bool continues = lead > 0 && line.words.count > 0;
        if (!comment && !empty && !continues) {
            rc = finish_line(in, &line);
            line.where.line = number;
        }
        if (rc == 0 && !comment && !empty)
            rc = split_words(p, len, &line.words);
        p += len + (nl ? 1 : 0);
    }
    if (rc == 0)
        rc = finish_line(in, &line);
    psup_import_strv_clear(&line.words);
    free(line.words.items);
    return rc;
}

static int import(const char *origin, const char *text, const struct psup_import_options *opts,
                  struct psup_import_result *r)
{
    struct inetd in = {.opts = opts, .r = r};
    int rc = 0;

    in.db = psup_import_services_open(opts->services_path);
    if (!in.db)
        return -ENOMEM;
    rc = import_text(&in, origin, text);
    psup_import_services_close(in.db);
    free(in.default_host);
    if (rc == 0 && r->n_services == 0)
        rc = psup_import_global(r, true, "no service to import: psup needs at least one");
    psup_import_sort_messages(r);
    return rc;
}

int psup_import_inetd_text(const char *origin, const char *text,
                           const struct psup_import_options *opts, struct psup_import_result *r)
{
    return import(origin, text, opts, r);
}

int psup_import_inetd(const char *path, const struct psup_import_options *opts,
                      struct psup_import_result *r)
{
    char *text = NULL;
    int rc = psup_import_read_file(path, &text);

    if (rc == -ENOMEM)
        return rc;
    if (rc < 0)
        return psup_import_fail(r, &(struct psup_import_where){.file = path}, "cannot read %s: %s",
                                path, strerror(-rc));
    rc = import(path, text, opts, r);
    free(text);
    return rc;
}
