/* SPDX-License-Identifier: MIT */
/*
 * An xinetd service's settings after its program: access lists, limits,
 * environment, process settings, and the attributes psup has no
 * equivalent for, each reported once where it was written.
 */
#include "import/xinetd_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 65536    /* pool.max_workers */
#define MAX_PER_SOURCE 65536 /* max_per_source */
#define MAX_RATE 1000000     /* rate */

static const char *value_of(const struct xinetd_attr *a)
{
    return a && a->values.count ? a->values.items[0] : NULL;
}

static bool is(const char *value, const char *text)
{
    return value && strcmp(value, text) == 0;
}

static struct psup_import_result *result(struct xinetd_conv *v)
{
    return v->ctx->r;
}

/* ------------------------------------------------------------------------ */
/* only_from and no_access. Both lists apply, and an address on both is
 * refused (access.c remote_address_check): psup's deny wins. */

static int access_list(struct xinetd_conv *v, const struct xinetd_access *a, const char *name,
                       struct psup_import_strv *out, size_t *left_out)
{
    static const char refuse_note[] = "; psup does not refuse these clients";

    *left_out = 0;
    for (size_t i = 0; i < a->count; i++) {
        const struct xinetd_access_item *it = &a->items[i];
        int rc;
        if (it->imported) {
            rc = psup_import_strv_push(out, it->text);
            if (rc == 0 && it->why)
                rc = psup_import_note(result(v), &it->where, name, "%s: %s", it->text, it->why);
        } else {
            (*left_out)++;
            rc = psup_import_lost(result(v), &it->where, name, "%s: %s%s", it->text, it->why,
                                  strcmp(name, "no_access") == 0 ? refuse_note : "");
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A wait-mode server reads its socket itself: psup cannot filter that. */
static int access_in_wait_mode(struct xinetd_conv *v)
{
    static const enum xinetd_attr_id ids[] = {XA_ONLY_FROM, XA_NO_ACCESS};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const struct xinetd_attr *a = psup_import_xinetd_filled(v, ids[i]);
        if (a)
            rc = psup_import_lost(result(v), &a->where, a->name,
                                  "psup cannot filter what a wait-mode server reads from its "
                                  "socket (xinetd checks only the client that starts it)");
    }
    return rc;
}

int psup_import_xinetd_access(struct xinetd_conv *v)
{
    const struct xinetd_conf *c = v->c;
    size_t left_out;
    int rc;

    if (!c->only_from.present && !c->no_access.present)
        return 0;
    if (v->waits)
        return access_in_wait_mode(v);
    rc = access_list(v, &c->no_access, "no_access", &v->s->deny, &left_out);
    if (rc == 0 && c->only_from.present)
        rc = access_list(v, &c->only_from, "only_from", &v->s->allow, &left_out);
    if (rc != 0 || !c->only_from.present || v->s->allow.count)
        return rc;
    /* Without allow psup lets everyone in: never import a wider service. */
    if (left_out)
        return psup_import_xinetd_refuse(v, "only_from has nothing psup can match; without it "
                                            "every client would be let in");
    return psup_import_xinetd_refuse(v, "only_from is empty: xinetd refuses every client");
}

/* ------------------------------------------------------------------------ */
/* instances, per_source, cps. */

/* UNLIMITED is 0 here; a number above max is max. */
static long count(const struct xinetd_attr *a, long max)
{
    const char *text = value_of(a);
    long n = text && !is(text, "UNLIMITED") ? psup_import_number(text, 2147483647L) : 0;
    return n > max ? max : n;
}

/* instances or per_source: UNLIMITED writes nothing, 0 refuses everyone.
 * A wait-mode server is one process: neither applies. */
static int concurrency(struct xinetd_conv *v, enum xinetd_attr_id id, long max, long *out)
{
    const struct xinetd_attr *a = psup_import_xinetd_filled(v, id);

    if (!a || v->waits || is(value_of(a), "UNLIMITED"))
        return 0;
    if (count(a, max) == 0)
        return psup_import_xinetd_refuse(v, "%s = 0: xinetd refuses every %s", a->name,
                                         id == XA_INSTANCES ? "connection" : "client");
    *out = count(a, max);
    return 0;
}

static int instances(struct xinetd_conv *v)
{
    int rc = concurrency(v, XA_INSTANCES, MAX_WORKERS, &v->s->max_workers);

    /* xinetd refuses a connection over the limit, it does not queue it; a
     * datagram waits in the socket's buffer either way. */
    v->s->reject_overload = rc == 0 && v->s->max_workers > 0 && !v->dgram;
    return rc;
}

static int per_source(struct xinetd_conv *v)
{
    return concurrency(v, XA_PER_SOURCE, MAX_PER_SOURCE, &v->s->max_per_source);
}

/* Only a cps written in the file: xinetd's built-in 50 10 is not carried
 * over as a rate nobody asked for. */
static int cps(struct xinetd_conv *v)
{
    const struct xinetd_attr *a = psup_import_xinetd_filled(v, XA_CPS);

    if (!a || count(a, MAX_RATE) == 0)
        return 0;
    /* The defaults' cps hardly applies to a server started once: only the
     * service's own is worth a line. */
    if (v->waits && !v->c->attr[XA_CPS])
        return 0;
    if (v->waits)
        return psup_import_lost(result(v), &a->where, "cps",
                                "a wait-mode server is started once and restarted with psup's "
                                "backoff; there are no connections to count");
    v->s->rate = (double)count(a, MAX_RATE);
    return psup_import_note(result(v), &a->where, "cps",
                            "rate %s: above it xinetd stops the whole service for %s seconds, "
                            "psup refuses only the connections over the rate",
                            a->values.items[0], a->values.items[1]);
}

/* ------------------------------------------------------------------------ */
/* env and passenv. */

static bool variable_name(const char *name)
{
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Why psup does not take this variable in env, or NULL. */
static const char *reserved(const char *name)
{
    static const char *const per_connection[] = {
        "PROTO",          "TCPLOCALIP",     "TCPLOCALPORT",  "TCPREMOTEIP",   "TCPREMOTEPORT",
        "TCPCONNNUM",     "REMOTE_ADDR",    "REMOTE_PORT",   "UNIXLOCALPATH", "UNIXREMOTEEUID",
        "UNIXREMOTEEGID", "UNIXREMOTEPID",  "PSUP_SERVICE",  "PSUP_CONN_ID",  "UDPREMOTEIP",
        "UDPREMOTEPORT",  "UDPLOCALIP",     "UDPLOCALPORT",  NULL};
    static const char *const psups_own[] = {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                                            "LISTEN_FDNAMES", NULL};

    if (!variable_name(name))
        return "not a variable name psup accepts (letters, digits and _)";
    for (size_t i = 0; per_connection[i]; i++)
        if (strcmp(name, per_connection[i]) == 0)
            return "psup sets it for each connection";
    for (size_t i = 0; psups_own[i]; i++)
        if (strcmp(name, psups_own[i]) == 0)
            return "it is meant for psup itself and never reaches a handler";
    return NULL;
}

static int set_variable(struct psup_import_service *s, const char *name, const char *value)
{
    int at = psup_import_strv_find(&s->env_names, name);

    /* A later NAME= replaces an earlier one (env.c env_addstr). */
    if (at >= 0) {
        char *copy = strdup(value);
        if (!copy)
            return -ENOMEM;
        free(s->env_values.items[at]);
        s->env_values.items[at] = copy;
        return 0;
    }
    int rc = psup_import_strv_push(&s->env_names, name);
    if (rc == 0 && (rc = psup_import_strv_push(&s->env_values, value)) < 0)
        psup_import_strv_remove(&s->env_names, s->env_names.count - 1);
    return rc;
}

static int env(struct xinetd_conv *v)
{
    const struct xinetd_attr *a = v->c->attr[XA_ENV];
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < v->c->env.count; i++) {
        const char *def = v->c->env.items[i];
        const char *eq = strchr(def, '=');
        char *name = strndup(def, (size_t)(eq - def));
        if (!name)
            return -ENOMEM;
        const char *why = reserved(name);
        if (why)
            rc = psup_import_lost(result(v), &a->where, "env", "%s: %s", name, why);
        else
            rc = set_variable(v->s, name, eq + 1);
        free(name);
    }
    return rc;
}

/* xinetd passes its whole environment unless passenv is set, by the
 * service or else by the defaults (env.c setup_environ). */
static int passenv(struct xinetd_conv *v)
{
    const struct xinetd_conf *own = v->c->attr[XA_PASSENV] ? v->c : v->ctx->defaults;
    const struct xinetd_attr *a = own->attr[XA_PASSENV];

    if (!own->passenv_present)
        return 0;
    v->s->clear_env = true;
    for (size_t i = 0; i < own->passenv.count; i++) {
        const char *name = own->passenv.items[i];
        int rc = variable_name(name) ? psup_import_strv_push(&v->s->pass_env, name)
                                     : psup_import_lost(result(v), &a->where, "passenv",
                                                        "%s: not a variable name psup accepts",
                                                        name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* nice, umask, rlimit_*. */

static int nice(struct xinetd_conv *v)
{
    const char *text = value_of(v->c->attr[XA_NICE]);

    if (!text)
        return 0;
    long n = strtol(text, NULL, 10);
    /* nice(2) clamps the same way. */
    v->s->nice = n < -20 ? -20 : n > 19 ? 19 : (int)n;
    v->s->nice_set = true;
    return 0;
}

static int umask_of(struct xinetd_conv *v)
{
    const char *text = value_of(psup_import_xinetd_filled(v, XA_UMASK));

    if (text)
        v->s->umask = (int)strtol(text, NULL, 8);
    return 0;
}

static int rlimit(struct xinetd_conv *v, enum xinetd_attr_id id, enum psup_import_rlimit to)
{
    const struct xinetd_attr *a = v->c->attr[id];
    const char *text = value_of(a);
    struct psup_import_limit *l = &v->s->rlimits[to];

    if (!text)
        return 0;
    if (is(text, "UNLIMITED") && id == XA_RLIMIT_FILES)
        return psup_import_lost(result(v), &a->where, a->name,
                                "Linux has no unlimited open-files limit: xinetd's setrlimit "
                                "fails and the limit stays as it was");
    if (is(text, "UNLIMITED")) {
        l->set = l->unlimited = true;
        return 0;
    }
    char *end = NULL;
    uint64_t n = strtoull(text, &end, 10);
    uint64_t unit = *end == 'k' || *end == 'K' ? 1024 : *end == 'm' || *end == 'M' ? 1 << 20 : 1;
    if (n == 0)
        return psup_import_note(result(v), &a->where, a->name,
                                "0: xinetd sets no limit for 0, and neither does psup");
    if (n > UINT64_MAX / unit)
        return psup_import_lost(result(v), &a->where, a->name, "%s is too large", text);
    l->set = true;
    l->value = n * unit;
    return 0;
}

static int rlimits(struct xinetd_conv *v)
{
    int rc = rlimit(v, XA_RLIMIT_AS, PSUP_IMPORT_RLIMIT_AS);

    if (rc == 0)
        rc = rlimit(v, XA_RLIMIT_CPU, PSUP_IMPORT_RLIMIT_CPU);
    if (rc == 0)
        rc = rlimit(v, XA_RLIMIT_DATA, PSUP_IMPORT_RLIMIT_DATA);
    if (rc == 0)
        rc = rlimit(v, XA_RLIMIT_FILES, PSUP_IMPORT_RLIMIT_NOFILE);
    if (rc == 0)
        rc = rlimit(v, XA_RLIMIT_STACK, PSUP_IMPORT_RLIMIT_STACK);
    if (rc == 0 && v->c->attr[XA_RLIMIT_RSS])
        rc = psup_import_lost(result(v), &v->c->attr[XA_RLIMIT_RSS]->where, "rlimit_rss",
                              "Linux ignores RLIMIT_RSS, and psup does not set it");
    return rc;
}

/* ------------------------------------------------------------------------ */
/* What psup has no equivalent for. */

struct without {
    enum xinetd_attr_id id;
    const char *why;
};

static const struct without withouts[] = {
    {XA_BANNER, "psup sends no file to a client: let the command print it, as in "
                "\"cat FILE; exec PROGRAM\""},
    {XA_BANNER_SUCCESS, "psup sends no file to a client: let the command print it, as in "
                        "\"cat FILE; exec PROGRAM\""},
    {XA_BANNER_FAIL, "psup's refusal messages are text in the configuration (deny_message, "
                     "per_source_message, rate_message, overload_message), not files: copy the "
                     "file's text there"},
    {XA_ACCESS_TIMES, "psup has no time-of-day rules"},
    {XA_MAX_LOAD, "psup does not watch the load average"},
    {XA_DENY_TIME, "psup has no SENSOR services, which deny_time is for"},
    {XA_LIBWRAP, "psup does not use libwrap (/etc/hosts.allow, /etc/hosts.deny)"},
};

struct flag_without {
    unsigned flag;
    const char *name;
    const char *why;
};

static const struct flag_without flag_withouts[] = {
    {XF_INTERCEPT, "INTERCEPT", "psup has no interceptor process"},
    {XF_NORETRY, "NORETRY", "psup retries a failed start, with backoff"},
    {XF_IDONLY, "IDONLY", "psup makes no ident lookups, so a client without ident is no longer "
                          "refused"},
    {XF_NODELAY, "NODELAY", "psup sets no TCP socket options"},
    {XF_KEEPALIVE, "KEEPALIVE", "psup sets no TCP socket options"},
    {XF_LABELED, "LABELED", "psup has no labeled networking"},
};

static int logging(struct xinetd_conv *v)
{
    static const enum xinetd_attr_id ids[] = {XA_LOG_TYPE, XA_LOG_ON_SUCCESS, XA_LOG_ON_FAILURE};

    for (size_t i = 0; !v->ctx->logging_noted && i < 3; i++) {
        const struct xinetd_attr *a = psup_import_xinetd_filled(v, ids[i]);
        if (!a)
            continue;
        v->ctx->logging_noted = true;
        return psup_import_note(result(v), &a->where, a->name,
                                "psup logs every connection, refusal and failure on its "
                                "standard error (psup(1), LOGS); xinetd's log settings are not "
                                "needed");
    }
    return 0;
}

static int leftovers(struct xinetd_conv *v)
{
    int rc = logging(v);

    for (size_t i = 0; rc == 0 && i < sizeof(withouts) / sizeof(*withouts); i++) {
        const struct xinetd_attr *a = psup_import_xinetd_filled(v, withouts[i].id);
        if (a)
            rc = psup_import_lost(result(v), &a->where, a->name, "%s", withouts[i].why);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(flag_withouts) / sizeof(*flag_withouts); i++)
        if (v->c->flags & flag_withouts[i].flag)
            rc = psup_import_lost(result(v), &v->c->attr[XA_FLAGS]->where, "flags", "%s: %s",
                                  flag_withouts[i].name, flag_withouts[i].why);
    return rc;
}

int psup_import_xinetd_settings(struct xinetd_conv *v)
{
    int (*const steps[])(struct xinetd_conv *) = {instances, per_source, cps, env, passenv,
                                                  nice,      umask_of,   rlimits, leftovers};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < sizeof(steps) / sizeof(*steps); i++)
        rc = steps[i](v);
    return rc;
}
