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
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

#define MAX_DEPTH 8 /* levels of the JSON path that keep their position */
#define MAX_KEYS 64 /* members one struct fields can hold */
#define CFG_QUOTE_MAX 256 /* a value quoted in a message, with its quotes */
#define CFG_NAMES_SMALL 8 /* names compared one by one before a hash table */
#define CFG_MAX_PROBLEMS 100 /* then the load stops (spec/config.md, "Errors") */

struct problem;

/* A hash table of entries that point into the caller's data; same()
 * compares two keys of equal hash (NULL: the hash is the whole key). */
struct cfg_entry {
    uint64_t hash;
    const void *key;
    size_t a, b; /* what the caller wants back: an index, a position */
    bool used;
};

struct cfg_table {
    struct cfg_entry *slots;
    size_t cap, n;
    bool (*same)(const void *a, const void *b);
};

/* A set of an object's member names, to find repeated keys. */
struct cfg_names {
    const char *small[CFG_NAMES_SMALL];
    size_t n_small;
    struct cfg_table big;
};

/* A user from the user database (valid until the load ends). */
struct cfg_user {
    uid_t uid;
    gid_t gid; /* primary group */
    const char *name;
    const char *home;
};

enum cfg_probe {
    CFG_PROBE_OK,
    CFG_PROBE_MISSING,
    CFG_PROBE_NOT_REGULAR,
    CFG_PROBE_NOT_EXECUTABLE,
};

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
    bool stopped; /* CFG_MAX_PROBLEMS reached: the rest is not checked */
    char quoted[2][CFG_QUOTE_MAX]; /* cfg_quote's results, used in turn */
    unsigned next_quote;

    /* What must be unique across services, found in linear time. */
    struct cfg_table service_names; /* a: the service's index */
    struct cfg_table listen_addrs;  /* a, b: services[a].listen[b] */
    struct cfg_table listen_scopes; /* (port, scope) -> its first listener */
    struct cfg_table lookups;       /* lookup.c: what the system said */

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
    unsigned long long nr_open; /* fs.nr_open: the largest nofile limit */
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

/* The n bytes at s as a JSON string in out (size bytes, at least 8): a
 * quote and a backslash escaped, control characters as \n or \u001b,
 * bytes that are not UTF-8 as \xNN (JSON has no escape for them). Cut at
 * a character boundary when out is too small, with "..." after the closing
 * quote; 6 * n + 3 bytes are always enough. */
void cfg_json_string(const char *s, size_t n, char *out, size_t size);

/* s as a quoted JSON string, escaped and cut to CFG_QUOTE_MAX, for a
 * message: valid until the next call but one. */
const char *cfg_quote(struct ctx *c, const char *s);

/* A copy of s with control characters escaped (\n, \u001b) and bytes that
 * are not UTF-8 written \xNN: safe to print. NULL if memory runs out. */
char *cfg_printable(const char *s);

/* Step into an object member or an array element; path_pop steps out. */
void cfg_push_key(struct ctx *c, const char *name, unsigned ord);
void cfg_push_key_n(struct ctx *c, const char *name, size_t len, unsigned ord);
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

/* Whether the load stopped checking (too many problems). */
bool cfg_stopped(const struct ctx *c);

/* Forget the problems found after the first keep. */
void cfg_drop_problems(struct ctx *c, size_t keep);

/* ---- table.c: uniqueness in linear time ---------------------------------- */

uint64_t cfg_hash_bytes(const void *p, size_t n);
void cfg_table_init(struct cfg_table *t, bool (*same)(const void *a, const void *b));
void cfg_table_free(struct cfg_table *t);

/* The entry equal to e, or NULL. */
const struct cfg_entry *cfg_table_find(const struct cfg_table *t, const struct cfg_entry *e);

/* Add e unless an equal entry is there: returns that earlier entry, or
 * NULL when e was added (or memory ran out: c->oom). */
const struct cfg_entry *cfg_table_add(struct ctx *c, struct cfg_table *t,
                                      const struct cfg_entry *e);

/* Whether name was added before; adds it. */
void cfg_names_init(struct cfg_names *s);
bool cfg_names_add(struct ctx *c, struct cfg_names *s, const char *name);
void cfg_names_free(struct cfg_names *s);

/* ---- lookup.c: system look-ups, each made once a load ------------------ */

void cfg_lookups_begin(struct ctx *c);
void cfg_lookups_end(struct ctx *c);

/* Whether path is a regular file psup may execute (*err: the errno). */
enum cfg_probe cfg_probe_program(struct ctx *c, const char *path, int *err);

/* getpwnam, getpwuid, getgrnam; NULL or false if there is none. */
const struct cfg_user *cfg_lookup_user(struct ctx *c, const char *name);
const struct cfg_user *cfg_lookup_uid(struct ctx *c, uid_t uid);
bool cfg_lookup_group(struct ctx *c, const char *name, gid_t *gid);

/* getgrouplist(user, gid): a new array of *n gids (the caller's). */
gid_t *cfg_lookup_groups(struct ctx *c, const char *user, gid_t gid, size_t *n);

/* ---- text.c: the raw text, before the values ----------------------------- */

/* Report a JSON syntax error at `at` (line and column from text). */
void cfg_fail_syntax(struct ctx *c, const char *text, const char *at);

/* What cJSON lets through and RFC 8259 does not, in a document cJSON
 * parsed: white space other than space, tab, CR and LF; numbers such as
 * 01 or 1.; raw control characters and invalid UTF-8 in strings; and
 * \u0000, at which cJSON cuts a string short. Reports each problem (a
 * syntax error alone) and returns false if there was any. */
bool cfg_check_text(struct ctx *c, const char *text, size_t len);

/* ---- json.c: objects and typed values ----------------------------------- */

/* The index of key in a NULL-terminated table, or -1. */
int cfg_key_index(const char *const *names, const char *key);

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

/* A list of CIDRs at member k of f, if present, into *out (*n_out of them);
 * what says what is expected ("a non-empty array of CIDR strings ..."), and
 * an empty array is accepted only with allow_empty. Returns false if the
 * list had a problem. */
bool cfg_parse_cidrs(struct ctx *c, const struct fields *f, int k, const char *what,
                     bool allow_empty, struct psup_cidr **out, size_t *n_out);

/* ---- service.c: one member of "services" -------------------------------- */

/* Around the services of one file, and its admin object: the tables of
 * what must be unique across them (names, addresses), which point into the
 * JSON tree. */
void cfg_services_begin(struct ctx *c);
void cfg_services_end(struct ctx *c);

/* Fill c->cfg->services[index] from obj, services[index] in the file; the
 * path is at that element. */
void cfg_parse_service(struct ctx *c, const cJSON *obj, size_t index);

/* ---- listeners.c: listen addresses, and a service's mode ----------------- */

/* Parse a listen address at the current path, with no_udp the problem to
 * report for a udp:// address (NULL: accepted). */
void cfg_parse_address(struct ctx *c, const char *s, struct psup_addr *a, const char *no_udp);

/* The owner index of an admin address in the tables (its a). */
#define CFG_ADMIN_LISTENER ((size_t)-1)

/* Report the address at owner's listen[i] (owner a service's index or
 * CFG_ADMIN_LISTENER) if an earlier one is the same or overlaps it, naming
 * that one; else remember it. */
void cfg_check_listen_unique(struct ctx *c, size_t owner, size_t i);

/* A service's listeners and mode: the members k_listen and k_mode of f,
 * the service services[index]. Parse listen before mode. cfg_parse_mode
 * returns false when the mode given is not one. */
void cfg_parse_listen(struct ctx *c, const struct fields *f, int k_listen, size_t index);
bool cfg_parse_mode(struct ctx *c, const struct fields *f, int k_mode, int k_listen,
                    struct psup_service_config *svc);
/* Whether svc has (or, with an entry that had a problem, may have) a UDP
 * listener (udp), or a stream one (!udp). */
bool cfg_has_listener(const struct psup_service_config *svc, bool udp);
/* The equality of the table of listen addresses (psup_addr_same). */
bool cfg_same_addr(const void *a, const void *b);

/* A mode or mask as a string of 1 to 4 octal digits, at most "0777" (a
 * number would be read as decimal: 022 is 22), into *out; example is shown
 * in messages. */
void cfg_parse_octal(struct ctx *c, const cJSON *v, const char *example, int *out);

/* Whether any of the n addresses is a unix socket file (or may be: an
 * entry with a problem is zeroed, and says nothing either way). */
bool cfg_has_unix_file(const struct psup_addr *listen, size_t n);

/* The socket_mode, socket_user and socket_group keys of f (at indexes
 * keys[0..2]) into *mode, *uid and *gid, checked against what psup may give
 * a file; each is an error when there is no unix socket file to give. */
void cfg_parse_socket_file(struct ctx *c, const struct fields *f, const int keys[3],
                           bool unix_file, int *mode, uid_t *uid, gid_t *gid);

/* ---- admin.c: the top-level "admin" object ----------------------------- */

/* Fill c->cfg->admin from v (the path is at "admin"); run after the
 * services, whose addresses the admin's must not repeat. */
void cfg_parse_admin(struct ctx *c, const cJSON *v);
void cfg_admin_defaults(struct psup_admin_config *adm);
void cfg_free_admin(struct psup_admin_config *adm);

/* ---- protocol.c: protocol, http and the PROXY protocol keys ------------ */

/* Where those keys are in the service's key table. */
struct cfg_protocol_keys {
    int protocol, http, proxy_protocol, proxy_from, proxy_timeout;
};

/* Parse them into svc, and for a cgi service build the relay's argv: call
 * it after listen, mode (mode_ok: the mode given, if any, is one), command
 * and timeout. Nothing in wait mode, whose server takes the connections
 * (service.c rejects these keys there). */
void cfg_parse_protocol(struct ctx *c, const struct fields *f, const struct cfg_protocol_keys *k,
                        bool mode_ok, struct psup_service_config *svc);

/* Whether two services run the same relay with the same argv. */
bool cfg_relay_same(const struct psup_service_config *a, const struct psup_service_config *b);

/* ---- resolve.c: what is looked up on the system ------------------------- */

/* The number a /proc file starts with, or fallback. */
unsigned long long cfg_read_proc_number(const char *file, unsigned long long fallback);

/* psup's effective capabilities, a bit mask (CAP_SETUID, ...). */
unsigned long long cfg_effective_capabilities(void);

/* Fill the facts about the running psup in c (cwd, ids, groups, somaxconn). */
void cfg_read_system_facts(struct ctx *c);

/* Report a unix socket path that exists and is not a socket: psup never
 * removes it, so it could not be bound. */
void cfg_check_unix_path(struct ctx *c, const struct psup_addr *a);

/* Report a problem unless path is a regular file psup may execute. */
void cfg_check_program(struct ctx *c, const char *path);

/* ---- prestart.c: whether psup's library can reach a program ----------- */

/* Report, at the current path, why svc's program cannot be prestarted, and
 * record the ELF file it runs in svc->program_id. */
void cfg_check_prestart(struct ctx *c, struct psup_service_config *svc);

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

/* start and instances, at f's keys keys[0] and keys[1], after the mode
 * (mode_ok: the mode given, if any, is one); in wait mode each of f's keys
 * in per_connection (n of them) is an error (mode.c). */
void cfg_parse_wait(struct ctx *c, const struct fields *f, const int keys[2], bool mode_ok,
                    const int *per_connection, size_t n, struct psup_service_config *svc);

/* The nice key v into svc, and the rlimits object v into svc->rlimits (in
 * the file's order), each checked against what psup may set. */
void cfg_parse_nice(struct ctx *c, const cJSON *v, struct psup_service_config *svc);
void cfg_parse_rlimits(struct ctx *c, const cJSON *v, struct psup_service_config *svc);

#endif
