/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader's top: reading the file, the JSON syntax, the
 * top-level keys, and the life cycle of a struct psup_config. Services are
 * parsed in service.c, system look-ups made in resolve.c, values checked in
 * json.c, problems recorded by problems.c.
 */
#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest file psup reads. A reload runs in the supervisor's loop, so
 * the worst file of this size must load quickly: see docs/design.md,
 * "Reloading in the loop", for the measurement behind the number. */
#define MAX_FILE_SIZE (1u << 20)
#define MAX_FILE_SIZE_TEXT "1 MiB"

/* ---- the top level -------------------------------------------------- */

enum {
    R_SERVICES, R_SHUTDOWN_TIMEOUT, R_KILL_GRACE, R_LOG_FORMAT, R_SCHEMA, R_ADMIN,
    R_SHUTDOWN_DELAY,
};

static const char *const root_keys[] = {
    "services", "shutdown_timeout", "kill_grace", "log_format", "$schema", "admin",
    "shutdown_delay", NULL,
};

static void parse_services(struct ctx *c, const cJSON *v)
{
    const cJSON *el;
    size_t i = 0;

    if (!cfg_want_array(c, v, "a non-empty array of services"))
        return;

    size_t n = (size_t)cJSON_GetArraySize(v);
    if (!(c->cfg->services = cfg_xcalloc(c, n, sizeof(*c->cfg->services))))
        return;
    c->cfg->n_services = n;
    cJSON_ArrayForEach(el, v) {
        /* Each service may look names up on the system: after too many
         * problems, the rest of a broken file is not worth the time. */
        if (cfg_stopped(c))
            break;
        cfg_push_index(c, i);
        if (!cJSON_IsObject(el))
            cfg_fail(c, "expected an object, got %s", cfg_type_name(el));
        else
            cfg_parse_service(c, el, i);
        cfg_path_pop(c);
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
        cfg_fail(c, "the top level must be a JSON object with a \"services\" array");
        return;
    }
    cfg_read_fields(c, root, root_keys, &f);
    if ((v = cfg_enter(c, &f, R_SCHEMA))) {
        cfg_want_string(c, v, false, &s);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, &f, R_SHUTDOWN_TIMEOUT))) {
        cfg_want_seconds(c, v, true, &c->cfg->shutdown_timeout);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, &f, R_SHUTDOWN_DELAY))) {
        cfg_want_seconds(c, v, true, &c->cfg->shutdown_delay);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, &f, R_KILL_GRACE))) {
        cfg_want_seconds(c, v, false, &c->cfg->kill_grace);
        cfg_path_pop(c);
    }
    if ((v = cfg_enter(c, &f, R_LOG_FORMAT))) {
        c->cfg->log_format_set = cfg_want_choice(c, v, formats, &fmt);
        if (c->cfg->log_format_set)
            c->cfg->log_format = (enum psup_log_format)fmt;
        cfg_path_pop(c);
    }
    /* The admin's addresses are checked against the services'. */
    cfg_services_begin(c);
    if ((v = cfg_enter(c, &f, R_SERVICES))) {
        parse_services(c, v);
        cfg_path_pop(c);
    } else {
        cfg_fail_at(c, &f, R_SERVICES, "missing (required)");
    }
    if ((v = cfg_enter(c, &f, R_ADMIN))) {
        cfg_parse_admin(c, v);
        cfg_path_pop(c);
    }
    cfg_services_end(c);
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
        cfg_fail(c, "empty file, expected a JSON object");
        return NULL;
    }

    /* Not require_null_terminated: cJSON would then want the NUL inside
     * len. Trailing text is checked here instead. */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        cfg_fail_syntax(c, text, end ? end : cJSON_GetErrorPtr());
        return NULL;
    }
    for (i = (size_t)(end - text); i < len && is_space(text[i]);)
        i++;
    if (i < len) {
        cfg_fail_syntax(c, text, text + i);
        cJSON_Delete(root);
        return NULL;
    }
    if (!cfg_check_text(c, text, len)) {
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
    free(s->relay);
    free_strv(s->relay_argv, s->relay_argc);
    free(s->proxy_from);
}

static void free_config(struct psup_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_services; i++)
        free_service(&cfg->services[i]);
    free(cfg->services);
    cfg_free_admin(&cfg->admin);
    free(cfg);
}

static bool ctx_init(struct ctx *c, const char *origin)
{
    memset(c, 0, sizeof(*c));
    c->origin = origin;
    cfg_read_system_facts(c);
    c->cfg = calloc(1, sizeof(*c->cfg));
    if (!c->cfg)
        return false;
    c->cfg->shutdown_timeout = 7;
    c->cfg->kill_grace = 2;
    c->cfg->log_format = PSUP_LOG_TEXT;
    cfg_admin_defaults(&c->cfg->admin);
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

    cfg_lookups_begin(&c);
    cJSON *root = parse_json(&c, text, len);
    if (root) {
        parse_root(&c, root);
        cJSON_Delete(root);
    }
    cfg_lookups_end(&c);
    free(c.own_groups);
    if (cfg_flush_problems(&c, diag) > 0) {
        free_config(c.cfg);
        return NULL;
    }
    return c.cfg;
}

static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "not a regular file";
    }
}

/* Open path as a regular file of at most MAX_FILE_SIZE bytes; returns the
 * descriptor, or -errno (EISDIR, EFBIG, or ENODEV with *kind set for what
 * is not a regular file). */
static int open_regular(const char *path, const char **kind)
{
    struct stat st;

    /* O_NONBLOCK: open() of a FIFO waits for a writer, for ever, and the
     * supervisor must not wait (a reload runs in its loop); on a regular
     * file it changes nothing. fstat then refuses what is not one: a FIFO,
     * a device or a socket can be read slowly or never end. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = fstat(fd, &st) < 0          ? errno
              : S_ISDIR(st.st_mode)       ? EISDIR
              : !S_ISREG(st.st_mode)      ? (*kind = file_kind(st.st_mode), ENODEV)
              : st.st_size > MAX_FILE_SIZE ? EFBIG
                                           : 0;
    if (err) {
        close(fd);
        return -err;
    }
    return fd;
}

/* Read a whole file; returns 0 or an errno value. A file that grows while
 * it is read is cut off at MAX_FILE_SIZE + 1 bytes, and is then too big. */
static int read_file(const char *path, char **out, size_t *len_out, const char **kind)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int fd = open_regular(path, kind), err = 0;

    if (!buf || fd < 0) {
        err = !buf ? ENOMEM : -fd;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            char *nb = cap > MAX_FILE_SIZE ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                err = cap > MAX_FILE_SIZE ? EFBIG : ENOMEM;
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
    if (len > MAX_FILE_SIZE)
        err = EFBIG;
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
    const char *kind = NULL;
    char *text = NULL, *shown = cfg_printable(path);
    size_t len = 0;
    int err = shown ? read_file(path, &text, &len, &kind) : ENOMEM;

    if (err == ENODEV && kind)
        psup_diag_addf(diag, "cannot read %s: not a regular file (%s)", shown, kind);
    else if (err == EFBIG)
        psup_diag_addf(diag, "cannot read %s: larger than %u bytes (%s), the most psup reads",
                       shown, MAX_FILE_SIZE, MAX_FILE_SIZE_TEXT);
    else if (err)
        psup_diag_addf(diag, "cannot read %s: %s", shown ? shown : path, strerror(err));
    free(shown);
    if (err)
        return NULL;

    struct psup_config *cfg = psup_config_parse(text, len, path, diag);
    free(text);
    return cfg;
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* A prestarted program runs the file that was there at its exec: replaced
 * on disk (an upgrade), its idle workers must go (spec/prestart.md). */
static bool same_program_file(const struct psup_service_config *a,
                              const struct psup_service_config *b)
{
    return a->prestart == b->prestart &&
           (!a->prestart || memcmp(&a->program_id, &b->program_id, sizeof(a->program_id)) == 0);
}

bool psup_config_service_same(const struct psup_service_config *a,
                              const struct psup_service_config *b)
{
    /* The JSON, and what it was resolved to on the system at load: the
     * same file can name a new program (PATH), new groups, a new home. */
    return same_text(a->canonical, b->canonical) && a->canonical &&
           same_text(a->program, b->program) && same_text(a->cwd, b->cwd) &&
           same_text(a->user_name, b->user_name) && same_text(a->user_home, b->user_home) &&
           a->set_ids == b->set_ids && a->uid == b->uid && a->gid == b->gid &&
           a->n_groups == b->n_groups &&
           (a->n_groups == 0 || memcmp(a->groups, b->groups, a->n_groups * sizeof(gid_t)) == 0) &&
           a->backlog == b->backlog && cfg_relay_same(a, b) && same_program_file(a, b);
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

/* A JSON string, whole (a command line as the file has it). */
static void put_json(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *q = malloc(6 * n + 3);

    if (!q)
        return;
    cfg_json_string(s, n, q, 6 * n + 3);
    put(b, " %s", q);
    free(q);
}

/* A word of a command: as is when it reads unambiguously, else as a JSON
 * string (so that no control character reaches the terminal either). */
static void put_word(struct sbuf *b, const char *s)
{
    bool bare = *s != '\0';

    for (const unsigned char *p = (const unsigned char *)s; *p && bare; p++)
        bare = *p > ' ' && *p != '"' && *p != '\\' && *p != 0x7f;
    if (bare)
        put(b, " %s", s);
    else
        put_json(b, s);
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
        put_word(&b, addr);
    }
    put(&b, "; command");
    if (svc->shell) {
        put(&b, " /bin/sh -c");
        put_json(&b, svc->argv[2]);
    }
    for (size_t i = 0; !svc->shell && i < svc->argc; i++)
        put_word(&b, i == 0 ? svc->program : svc->argv[i]);
    if (svc->mode == PSUP_MODE_WAIT) {
        put(&b, "; wait, %s, %u instance%s",
            svc->start == PSUP_START_ALWAYS ? "always" : "on_demand", svc->instances,
            svc->instances == 1 ? "" : "s");
    } else {
        put(&b, "; pool %u..%u, max %u", svc->min_spare, svc->max_spare, svc->max_workers);
        if (svc->mode == PSUP_MODE_DATAGRAM)
            put(&b, "; a handler per datagram");
    }
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
    if (svc->protocol == PSUP_PROTOCOL_CGI)
        put(&b, "; cgi");
    if (svc->proxy_protocol)
        put(&b, "; proxy protocol %s from %zu CIDR%s",
            svc->proxy_protocol == PSUP_PROXY_PROTOCOL_ANY ? "v1/v2"
            : svc->proxy_protocol == PSUP_PROXY_PROTOCOL_V1 ? "v1" : "v2",
            svc->n_proxy_from, svc->n_proxy_from == 1 ? "" : "s");
    if (svc->prestart)
        put(&b, "; prestart");
    if (svc->essential)
        put(&b, "; essential, fatal after %gs", svc->fatal_after);
}
