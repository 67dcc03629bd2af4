/* SPDX-License-Identifier: MIT */
/*
 * What a service speaks on its connections: "protocol" ("raw" or "cgi")
 * with its "http" settings, turned at load into the whole argv of the CGI
 * relay the worker execs (spec/cgi.md), and the PROXY protocol keys
 * (spec/proxy.md). Keys are checked here, their place in the service's key
 * table is service.c's. Both are about connections psup takes: in wait
 * mode, where the server takes them, service.c rejects every one of these
 * keys; in datagram mode "cgi" and the PROXY keys are errors here.
 */
#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (1LL << 40) /* 1 TiB: a bound far above any memory file */
#define MAX_PROXY_TIMEOUT 3600.0
#define DEFAULT_PROXY_TIMEOUT_MS 5000
#define MAX_SERVER_NAME 255

/* Where psup-cgi is: resolved once by psup at start (cmd/psup/main.c). */
static char *cgi_relay;

void psup_config_set_cgi_relay(const char *path)
{
    free(cgi_relay);
    cgi_relay = path ? strdup(path) : NULL;
}

/* ---- the http object ---------------------------------------------------- */

enum {
    H_MAX_HEAD, H_MAX_FIELDS, H_MAX_BODY, H_MAX_RESPONSE_HEAD, H_HEAD_TIMEOUT,
    H_IDLE_TIMEOUT, H_SERVER_NAME, H_COUNT,
};

static const char *const http_keys[] = {
    "max_head", "max_fields", "max_body", "max_response_head", "head_timeout",
    "idle_timeout", "server_name", NULL,
};

/* The relay's option for each key: the same name (spec/cgi.md). */
static const char *const http_options[] = {
    "--max-head", "--max-fields", "--max-body", "--max-response-head", "--head-timeout",
    "--idle-timeout", "--server-name",
};

/* Integer keys: their bounds, the relay's own. */
static const long long http_min[] = {64, 1, 0, 256};
static const long long http_max[] = {1 << 20, 10000, MAX_BODY, 1 << 20};

/* Seconds as the relay reads them, with three decimals: rounded to the
 * millisecond, and never to zero (the relay refuses 0 where psup's key must
 * be above it). */
static char *seconds_option(struct ctx *c, const char *option, double secs)
{
    long long ms = (long long)(secs * 1000.0 + 0.5);

    if (ms == 0 && secs > 0)
        ms = 1;
    return cfg_xasprintf(c, "%s=%lld.%03lld", option, ms / 1000, ms % 1000);
}

/* SERVER_NAME: a host name as a client would send it, never something
 * that could break a line or a log (printable ASCII, no space). */
static bool valid_server_name(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] >= 0x7f)
            return false;
    return n >= 1 && n <= MAX_SERVER_NAME;
}

static char *http_option(struct ctx *c, int k, const cJSON *v)
{
    long long n;
    double secs;
    const char *s;

    switch (k) {
    case H_HEAD_TIMEOUT:
    case H_IDLE_TIMEOUT:
        return cfg_want_seconds(c, v, false, &secs) ? seconds_option(c, http_options[k], secs)
                                                    : NULL;
    case H_SERVER_NAME:
        if (!cfg_want_string(c, v, true, &s))
            return NULL;
        if (!valid_server_name(s)) {
            cfg_fail(c, "expected a host name (1 to %d printable ASCII characters, no space), "
                     "got %s", MAX_SERVER_NAME, cfg_quote(c, s));
            return NULL;
        }
        return cfg_xasprintf(c, "%s=%s", http_options[k], s);
    default:
        if (!cfg_want_int(c, v, http_min[k], http_max[k], &n))
            return NULL;
        return cfg_xasprintf(c, "%s=%lld", http_options[k], n);
    }
}

/* The relay's options for the keys of the http object v, into opts (one
 * per key, NULL where the key is absent: the relay's default). */
static void parse_http(struct ctx *c, const cJSON *v, char *opts[H_COUNT])
{
    struct fields f;

    if (!cJSON_IsObject(v)) {
        cfg_fail(c, "expected an object, got %s", cfg_type_name(v));
        return;
    }
    cfg_read_fields(c, v, http_keys, &f);
    for (int k = 0; k < H_COUNT; k++) {
        const cJSON *it = cfg_enter(c, &f, k);
        if (it) {
            opts[k] = http_option(c, k, it);
            cfg_path_pop(c);
        }
    }
}

/* ---- the relay's argv ---------------------------------------------------- */

static void check_relay(struct ctx *c)
{
    int err = 0;

    if (!cgi_relay) {
        cfg_fail(c, "\"cgi\" needs psup's CGI relay, psup-cgi, which psup finds beside its own "
                 "binary, and psup could not read its own path (/proc/self/exe)");
        return;
    }
    switch (cfg_probe_program(c, cgi_relay, &err)) {
    case CFG_PROBE_OK:
        return;
    case CFG_PROBE_MISSING:
        if (err == ENOENT)
            cfg_fail(c, "\"cgi\" needs psup's CGI relay, and %s does not exist", cgi_relay);
        else
            cfg_fail(c, "\"cgi\" needs psup's CGI relay, and psup cannot use %s (%s)",
                     cgi_relay, strerror(err));
        return;
    case CFG_PROBE_NOT_REGULAR:
        cfg_fail(c, "\"cgi\" needs psup's CGI relay, and %s is not a regular file", cgi_relay);
        return;
    case CFG_PROBE_NOT_EXECUTABLE:
        cfg_fail(c, "\"cgi\" needs psup's CGI relay, and %s is not executable (%s)", cgi_relay,
                 strerror(err));
        return;
    }
}

/* psup-cgi OPTIONS -- PROGRAM ARGS: the http options given, the service's
 * timeout and the top-level kill_grace, then the command with its program
 * as resolved at load (the relay must not search PATH again). Built once
 * here, so that a worker only execs it. */
static void build_relay_argv(struct ctx *c, struct psup_service_config *svc,
                             char *opts[H_COUNT])
{
    size_t n = 0, cap = 1 + H_COUNT + 2 + 1 + svc->argc + 1;
    char **argv = cfg_xcalloc(c, cap, sizeof(char *));

    if (!argv) {
        for (int k = 0; k < H_COUNT; k++)
            free(opts[k]);
        return;
    }
    argv[n++] = cfg_xstrdup(c, "psup-cgi");
    for (int k = 0; k < H_COUNT; k++)
        if (opts[k])
            argv[n++] = opts[k];
    if (svc->timeout > 0)
        argv[n++] = seconds_option(c, "--timeout", svc->timeout);
    argv[n++] = seconds_option(c, "--kill-grace", c->cfg->kill_grace);
    argv[n++] = cfg_xstrdup(c, "--");
    argv[n++] = cfg_xstrdup(c, svc->program);
    for (size_t i = 1; i < svc->argc; i++)
        argv[n++] = cfg_xstrdup(c, svc->argv[i]);
    svc->relay_argv = argv;
    svc->relay_argc = n;
    svc->relay = cfg_xstrdup(c, cgi_relay);
}

static void parse_protocol(struct ctx *c, const struct fields *f,
                           const struct cfg_protocol_keys *k, bool datagram,
                           struct psup_service_config *svc)
{
    static const char *const protocols[] = {"raw", "cgi", NULL};
    char *opts[H_COUNT] = {0};
    bool known = true;
    const cJSON *v;
    int p;

    if ((v = cfg_enter(c, f, k->protocol))) {
        known = cfg_want_choice(c, v, protocols, &p);
        if (known)
            svc->protocol = (enum psup_protocol)p;
        /* A handler per datagram gets the datagram as it is: there is no
         * connection to read an HTTP request from (spec/udp.md). */
        if (svc->protocol == PSUP_PROTOCOL_CGI && datagram)
            cfg_fail(c, "\"cgi\" does not apply in datagram mode: an HTTP request comes on a "
                     "connection, not in a datagram");
        else if (svc->protocol == PSUP_PROTOCOL_CGI)
            check_relay(c);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, k->http))) {
        if (svc->protocol == PSUP_PROTOCOL_CGI || !known)
            parse_http(c, v, opts);
        else
            cfg_fail(c, "has no effect unless protocol is \"cgi\"");
        cfg_path_pop(c);
    }
    if (svc->protocol == PSUP_PROTOCOL_CGI && !datagram && svc->program && svc->argv &&
        cgi_relay) {
        build_relay_argv(c, svc, opts);
        return;
    }
    for (int i = 0; i < H_COUNT; i++)
        free(opts[i]);
}

/* ---- PROXY protocol -------------------------------------------------- */

/* The first unix listener of svc, or -1. */
static long first_unix_listener(const struct psup_service_config *svc)
{
    for (size_t i = 0; svc->listen && i < svc->n_listen; i++)
        if (svc->listen[i].u.sa.sa_family == AF_UNIX)
            return (long)i;
    return -1;
}

/* In datagram mode there is no connection to read a header from: each
 * key given is one error, and none is read further. */
static void reject_in_datagram_mode(struct ctx *c, const struct fields *f,
                                    const struct cfg_protocol_keys *k)
{
    const int keys[] = {k->proxy_protocol, k->proxy_from, k->proxy_timeout};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (f->item[keys[i]])
            cfg_fail_at(c, f, keys[i], "does not apply in datagram mode: psup reads PROXY "
                        "headers on TCP connections only");
}

static void parse_proxy(struct ctx *c, const struct fields *f, const struct cfg_protocol_keys *k,
                        bool datagram, struct psup_service_config *svc)
{
    static const char *const versions[] = {"v1", "v2", "any", NULL};
    bool on = f->item[k->proxy_protocol] != NULL;
    const cJSON *v;
    double secs;
    int i;

    svc->proxy_timeout_ms = DEFAULT_PROXY_TIMEOUT_MS;
    if (datagram) {
        reject_in_datagram_mode(c, f, k);
        return;
    }
    if ((v = cfg_enter(c, f, k->proxy_protocol))) {
        long unix_at = first_unix_listener(svc);
        if (cfg_want_choice(c, v, versions, &i))
            svc->proxy_protocol = (enum psup_proxy_protocol)(i + 1);
        /* A unix peer has no address to check against proxy_from, and the
         * socket file's permissions already say who may connect. */
        if (unix_at >= 0)
            cfg_fail(c, "is for TCP listeners only, and listen[%ld] is a unix socket", unix_at);
        cfg_path_pop(c);
    }
    if (!on) {
        if (f->item[k->proxy_from])
            cfg_fail_at(c, f, k->proxy_from, "has no effect without proxy_protocol");
        if (f->item[k->proxy_timeout])
            cfg_fail_at(c, f, k->proxy_timeout, "has no effect without proxy_protocol");
        return;
    }
    if (!f->item[k->proxy_from])
        cfg_fail_at(c, f, k->proxy_from, "missing (required with proxy_protocol)");
    else
        cfg_parse_cidrs(c, f, k->proxy_from, "a non-empty array of CIDR strings (the addresses "
                        "of the load balancers)", false, &svc->proxy_from,
                        &svc->n_proxy_from);
    if ((v = cfg_enter(c, f, k->proxy_timeout))) {
        if (cfg_want_number(c, v, "a number of seconds", 0, false, MAX_PROXY_TIMEOUT, &secs))
            svc->proxy_timeout_ms = secs * 1000.0 < 1 ? 1 : (int)(secs * 1000.0 + 0.5);
        cfg_path_pop(c);
    }
}

void cfg_parse_protocol(struct ctx *c, const struct fields *f, const struct cfg_protocol_keys *k,
                        bool mode_ok, struct psup_service_config *svc)
{
    /* Wait mode's rejections are service.c's (parse_wait). A mode that is
     * not one is one problem, not one more per key judged by it. */
    bool datagram = mode_ok && svc->mode == PSUP_MODE_DATAGRAM;

    if (svc->mode == PSUP_MODE_WAIT)
        return;
    parse_protocol(c, f, k, datagram, svc);
    parse_proxy(c, f, k, datagram, svc);
}

bool cfg_relay_same(const struct psup_service_config *a, const struct psup_service_config *b)
{
    if (a->relay_argc != b->relay_argc)
        return false;
    if (!a->relay != !b->relay || (a->relay && strcmp(a->relay, b->relay) != 0))
        return false;
    for (size_t i = 0; i < a->relay_argc; i++)
        if (strcmp(a->relay_argv[i], b->relay_argv[i]) != 0)
            return false;
    return true;
}
