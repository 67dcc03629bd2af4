/* SPDX-License-Identifier: MIT */
/*
 * xinetd's attributes, read with xinetd's rules (src/parse.c, parsers.c,
 * confparse.c in xinetd 2.3.15):
 *
 * - each attribute has a fixed number of values or any number; an
 *   attribute set twice keeps its first value, and only the list
 *   attributes (only_from, no_access, passenv, env, log_on_success,
 *   log_on_failure) take "+=" and "-=": xinetd logs and ignores any other
 *   use, and so is it reported here;
 * - a service starts with copies of the defaults' only_from, no_access,
 *   passenv, access_times, banners and log flags as they are when the
 *   service is read, so "+=" extends them and "=" replaces them; the
 *   other defaults (instances, per_source, cps, bind, umask, groups,
 *   max_load, v6only, log_type) apply after every file is read;
 * - in defaults, "=" on a list adds to it; "disabled" and "enabled" list
 *   service ids;
 * - a value xinetd cannot parse disables the service; "disable = yes"
 *   stops the reading of the service there.
 */
#include "import/xinetd_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct xinetd_import {
    struct psup_import_result *r;
    const struct psup_import_options *opts;
    struct xinetd_conf defaults;
    bool *file_has_defaults; /* per file: xinetd takes one defaults entry a file */
};

typedef const char *(*check_fn)(const struct xinetd_attr *a);

struct attr_def {
    const char *name;
    enum xinetd_attr_id id;
    int nvalues; /* > 0: exactly; -1: any number; -2: any number, and += -= */
    check_fn check;
};

/* The names of xinetd's service types and flags (src/nvlists.c), in the
 * order of the XT_ and XF_ bits. */
static const char *const type_names[] = {"RPC",    "INTERNAL",   "UNLISTED", "SPECIAL",
                                          "TCPMUX", "TCPMUXPLUS", NULL};
static const char *const flag_names[] = {"REUSE",     "INTERCEPT", "NORETRY",   "IDONLY",
                                         "NAMEINARGS", "NODELAY",  "KEEPALIVE", "NOLIBWRAP",
                                         "SENSOR",    "IPv4",      "IPv6",      "LABELED",
                                         NULL};

/* ------------------------------------------------------------------------ */
/* Value checks: NULL, or why xinetd refuses the value. */

static bool one_of(const char *value, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(value, *names) == 0)
            return true;
    return false;
}

static const char *all_of(const struct xinetd_attr *a, const char *const *names, const char *why)
{
    if (a->values.count == 0)
        return "it needs at least one value";
    for (size_t i = 0; i < a->values.count; i++)
        if (!one_of(a->values.items[i], names))
            return why;
    return NULL;
}

static const char *first(const struct xinetd_attr *a)
{
    return a->values.count ? a->values.items[0] : "";
}

static const char *check_socket_type(const struct xinetd_attr *a)
{
    static const char *const names[] = {"stream", "dgram", "raw", "seqpacket", NULL};
    return one_of(first(a), names) ? NULL : "expected stream, dgram, raw or seqpacket";
}

static const char *check_yes_no(const struct xinetd_attr *a)
{
    static const char *const names[] = {"yes", "no", NULL};
    return one_of(first(a), names) ? NULL : "expected yes or no";
}

static const char *check_count(const struct xinetd_attr *a)
{
    return strcmp(first(a), "UNLIMITED") == 0 || psup_import_number(first(a), 2147483647L) >= 0
               ? NULL
               : "expected a number or UNLIMITED";
}

static const char *check_port(const struct xinetd_attr *a)
{
    return psup_import_number(first(a), 65535) >= 0 ? NULL : "expected a port number";
}

static const char *check_int(const struct xinetd_attr *a)
{
    const char *v = first(a);
    return psup_import_number(v + (*v == '-' || *v == '+'), 2147483647L) >= 0
               ? NULL
               : "expected a number";
}

static const char *check_umask(const struct xinetd_attr *a)
{
    const char *v = first(a);
    return *v && strspn(v, "01234567") == strlen(v) && strtol(v, NULL, 8) <= 0777
               ? NULL
               : "expected an octal mask up to 777";
}

static const char *check_cps(const struct xinetd_attr *a)
{
    return psup_import_number(a->values.items[0], 2147483647L) >= 0 &&
                   psup_import_number(a->values.items[1], 2147483647L) >= 0
               ? NULL
               : "expected two numbers: connections a second, seconds disabled";
}

static const char *check_env(const struct xinetd_attr *a)
{
    if (a->op == XINETD_REMOVE)
        return "env does not take -=";
    for (size_t i = 0; i < a->values.count; i++)
        if (!strchr(a->values.items[i], '='))
            return "expected NAME=value";
    return NULL;
}

static const char *check_flags(const struct xinetd_attr *a)
{
    return all_of(a, flag_names, "unknown flag");
}

static const char *check_type(const struct xinetd_attr *a)
{
    return all_of(a, type_names, "unknown type");
}

static const char *check_log_success(const struct xinetd_attr *a)
{
    static const char *const names[] = {"HOST", "DURATION", "EXIT", "PID", "USERID",
                                        "TRAFFIC", NULL};
    return a->values.count == 0 ? NULL : all_of(a, names, "unknown log_on_success flag");
}

static const char *check_log_failure(const struct xinetd_attr *a)
{
    static const char *const names[] = {"HOST", "ATTEMPT", "USERID", NULL};
    return a->values.count == 0 ? NULL : all_of(a, names, "unknown log_on_failure flag");
}

static const char *check_log_type(const struct xinetd_attr *a)
{
    size_t n = a->values.count;
    const char *type = first(a);

    if (strcmp(type, "SYSLOG") == 0 && n >= 2 && n <= 3)
        return NULL;
    if (strcmp(type, "FILE") == 0 && n >= 2 && n <= 4)
        return NULL;
    return "expected SYSLOG facility [level] or FILE path [soft [hard]]";
}

/* A limit: UNLIMITED or a number, with K or M for sizes. */
static const char *check_size(const struct xinetd_attr *a)
{
    const char *v = first(a);
    size_t digits = strspn(v, "0123456789");

    if (strcmp(v, "UNLIMITED") == 0)
        return NULL;
    if (digits && (v[digits] == '\0' || (strchr("kKmM", v[digits]) && v[digits + 1] == '\0')))
        return NULL;
    return "expected a number (K or M for sizes) or UNLIMITED";
}

static const char *check_cpu(const struct xinetd_attr *a)
{
    const char *v = first(a);
    return strcmp(v, "UNLIMITED") == 0 || psup_import_number(v, 2147483647L) >= 0
               ? NULL
               : "expected seconds or UNLIMITED";
}

static const char *check_deny_time(const struct xinetd_attr *a)
{
    static const char *const names[] = {"FOREVER", "NEVER", NULL};
    return one_of(first(a), names) || !check_int(a) ? NULL
                                                    : "expected minutes, FOREVER or NEVER";
}

static const char *check_max_load(const struct xinetd_attr *a)
{
    char *end = NULL;
    double load = strtod(first(a), &end);
    return end != first(a) && load != 0 ? NULL : "expected a load average above 0";
}

static const char *check_some(const struct xinetd_attr *a)
{
    return a->values.count ? NULL : "it needs at least one value";
}

/* ------------------------------------------------------------------------ */
/* The attribute tables (xinetd's service_attributes, default_attributes). */

static const struct attr_def service_attrs[] = {
    {"socket_type", XA_SOCKET_TYPE, 1, check_socket_type},
    {"protocol", XA_PROTOCOL, 1, NULL},
    {"wait", XA_WAIT, 1, check_yes_no},
    {"user", XA_USER, 1, NULL},
    {"group", XA_GROUP, 1, NULL},
    {"server", XA_SERVER, 1, NULL},
    {"server_args", XA_SERVER_ARGS, -1, check_some},
    {"instances", XA_INSTANCES, 1, check_count},
    {"log_on_success", XA_LOG_ON_SUCCESS, -2, check_log_success},
    {"log_on_failure", XA_LOG_ON_FAILURE, -2, check_log_failure},
    {"log_type", XA_LOG_TYPE, -1, check_log_type},
    {"only_from", XA_ONLY_FROM, -2, NULL},
    {"no_access", XA_NO_ACCESS, -2, NULL},
    {"access_times", XA_ACCESS_TIMES, -1, check_some},
    {"type", XA_TYPE, -1, check_type},
    {"rpc_version", XA_RPC_VERSION, 1, NULL},
    {"rpc_number", XA_RPC_NUMBER, 1, check_int},
    {"id", XA_ID, 1, NULL},
    {"env", XA_ENV, -2, check_env},
    {"port", XA_PORT, 1, check_port},
    {"passenv", XA_PASSENV, -2, NULL},
    {"flags", XA_FLAGS, -1, check_flags},
    {"nice", XA_NICE, 1, check_int},
    {"redirect", XA_REDIRECT, 2, NULL},
    {"banner", XA_BANNER, 1, NULL},
    {"bind", XA_BIND, 1, NULL},
    {"interface", XA_BIND, 1, NULL},
    {"per_source", XA_PER_SOURCE, 1, check_count},
    {"groups", XA_GROUPS, 1, check_yes_no},
    {"banner_success", XA_BANNER_SUCCESS, 1, NULL},
    {"banner_fail", XA_BANNER_FAIL, 1, NULL},
    {"cps", XA_CPS, 2, check_cps},
    {"disable", XA_DISABLE, 1, check_yes_no},
    {"max_load", XA_MAX_LOAD, 1, check_max_load},
    {"rlimit_as", XA_RLIMIT_AS, 1, check_size},
    {"rlimit_cpu", XA_RLIMIT_CPU, 1, check_cpu},
    {"rlimit_data", XA_RLIMIT_DATA, 1, check_size},
    {"rlimit_files", XA_RLIMIT_FILES, 1, check_size},
    {"rlimit_rss", XA_RLIMIT_RSS, 1, check_size},
    {"rlimit_stack", XA_RLIMIT_STACK, 1, check_size},
    {"v6only", XA_V6ONLY, 1, check_yes_no},
    {"deny_time", XA_DENY_TIME, 1, check_deny_time},
    {"umask", XA_UMASK, 1, check_umask},
    {"libwrap", XA_LIBWRAP, 1, NULL},
    {NULL, XA_COUNT, 0, NULL},
};

static const struct attr_def defaults_attrs[] = {
    {"log_type", XA_LOG_TYPE, -2, check_log_type},
    {"log_on_success", XA_LOG_ON_SUCCESS, -2, check_log_success},
    {"log_on_failure", XA_LOG_ON_FAILURE, -2, check_log_failure},
    {"disabled", XA_DISABLED, -2, NULL},
    {"no_access", XA_NO_ACCESS, -2, NULL},
    {"only_from", XA_ONLY_FROM, -2, NULL},
    {"instances", XA_INSTANCES, 1, check_count},
    {"passenv", XA_PASSENV, -2, NULL},
    {"banner", XA_BANNER, 1, NULL},
    {"bind", XA_BIND, 1, NULL},
    {"interface", XA_BIND, 1, NULL},
    {"per_source", XA_PER_SOURCE, 1, check_count},
    {"groups", XA_GROUPS, 1, check_yes_no},
    {"banner_success", XA_BANNER_SUCCESS, 1, NULL},
    {"banner_fail", XA_BANNER_FAIL, 1, NULL},
    {"cps", XA_CPS, 2, check_cps},
    {"enabled", XA_ENABLED, -2, NULL},
    {"max_load", XA_MAX_LOAD, 1, check_max_load},
    {"v6only", XA_V6ONLY, 1, check_yes_no},
    {"umask", XA_UMASK, 1, check_umask},
    {NULL, XA_COUNT, 0, NULL},
};

/* The attributes a service copies from the defaults when it is read. */
static const enum xinetd_attr_id inherited_at_read[] = {
    XA_LOG_ON_SUCCESS, XA_LOG_ON_FAILURE, XA_ACCESS_TIMES,
    XA_BANNER,         XA_BANNER_SUCCESS, XA_BANNER_FAIL,
};

static const struct attr_def *lookup(const struct attr_def *table, const char *name)
{
    for (; table->name; table++)
        if (strcmp(table->name, name) == 0)
            return table;
    return NULL;
}

const char *psup_import_xinetd_value(const struct xinetd_conf *c, enum xinetd_attr_id id)
{
    const struct xinetd_attr *a = c->attr[id];
    return a && a->values.count ? a->values.items[0] : NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading one entry. */

static void conf_free(struct xinetd_conf *c)
{
    psup_import_xinetd_access_free(&c->only_from);
    psup_import_xinetd_access_free(&c->no_access);
    psup_import_strv_clear(&c->passenv);
    free(c->passenv.items);
    psup_import_strv_clear(&c->env);
    free(c->env.items);
    psup_import_strv_clear(&c->disabled_ids);
    free(c->disabled_ids.items);
    psup_import_strv_clear(&c->enabled_ids);
    free(c->enabled_ids.items);
    memset(c, 0, sizeof(*c));
}

/* passenv OP names (parsers.c passenv_parser): = empties, no duplicates. */
static int apply_passenv(struct xinetd_conf *c, const struct xinetd_attr *a, bool in_defaults)
{
    if (a->op == XINETD_SET && !in_defaults)
        psup_import_strv_clear(&c->passenv);
    c->passenv_present = true;
    for (size_t i = 0; i < a->values.count; i++) {
        int at = psup_import_strv_find(&c->passenv, a->values.items[i]);
        if (a->op == XINETD_REMOVE && at >= 0)
            psup_import_strv_remove(&c->passenv, (size_t)at);
        else if (a->op != XINETD_REMOVE && at < 0) {
            int rc = psup_import_strv_push(&c->passenv, a->values.items[i]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* env OP NAME=value... (parsers.c env_parser): = empties, += appends. */
static int apply_env(struct xinetd_conf *c, const struct xinetd_attr *a)
{
    if (a->op == XINETD_SET)
        psup_import_strv_clear(&c->env);
    for (size_t i = 0; i < a->values.count; i++) {
        int rc = psup_import_strv_push(&c->env, a->values.items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static unsigned bits_of(const struct xinetd_attr *a, const char *const *names)
{
    unsigned bits = 0;

    for (size_t i = 0; i < a->values.count; i++)
        for (unsigned b = 0; names[b]; b++)
            if (strcmp(a->values.items[i], names[b]) == 0)
                bits |= 1u << b;
    return bits;
}

static int apply_ids(struct psup_import_strv *ids, const struct xinetd_attr *a)
{
    for (size_t i = 0; i < a->values.count; i++) {
        int rc = psup_import_strv_push(ids, a->values.items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Store an attribute whose values passed their check. */
static int store(struct xinetd_conf *c, const struct attr_def *def, const struct xinetd_attr *a,
                 bool in_defaults, const char **why)
{
    c->attr[def->id] = a;
    switch (def->id) {
    case XA_ONLY_FROM: return psup_import_xinetd_access_apply(&c->only_from, a, in_defaults, why);
    case XA_NO_ACCESS: return psup_import_xinetd_access_apply(&c->no_access, a, in_defaults, why);
    case XA_PASSENV: return apply_passenv(c, a, in_defaults);
    case XA_ENV: return apply_env(c, a);
    case XA_DISABLED: return apply_ids(&c->disabled_ids, a);
    case XA_ENABLED: c->enabled_present = true; return apply_ids(&c->enabled_ids, a);
    case XA_TYPE: c->types |= bits_of(a, type_names); return 0;
    case XA_FLAGS: c->flags |= bits_of(a, flag_names); return 0;
    case XA_DISABLE: c->disabled = strcmp(first(a), "yes") == 0; return 0;
    default: return 0;
    }
}

/* One attribute line of an entry; xinetd's identify_attribute. */
static int apply(struct xinetd_import *x, struct xinetd_conf *c, const struct xinetd_attr *a,
                 bool in_defaults)
{
    const struct attr_def *def = lookup(in_defaults ? defaults_attrs : service_attrs, a->name);
    struct psup_import_result *r = x->r;

    if (!def)
        return psup_import_lost(r, &a->where, a->name, "%s",
                                in_defaults ? "xinetd does not take it in defaults and ignores it"
                                            : "unknown attribute: xinetd ignores it");
    if (def->nvalues != -2 && c->attr[def->id])
        return psup_import_lost(r, &a->where, a->name, "set again: xinetd keeps line %d",
                                c->attr[def->id]->where.line);
    if (def->nvalues != -2 && a->op != XINETD_SET)
        return psup_import_lost(r, &a->where, a->name, "xinetd takes only \"=\" here and ignores "
                                "the line");
    if (def->nvalues > 0 && a->values.count != (size_t)def->nvalues)
        return psup_import_lost(r, &a->where, a->name, "expects %d value%s, got %zu: xinetd "
                                "ignores the line", def->nvalues, def->nvalues > 1 ? "s" : "",
                                a->values.count);
    const char *why = def->check ? def->check(a) : NULL;
    int rc = why ? -EINVAL : store(c, def, a, in_defaults, &why);
    if (rc != -EINVAL)
        return rc;
    if (in_defaults)
        return psup_import_fail(r, &a->where, "%s: %s (xinetd exits on an invalid defaults "
                                "entry)", a->name, why);
    if (!c->refused) {
        c->refused = why;
        c->refused_at = a;
    }
    return 0;
}

/* A service starts with the defaults' lists as they are now. */
static int inherit(struct xinetd_conf *c, const struct xinetd_conf *d)
{
    int rc = psup_import_xinetd_access_copy(&c->only_from, &d->only_from);

    if (rc == 0)
        rc = psup_import_xinetd_access_copy(&c->no_access, &d->no_access);
    if (rc == 0)
        rc = psup_import_strv_copy(&c->passenv, &d->passenv);
    c->passenv_present = d->passenv_present;
    return rc;
}

static int read_service(struct xinetd_import *x, const struct xinetd_entry *e,
                        struct xinetd_conf *c, const struct xinetd_attr **inherited)
{
    int rc = inherit(c, &x->defaults);

    c->entry = e;
    for (size_t i = 0; i < sizeof(inherited_at_read) / sizeof(*inherited_at_read); i++)
        inherited[inherited_at_read[i]] = x->defaults.attr[inherited_at_read[i]];
    for (size_t i = 0; rc == 0 && i < e->n_attrs; i++) {
        rc = apply(x, c, &e->attrs[i], false);
        /* xinetd stops reading a disabled service (parse_entry). */
        if (c->disabled && !x->opts->include_disabled)
            break;
    }
    return rc;
}

static int read_defaults(struct xinetd_import *x, const struct xinetd_entry *e)
{
    if (x->file_has_defaults[e->where.file_seq])
        return psup_import_lost(x->r, &e->where, "defaults",
                                "a second defaults entry in one file: xinetd ignores it");
    x->file_has_defaults[e->where.file_seq] = true;
    x->defaults.entry = e;
    for (size_t i = 0; i < e->n_attrs; i++) {
        int rc = apply(x, &x->defaults, &e->attrs[i], true);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Which services xinetd runs. */

static const char *service_id(const struct xinetd_conf *c)
{
    const char *id = psup_import_xinetd_value(c, XA_ID);
    return id ? id : c->entry->name;
}

/* Whether xinetd runs the service (or --include-disabled asks for it);
 * if not, the note saying why. */
static int runs(struct xinetd_import *x, const struct xinetd_conf *c, bool *yes)
{
    const struct xinetd_conf *d = &x->defaults;
    const char *id = service_id(c);
    const char *why = NULL;
    char name[80];

    if (c->disabled)
        why = "disabled (disable = yes)";
    else if (d->enabled_present && psup_import_strv_find(&d->enabled_ids, id) < 0)
        why = "not in the enabled list of defaults";
    else if (psup_import_strv_find(&d->disabled_ids, id) >= 0)
        why = "in the disabled list of defaults";
    *yes = !why || x->opts->include_disabled;
    if (!why)
        return 0;
    snprintf(name, sizeof(name), "service %s", id);
    if (x->opts->include_disabled)
        return psup_import_note(x->r, &c->entry->where, name, "%s: imported all the same", why);
    return psup_import_note(x->r, &c->entry->where, name,
                            "%s: not imported (--include-disabled imports it)", why);
}

static int finish_service(struct xinetd_import *x, struct xinetd_context *ctx,
                          const struct xinetd_conf *c)
{
    bool yes;
    int rc = runs(x, c, &yes);

    if (rc < 0 || !yes)
        return rc;
    if (c->refused)
        return psup_import_lost(x->r, &c->refused_at->where, c->refused_at->name,
                                "xinetd disables service %s: %s", service_id(c), c->refused);
    return psup_import_xinetd_convert(ctx, c);
}

/* ------------------------------------------------------------------------ */

static int import_entries(struct xinetd_import *x, const struct xinetd_input *in)
{
    struct xinetd_conf *services = calloc(in->n_entries ? in->n_entries : 1, sizeof(*services));
    const struct xinetd_attr **inherited =
        calloc((in->n_entries ? in->n_entries : 1) * XA_COUNT, sizeof(*inherited));
    size_t n = 0;
    int rc = services && inherited ? 0 : -ENOMEM;

    for (size_t i = 0; rc == 0 && i < in->n_entries; i++) {
        const struct xinetd_entry *e = &in->entries[i];
        if (e->kind == XINETD_DEFAULTS) {
            rc = read_defaults(x, e);
        } else {
            rc = read_service(x, e, &services[n], &inherited[XA_COUNT * n]);
            n++;
        }
    }
    struct xinetd_context ctx = {.opts = x->opts, .r = x->r, .defaults = &x->defaults};
    if (rc == 0 && !(ctx.services_db = psup_import_services_open(x->opts->services_path)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* What was copied at read time counts as the service's own. */
        for (int id = 0; id < XA_COUNT; id++)
            if (!services[i].attr[id] && inherited[XA_COUNT * i + id])
                services[i].attr[id] = inherited[XA_COUNT * i + id];
        rc = finish_service(x, &ctx, &services[i]);
    }
    psup_import_services_close(ctx.services_db);
    for (size_t i = 0; i < n; i++)
        conf_free(&services[i]);
    free(services);
    free(inherited);
    return rc;
}

static int import_input(const struct xinetd_input *in, const struct psup_import_options *opts,
                        struct psup_import_result *r)
{
    struct xinetd_import x = {.r = r, .opts = opts};
    int rc;

    x.file_has_defaults = calloc(in->files.count ? in->files.count : 1, sizeof(bool));
    rc = x.file_has_defaults ? import_entries(&x, in) : -ENOMEM;
    free(x.file_has_defaults);
    conf_free(&x.defaults);
    if (rc == 0 && r->n_services == 0)
        rc = psup_import_global(r, true, "no service to import: psup needs at least one");
    psup_import_sort_messages(r);
    return rc;
}

int psup_import_xinetd(const char *const *paths, size_t n_paths,
                       const struct psup_import_options *opts, struct psup_import_result *r)
{
    struct xinetd_input in = {0};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n_paths; i++)
        rc = psup_import_xinetd_read_path(&in, paths[i], r);
    if (rc == 0)
        rc = import_input(&in, opts, r);
    else
        psup_import_sort_messages(r);
    psup_import_xinetd_input_free(&in);
    return rc;
}

int psup_import_xinetd_text(const char *origin, const char *text,
                            const struct psup_import_options *opts, struct psup_import_result *r)
{
    struct xinetd_input in = {0};
    int rc = psup_import_xinetd_read_text(&in, origin, text, r);

    if (rc == 0)
        rc = import_input(&in, opts, r);
    else
        psup_import_sort_messages(r);
    psup_import_xinetd_input_free(&in);
    return rc;
}
