/* SPDX-License-Identifier: MIT */
/*
 * The system look-ups of one load, each made once: a program probed, a
 * user, a group, a user's group list. A reload runs in the supervisor's
 * loop, and a file of thousands of services naming the same program or
 * user would otherwise repeat the same stat() or passwd look-up (with NSS
 * modules such as systemd's, a look-up that fails costs a millisecond) for
 * each. What fails is reported, and reports stop at CFG_MAX_PROBLEMS, so
 * failed look-ups are bounded too. Results are valid until the load ends.
 */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One result, under a key that says what was asked: "p/usr/bin/cat",
 * "uroot", "#0", "groot", "l0:root". */
struct memo {
    char *key;
    bool found;
    enum cfg_probe probe;
    int err;
    struct cfg_user user;
    gid_t gid;
    gid_t *groups;
    size_t n_groups;
};

static bool same_memo(const void *a, const void *b)
{
    return strcmp(((const struct memo *)a)->key, ((const struct memo *)b)->key) == 0;
}

void cfg_lookups_begin(struct ctx *c)
{
    cfg_table_init(&c->lookups, same_memo);
}

void cfg_lookups_end(struct ctx *c)
{
    for (size_t i = 0; i < c->lookups.cap; i++) {
        struct memo *m = (struct memo *)c->lookups.slots[i].key;
        if (!c->lookups.slots[i].used)
            continue;
        free(m->key);
        free((char *)m->user.name);
        free((char *)m->user.home);
        free(m->groups);
        free(m);
    }
    cfg_table_free(&c->lookups);
}

/* The memo for key, *fresh when it was just made (and is to be filled);
 * NULL when memory ran out. */
static struct memo *memo_for(struct ctx *c, char *key, bool *fresh)
{
    struct memo probe = {.key = key};
    struct cfg_entry e = {.hash = key ? cfg_hash_bytes(key, strlen(key)) : 0, .key = &probe};
    const struct cfg_entry *found = key ? cfg_table_find(&c->lookups, &e) : NULL;
    struct memo *m;

    *fresh = false;
    if (found || !key) {
        free(key);
        return found ? (struct memo *)found->key : NULL;
    }
    if (!(m = cfg_xcalloc(c, 1, sizeof(*m)))) {
        free(key);
        return NULL;
    }
    m->key = key;
    e.key = m;
    size_t before = c->lookups.n;
    cfg_table_add(c, &c->lookups, &e);
    if (c->lookups.n == before) {
        free(key);
        free(m);
        return NULL;
    }
    *fresh = true;
    return m;
}

/* ---- programs ------------------------------------------------------------- */

/* Whether path is a regular file psup may execute; the check uses the
 * effective ids, as execve will. */
static enum cfg_probe probe_program(const char *path, int *err)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        *err = errno;
        return CFG_PROBE_MISSING;
    }
    if (!S_ISREG(st.st_mode))
        return CFG_PROBE_NOT_REGULAR;
    if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
        *err = errno;
        return CFG_PROBE_NOT_EXECUTABLE;
    }
    return CFG_PROBE_OK;
}

enum cfg_probe cfg_probe_program(struct ctx *c, const char *path, int *err)
{
    bool fresh;
    struct memo *m = memo_for(c, cfg_xasprintf(c, "p%s", path), &fresh);

    if (!m)
        return probe_program(path, err);
    if (fresh)
        m->probe = probe_program(path, &m->err);
    *err = m->err;
    return m->probe;
}

/* ---- users and groups ------------------------------------------------------- */

static void keep_user(struct ctx *c, struct memo *m, const struct passwd *pw)
{
    if (!(m->found = pw != NULL))
        return;
    m->user.uid = pw->pw_uid;
    m->user.gid = pw->pw_gid;
    m->user.name = cfg_xstrdup(c, pw->pw_name);
    m->user.home = cfg_xstrdup(c, pw->pw_dir);
}

const struct cfg_user *cfg_lookup_user(struct ctx *c, const char *name)
{
    bool fresh;
    struct memo *m = memo_for(c, cfg_xasprintf(c, "u%s", name), &fresh);

    if (m && fresh)
        keep_user(c, m, getpwnam(name));
    return m && m->found && m->user.name && m->user.home ? &m->user : NULL;
}

const struct cfg_user *cfg_lookup_uid(struct ctx *c, uid_t uid)
{
    bool fresh;
    struct memo *m = memo_for(c, cfg_xasprintf(c, "#%u", (unsigned)uid), &fresh);

    if (m && fresh)
        keep_user(c, m, getpwuid(uid));
    return m && m->found && m->user.name && m->user.home ? &m->user : NULL;
}

bool cfg_lookup_group(struct ctx *c, const char *name, gid_t *gid)
{
    bool fresh;
    struct memo *m = memo_for(c, cfg_xasprintf(c, "g%s", name), &fresh);

    if (m && fresh) {
        const struct group *gr = getgrnam(name);
        if ((m->found = gr != NULL))
            m->gid = gr->gr_gid;
    }
    if (m && m->found)
        *gid = m->gid;
    return m && m->found;
}

/* getgrouplist into a list of the right size. */
static gid_t *group_list(struct ctx *c, const char *user, gid_t gid, size_t *n_out)
{
    int n = 16;

    for (;;) {
        gid_t *g = cfg_xcalloc(c, (size_t)n, sizeof(gid_t));
        int want = n;
        if (!g)
            return NULL;
        if (getgrouplist(user, gid, g, &want) >= 0) {
            *n_out = (size_t)want;
            return g;
        }
        free(g);
        n = want > n ? want : 2 * n;
    }
}

gid_t *cfg_lookup_groups(struct ctx *c, const char *user, gid_t gid, size_t *n)
{
    bool fresh;
    struct memo *m = memo_for(c, cfg_xasprintf(c, "l%u:%s", (unsigned)gid, user), &fresh);
    gid_t *copy;

    if (!m)
        return NULL;
    if (fresh)
        m->groups = group_list(c, user, gid, &m->n_groups);
    if (!m->groups || !(copy = cfg_xcalloc(c, m->n_groups, sizeof(gid_t))))
        return NULL;
    memcpy(copy, m->groups, m->n_groups * sizeof(gid_t));
    *n = m->n_groups;
    return copy;
}
