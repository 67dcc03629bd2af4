/* SPDX-License-Identifier: MIT */
/*
 * INTERNAL to the configuration loader: include it from lib/config only;
 * every other file uses config.h. It holds the parse context shared by the
 * loader's files and the helpers they call across files. With the files of lib/config,
 * the only place that includes cJSON (with the importer, lib/import).
 */
#ifndef PSUP_CONFIG_INT_H
#define PSUP_CONFIG_INT_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

#define MAX_DEPTH 8 /* levels of the JSON path that keep their position */
#define MAX_KEYS 64 /* members one struct fields can hold */

struct problem;

/* One load: the configuration being built, the current JSON path, the
 * problems found so far, and facts about the running psup. */
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
    bool can_switch_ids;   /* CAP_SETUID and CAP_SETGID */
    bool can_raise_limits; /* CAP_SYS_RESOURCE */
    bool can_lower_nice;   /* CAP_SYS_NICE */
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

/* What the user key resolves to. */
struct who {
    bool known; /* has a passwd entry */
    uid_t uid;
    gid_t gid;  /* primary group from passwd */
};

/* ---- problems.c: the JSON path, problems, allocation -------------------- */

/* Step into an object member or an array element; path_pop steps out. */
void cfg_push_key(struct ctx *c, const char *name, unsigned ord);
void cfg_push_index(struct ctx *c, size_t i);
void cfg_path_pop(struct ctx *c);

/* Report a problem at the current path ("services[0].pool: ..."), or at the
 * origin (the file name) at the top level. */
void cfg_fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Step into the member k of f if present (NULL if not): the path then
 * names it, and the caller pops it. */
const cJSON *cfg_enter(struct ctx *c, const struct fields *f, int k);

/* Report at member k, present or not (an absent one sorts at the end of its
 * object, where it would have been written). */
void cfg_fail_at(struct ctx *c, const struct fields *f, int k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Allocation that records failure in c->oom instead of returning it. */
void *cfg_xcalloc(struct ctx *c, size_t n, size_t size);
char *cfg_xstrdup(struct ctx *c, const char *s);
char *cfg_xasprintf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Move the problems, sorted into document order, to diag; returns how many
 * there were (an allocation failure counts as one). */
size_t cfg_flush_problems(struct ctx *c, struct psup_diag *diag);

/* ---- json.c: objects and typed values ----------------------------------- */

/* The index of key in a NULL-terminated table, or -1. */
int cfg_key_index(const char *const *names, const char *key);

/* Whether a member of obj before item has the same name. */
bool cfg_seen_before(const cJSON *obj, const cJSON *item);

/* Sort an object's members into f by name; report unknown and repeated
 * keys. The first of repeated keys is the one used. */
void cfg_read_fields(struct ctx *c, const cJSON *obj, const char *const *names, struct fields *f);

/* "a string", "an empty array", ... for messages. */
const char *cfg_type_name(const cJSON *v);
const char *cfg_fmt_number(double d, char buf[40]);
bool cfg_is_integer(double d);

/* Each want_* reports a problem at the current path and returns false when
 * v is not what is asked; *out is set only on success. */
bool cfg_want_int(struct ctx *c, const cJSON *v, long long min, long long max, long long *out);
bool cfg_want_uint(struct ctx *c, const cJSON *v, unsigned min, unsigned max, unsigned *out);
bool cfg_want_number(struct ctx *c, const cJSON *v, const char *what, double min, bool min_ok,
                 double max, double *out);
bool cfg_want_seconds(struct ctx *c, const cJSON *v, bool zero_ok, double *out);
bool cfg_want_string(struct ctx *c, const cJSON *v, bool non_empty, const char **out);
bool cfg_want_bool(struct ctx *c, const cJSON *v, bool *out);
bool cfg_want_choice(struct ctx *c, const cJSON *v, const char *const *choices, int *out);
bool cfg_want_array(struct ctx *c, const cJSON *v, const char *what);

/* A string sent to a refused client: *out is a copy. */
void cfg_want_message(struct ctx *c, const cJSON *v, char **out);

/* ---- service.c: one member of "services" -------------------------------- */

/* Fill c->cfg->services[index] from obj, services[index] in the file; the
 * path is at that element. */
void cfg_parse_service(struct ctx *c, const cJSON *obj, size_t index);

/* ---- resolve.c: what is looked up on the system ------------------------- */

/* Fill the facts about the running psup in c (cwd, ids, groups, somaxconn). */
void cfg_read_system_facts(struct ctx *c);

/* Report a problem unless path is a regular file psup may execute. */
void cfg_check_program(struct ctx *c, const char *path);

/* Resolve argv[0] (the current path is command[0]) into svc->program. */
void cfg_resolve_program(struct ctx *c, struct psup_service_config *svc, const char *name);

/* Set svc->cwd to the directory dir names. Returns false, with the problem
 * reported, when it is not a usable directory. */
bool cfg_resolve_cwd(struct ctx *c, struct psup_service_config *svc, const char *dir);

/* The user key v (a name or a number) into w, with svc's user_name and
 * user_home; the group key v into *gid. False after reporting a problem. */
bool cfg_resolve_user(struct ctx *c, const cJSON *v, struct psup_service_config *svc,
                  struct who *w);
bool cfg_resolve_group(struct ctx *c, const cJSON *v, gid_t *gid);

/* Fill svc->groups from svc->uid and svc->gid (the user's memberships, or
 * just gid), and set svc->set_ids to whether applying them changes psup's. */
void cfg_resolve_groups(struct ctx *c, struct psup_service_config *svc, bool supplementary);

/* "gid 5 (\"tty\")" for messages. */
const char *cfg_group_label(gid_t gid, char buf[96]);

/* The nice key v into svc, and the rlimits object v into svc->rlimits (in
 * the file's order), each checked against what psup may set. */
void cfg_parse_nice(struct ctx *c, const cJSON *v, struct psup_service_config *svc);
void cfg_parse_rlimits(struct ctx *c, const cJSON *v, struct psup_service_config *svc);

#endif
