/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader: JSON text to struct psup_config, every problem
 * reported with its JSON path and in document order, names resolved at load
 * (programs, users, groups). The only file that includes cJSON. No I/O but
 * reading the file and the look-ups that validation needs (stat, passwd).
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 8
#define MAX_KEYS 32
#define MAX_FILE_SIZE (16u << 20)
#define MAX_SECONDS 31536000.0 /* one year: keeps timer arithmetic far from overflow */
#define MAX_MESSAGE 1024       /* one write to a fresh socket never blocks */
#define MAX_RATE 1000000.0
#define MAX_WORKERS 65536
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* One problem, kept with the position of its JSON node (the index of each
 * key or element on the way down) so that the list can be put in document
 * order at the end, whatever order the checks ran in. */
struct problem {
    unsigned ord[MAX_DEPTH];
    unsigned depth;
    size_t seq;
    char *text;
};

struct ctx {
    struct psup_config *cfg;
    const char *origin;
    char path[512];
    size_t path_len[MAX_DEPTH + 1];
    unsigned ord[MAX_DEPTH];
    unsigned depth;
    struct problem *problems;
    size_t n_problems, cap_problems;
    bool oom;

    /* Facts about the running psup that validation compares against. */
    char cwd[PATH_MAX];
    bool have_cwd;
    uid_t euid;
    gid_t egid;
    gid_t *own_groups;
    size_t n_own_groups;
    int somaxconn;
};

/* The keys of one JSON object, looked up by index in a NULL-terminated name
 * table, each with its position for error ordering. */
struct fields {
    const char *const *names;
    const cJSON *item[MAX_KEYS];
    unsigned ord[MAX_KEYS];
    unsigned n_children;
};

/* ---- paths and problems ------------------------------------------------ */

static void path_push(struct ctx *c, unsigned ord, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_push(struct ctx *c, unsigned ord, const char *fmt, ...)
{
    size_t len = c->path_len[c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH];
    va_list ap;

    if (c->depth < MAX_DEPTH)
        c->ord[c->depth] = ord;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + len, sizeof(c->path) - len, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len >= sizeof(c->path))
        len = sizeof(c->path) - 1;
    c->depth++;
    if (c->depth <= MAX_DEPTH)
        c->path_len[c->depth] = len;
}

static void path_pop(struct ctx *c)
{
    c->depth--;
    c->path[c->path_len[c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH]] = '\0';
}

static bool plain_key(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '$'))
            return false;
    }
    return true;
}

/* A key is written .name, or ["..."] when it holds other characters, so a
 * path stays unambiguous whatever the file contains. */
static void push_key(struct ctx *c, const char *name, unsigned ord)
{
    char quoted[160];
    size_t n = 0;

    if (plain_key(name)) {
        path_push(c, ord, "%s%s", c->depth ? "." : "", name);
        return;
    }
    for (const char *s = name; *s && n < sizeof(quoted) - 8; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            quoted[n++] = '\\';
        if (ch < 0x20)
            n += (size_t)snprintf(quoted + n, sizeof(quoted) - n, "\\u%04x", ch);
        else
            quoted[n++] = (char)ch;
    }
    quoted[n] = '\0';
    path_push(c, ord, "[\"%s\"]", quoted);
}

static void push_index(struct ctx *c, size_t i)
{
    path_push(c, (unsigned)i, "[%zu]", i);
}

static void add_problem(struct ctx *c, char *text)
{
    if (c->n_problems == c->cap_problems) {
        size_t cap = c->cap_problems ? 2 * c->cap_problems : 16;
        struct problem *p = realloc(c->problems, cap * sizeof(*p));
        if (!p) {
            free(text);
            c->oom = true;
            return;
        }
        c->problems = p;
        c->cap_problems = cap;
    }

    struct problem *p = &c->problems[c->n_problems];
    p->depth = c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH;
    memcpy(p->ord, c->ord, sizeof(p->ord));
    p->seq = c->n_problems++;
    p->text = text;
}

/* Report a problem at the current path ("services[0].pool: ..."), or at the
 * origin (the file name) at the top level. */
static void fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct ctx *c, const char *fmt, ...)
{
    char *msg = NULL, *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0 || asprintf(&text, "%s: %s", c->depth ? c->path : c->origin, msg) < 0) {
        free(msg);
        c->oom = true;
        return;
    }
    free(msg);
    add_problem(c, text);
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem *p = a, *q = b;
    unsigned n = p->depth < q->depth ? p->depth : q->depth;

    for (unsigned i = 0; i < n; i++) {
        if (p->ord[i] != q->ord[i])
            return p->ord[i] < q->ord[i] ? -1 : 1;
    }
    if (p->depth != q->depth)
        return p->depth < q->depth ? -1 : 1;
    return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Move the problems, sorted into document order, to the caller's list.
 * Returns how many there were. */
static size_t flush_problems(struct ctx *c, struct psup_diag *diag)
{
    size_t n = c->n_problems;

    if (n)
        qsort(c->problems, n, sizeof(*c->problems), problem_cmp);
    for (size_t i = 0; i < n; i++) {
        psup_diag_addf(diag, "%s", c->problems[i].text);
        free(c->problems[i].text);
    }
    if (c->oom) {
        psup_diag_addf(diag, "%s: out of memory while loading the configuration", c->origin);
        n++;
    }
    free(c->problems);
    c->problems = NULL;
    c->n_problems = 0;
    return n;
}

/* ---- allocation that records failure instead of returning it ---------- */

static void *xcalloc(struct ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p)
        c->oom = true;
    return p;
}

static char *xstrdup(struct ctx *c, const char *s)
{
    char *p = strdup(s);

    if (!p)
        c->oom = true;
    return p;
}

static char *xasprintf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *xasprintf(struct ctx *c, const char *fmt, ...)
{
    char *p = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->oom = true;
        return NULL;
    }
    return p;
}

/* ---- objects: known keys, duplicates, suggestions --------------------- */

static char fold(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Levenshtein distance, case-insensitive; both strings at most 64 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (fold(a[i - 1]) != fold(b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *psup_config_suggest(const char *unknown, const char *const *known)
{
    size_t lu = strlen(unknown), best_d = SIZE_MAX;
    const char *best = NULL;

    if (lu > 64)
        return NULL;
    for (; *known; known++) {
        size_t lk = strlen(*known);
        if (lk > 64)
            continue;

        /* Close means at most 2 edits, or a third of a long name; and never
         * as many edits as the longer name has letters, which would suggest
         * "as" for "xy". */
        size_t d = edit_distance(unknown, *known);
        size_t limit = lk / 3 > 2 ? lk / 3 : 2;
        if (d <= limit && d < (lu > lk ? lu : lk) && d < best_d) {
            best = *known;
            best_d = d;
        }
    }
    return best;
}

static int key_index(const char *const *names, const char *key)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], key) == 0)
            return i;
    }
    return -1;
}

static bool seen_before(const cJSON *obj, const cJSON *item)
{
    for (const cJSON *p = obj->child; p && p != item; p = p->next) {
        if (strcmp(p->string, item->string) == 0)
            return true;
    }
    return false;
}

/* Sort an object's members into f by name; report unknown and repeated
 * keys. The first of repeated keys is the one used. */
static void read_fields(struct ctx *c, const cJSON *obj, const char *const *names,
                        struct fields *f)
{
    unsigned ord = 0;

    memset(f, 0, sizeof(*f));
    f->names = names;
    for (const cJSON *it = obj->child; it; it = it->next, ord++) {
        int k = key_index(names, it->string);
        const char *hint = k < 0 ? psup_config_suggest(it->string, names) : NULL;

        push_key(c, it->string, ord);
        if (seen_before(obj, it))
            fail(c, "duplicate key");
        else if (k < 0 && hint)
            fail(c, "unknown key; did you mean \"%s\"?", hint);
        else if (k < 0)
            fail(c, "unknown key");
        else {
            f->item[k] = it;
            f->ord[k] = ord;
        }
        path_pop(c);
    }
    f->n_children = ord;
}

/* Step into the member k if present: the path then names it. */
static const cJSON *enter(struct ctx *c, const struct fields *f, int k)
{
    if (!f->item[k])
        return NULL;
    push_key(c, f->names[k], f->ord[k]);
    return f->item[k];
}

/* Report at member k, present or not (an absent one sorts at the end of its
 * object, where it would have been written). */
static void fail_at(struct ctx *c, const struct fields *f, int k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_at(struct ctx *c, const struct fields *f, int k, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->oom = true;
        return;
    }
    push_key(c, f->names[k], f->item[k] ? f->ord[k] : f->n_children);
    fail(c, "%s", msg);
    path_pop(c);
    free(msg);
}

/* ---- typed values --------------------------------------------------- */

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return cJSON_GetArraySize(v) ? "an array" : "an empty array";
    return "an object";
}

static const char *fmt_number(double d, char buf[40])
{
    if (d >= -1e15 && d <= 1e15 && d == (double)(long long)d)
        snprintf(buf, 40, "%lld", (long long)d);
    else
        snprintf(buf, 40, "%g", d);
    return buf;
}

static bool is_integer(double d)
{
    return d >= -9e18 && d <= 9e18 && d == (double)(long long)d;
}

static bool want_int(struct ctx *c, const cJSON *v, long long min, long long max,
                     long long *out)
{
    const char *what = min >= 0 ? "a non-negative integer" : "an integer";
    char num[40];

    if (!cJSON_IsNumber(v)) {
        fail(c, "expected %s, got %s", what, type_name(v));
        return false;
    }
    double d = v->valuedouble;
    if (!is_integer(d) || (min >= 0 && d < 0)) {
        fail(c, "expected %s, got %s", what, fmt_number(d, num));
        return false;
    }
    if (d < (double)min || d > (double)max) {
        fail(c, "must be between %lld and %lld, got %s", min, max, fmt_number(d, num));
        return false;
    }
    *out = (long long)d;
    return true;
}

static bool want_uint(struct ctx *c, const cJSON *v, unsigned min, unsigned max, unsigned *out)
{
    long long x;

    if (!want_int(c, v, min, max, &x))
        return false;
    *out = (unsigned)x;
    return true;
}

/* A number in [min, max], or (min, max] when min itself is excluded. */
static bool want_number(struct ctx *c, const cJSON *v, const char *what, double min,
                        bool min_ok, double max, double *out)
{
    char num[40], lim[40];

    if (!cJSON_IsNumber(v)) {
        fail(c, "expected %s, got %s", what, type_name(v));
        return false;
    }
    double d = v->valuedouble;
    if (d < min || (d == min && !min_ok)) {
        fail(c, "must be %s %s, got %s", min_ok ? ">=" : ">", fmt_number(min, lim),
             fmt_number(d, num));
        return false;
    }
    if (!(d <= max)) {
        fail(c, "must be at most %s, got %s", fmt_number(max, lim), fmt_number(d, num));
        return false;
    }
    *out = d;
    return true;
}

static bool want_seconds(struct ctx *c, const cJSON *v, bool zero_ok, double *out)
{
    return want_number(c, v, "a number of seconds", 0, zero_ok, MAX_SECONDS, out);
}

static bool want_string(struct ctx *c, const cJSON *v, bool non_empty, const char **out)
{
    if (!cJSON_IsString(v)) {
        fail(c, "expected a string, got %s", type_name(v));
        return false;
    }
    if (non_empty && !v->valuestring[0]) {
        fail(c, "must not be empty");
        return false;
    }
    *out = v->valuestring;
    return true;
}

static bool want_bool(struct ctx *c, const cJSON *v, bool *out)
{
    if (!cJSON_IsBool(v)) {
        fail(c, "expected true or false, got %s", type_name(v));
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* A string out of a fixed list; *out is its index. */
static bool want_choice(struct ctx *c, const cJSON *v, const char *const *choices, int *out)
{
    char list[128];
    size_t n = 0;

    for (int i = 0; choices[i]; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", sep, choices[i]);
    }
    if (cJSON_IsString(v)) {
        int k = key_index(choices, v->valuestring);
        if (k >= 0) {
            *out = k;
            return true;
        }
        fail(c, "expected %s, got \"%s\"", list, v->valuestring);
        return false;
    }
    fail(c, "expected %s, got %s", list, type_name(v));
    return false;
}

/* A string sent to a refused client. */
static void want_message(struct ctx *c, const cJSON *v, char **out)
{
    const char *s;

    if (!want_string(c, v, false, &s))
        return;
    if (strlen(s) > MAX_MESSAGE) {
        fail(c, "must be at most %d bytes, got %zu", MAX_MESSAGE, strlen(s));
        return;
    }
    *out = xstrdup(c, s);
}

static bool want_array(struct ctx *c, const cJSON *v, const char *what)
{
    if (!cJSON_IsArray(v)) {
        fail(c, "expected %s, got %s", what, type_name(v));
        return false;
    }
    if (cJSON_GetArraySize(v) == 0) {
        fail(c, "expected %s, got an empty array", what);
        return false;
    }
    return true;
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

/* ---- files and programs --------------------------------------------- */

/* Join a relative path to a directory, dropping leading "./". */
static char *join_path(struct ctx *c, const char *dir, const char *rel)
{
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (!*rel || strcmp(rel, ".") == 0)
        return xstrdup(c, dir);
    return xasprintf(c, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
}

enum probe {
    PROBE_OK,
    PROBE_MISSING,
    PROBE_NOT_REGULAR,
    PROBE_NOT_EXECUTABLE,
};

/* Whether path is a regular file psup may execute; *err is the errno. The
 * check uses the effective ids, as execve will. */
static enum probe probe_program(const char *path, int *err)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        *err = errno;
        return PROBE_MISSING;
    }
    if (!S_ISREG(st.st_mode))
        return PROBE_NOT_REGULAR;
    if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
        *err = errno;
        return PROBE_NOT_EXECUTABLE;
    }
    return PROBE_OK;
}

static void report_probe(struct ctx *c, enum probe r, const char *path, int err)
{
    if (r == PROBE_MISSING && err == ENOENT)
        fail(c, "%s does not exist", path);
    else if (r == PROBE_MISSING)
        fail(c, "cannot use %s (%s)", path, strerror(err));
    else if (r == PROBE_NOT_REGULAR)
        fail(c, "%s is not a regular file", path);
    else if (r == PROBE_NOT_EXECUTABLE)
        fail(c, "%s is not executable (%s)", path, strerror(err));
}

/* The directory relative paths of a service are resolved against: its cwd,
 * else psup's; NULL when neither is known. */
static const char *base_dir(const struct ctx *c, const struct psup_service_config *svc)
{
    if (svc->cwd)
        return svc->cwd;
    return c->have_cwd ? c->cwd : NULL;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

/* The PATH the handler will have, per spec/config.md. */
static const char *handler_path(const struct psup_service_config *svc)
{
    for (size_t i = 0; i < svc->n_env; i++) {
        if (strncmp(svc->env[i], "PATH=", 5) == 0)
            return svc->env[i] + 5;
    }
    if (svc->clear_env && !in_list(svc->pass_env, svc->n_pass_env, "PATH"))
        return DEFAULT_PATH;

    const char *p = getenv("PATH");
    return p ? p : DEFAULT_PATH;
}

/* DIR/NAME for one PATH entry (len bytes at dir); an empty entry is the
 * current directory, and relative entries are resolved like relative
 * programs. NULL when it cannot be made absolute. */
static char *path_candidate(struct ctx *c, const struct psup_service_config *svc,
                            const char *dir, size_t len, const char *name)
{
    const char *base = base_dir(c, svc);
    char *d = len ? xasprintf(c, "%.*s", (int)len, dir) : xstrdup(c, ".");
    char *abs = NULL, *cand = NULL;

    if (d && d[0] == '/')
        cand = join_path(c, d, name);
    else if (d && base && (abs = join_path(c, base, d)))
        cand = join_path(c, abs, name);
    free(abs);
    free(d);
    return cand;
}

/* Search a bare program name in PATH as execvp would: the first executable
 * regular file wins; if there is none, the first file found that cannot be
 * run is reported, else "not found". */
static void search_path(struct ctx *c, struct psup_service_config *svc, const char *name)
{
    const char *path = handler_path(svc);
    enum probe bad_r = PROBE_OK;
    char *bad = NULL;
    int bad_err = 0;

    for (const char *p = path; !svc->program; p++) {
        size_t len = strcspn(p, ":");
        char *cand = path_candidate(c, svc, p, len, name);
        int err = 0;
        enum probe r = cand ? probe_program(cand, &err) : PROBE_MISSING;

        if (r == PROBE_OK) {
            svc->program = cand;
        } else if (r != PROBE_MISSING && !bad) {
            bad = cand;
            bad_r = r;
            bad_err = err;
        } else {
            free(cand);
        }
        p += len;
        if (!*p)
            break;
    }
    if (!svc->program && bad)
        report_probe(c, bad_r, bad, bad_err);
    else if (!svc->program)
        fail(c, "program \"%s\" not found in PATH (%s)", name, path);
    free(bad);
}

/* Resolve argv[0] (the current path is command[0]) into svc->program. */
static void resolve_program(struct ctx *c, struct psup_service_config *svc, const char *name)
{
    const char *base = base_dir(c, svc);
    int err = 0;

    if (!strchr(name, '/')) {
        search_path(c, svc, name);
        return;
    }
    if (name[0] == '/') {
        svc->program = xstrdup(c, name);
    } else if (base) {
        svc->program = join_path(c, base, name);
    } else {
        fail(c, "cannot resolve a relative path: psup's working directory is unknown");
        return;
    }
    if (!svc->program)
        return;

    enum probe r = probe_program(svc->program, &err);
    if (r != PROBE_OK)
        report_probe(c, r, svc->program, err);
}

/* ---- service keys --------------------------------------------------- */

enum {
    S_NAME, S_LISTEN, S_COMMAND, S_POOL, S_BACKLOG, S_ENV, S_CLEAR_ENV, S_PASS_ENV,
    S_CWD, S_USER, S_GROUP, S_SUPP_GROUPS, S_UMASK, S_NICE, S_RLIMITS, S_STDERR,
    S_ALLOW, S_DENY, S_DENY_MESSAGE, S_MAX_PER_SOURCE, S_PER_SOURCE_V6,
    S_PER_SOURCE_MESSAGE, S_RATE, S_RATE_BURST, S_RATE_MESSAGE, S_ON_OVERLOAD,
    S_OVERLOAD_MESSAGE, S_TIMEOUT,
};

static const char *const service_keys[] = {
    "name", "listen", "command", "pool", "backlog", "env", "clear_env", "pass_env",
    "cwd", "user", "group", "supplementary_groups", "umask", "nice", "rlimits", "stderr",
    "allow", "deny", "deny_message", "max_per_source", "per_source_ipv6_prefix",
    "per_source_message", "rate", "rate_burst", "rate_message", "on_overload",
    "overload_message", "timeout", NULL,
};

_Static_assert(sizeof(service_keys) / sizeof(service_keys[0]) <= MAX_KEYS + 1,
               "struct fields holds every service key");

/* Variables psup sets for each connection; a service may not set them. */
static const char *const reserved_env[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPCONNNUM",
    "REMOTE_ADDR", "REMOTE_PORT", "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
    "UNIXREMOTEPID", "PSUP_SERVICE", "PSUP_CONN_ID", NULL,
};

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
    const cJSON *v = enter(c, f, S_NAME);
    const char *s;

    if (!v) {
        fail_at(c, f, S_NAME, "missing (required)");
        return;
    }
    if (!want_string(c, v, false, &s))
        goto out;
    if (!valid_service_name(s)) {
        fail(c, "must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got \"%s\"", s);
        goto out;
    }
    for (size_t j = 0; j < index; j++) {
        if (c->cfg->services[j].name && strcmp(c->cfg->services[j].name, s) == 0) {
            fail(c, "duplicate service name \"%s\" (also services[%zu])", s, j);
            break;
        }
    }
    svc->name = xstrdup(c, s);
out:
    path_pop(c);
}

static bool ephemeral(const struct psup_addr *a)
{
    return a->proto != PSUP_PROTO_UNIX && psup_sockaddr_port(&a->u.sa) == 0;
}

/* The same socket address twice cannot be bound; name the first use. */
static void check_listen_unique(struct ctx *c, size_t svc_index, size_t i)
{
    const struct psup_addr *a = &c->cfg->services[svc_index].listen[i];
    char text[PSUP_ADDR_STRLEN];

    if (ephemeral(a))
        return;
    for (size_t j = 0; j <= svc_index; j++) {
        const struct psup_service_config *o = &c->cfg->services[j];
        size_t n = j == svc_index ? i : o->n_listen;
        for (size_t k = 0; k < n; k++) {
            if (psup_addr_same(a, &o->listen[k])) {
                psup_addr_format(a, text, sizeof(text));
                fail(c, "%s is already used by services[%zu].listen[%zu]", text, j, k);
                return;
            }
        }
    }
}

static void parse_listen(struct ctx *c, const struct fields *f, size_t svc_index)
{
    struct psup_service_config *svc = &c->cfg->services[svc_index];
    const cJSON *v = enter(c, f, S_LISTEN), *el;
    size_t i = 0;

    if (!v) {
        fail_at(c, f, S_LISTEN, "missing (required)");
        return;
    }
    if (!want_array(c, v, "a non-empty array of addresses"))
        goto out;

    size_t n = (size_t)cJSON_GetArraySize(v);
    svc->listen = xcalloc(c, n, sizeof(*svc->listen));
    svc->listen_text = xcalloc(c, n + 1, sizeof(*svc->listen_text));
    if (!svc->listen || !svc->listen_text)
        goto out;
    svc->n_listen = n;
    cJSON_ArrayForEach(el, v) {
        const char *s, *why = NULL;
        size_t before = c->n_problems;

        push_index(c, i);
        if (want_string(c, el, false, &s)) {
            svc->listen_text[i] = xstrdup(c, s);
            if (psup_addr_parse(s, &svc->listen[i], &why) < 0)
                fail(c, "invalid address \"%s\": %s", s, why);
            else if (svc->listen[i].proto == PSUP_PROTO_UDP)
                fail(c, "UDP listeners are not supported yet");
            else
                check_listen_unique(c, svc_index, i);
        }

        /* An entry with a problem must not match a later one. */
        if (c->n_problems > before)
            memset(&svc->listen[i], 0, sizeof(svc->listen[i]));
        path_pop(c);
        i++;
    }
out:
    path_pop(c);
}

static void parse_env(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    const cJSON *v = enter(c, f, S_ENV), *it;
    unsigned ord = 0;

    if (!v)
        return;
    if (!cJSON_IsObject(v)) {
        fail(c, "expected an object of NAME: \"value\" pairs, got %s", type_name(v));
        path_pop(c);
        return;
    }
    svc->env = xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *));
    for (it = v->child; it && svc->env; it = it->next, ord++) {
        const char *s;

        push_key(c, it->string, ord);
        if (seen_before(v, it))
            fail(c, "duplicate key");
        else if (!valid_env_name(it->string))
            fail(c, "not a valid variable name (letters, digits and _, not starting "
                    "with a digit)");
        else if (key_index(reserved_env, it->string) >= 0)
            fail(c, "is set by psup for each connection");
        else if (want_string(c, it, false, &s))
            svc->env[svc->n_env++] = xasprintf(c, "%s=%s", it->string, s);
        path_pop(c);
    }
    path_pop(c);
}

static void parse_pass_env(struct ctx *c, const struct fields *f,
                           struct psup_service_config *svc)
{
    const cJSON *v, *el;
    bool clear_ok = true;
    size_t i = 0;

    if ((v = enter(c, f, S_CLEAR_ENV))) {
        clear_ok = want_bool(c, v, &svc->clear_env);
        path_pop(c);
    }
    if (!(v = enter(c, f, S_PASS_ENV)))
        return;
    if (!cJSON_IsArray(v)) {
        fail(c, "expected an array of variable names, got %s", type_name(v));
    } else if (clear_ok && !svc->clear_env) {
        fail(c, "has no effect unless clear_env is true");
    } else if ((svc->pass_env = xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *)))) {
        cJSON_ArrayForEach(el, v) {
            const char *s = NULL;

            push_index(c, i++);
            if (want_string(c, el, false, &s) && !valid_env_name(s))
                fail(c, "\"%s\" is not a valid variable name", s);
            else if (s)
                svc->pass_env[svc->n_pass_env++] = xstrdup(c, s);
            path_pop(c);
        }
    }
    path_pop(c);
}

/* Returns false when cwd is set but unusable, so that paths relative to it
 * are not checked (that would only repeat the same problem). */
static bool parse_cwd(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    const cJSON *v = enter(c, f, S_CWD);
    const char *s, *base;
    struct stat st;
    bool ok = false;

    if (!v)
        return true;
    if (!want_string(c, v, true, &s))
        goto out;

    char *dir = NULL;
    if (s[0] == '/')
        dir = xstrdup(c, s);
    else if ((base = base_dir(c, svc)))
        dir = join_path(c, base, s);
    else
        fail(c, "cannot resolve a relative path: psup's working directory is unknown");
    if (!dir)
        goto out;

    int rc = stat(dir, &st), err = errno;
    if (rc < 0 && err == ENOENT)
        fail(c, "%s does not exist", dir);
    else if (rc < 0)
        fail(c, "cannot use %s (%s)", dir, strerror(err));
    else if (!S_ISDIR(st.st_mode))
        fail(c, "%s is not a directory", dir);
    else
        ok = true;
    if (ok)
        svc->cwd = dir;
    else
        free(dir);
out:
    path_pop(c);
    return ok;
}

static void parse_command(struct ctx *c, const struct fields *f,
                          struct psup_service_config *svc, bool cwd_ok)
{
    const cJSON *v = enter(c, f, S_COMMAND), *el;
    size_t i = 0;
    int err = 0;

    if (!v) {
        fail_at(c, f, S_COMMAND, "missing (required)");
        return;
    }
    if (cJSON_IsString(v)) {
        const char *text = v->valuestring;
        enum probe r = probe_program("/bin/sh", &err);

        if (!text[0])
            fail(c, "must not be empty");
        else if (r != PROBE_OK)
            report_probe(c, r, "/bin/sh", err);
        svc->shell = true;
        svc->program = xstrdup(c, "/bin/sh");
        if ((svc->argv = xcalloc(c, 4, sizeof(char *)))) {
            svc->argv[0] = xstrdup(c, "sh");
            svc->argv[1] = xstrdup(c, "-c");
            svc->argv[2] = xstrdup(c, text);
            svc->argc = 3;
        }
        goto out;
    }
    if (!want_array(c, v, "a non-empty array of strings (argv) or a string (run with "
                          "/bin/sh -c)"))
        goto out;
    if (!(svc->argv = xcalloc(c, (size_t)cJSON_GetArraySize(v) + 1, sizeof(char *))))
        goto out;

    bool ok = true;
    cJSON_ArrayForEach(el, v) {
        const char *s;

        push_index(c, i++);
        if (want_string(c, el, i == 1, &s))
            svc->argv[svc->argc++] = xstrdup(c, s);
        else
            ok = false;
        path_pop(c);
    }
    if (ok && cwd_ok && !c->oom) {
        push_index(c, 0);
        resolve_program(c, svc, svc->argv[0]);
        path_pop(c);
    }
out:
    path_pop(c);
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
    const cJSON *v = enter(c, sf, S_POOL);
    bool set[3] = {false, false, false}, ok = true;
    unsigned val[3] = {0, 0, 0};
    struct fields f;

    derive_pool(svc, set, val);
    if (!v)
        return;
    if (!cJSON_IsObject(v)) {
        fail(c, "expected an object, got %s", type_name(v));
        path_pop(c);
        return;
    }
    read_fields(c, v, pool_keys, &f);
    for (int k = P_MIN_SPARE; k <= P_MAX_WORKERS; k++) {
        const cJSON *it = enter(c, &f, k);
        if (it) {
            set[k] = want_uint(c, it, 1, MAX_WORKERS, &val[k]);
            ok = ok && set[k];
            path_pop(c);
        }
    }
    derive_pool(svc, set, val);
    if (ok && svc->max_spare < svc->min_spare)
        fail_at(c, &f, P_MAX_SPARE, "must be >= min_spare (%u)", svc->min_spare);
    else if (ok && svc->max_workers < svc->max_spare)
        fail_at(c, &f, P_MAX_WORKERS, "must be >= %s (%u)",
                set[P_MAX_SPARE] ? "max_spare" : "min_spare",
                set[P_MAX_SPARE] ? svc->max_spare : svc->min_spare);
    path_pop(c);
}

/* ---- credentials ---------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* What the user key resolves to. */
struct who {
    bool known;     /* has a passwd entry */
    uid_t uid;
    gid_t gid;      /* primary group from passwd */
};

static bool resolve_user(struct ctx *c, const cJSON *v, struct psup_service_config *svc,
                         struct who *w)
{
    const struct passwd *pw;
    const char *s;
    long long id;

    if (cJSON_IsNumber(v)) {
        if (!want_int(c, v, 0, (long long)(uid_t)-2, &id))
            return false;
        pw = getpwuid((uid_t)id);
        w->uid = (uid_t)id;
    } else {
        if (!cJSON_IsString(v)) {
            fail(c, "expected a user name or a numeric uid, got %s", type_name(v));
            return false;
        }
        if (!want_string(c, v, true, &s))
            return false;
        pw = getpwnam(s);
        if (!pw) {
            fail(c, "no such user \"%s\"%s", s,
                 all_digits(s) ? "; write a numeric uid as a number, without quotes" : "");
            return false;
        }
    }
    w->known = pw != NULL;
    if (pw) {
        w->uid = pw->pw_uid;
        w->gid = pw->pw_gid;
        svc->user_name = xstrdup(c, pw->pw_name);
        svc->user_home = xstrdup(c, pw->pw_dir);
    }
    return true;
}

static bool resolve_group(struct ctx *c, const cJSON *v, gid_t *gid)
{
    const struct group *gr;
    const char *s;
    long long id;

    if (cJSON_IsNumber(v)) {
        if (!want_int(c, v, 0, (long long)(gid_t)-2, &id))
            return false;
        *gid = (gid_t)id;
        return true;
    }
    if (!cJSON_IsString(v)) {
        fail(c, "expected a group name or a numeric gid, got %s", type_name(v));
        return false;
    }
    if (!want_string(c, v, true, &s))
        return false;
    gr = getgrnam(s);
    if (!gr) {
        fail(c, "no such group \"%s\"%s", s,
             all_digits(s) ? "; write a numeric gid as a number, without quotes" : "");
        return false;
    }
    *gid = gr->gr_gid;
    return true;
}

/* The supplementary groups: the user's memberships, or just gid. */
static void build_groups(struct ctx *c, struct psup_service_config *svc, bool supplementary)
{
    int n = 16;

    if (!supplementary || !svc->user_name) {
        if ((svc->groups = xcalloc(c, 1, sizeof(gid_t)))) {
            svc->groups[0] = svc->gid;
            svc->n_groups = 1;
        }
        return;
    }
    for (;;) {
        gid_t *g = xcalloc(c, (size_t)n, sizeof(gid_t));
        int want = n;
        if (!g)
            return;
        if (getgrouplist(svc->user_name, svc->gid, g, &want) >= 0) {
            svc->groups = g;
            svc->n_groups = (size_t)want;
            return;
        }
        free(g);
        n = want > n ? want : 2 * n;
    }
}

/* Whether g is in list, or is the gid (a process is a member of its own gid
 * whether getgroups lists it or not). */
static bool has_group(const gid_t *list, size_t n, gid_t gid, gid_t g)
{
    if (g == gid)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (list[i] == g)
            return true;
    }
    return false;
}

/* Whether the service's groups are the ones psup already has. */
static bool same_groups(const struct ctx *c, const struct psup_service_config *svc)
{
    for (size_t i = 0; i < svc->n_groups; i++) {
        if (!has_group(c->own_groups, c->n_own_groups, c->egid, svc->groups[i]))
            return false;
    }
    for (size_t i = 0; i < c->n_own_groups; i++) {
        if (!has_group(svc->groups, svc->n_groups, svc->gid, c->own_groups[i]))
            return false;
    }
    return true;
}

static const char *group_label(gid_t gid, char buf[96])
{
    const struct group *gr = getgrgid(gid);

    if (gr)
        snprintf(buf, 96, "gid %u (\"%s\")", (unsigned)gid, gr->gr_name);
    else
        snprintf(buf, 96, "gid %u", (unsigned)gid);
    return buf;
}

/* Without root, psup can only "switch" to what it already is. The problem is
 * reported at the key that asks for the change. */
static void check_switch(struct ctx *c, const struct fields *f,
                         const struct psup_service_config *svc, bool supplementary)
{
    int at = f->item[S_GROUP] && svc->uid == c->euid ? S_GROUP : S_USER;
    const char *key = at == S_GROUP ? "group" : "user";
    char label[96];

    if (svc->uid != c->euid)
        fail_at(c, f, S_USER, "psup runs as uid %u and cannot switch to uid %u%s%s%s; run "
                "psup as root or remove user", (unsigned)c->euid, (unsigned)svc->uid,
                svc->user_name ? " (\"" : "", svc->user_name ? svc->user_name : "",
                svc->user_name ? "\")" : "");
    else if (svc->gid != c->egid)
        fail_at(c, f, at, "psup runs as gid %u and cannot switch to %s; run psup as root "
                "or remove %s", (unsigned)c->egid, group_label(svc->gid, label), key);
    else if (supplementary && svc->user_name)
        fail_at(c, f, at, "psup cannot change its supplementary groups without root; run "
                "psup as root, or set supplementary_groups to false");
    else
        fail_at(c, f, at, "psup cannot change its supplementary groups without root; run "
                "psup as root or remove %s", key);
}

static void parse_ids(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    struct who w = {false, c->euid, c->egid};
    bool user_ok = true, group_ok = true, supplementary = true, have_group = false;
    gid_t gid = c->egid;
    const cJSON *v;

    if ((v = enter(c, f, S_USER))) {
        user_ok = resolve_user(c, v, svc, &w);
        if (user_ok && !w.known && !f->item[S_GROUP]) {
            fail(c, "uid %u has no entry in the user database, so it has no primary group; "
                    "set group", (unsigned)w.uid);
            user_ok = false;
        }
        path_pop(c);
    }
    if ((v = enter(c, f, S_GROUP))) {
        group_ok = have_group = resolve_group(c, v, &gid);
        path_pop(c);
    }
    if ((v = enter(c, f, S_SUPP_GROUPS))) {
        if (want_bool(c, v, &supplementary) && !f->item[S_USER])
            fail(c, "has no effect without user");
        path_pop(c);
    }
    if (!user_ok || !group_ok || (!f->item[S_USER] && !f->item[S_GROUP]))
        return;

    svc->uid = w.uid;
    svc->gid = have_group ? gid : f->item[S_USER] ? w.gid : c->egid;
    build_groups(c, svc, supplementary);
    svc->set_ids = svc->uid != c->euid || svc->gid != c->egid || !same_groups(c, svc);
    if (svc->set_ids && c->euid != 0) {
        check_switch(c, f, svc, supplementary);
        svc->set_ids = false;
    }
}

/* ---- process settings ------------------------------------------------- */

static void parse_umask(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    char num[40];
    const char *s;
    int m = 0;

    if (cJSON_IsNumber(v)) {
        fail(c, "expected a string of octal digits such as \"022\", got a number; quote it: "
                "\"%s\"", fmt_number(v->valuedouble, num));
        return;
    }
    if (!want_string(c, v, false, &s))
        return;

    size_t n = strlen(s);
    bool octal = n >= 1 && n <= 4;
    for (size_t i = 0; octal && i < n; i++) {
        octal = s[i] >= '0' && s[i] <= '7';
        m = m * 8 + (s[i] - '0');
    }
    if (!octal)
        fail(c, "expected 1 to 4 octal digits such as \"022\", got \"%s\"", s);
    else if (m > 0777)
        fail(c, "must be at most \"0777\", got \"%s\"", s);
    else
        svc->umask = m;
}

static void parse_nice(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    long long n;

    if (!want_int(c, v, -20, 19, &n))
        return;
    svc->nice = (int)n;
    svc->set_nice = true;
    if (c->euid == 0)
        return;

    errno = 0;
    int cur = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && n < cur)
        fail(c, "cannot lower the nice value below %d without root", cur);
}

static const char *const rlimit_names[] = {
    "as", "core", "cpu", "data", "fsize", "memlock", "nofile", "nproc", "stack", NULL,
};

static const int rlimit_resources[] = {
    RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_MEMLOCK,
    RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_STACK,
};

static bool want_limit(struct ctx *c, const cJSON *v, rlim_t *out)
{
    const char *what = "expected a non-negative integer or \"unlimited\"";
    char num[40];

    if (cJSON_IsString(v) && strcmp(v->valuestring, "unlimited") == 0) {
        *out = RLIM_INFINITY;
        return true;
    }
    if (cJSON_IsString(v)) {
        fail(c, "%s, got \"%s\"", what, v->valuestring);
        return false;
    }
    if (!cJSON_IsNumber(v)) {
        fail(c, "%s, got %s", what, type_name(v));
        return false;
    }
    if (!is_integer(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0) {
        fail(c, "%s, got %s", what, fmt_number(v->valuedouble, num));
        return false;
    }
    *out = (rlim_t)v->valuedouble;
    return true;
}

static const char *fmt_limit(rlim_t r, char buf[40])
{
    if (r == RLIM_INFINITY)
        return "unlimited";
    snprintf(buf, 40, "%llu", (unsigned long long)r);
    return buf;
}

static unsigned long long read_proc_number(const char *file, unsigned long long fallback)
{
    unsigned long long v;
    FILE *fp = fopen(file, "re");

    if (!fp)
        return fallback;
    if (fscanf(fp, "%llu", &v) != 1)
        v = fallback;
    fclose(fp);
    return v;
}

/* Whether the limit can be applied by the handler's setrlimit. */
static void check_limit(struct ctx *c, int resource, const struct rlimit *want)
{
    char a[40], b[40];
    struct rlimit cur;

    if (want->rlim_cur > want->rlim_max) {
        fail(c, "the soft limit (%s) is above the hard limit (%s)", fmt_limit(want->rlim_cur, a),
             fmt_limit(want->rlim_max, b));
        return;
    }

    /* Linux refuses any nofile limit above fs.nr_open, root or not, and
     * "unlimited" is always above it. */
    unsigned long long nr_open = read_proc_number("/proc/sys/fs/nr_open", 1048576);
    if (resource == RLIMIT_NOFILE && want->rlim_max > nr_open) {
        fail(c, "the kernel allows at most %llu open files (fs.nr_open)", nr_open);
        return;
    }
    if (c->euid != 0 && getrlimit(resource, &cur) == 0 && want->rlim_max > cur.rlim_max)
        fail(c, "cannot raise the hard limit above %s without root", fmt_limit(cur.rlim_max, a));
}

static bool parse_limit_value(struct ctx *c, const cJSON *v, struct rlimit *out)
{
    if (!cJSON_IsArray(v)) {
        if (!want_limit(c, v, &out->rlim_cur))
            return false;
        out->rlim_max = out->rlim_cur;
        return true;
    }
    if (cJSON_GetArraySize(v) != 2) {
        fail(c, "expected [soft, hard], got an array of %d", cJSON_GetArraySize(v));
        return false;
    }

    bool ok;
    push_index(c, 0);
    ok = want_limit(c, cJSON_GetArrayItem(v, 0), &out->rlim_cur);
    path_pop(c);
    push_index(c, 1);
    ok = want_limit(c, cJSON_GetArrayItem(v, 1), &out->rlim_max) && ok;
    path_pop(c);
    return ok;
}

static void parse_rlimits(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    struct fields f;

    if (!cJSON_IsObject(v)) {
        fail(c, "expected an object, got %s", type_name(v));
        return;
    }
    read_fields(c, v, rlimit_names, &f);
    if (!(svc->rlimits = xcalloc(c, f.n_children, sizeof(*svc->rlimits))))
        return;

    /* Walk the members again to keep the file's order. */
    for (const cJSON *it = v->child; it; it = it->next) {
        int k = key_index(rlimit_names, it->string);
        struct psup_rlimit *r = &svc->rlimits[svc->n_rlimits];

        if (k < 0 || f.item[k] != it)
            continue;
        enter(c, &f, k);
        if (parse_limit_value(c, it, &r->value)) {
            r->resource = rlimit_resources[k];
            r->name = rlimit_names[k];
            check_limit(c, r->resource, &r->value);
            svc->n_rlimits++;
        }
        path_pop(c);
    }
}

static void parse_process(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    static const char *const stderr_modes[] = {"inherit", "null", "log", NULL};
    const cJSON *v;
    long long backlog;
    int mode;

    if ((v = enter(c, f, S_BACKLOG))) {
        if (want_int(c, v, 1, 1048576, &backlog))
            svc->backlog = (int)backlog;
        path_pop(c);
    }
    if ((v = enter(c, f, S_UMASK))) {
        parse_umask(c, v, svc);
        path_pop(c);
    }
    if ((v = enter(c, f, S_NICE))) {
        parse_nice(c, v, svc);
        path_pop(c);
    }
    if ((v = enter(c, f, S_RLIMITS))) {
        parse_rlimits(c, v, svc);
        path_pop(c);
    }
    if ((v = enter(c, f, S_STDERR))) {
        if (want_choice(c, v, stderr_modes, &mode))
            svc->stderr_mode = (enum psup_stderr_mode)mode;
        path_pop(c);
    }
}

/* ---- access and limits ---------------------------------------------- */

/* Returns false if the list had a problem. */
static bool parse_cidrs(struct ctx *c, const struct fields *f, int k, bool allow_empty,
                        struct psup_cidr **out, size_t *n_out)
{
    const cJSON *v = enter(c, f, k), *el;
    bool ok = true;
    size_t i = 0;

    if (!v)
        return true;
    if (!cJSON_IsArray(v) || (!allow_empty && cJSON_GetArraySize(v) == 0)) {
        fail(c, "expected %s, got %s", allow_empty ? "an array of CIDR strings"
                                                   : "a non-empty array of CIDR strings (omit "
                                                     "allow to allow every client)",
             type_name(v));
        path_pop(c);
        return false;
    }
    *out = xcalloc(c, (size_t)cJSON_GetArraySize(v), sizeof(**out));
    cJSON_ArrayForEach(el, v) {
        const char *s, *why = NULL;

        push_index(c, i++);
        if (!want_string(c, el, false, &s))
            ok = false;
        else if (*out && psup_cidr_parse(s, &(*out)[*n_out], &why) < 0) {
            fail(c, "invalid CIDR \"%s\": %s", s, why);
            ok = false;
        } else if (*out)
            (*n_out)++;
        path_pop(c);
    }
    path_pop(c);
    return ok;
}

/* A message key that only means something with another setting. */
static void parse_dependent_message(struct ctx *c, const struct fields *f, int k, bool useful,
                                    const char *without, char **out)
{
    const cJSON *v = enter(c, f, k);

    if (!v)
        return;
    want_message(c, v, out);
    if (!useful)
        fail(c, "has no effect %s", without);
    path_pop(c);
}

static void parse_access(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    bool ok = parse_cidrs(c, f, S_ALLOW, false, &svc->allow, &svc->n_allow);
    const cJSON *v;

    ok = parse_cidrs(c, f, S_DENY, true, &svc->deny, &svc->n_deny) && ok;
    parse_dependent_message(c, f, S_DENY_MESSAGE, !ok || svc->n_allow || svc->n_deny,
                            "without allow or deny", &svc->deny_message);

    ok = true;
    if ((v = enter(c, f, S_MAX_PER_SOURCE))) {
        ok = want_uint(c, v, 0, MAX_WORKERS, &svc->max_per_source);
        path_pop(c);
    }
    if ((v = enter(c, f, S_PER_SOURCE_V6))) {
        want_uint(c, v, 1, 128, &svc->per_source_ipv6_prefix);
        path_pop(c);
    }
    parse_dependent_message(c, f, S_PER_SOURCE_MESSAGE, !ok || svc->max_per_source > 0,
                            "without max_per_source", &svc->per_source_message);
}

static void parse_limits(struct ctx *c, const struct fields *f, struct psup_service_config *svc)
{
    static const char *const overload_modes[] = {"queue", "reject", NULL};
    bool rate_ok = true, overload_ok = true;
    const cJSON *v;
    int mode;

    if ((v = enter(c, f, S_RATE))) {
        rate_ok = want_number(c, v, "a number of connections per second", 0, false, MAX_RATE,
                              &svc->rate);
        path_pop(c);
    }

    /* The default burst is max(1, ceil(rate)): one second's worth. */
    svc->rate_burst = (unsigned)svc->rate;
    if (svc->rate_burst < svc->rate || svc->rate_burst == 0)
        svc->rate_burst++;
    if ((v = enter(c, f, S_RATE_BURST))) {
        if (want_uint(c, v, 1, (unsigned)MAX_RATE, &svc->rate_burst) && !f->item[S_RATE])
            fail(c, "has no effect without rate");
        path_pop(c);
    }
    parse_dependent_message(c, f, S_RATE_MESSAGE, !rate_ok || f->item[S_RATE],
                            "without rate", &svc->rate_message);

    if ((v = enter(c, f, S_ON_OVERLOAD))) {
        overload_ok = want_choice(c, v, overload_modes, &mode);
        if (overload_ok)
            svc->on_overload = (enum psup_overload)mode;
        path_pop(c);
    }
    parse_dependent_message(c, f, S_OVERLOAD_MESSAGE,
                            !overload_ok || svc->on_overload == PSUP_OVERLOAD_REJECT,
                            "unless on_overload is \"reject\"", &svc->overload_message);

    if ((v = enter(c, f, S_TIMEOUT))) {
        want_seconds(c, v, true, &svc->timeout);
        path_pop(c);
    }
}

static void service_defaults(struct ctx *c, struct psup_service_config *svc)
{
    svc->backlog = c->somaxconn;
    svc->umask = -1;
    svc->uid = c->euid;
    svc->gid = c->egid;
    svc->per_source_ipv6_prefix = 128;
    svc->rate_burst = 1;
    svc->stderr_mode = PSUP_STDERR_INHERIT;
    svc->on_overload = PSUP_OVERLOAD_QUEUE;
}

/* Keys are checked in the order their dependencies need (env and cwd
 * before command); problems are sorted into document order later. */
static void parse_service(struct ctx *c, const cJSON *obj, size_t index)
{
    struct psup_service_config *svc = &c->cfg->services[index];
    struct fields f;

    service_defaults(c, svc);
    /* Reload compares these strings to find the services that changed. */
    svc->canonical = cJSON_PrintUnformatted(obj);
    read_fields(c, obj, service_keys, &f);
    parse_name(c, &f, svc, index);
    parse_listen(c, &f, index);
    parse_env(c, &f, svc);
    parse_pass_env(c, &f, svc);
    bool cwd_ok = parse_cwd(c, &f, svc);
    parse_command(c, &f, svc, cwd_ok);
    parse_pool(c, &f, svc);
    parse_ids(c, &f, svc);
    parse_process(c, &f, svc);
    parse_access(c, &f, svc);
    parse_limits(c, &f, svc);
}

/* ---- the top level -------------------------------------------------- */

enum { R_SERVICES, R_SHUTDOWN_TIMEOUT, R_KILL_GRACE, R_LOG_FORMAT, R_SCHEMA };

static const char *const root_keys[] = {
    "services", "shutdown_timeout", "kill_grace", "log_format", "$schema", NULL,
};

static void parse_services(struct ctx *c, const cJSON *v)
{
    const cJSON *el;
    size_t i = 0;

    if (!want_array(c, v, "a non-empty array of services"))
        return;

    size_t n = (size_t)cJSON_GetArraySize(v);
    if (!(c->cfg->services = xcalloc(c, n, sizeof(*c->cfg->services))))
        return;
    c->cfg->n_services = n;
    cJSON_ArrayForEach(el, v) {
        push_index(c, i);
        if (!cJSON_IsObject(el))
            fail(c, "expected an object, got %s", type_name(el));
        else
            parse_service(c, el, i);
        path_pop(c);
        i++;
    }
}

static void parse_root(struct ctx *c, const cJSON *root)
{
    static const char *const formats[] = {"text", "json", NULL};
    const cJSON *v;
    struct fields f;
    const char *s;
    int fmt;

    if (!cJSON_IsObject(root)) {
        fail(c, "the top level must be a JSON object with a \"services\" array");
        return;
    }
    read_fields(c, root, root_keys, &f);
    if ((v = enter(c, &f, R_SCHEMA))) {
        want_string(c, v, false, &s);
        path_pop(c);
    }
    if ((v = enter(c, &f, R_SHUTDOWN_TIMEOUT))) {
        want_seconds(c, v, true, &c->cfg->shutdown_timeout);
        path_pop(c);
    }
    if ((v = enter(c, &f, R_KILL_GRACE))) {
        want_seconds(c, v, false, &c->cfg->kill_grace);
        path_pop(c);
    }
    if ((v = enter(c, &f, R_LOG_FORMAT))) {
        c->cfg->log_format_set = want_choice(c, v, formats, &fmt);
        if (c->cfg->log_format_set)
            c->cfg->log_format = (enum psup_log_format)fmt;
        path_pop(c);
    }
    if ((v = enter(c, &f, R_SERVICES))) {
        parse_services(c, v);
        path_pop(c);
    } else {
        fail_at(c, &f, R_SERVICES, "missing (required)");
    }
}

/* Report a syntax error at its line and column (1-based, in bytes). */
static void fail_syntax(struct ctx *c, const char *text, const char *at)
{
    unsigned line = 1, col = 1;

    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    fail(c, "invalid JSON at line %u, column %u", line, col);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static cJSON *parse_json(struct ctx *c, const char *text, size_t len)
{
    const char *end = NULL;
    size_t i = 0;

    /* A UTF-8 byte order mark, as some editors write, is not an error. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    while (i < len && is_space(text[i]))
        i++;
    if (i == len) {
        fail(c, "empty file, expected a JSON object");
        return NULL;
    }

    /* Not require_null_terminated: cJSON would then want the NUL inside
     * len. Trailing text is checked here instead. */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        fail_syntax(c, text, end ? end : cJSON_GetErrorPtr());
        return NULL;
    }
    for (i = (size_t)(end - text); i < len && is_space(text[i]);)
        i++;
    if (i < len) {
        fail_syntax(c, text, text + i);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- life cycle ----------------------------------------------------- */

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_service(struct psup_service_config *s)
{
    cJSON_free(s->canonical);
    free(s->name);
    free(s->listen);
    free_strv(s->listen_text, s->n_listen);
    free(s->program);
    free_strv(s->argv, s->argc);
    free_strv(s->env, s->n_env);
    free_strv(s->pass_env, s->n_pass_env);
    free(s->cwd);
    free(s->rlimits);
    free(s->groups);
    free(s->user_name);
    free(s->user_home);
    free(s->allow);
    free(s->deny);
    free(s->deny_message);
    free(s->per_source_message);
    free(s->rate_message);
    free(s->overload_message);
}

static void free_config(struct psup_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_services; i++)
        free_service(&cfg->services[i]);
    free(cfg->services);
    free(cfg);
}

static bool ctx_init(struct ctx *c, const char *origin)
{
    memset(c, 0, sizeof(*c));
    c->origin = origin;
    c->have_cwd = getcwd(c->cwd, sizeof(c->cwd)) != NULL;
    c->euid = geteuid();
    c->egid = getegid();
    c->somaxconn = (int)read_proc_number("/proc/sys/net/core/somaxconn", SOMAXCONN);
    if (c->somaxconn < 1 || c->somaxconn > 1048576)
        c->somaxconn = SOMAXCONN;

    int n = getgroups(0, NULL);
    if (n > 0 && (c->own_groups = calloc((size_t)n, sizeof(gid_t)))) {
        n = getgroups(n, c->own_groups);
        c->n_own_groups = n > 0 ? (size_t)n : 0;
    }
    c->cfg = calloc(1, sizeof(*c->cfg));
    if (!c->cfg)
        return false;
    c->cfg->shutdown_timeout = 7;
    c->cfg->kill_grace = 2;
    c->cfg->log_format = PSUP_LOG_TEXT;
    c->cfg->refs = 1;
    return true;
}

struct psup_config *psup_config_parse(const char *text, size_t len, const char *origin,
                                      struct psup_diag *diag)
{
    struct ctx c;

    if (!ctx_init(&c, origin)) {
        free(c.own_groups);
        psup_diag_addf(diag, "%s: out of memory while loading the configuration", origin);
        return NULL;
    }

    cJSON *root = parse_json(&c, text, len);
    if (root) {
        parse_root(&c, root);
        cJSON_Delete(root);
    }
    free(c.own_groups);
    if (flush_problems(&c, diag) > 0) {
        free_config(c.cfg);
        return NULL;
    }
    return c.cfg;
}

/* Read a whole file; returns 0 or an errno value. */
static int read_file(const char *path, char **out, size_t *len_out)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

    if (!buf || fd < 0) {
        err = !buf ? ENOMEM : errno;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            char *nb = cap >= MAX_FILE_SIZE ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                err = cap >= MAX_FILE_SIZE ? EFBIG : ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
out:
    if (fd >= 0)
        close(fd);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *len_out = len;
    return 0;
}

struct psup_config *psup_config_load(const char *path, struct psup_diag *diag)
{
    char *text = NULL;
    size_t len = 0;
    int err = read_file(path, &text, &len);

    if (err) {
        psup_diag_addf(diag, "cannot read %s: %s", path, strerror(err));
        return NULL;
    }

    struct psup_config *cfg = psup_config_parse(text, len, path, diag);
    free(text);
    return cfg;
}

struct psup_config *psup_config_ref(struct psup_config *cfg)
{
    cfg->refs++;
    return cfg;
}

void psup_config_unref(struct psup_config *cfg)
{
    if (cfg && --cfg->refs == 0)
        free_config(cfg);
}

/* ---- describe --------------------------------------------------------- */

struct sbuf {
    char *buf;
    size_t size, len;
};

static void put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    if (b->len + 1 >= b->size)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len = b->len + (size_t)n < b->size ? b->len + (size_t)n : b->size - 1;
}

void psup_config_describe(const struct psup_service_config *svc, char *buf, size_t size)
{
    struct sbuf b = {buf, size, 0};
    char addr[PSUP_ADDR_STRLEN];

    if (!size)
        return;
    buf[0] = '\0';
    put(&b, "%s: listen", svc->name);
    for (size_t i = 0; i < svc->n_listen; i++) {
        psup_addr_format(&svc->listen[i], addr, sizeof(addr));
        put(&b, " %s", addr);
    }
    if (svc->shell)
        put(&b, "; command /bin/sh -c \"%s\"", svc->argv[2]);
    else
        put(&b, "; command %s", svc->program);
    for (size_t i = 1; !svc->shell && i < svc->argc; i++)
        put(&b, " %s", svc->argv[i]);
    put(&b, "; pool %u..%u, max %u", svc->min_spare, svc->max_spare, svc->max_workers);
    if (svc->user_name)
        put(&b, "; user %s", svc->user_name);
    else if (svc->set_ids)
        put(&b, "; uid %u gid %u", (unsigned)svc->uid, (unsigned)svc->gid);
    if (svc->n_allow || svc->n_deny)
        put(&b, "; %zu allow, %zu deny rules", svc->n_allow, svc->n_deny);
    if (svc->max_per_source)
        put(&b, "; max %u per source", svc->max_per_source);
    if (svc->rate > 0)
        put(&b, "; rate %g/s", svc->rate);
    if (svc->timeout > 0)
        put(&b, "; timeout %gs", svc->timeout);
}
