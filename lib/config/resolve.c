/* SPDX-License-Identifier: MIT */
/*
 * What the configuration loader looks up on the system, so that nothing is
 * looked up later in a worker: programs on PATH, the working directory,
 * users and groups, and whether psup's ids allow the nice value and the
 * resource limits a service asks for. Reads only (stat, passwd, /proc).
 */
#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---- the running psup ------------------------------------------------- */

unsigned long long cfg_read_proc_number(const char *file, unsigned long long fallback)
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

/* psup's effective capabilities (CapEff in /proc/self/status): root in a
 * container often lacks some of them, and a setting psup cannot apply must
 * be an error at load, not a failure of every connection. */
unsigned long long cfg_effective_capabilities(void)
{
    FILE *fp = fopen("/proc/self/status", "re");
    char line[256];
    unsigned long long caps = 0;

    if (!fp)
        return geteuid() == 0 ? ~0ULL : 0;
    while (fgets(line, sizeof(line), fp))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(fp);
    return caps;
}

void cfg_read_system_facts(struct ctx *c)
{
    unsigned long long caps = cfg_effective_capabilities();

    c->can_switch_ids = (caps >> CAP_SETUID & 1) && (caps >> CAP_SETGID & 1);
    c->can_raise_limits = caps >> CAP_SYS_RESOURCE & 1;
    c->can_lower_nice = caps >> CAP_SYS_NICE & 1;
    c->have_cwd = getcwd(c->cwd, sizeof(c->cwd)) != NULL;
    c->euid = geteuid();
    c->egid = getegid();
    c->somaxconn = (int)cfg_read_proc_number("/proc/sys/net/core/somaxconn", SOMAXCONN);
    if (c->somaxconn < 1 || c->somaxconn > 1048576)
        c->somaxconn = SOMAXCONN;
    c->nr_open = cfg_read_proc_number("/proc/sys/fs/nr_open", 1048576);

    int n = getgroups(0, NULL);
    if (n > 0 && (c->own_groups = calloc((size_t)n, sizeof(gid_t)))) {
        n = getgroups(n, c->own_groups);
        c->n_own_groups = n > 0 ? (size_t)n : 0;
    }
}

/* ---- files and programs --------------------------------------------- */

/* Join a relative path to a directory, dropping leading "./". */
static char *join_path(struct ctx *c, const char *dir, const char *rel)
{
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (!*rel || strcmp(rel, ".") == 0)
        return cfg_xstrdup(c, dir);
    return cfg_xasprintf(c, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
}

/* name as an absolute path, a relative one taken from base. NULL, with the
 * problem reported, when base is unknown (or when memory runs out). */
static char *absolute_path(struct ctx *c, const char *base, const char *name)
{
    if (name[0] == '/')
        return cfg_xstrdup(c, name);
    if (base)
        return join_path(c, base, name);
    cfg_fail(c, "cannot resolve a relative path: psup's working directory is unknown");
    return NULL;
}

/* The directory relative paths of a service are resolved against: its cwd,
 * else psup's; NULL when neither is known. */
static const char *base_dir(const struct ctx *c, const struct psup_service_config *svc)
{
    if (svc->cwd)
        return svc->cwd;
    return c->have_cwd ? c->cwd : NULL;
}

/* A failed stat of path; err is its errno. */
static void fail_stat(struct ctx *c, const char *path, int err)
{
    if (err == ENOENT)
        cfg_fail(c, "%s does not exist", path);
    else
        cfg_fail(c, "cannot use %s (%s)", path, strerror(err));
}

static void report_probe(struct ctx *c, enum cfg_probe r, const char *path, int err)
{
    if (r == CFG_PROBE_MISSING)
        fail_stat(c, path, err);
    else if (r == CFG_PROBE_NOT_REGULAR)
        cfg_fail(c, "%s is not a regular file", path);
    else if (r == CFG_PROBE_NOT_EXECUTABLE)
        cfg_fail(c, "%s is not executable (%s)", path, strerror(err));
}

void cfg_check_program(struct ctx *c, const char *path)
{
    int err = 0;
    enum cfg_probe r = cfg_probe_program(c, path, &err);

    if (r != CFG_PROBE_OK)
        report_probe(c, r, path, err);
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
    char *d = len ? cfg_xasprintf(c, "%.*s", (int)len, dir) : cfg_xstrdup(c, ".");
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
    enum cfg_probe bad_r = CFG_PROBE_OK;
    char *bad = NULL;
    int bad_err = 0;

    for (const char *p = path; !svc->program; p++) {
        size_t len = strcspn(p, ":");
        char *cand = path_candidate(c, svc, p, len, name);
        int err = 0;
        enum cfg_probe r = cand ? cfg_probe_program(c, cand, &err) : CFG_PROBE_MISSING;

        if (r == CFG_PROBE_OK) {
            svc->program = cand;
        } else if (r != CFG_PROBE_MISSING && !bad) {
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
        cfg_fail(c, "program %s not found in PATH (%s)", cfg_quote(c, name), path);
    free(bad);
}

void cfg_resolve_program(struct ctx *c, struct psup_service_config *svc, const char *name)
{
    if (!strchr(name, '/')) {
        search_path(c, svc, name);
        return;
    }
    svc->program = absolute_path(c, base_dir(c, svc), name);
    if (svc->program)
        cfg_check_program(c, svc->program);
}

static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFREG: return "a regular file";
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "not a socket";
    }
}

void cfg_check_unix_path(struct ctx *c, const struct psup_addr *a)
{
    const char *path = a->u.un.sun_path;
    struct stat st;

    /* lstat, as the listener does: a symbolic link is not followed. Other
     * failures (a missing directory, no permission) are left to bind,
     * which may find the situation changed; psup --check warns. */
    if (path[0] == '\0' || lstat(path, &st) < 0 || S_ISSOCK(st.st_mode))
        return;
    cfg_fail(c, "unix:%s exists and is %s, not a socket; psup removes only a stale socket",
             path, file_kind(st.st_mode));
}

bool cfg_resolve_cwd(struct ctx *c, struct psup_service_config *svc, const char *dir)
{
    char *abs = absolute_path(c, base_dir(c, svc), dir);
    struct stat st;

    if (!abs)
        return false;

    int rc = stat(abs, &st), err = errno;
    if (rc < 0)
        fail_stat(c, abs, err);
    else if (!S_ISDIR(st.st_mode))
        cfg_fail(c, "%s is not a directory", abs);
    else {
        svc->cwd = abs;
        return true;
    }
    free(abs);
    return false;
}

/* ---- users and groups ------------------------------------------------- */

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

enum id_form { ID_BAD, ID_NUMBER, ID_NAME };

/* A user or a group as a number up to max (*id) or a name (*name); kind is
 * "user" or "group", id_word "uid" or "gid". ID_BAD after a problem. */
static enum id_form want_id(struct ctx *c, const cJSON *v, const char *kind,
                            const char *id_word, long long max, long long *id,
                            const char **name)
{
    if (cJSON_IsNumber(v))
        return cfg_want_int(c, v, 0, max, id) ? ID_NUMBER : ID_BAD;
    if (!cJSON_IsString(v)) {
        cfg_fail(c, "expected a %s name or a numeric %s, got %s", kind, id_word, cfg_type_name(v));
        return ID_BAD;
    }
    return cfg_want_string(c, v, true, name) ? ID_NAME : ID_BAD;
}

/* A name the user or group database does not have. */
static void fail_no_such(struct ctx *c, const char *kind, const char *id_word,
                         const char *name)
{
    if (all_digits(name))
        cfg_fail(c, "no such %s %s; write a numeric %s as a number, without quotes", kind,
             cfg_quote(c, name), id_word);
    else
        cfg_fail(c, "no such %s %s", kind, cfg_quote(c, name));
}

bool cfg_resolve_user(struct ctx *c, const cJSON *v, struct psup_service_config *svc,
                  struct who *w)
{
    const struct cfg_user *pw;
    const char *s;
    long long id;
    enum id_form form = want_id(c, v, "user", "uid", (long long)(uid_t)-2, &id, &s);

    if (form == ID_BAD)
        return false;
    if (form == ID_NUMBER) {
        pw = cfg_lookup_uid(c, (uid_t)id);
        w->uid = (uid_t)id;
    } else if (!(pw = cfg_lookup_user(c, s))) {
        fail_no_such(c, "user", "uid", s);
        return false;
    }
    w->known = pw != NULL;
    if (pw) {
        w->uid = pw->uid;
        w->gid = pw->gid;
        svc->user_name = cfg_xstrdup(c, pw->name);
        svc->user_home = cfg_xstrdup(c, pw->home);
    }
    return true;
}

bool cfg_resolve_group(struct ctx *c, const cJSON *v, gid_t *gid)
{
    const char *s;
    long long id;
    enum id_form form = want_id(c, v, "group", "gid", (long long)(gid_t)-2, &id, &s);

    if (form == ID_BAD)
        return false;
    if (form == ID_NUMBER) {
        *gid = (gid_t)id;
        return true;
    }
    if (!cfg_lookup_group(c, s, gid)) {
        fail_no_such(c, "group", "gid", s);
        return false;
    }
    return true;
}

/* The supplementary groups: the user's memberships, or just gid. */
static void build_groups(struct ctx *c, struct psup_service_config *svc, bool supplementary)
{
    if (!supplementary || !svc->user_name) {
        if ((svc->groups = cfg_xcalloc(c, 1, sizeof(gid_t)))) {
            svc->groups[0] = svc->gid;
            svc->n_groups = 1;
        }
        return;
    }
    svc->groups = cfg_lookup_groups(c, svc->user_name, svc->gid, &svc->n_groups);
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

void cfg_resolve_groups(struct ctx *c, struct psup_service_config *svc, bool supplementary)
{
    build_groups(c, svc, supplementary);
    svc->set_ids = svc->uid != c->euid || svc->gid != c->egid || !same_groups(c, svc);
}

const char *cfg_group_label(gid_t gid, char buf[96])
{
    const struct group *gr = getgrgid(gid);

    if (gr)
        snprintf(buf, 96, "gid %u (\"%s\")", (unsigned)gid, gr->gr_name);
    else
        snprintf(buf, 96, "gid %u", (unsigned)gid);
    return buf;
}

/* ---- nice and resource limits ---------------------------------------- */

void cfg_parse_nice(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    long long n;

    if (!cfg_want_int(c, v, -20, 19, &n))
        return;
    svc->nice = (int)n;
    svc->set_nice = true;
    if (c->can_lower_nice)
        return;

    errno = 0;
    int cur = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && n < cur)
        cfg_fail(c, c->euid == 0 ? "cannot lower the nice value below %d: psup lacks CAP_SYS_NICE"
                                 : "cannot lower the nice value below %d without root", cur);
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
        cfg_fail(c, "%s, got %s", what, cfg_quote(c, v->valuestring));
        return false;
    }
    if (!cJSON_IsNumber(v)) {
        cfg_fail(c, "%s, got %s", what, cfg_type_name(v));
        return false;
    }
    if (!cfg_is_integer(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0) {
        cfg_fail(c, "%s, got %s", what, cfg_fmt_number(v->valuedouble, num));
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

/* Whether the limit can be applied by the handler's setrlimit. */
static void check_limit(struct ctx *c, int resource, const struct rlimit *want)
{
    char a[40], b[40];
    struct rlimit cur;

    if (want->rlim_cur > want->rlim_max) {
        cfg_fail(c, "the soft limit (%s) is above the hard limit (%s)", fmt_limit(want->rlim_cur, a),
             fmt_limit(want->rlim_max, b));
        return;
    }

    /* Linux refuses any nofile limit above fs.nr_open, root or not, and
     * "unlimited" is always above it. */
    if (resource == RLIMIT_NOFILE && want->rlim_max > c->nr_open) {
        cfg_fail(c, "the kernel allows at most %llu open files (fs.nr_open)", c->nr_open);
        return;
    }
    if (!c->can_raise_limits && getrlimit(resource, &cur) == 0 && want->rlim_max > cur.rlim_max)
        cfg_fail(c, c->euid == 0 ? "cannot raise the hard limit above %s: psup lacks CAP_SYS_RESOURCE"
                                 : "cannot raise the hard limit above %s without root",
                 fmt_limit(cur.rlim_max, a));
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
        cfg_fail(c, "expected [soft, hard], got an array of %d", cJSON_GetArraySize(v));
        return false;
    }

    bool ok;
    cfg_push_index(c, 0);
    ok = want_limit(c, cJSON_GetArrayItem(v, 0), &out->rlim_cur);
    cfg_path_pop(c);
    cfg_push_index(c, 1);
    ok = want_limit(c, cJSON_GetArrayItem(v, 1), &out->rlim_max) && ok;
    cfg_path_pop(c);
    return ok;
}

void cfg_parse_rlimits(struct ctx *c, const cJSON *v, struct psup_service_config *svc)
{
    struct fields f;

    if (!cJSON_IsObject(v)) {
        cfg_fail(c, "expected an object, got %s", cfg_type_name(v));
        return;
    }
    cfg_read_fields(c, v, rlimit_names, &f);
    if (!(svc->rlimits = cfg_xcalloc(c, f.n_children, sizeof(*svc->rlimits))))
        return;

    /* Walk the members again to keep the file's order. */
    for (const cJSON *it = v->child; it; it = it->next) {
        int k = cfg_key_index(rlimit_names, it->string);
        struct psup_rlimit *r = &svc->rlimits[svc->n_rlimits];

        if (k < 0 || f.item[k] != it)
            continue;
        cfg_enter(c, &f, k);
        if (parse_limit_value(c, it, &r->value)) {
            r->resource = rlimit_resources[k];
            r->name = rlimit_names[k];
            check_limit(c, r->resource, &r->value);
            svc->n_rlimits++;
        }
        cfg_path_pop(c);
    }
}
