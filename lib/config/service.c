/* SPDX-License-Identifier: MIT */
/*
 * One member of "services": each key checked and turned into a field of
 * struct psup_service_config (name, listen, command, env, pool, credentials,
 * process settings, access rules and limits). Look-ups on the system are
 * left to resolve.c.
 */
#include "config/config.h"
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envnames.h"

#define MAX_RATE 1000000.0
#define MAX_WORKERS PSUP_MAX_WORKERS
/* SO_RCVBUF takes an int, and the kernel doubles it. */
#define MAX_RECV_BUFFER (1024 * 1024 * 1024)

/* ---- service keys --------------------------------------------------- */

enum {
    S_NAME, S_LISTEN, S_COMMAND, S_POOL, S_BACKLOG, S_ENV, S_CLEAR_ENV, S_PASS_ENV,
    S_CWD, S_USER, S_GROUP, S_SUPP_GROUPS, S_UMASK, S_NICE, S_RLIMITS, S_STDERR,
    S_NO_NEW_PRIVS, S_PRESTART,
    S_ALLOW, S_DENY, S_DENY_MESSAGE, S_MAX_PER_SOURCE, S_PER_SOURCE_V6,
    S_PER_SOURCE_MESSAGE, S_RATE, S_RATE_BURST, S_RATE_MESSAGE, S_ON_OVERLOAD,
    S_OVERLOAD_MESSAGE, S_TIMEOUT, S_SOCKET_MODE, S_SOCKET_USER, S_SOCKET_GROUP,
    S_MODE, S_RECV_BUFFER, S_START, S_INSTANCES, S_ESSENTIAL, S_FATAL_AFTER,
    S_PROTOCOL, S_HTTP, S_PROXY_PROTOCOL, S_PROXY_FROM, S_PROXY_TIMEOUT,
};

static const char *const service_keys[] = {
    "name", "listen", "command", "pool", "backlog", "env", "clear_env", "pass_env",
    "cwd", "user", "group", "supplementary_groups", "umask", "nice", "rlimits", "stderr",
    "no_new_privileges", "prestart",
    "allow", "deny", "deny_message", "max_per_source", "per_source_ipv6_prefix",
    "per_source_message", "rate", "rate_burst", "rate_message", "on_overload",
    "overload_message", "timeout", "socket_mode", "socket_user", "socket_group",
    "mode", "recv_buffer", "start", "instances", "essential", "fatal_after",
    "protocol", "http", "proxy_protocol", "proxy_from", "proxy_timeout", NULL,
};

/* The keys protocol.c reads. */
static const struct cfg_protocol_keys protocol_keys = {
    S_PROTOCOL, S_HTTP, S_PROXY_PROTOCOL, S_PROXY_FROM, S_PROXY_TIMEOUT,
};

_Static_assert(sizeof(service_keys) / sizeof(service_keys[0]) <= MAX_KEYS + 1,
               "struct fields holds every service key");

static bool valid_service_name(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return n >= 1 && n <= 64;
}

static void parse_name(struct ctx *c, const struct fields *f, struct psup_service_config *svc,
                       size_t index)
{
    const cJSON *v = cfg_enter(c, f, S_NAME);
    const char *s;

    if (!v) {
        cfg_fail_at(c, f, S_NAME, "missing (required)");
        return;
    }
    if (!cfg_want_string(c, v, false, &s))
        goto out;
    if (!valid_service_name(s)) {
        cfg_fail(c, "must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got %s", cfg_quote(c, s));
        goto out;
    }
    struct cfg_entry e = {.hash = cfg_hash_bytes(s, strlen(s)), .key = s, .a = index};
    const struct cfg_entry *first = cfg_table_add(c, &c->service_names, &e);
    if (first)
        cfg_fail(c, "duplicate service name %s (also services[%zu])", cfg_quote(c, s), first->a);
    svc->name = cfg_xstrdup(c, s);
out:
    cfg_path_pop(c);
}

static bool valid_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    }
    return true;
}

static void parse_env(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    const cJSON *v = cfg_enter(c, f, S_ENV), *it;
    struct cfg_names seen;
    unsigned ord = 0;

    if (!v)
        return;
    if (!cJSON_IsObject(v)) {
        cfg_fail(c, "expected an object of NAME: \"value\" pairs, got %s", cfg_type_name(v));
        cfg_path_pop(c);
        return;
    }
    cfg_names_init(&seen);
    svc->env = cfg_xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *));
    for (it = v->child; it && svc->env; it = it->next, ord++) {
        const char *s;

        cfg_push_key(c, it->string, ord);
        if (cfg_names_add(c, &seen, it->string))
            cfg_fail(c, "duplicate key");
        else if (!valid_env_name(it->string))
            cfg_fail(c, "not a valid variable name (letters, digits and _, not starting "
                    "with a digit)");
        else if (psup_env_set_by_psup(it->string, strlen(it->string)))
            cfg_fail(c, "is set by psup for each connection");
        else if (psup_env_for_psup(it->string, strlen(it->string)))
            cfg_fail(c, "is meant for psup itself and never reaches a handler");
        else if (cfg_want_string(c, it, false, &s))
            svc->env[svc->n_env++] = cfg_xasprintf(c, "%s=%s", it->string, s);
        cfg_path_pop(c);
    }
    cfg_names_free(&seen);
    cfg_path_pop(c);
}

static void parse_pass_env(struct ctx *c, const struct fields *f,
                           struct psup_service_config *svc)
{
    const cJSON *v, *el;
    bool clear_ok = true;
    size_t i = 0;

    if ((v = cfg_enter(c, f, S_CLEAR_ENV))) {
        clear_ok = cfg_want_bool(c, v, &svc->clear_env);
        cfg_path_pop(c);
    }
    if (!(v = cfg_enter(c, f, S_PASS_ENV)))
        return;
    if (!cJSON_IsArray(v)) {
        cfg_fail(c, "expected an array of variable names, got %s", cfg_type_name(v));
    } else if (clear_ok && !svc->clear_env) {
        cfg_fail(c, "has no effect unless clear_env is true");
    } else if ((svc->pass_env = cfg_xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *)))) {
        cJSON_ArrayForEach(el, v) {
            const char *s = NULL;

            cfg_push_index(c, i++);
            if (cfg_want_string(c, el, false, &s) && !valid_env_name(s))
                cfg_fail(c, "%s is not a valid variable name", cfg_quote(c, s));
            else if (s)
                svc->pass_env[svc->n_pass_env++] = cfg_xstrdup(c, s);
            cfg_path_pop(c);
        }
    }
    cfg_path_pop(c);
}

/* Returns false when cwd is set but unusable, so that paths relative to it
 * are not checked (that would only repeat the same problem). */
static bool parse_cwd(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    const cJSON *v = cfg_enter(c, f, S_CWD);
    const char *s;
    bool ok = false;

    if (!v)
        return true;
    if (cfg_want_string(c, v, true, &s))
        ok = cfg_resolve_cwd(c, svc, s);
    cfg_path_pop(c);
    return ok;
}

/* A string command: run by /bin/sh -c. */
static void shell_command(struct ctx *c, struct psup_service_config *svc, const char *text)
{
    if (!text[0])
        cfg_fail(c, "must not be empty");
    else
        cfg_check_program(c, "/bin/sh");
    svc->shell = true;
    svc->program = cfg_xstrdup(c, "/bin/sh");
    if ((svc->argv = cfg_xcalloc(c, 4, sizeof(char *)))) {
        svc->argv[0] = cfg_xstrdup(c, "sh");
        svc->argv[1] = cfg_xstrdup(c, "-c");
        svc->argv[2] = cfg_xstrdup(c, text);
        svc->argc = 3;
    }
}

static void parse_command(struct ctx *c, const struct fields *f,
                          struct psup_service_config *svc, bool cwd_ok)
{
    const cJSON *v = cfg_enter(c, f, S_COMMAND), *el;
    size_t i = 0;

    if (!v) {
        cfg_fail_at(c, f, S_COMMAND, "missing (required)");
        return;
    }
    if (cJSON_IsString(v)) {
        shell_command(c, svc, v->valuestring);
        goto out;
    }
    if (!cfg_want_array(c, v, "a non-empty array of strings (argv) or a string (run with "
                          "/bin/sh -c)"))
        goto out;
    if (!(svc->argv = cfg_xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *))))
        goto out;

    bool ok = true;
    cJSON_ArrayForEach(el, v) {
        const char *s;

        cfg_push_index(c, i++);
        if (cfg_want_string(c, el, i == 1, &s))
            svc->argv[svc->argc++] = cfg_xstrdup(c, s);
        else
            ok = false;
        cfg_path_pop(c);
    }
    if (ok && cwd_ok && !c->oom) {
        cfg_push_index(c, 0);
        cfg_resolve_program(c, svc, svc->argv[0]);
        cfg_path_pop(c);
    }
out:
    cfg_path_pop(c);
}

enum { P_MIN_SPARE, P_MAX_SPARE, P_MAX_WORKERS };

static const char *const pool_keys[] = {"min_spare", "max_spare", "max_workers", NULL};

/* Unset pool values are derived from the set ones so that a partial
 * setting stays consistent (spec/config.md, "pool"). */
static void derive_pool(struct psup_service_config *svc, const bool set[3],
                        const unsigned val[3])
{
    unsigned mn = 4, mx, mw;

    if (set[P_MIN_SPARE])
        mn = val[P_MIN_SPARE];
    else {
        if (set[P_MAX_SPARE] && val[P_MAX_SPARE] < mn)
            mn = val[P_MAX_SPARE];
        if (set[P_MAX_WORKERS] && val[P_MAX_WORKERS] < mn)
            mn = val[P_MAX_WORKERS];
    }
    if (set[P_MAX_SPARE])
        mx = val[P_MAX_SPARE];
    else {
        mx = set[P_MAX_WORKERS] && val[P_MAX_WORKERS] < 16 ? val[P_MAX_WORKERS] : 16;
        if (mx < mn)
            mx = mn;
    }
    mw = set[P_MAX_WORKERS] ? val[P_MAX_WORKERS] : mx > 256 ? mx : 256;
    svc->min_spare = mn;
    svc->max_spare = mx;
    svc->max_workers = mw;
}

static void parse_pool(struct ctx *c, const struct fields *sf, struct psup_service_config *svc)
{
    const cJSON *v = cfg_enter(c, sf, S_POOL);
    bool set[3] = {false, false, false}, ok = true;
    unsigned val[3] = {0, 0, 0};
    struct fields f;

    derive_pool(svc, set, val);
    if (!v)
        return;
    if (!cJSON_IsObject(v)) {
        cfg_fail(c, "expected an object, got %s", cfg_type_name(v));
        cfg_path_pop(c);
        return;
    }
    cfg_read_fields(c, v, pool_keys, &f);
    for (int k = P_MIN_SPARE; k <= P_MAX_WORKERS; k++) {
        const cJSON *it = cfg_enter(c, &f, k);
        if (it) {
            set[k] = cfg_want_uint(c, it, 1, MAX_WORKERS, &val[k]);
            ok = ok && set[k];
            cfg_path_pop(c);
        }
    }
    derive_pool(svc, set, val);
    if (ok && svc->max_spare < svc->min_spare)
        cfg_fail_at(c, &f, P_MAX_SPARE, "must be >= min_spare (%u)", svc->min_spare);
    else if (ok && svc->max_workers < svc->max_spare)
        cfg_fail_at(c, &f, P_MAX_WORKERS, "must be >= %s (%u)",
                set[P_MAX_SPARE] ? "max_spare" : "min_spare",
                set[P_MAX_SPARE] ? svc->max_spare : svc->min_spare);
    cfg_path_pop(c);
}

/* ---- credentials ---------------------------------------------------- */

/* Without root, psup can only "switch" to what it already is. The problem is
 * reported at the key that asks for the change. */
static void check_switch(struct ctx *c, const struct fields *f,
                         const struct psup_service_config *svc, bool supplementary)
{
    int at = f->item[S_GROUP] && svc->uid == c->euid ? S_GROUP : S_USER;
    const char *key = at == S_GROUP ? "group" : "user";
    char label[96];

    if (svc->uid != c->euid)
        cfg_fail_at(c, f, S_USER, "psup runs as uid %u and cannot switch to uid %u%s%s%s; run "
                "psup as root or remove user", (unsigned)c->euid, (unsigned)svc->uid,
                svc->user_name ? " (\"" : "", svc->user_name ? svc->user_name : "",
                svc->user_name ? "\")" : "");
    else if (svc->gid != c->egid)
        cfg_fail_at(c, f, at, "psup runs as gid %u and cannot switch to %s; run psup as root "
                "or remove %s", (unsigned)c->egid, cfg_group_label(svc->gid, label), key);
    else if (supplementary && svc->user_name)
        cfg_fail_at(c, f, at, "psup cannot change its supplementary groups without root; run "
                "psup as root, or set supplementary_groups to false");
    else
        cfg_fail_at(c, f, at, "psup cannot change its supplementary groups without root; run "
                "psup as root or remove %s", key);
}

static void parse_ids(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    struct who w = {false, c->euid, c->egid};
    bool user_ok = true, group_ok = true, supplementary = true, have_group = false;
    gid_t gid = c->egid;
    const cJSON *v;

    if ((v = cfg_enter(c, f, S_USER))) {
        user_ok = cfg_resolve_user(c, v, svc, &w);
        if (user_ok && !w.known && !f->item[S_GROUP]) {
            cfg_fail(c, "uid %u has no entry in the user database, so it has no primary group; "
                    "set group", (unsigned)w.uid);
            user_ok = false;
        }
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_GROUP))) {
        group_ok = have_group = cfg_resolve_group(c, v, &gid);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_SUPP_GROUPS))) {
        if (cfg_want_bool(c, v, &supplementary) && !f->item[S_USER])
            cfg_fail(c, "has no effect without user");
        cfg_path_pop(c);
    }
    if (!user_ok || !group_ok || (!f->item[S_USER] && !f->item[S_GROUP]))
        return;

    svc->uid = w.uid;
    svc->gid = have_group ? gid : f->item[S_USER] ? w.gid : c->egid;
    cfg_resolve_groups(c, svc, supplementary);
    if (svc->set_ids && !c->can_switch_ids) {
        check_switch(c, f, svc, supplementary);
        svc->set_ids = false;
    }
}

/* ---- process settings ------------------------------------------------- */

void cfg_parse_octal(struct ctx *c, const cJSON *v, const char *example, int *out)
{
    char num[40];
    const char *s;
    int m = 0;

    if (cJSON_IsNumber(v)) {
        cfg_fail(c, "expected a string of octal digits such as \"%s\", got a number; quote it: "
                "\"%s\"", example, cfg_fmt_number(v->valuedouble, num));
        return;
    }
    if (!cfg_want_string(c, v, false, &s))
        return;

    size_t n = strlen(s);
    bool octal = n >= 1 && n <= 4;
    for (size_t i = 0; octal && i < n; i++) {
        octal = s[i] >= '0' && s[i] <= '7';
        m = m * 8 + (s[i] - '0');
    }
    if (!octal)
        cfg_fail(c, "expected 1 to 4 octal digits such as \"%s\", got %s", example, cfg_quote(c, s));
    else if (m > 0777)
        cfg_fail(c, "must be at most \"0777\", got %s", cfg_quote(c, s));
    else
        *out = m;
}

static void parse_process(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    static const char *const stderr_modes[] = {"inherit", "null", "log", NULL};
    const cJSON *v;
    long long backlog;
    int mode;

    if ((v = cfg_enter(c, f, S_BACKLOG))) {
        if (cfg_want_int(c, v, 1, 1048576, &backlog))
            svc->backlog = (int)backlog;
        if (svc->listen && !cfg_has_listener(svc, false))
            cfg_fail(c, "has no effect without a stream listener (TCP or unix)");
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_RECV_BUFFER))) {
        if (cfg_want_int(c, v, 4096, MAX_RECV_BUFFER, &backlog))
            svc->recv_buffer = (int)backlog;
        if (svc->listen && !cfg_has_listener(svc, true))
            cfg_fail(c, "has no effect without a udp:// listener");
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_UMASK))) {
        cfg_parse_octal(c, v, "022", &svc->umask);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_NICE))) {
        cfg_parse_nice(c, v, svc);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_RLIMITS))) {
        cfg_parse_rlimits(c, v, svc);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_STDERR))) {
        if (cfg_want_choice(c, v, stderr_modes, &mode))
            svc->stderr_mode = (enum psup_stderr_mode)mode;
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_NO_NEW_PRIVS))) {
        cfg_want_bool(c, v, &svc->no_new_privileges);
        cfg_path_pop(c);
    }
}

/* After the command: what prestart checks is the program it resolved to.
 * Not in wait mode (spec/prestart.md): a wait-mode server is one program
 * that runs for many connections, with no exec on any client's path to
 * take off it. Not for a cgi service (after the protocol): what it execs is
 * psup's relay, which is not made to run prestarted (spec/cgi.md). */
static void parse_prestart(struct ctx *c, const struct fields *f, struct psup_service_config *svc,
                           bool mode_ok)
{
    const cJSON *v = cfg_enter(c, f, S_PRESTART);

    if (!v)
        return;
    if (cfg_want_bool(c, v, &svc->prestart)) {
        if (mode_ok && svc->mode == PSUP_MODE_WAIT) {
            cfg_fail(c, "does not apply in wait mode: a server is one long-running program, "
                     "exec'd before any connection already");
            svc->prestart = false;
        } else if (svc->prestart && svc->protocol == PSUP_PROTOCOL_CGI) {
            cfg_fail(c, "does not apply to a \"cgi\" service: psup's relay, which it execs, "
                     "is not prestarted; the script runs for each request either way");
            svc->prestart = false;
        } else if (svc->prestart && !c->oom) {
            cfg_check_prestart(c, svc);
        }
    }
    cfg_path_pop(c);
}

/* ---- access and limits ---------------------------------------------- */

/* A message key that only means something with another setting. */
static void parse_dependent_message(struct ctx *c, const struct fields *f,
                                    const struct psup_service_config *svc, int k, bool useful,
                                    const char *without, char **out)
{
    const cJSON *v = cfg_enter(c, f, k);

    if (!v)
        return;
    cfg_want_message(c, v, out);
    if (svc->mode == PSUP_MODE_DATAGRAM)
        cfg_fail(c, "has no effect in datagram mode: a refused datagram is dropped without a "
                 "reply");
    else if (!useful)
        cfg_fail(c, "has no effect %s", without);
    cfg_path_pop(c);
}

static void parse_access(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    bool ok = cfg_parse_cidrs(c, f, S_ALLOW, "a non-empty array of CIDR strings (omit allow to "
                              "allow every client)", false, &svc->allow, &svc->n_allow);
    const cJSON *v;

    ok = cfg_parse_cidrs(c, f, S_DENY, "an array of CIDR strings", true, &svc->deny,
                         &svc->n_deny) && ok;
    parse_dependent_message(c, f, svc, S_DENY_MESSAGE, !ok || svc->n_allow || svc->n_deny,
                            "without allow or deny", &svc->deny_message);

    ok = true;
    if ((v = cfg_enter(c, f, S_MAX_PER_SOURCE))) {
        ok = cfg_want_uint(c, v, 0, MAX_WORKERS, &svc->max_per_source);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, S_PER_SOURCE_V6))) {
        cfg_want_uint(c, v, 1, 128, &svc->per_source_ipv6_prefix);
        cfg_path_pop(c);
    }
    parse_dependent_message(c, f, svc, S_PER_SOURCE_MESSAGE, !ok || svc->max_per_source > 0,
                            "without max_per_source", &svc->per_source_message);
}

static void parse_limits(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    static const char *const overload_modes[] = {"queue", "reject", NULL};
    bool rate_ok = true, overload_ok = true;
    const cJSON *v;
    int mode;

    if ((v = cfg_enter(c, f, S_RATE))) {
        rate_ok = cfg_want_number(c, v, "a number of connections per second", 0, false, MAX_RATE,
                              &svc->rate);
        cfg_path_pop(c);
    }

    /* The default burst is max(1, ceil(rate)): one second's worth. */
    svc->rate_burst = (unsigned)svc->rate;
    if (svc->rate_burst < svc->rate || svc->rate_burst == 0)
        svc->rate_burst++;
    if ((v = cfg_enter(c, f, S_RATE_BURST))) {
        if (cfg_want_uint(c, v, 1, (unsigned)MAX_RATE, &svc->rate_burst) && !f->item[S_RATE])
            cfg_fail(c, "has no effect without rate");
        cfg_path_pop(c);
    }
    parse_dependent_message(c, f, svc, S_RATE_MESSAGE, !rate_ok || f->item[S_RATE],
                            "without rate", &svc->rate_message);

    if ((v = cfg_enter(c, f, S_ON_OVERLOAD))) {
        overload_ok = cfg_want_choice(c, v, overload_modes, &mode);
        if (overload_ok)
            svc->on_overload = (enum psup_overload)mode;
        cfg_path_pop(c);
    }
    parse_dependent_message(c, f, svc, S_OVERLOAD_MESSAGE,
                            !overload_ok || svc->on_overload == PSUP_OVERLOAD_REJECT,
                            "unless on_overload is \"reject\"", &svc->overload_message);

    if ((v = cfg_enter(c, f, S_TIMEOUT))) {
        cfg_want_seconds(c, v, true, &svc->timeout);
        cfg_path_pop(c);
    }
}

/* ---- unix socket files ------------------------------------------------ */

bool cfg_has_unix_file(const struct psup_addr *listen, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct psup_addr *a = &listen[i];
        if (a->u.sa.sa_family == AF_UNSPEC ||
            (a->u.sa.sa_family == AF_UNIX && a->u.un.sun_path[0]))
            return true;
    }
    return false;
}

static bool in_own_groups(const struct ctx *c, gid_t gid)
{
    for (size_t i = 0; i < c->n_own_groups; i++)
        if (c->own_groups[i] == gid)
            return true;
    return gid == c->egid;
}

static void parse_socket_owner(struct ctx *c, const struct fields *f, int k_user, int k_group,
                               uid_t *uid, gid_t *gid)
{
    char label[96];
    const cJSON *v;

    if ((v = cfg_enter(c, f, k_user))) {
        /* Only the uid is used: the name and home the look-up copies into
         * its service go to a scratch one. */
        struct psup_service_config scratch = {0};
        struct who w;
        if (cfg_resolve_user(c, v, &scratch, &w)) {
            *uid = w.uid;
            if (w.uid != c->euid && c->euid != 0)
                cfg_fail(c, "psup runs as uid %u and cannot give a socket file to another user; "
                        "run psup as root or remove socket_user", (unsigned)c->euid);
        }
        free(scratch.user_name);
        free(scratch.user_home);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, f, k_group))) {
        if (cfg_resolve_group(c, v, gid) && c->euid != 0 &&
            !in_own_groups(c, *gid))
            cfg_fail(c, "psup is not a member of %s and cannot give a socket file to it; run "
                    "psup as root or remove socket_group", cfg_group_label(*gid, label));
        cfg_path_pop(c);
    }
}

void cfg_parse_socket_file(struct ctx *c, const struct fields *f, const int keys[3],
                           bool unix_file, int *mode, uid_t *uid, gid_t *gid)
{
    const cJSON *v;

    if ((v = cfg_enter(c, f, keys[0]))) {
        cfg_parse_octal(c, v, "0660", mode);
        cfg_path_pop(c);
    }
    parse_socket_owner(c, f, keys[1], keys[2], uid, gid);
    for (size_t i = 0; i < 3; i++)
        if (f->item[keys[i]] && !unix_file)
            cfg_fail_at(c, f, keys[i], "has no effect without a unix:/path listener");
}

static void parse_socket_file(struct ctx *c, const struct fields *f,
                              struct psup_service_config *svc)
{
    static const int keys[] = {S_SOCKET_MODE, S_SOCKET_USER, S_SOCKET_GROUP};

    cfg_parse_socket_file(c, f, keys, !svc->listen || cfg_has_unix_file(svc->listen, svc->n_listen),
                          &svc->socket_mode, &svc->socket_uid, &svc->socket_gid);
}

/* The keys that judge single connections or speak on them (the protocol,
 * the PROXY header), which a wait-mode server accepts itself: psup never
 * sees them (spec/wait.md). */
static void parse_wait(struct ctx *c, const struct fields *f, struct psup_service_config *svc,
                       bool mode_ok)
{
    static const int wait_keys[] = {S_START, S_INSTANCES};
    static const int per_connection[] = {
        S_POOL, S_ALLOW, S_DENY, S_DENY_MESSAGE, S_MAX_PER_SOURCE, S_PER_SOURCE_V6,
        S_PER_SOURCE_MESSAGE, S_RATE, S_RATE_BURST, S_RATE_MESSAGE, S_ON_OVERLOAD,
        S_OVERLOAD_MESSAGE, S_PROTOCOL, S_HTTP, S_PROXY_PROTOCOL, S_PROXY_FROM, S_PROXY_TIMEOUT,
    };

    cfg_parse_wait(c, f, wait_keys, mode_ok, per_connection,
                   sizeof(per_connection) / sizeof(per_connection[0]), svc);
}

/* ---- essential services ---------------------------------------------- */

/* How long an essential service may fail before psup gives up, unless
 * fatal_after says (spec/config.md, "essential"). */
#define DEFAULT_FATAL_AFTER 30.0

static void parse_essential(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    const cJSON *v;
    bool essential_ok = true;

    if ((v = cfg_enter(c, f, S_ESSENTIAL))) {
        essential_ok = cfg_want_bool(c, v, &svc->essential);
        cfg_path_pop(c);
    }
    svc->fatal_after = svc->essential ? DEFAULT_FATAL_AFTER : 0;
    if ((v = cfg_enter(c, f, S_FATAL_AFTER))) {
        double secs;
        bool ok = cfg_want_seconds(c, v, false, &secs);
        if (ok && svc->essential)
            svc->fatal_after = secs;
        else if (ok && essential_ok)
            cfg_fail(c, "has no effect unless essential is true");
        cfg_path_pop(c);
    }
}

static void service_defaults(struct ctx *c, struct psup_service_config *svc)
{
    svc->backlog = c->somaxconn;
    svc->recv_buffer = PSUP_RECV_BUFFER_DEFAULT;
    svc->umask = -1;
    svc->socket_mode = -1;
    svc->socket_uid = (uid_t)-1;
    svc->socket_gid = (gid_t)-1;
    svc->uid = c->euid;
    svc->gid = c->egid;
    svc->per_source_ipv6_prefix = 128;
    svc->rate_burst = 1;
    svc->stderr_mode = PSUP_STDERR_INHERIT;
    svc->on_overload = PSUP_OVERLOAD_QUEUE;
    svc->mode = PSUP_MODE_ACCEPT;
    svc->start = PSUP_START_ON_DEMAND;
    svc->instances = 1;
}

static bool same_name(const void *a, const void *b)
{
    return strcmp(a, b) == 0;
}

void cfg_services_begin(struct ctx *c)
{
    cfg_table_init(&c->service_names, same_name);
    cfg_table_init(&c->listen_addrs, cfg_same_addr);
    cfg_table_init(&c->listen_scopes, NULL);
}

void cfg_services_end(struct ctx *c)
{
    cfg_table_free(&c->service_names);
    cfg_table_free(&c->listen_addrs);
    cfg_table_free(&c->listen_scopes);
}

/* Keys are checked in the order their dependencies need (env and cwd
 * before command); problems are sorted into document order later. */
void cfg_parse_service(struct ctx *c, const cJSON *obj, size_t index)
{
    struct psup_service_config *svc = &c->cfg->services[index];
    struct fields f;

    service_defaults(c, svc);
    /* Reload compares these strings to find the services that changed. */
    svc->canonical = cJSON_PrintUnformatted(obj);
    cfg_read_fields(c, obj, service_keys, &f);
    parse_name(c, &f, svc, index);
    cfg_parse_listen(c, &f, S_LISTEN, index);
    bool mode_ok = cfg_parse_mode(c, &f, S_MODE, S_LISTEN, svc);
    parse_env(c, &f, svc);
    parse_pass_env(c, &f, svc);
    bool cwd_ok = parse_cwd(c, &f, svc);
    parse_command(c, &f, svc, cwd_ok);
    parse_pool(c, &f, svc);
    parse_ids(c, &f, svc);
    parse_process(c, &f, svc);
    parse_access(c, &f, svc);
    parse_limits(c, &f, svc);
    parse_socket_file(c, &f, svc);
    cfg_parse_protocol(c, &f, &protocol_keys, mode_ok, svc);
    parse_prestart(c, &f, svc, mode_ok);
    parse_wait(c, &f, svc, mode_ok);
    parse_essential(c, &f, svc);
}
