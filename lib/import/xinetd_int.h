/* SPDX-License-Identifier: MIT */
/*
 * The xinetd importer's stages: the reader (files, include, includedir,
 * entries and attribute lines, xinetd_reader.c), the access lists
 * (xinetd_access.c), the attributes with xinetd's inheritance from
 * "defaults" (xinetd.c) and the translation of one service
 * (xinetd_convert.c).
 */
#ifndef PSUP_IMPORT_XINETD_INT_H
#define PSUP_IMPORT_XINETD_INT_H

#include "import/import_int.h"

/* ------------------------------------------------------------------------ */
/* What the reader finds. */

enum xinetd_op { XINETD_SET, XINETD_ADD, XINETD_REMOVE };

struct xinetd_attr {
    char *name;
    enum xinetd_op op;
    struct psup_import_strv values;
    struct psup_import_where where;
};

enum xinetd_entry_kind { XINETD_SERVICE, XINETD_DEFAULTS };

struct xinetd_entry {
    enum xinetd_entry_kind kind;
    char *name; /* the service's name; NULL for defaults */
    struct psup_import_where where;
    struct xinetd_attr *attrs;
    size_t n_attrs;
    size_t cap_attrs;
};

struct xinetd_input {
    struct xinetd_entry *entries;
    size_t n_entries;
    size_t cap_entries;
    struct psup_import_strv files; /* every file read; where.file points here */
    int depth;                     /* of include and includedir */
};

void psup_import_xinetd_input_free(struct xinetd_input *in);

/* A path from the command line: a directory is read as includedir reads
 * it, anything else as a configuration file. */
int psup_import_xinetd_read_path(struct xinetd_input *in, const char *path,
                                 struct psup_import_result *r);
int psup_import_xinetd_read_text(struct xinetd_input *in, const char *origin, const char *text,
                                 struct psup_import_result *r);

/* ------------------------------------------------------------------------ */
/* Access lists: only_from and no_access. */

struct xinetd_access_item {
    char *text;    /* a CIDR as psup writes it, or what could not be imported */
    bool imported; /* false: a name, or a form psup cannot match */
    const char *why; /* why it is left out, or a note on how it was read */
    struct psup_import_where where;
};

struct xinetd_access {
    bool present; /* set (even to nothing), by the service or the defaults */
    struct xinetd_access_item *items;
    size_t count;
    size_t cap;
};

void psup_import_xinetd_access_free(struct xinetd_access *a);
int psup_import_xinetd_access_copy(struct xinetd_access *to, const struct xinetd_access *from);

/* Apply "only_from OP values" as xinetd does: = empties the list first,
 * += adds, -= removes equal entries. Returns 0, -ENOMEM, or -EINVAL with
 * *why when xinetd would refuse the value (and disable the service). */
int psup_import_xinetd_access_apply(struct xinetd_access *a, const struct xinetd_attr *attr,
                                    bool in_defaults, const char **why);

/* ------------------------------------------------------------------------ */
/* The attributes of one service (or of defaults). */

enum xinetd_attr_id {
    XA_SOCKET_TYPE,
    XA_PROTOCOL,
    XA_WAIT,
    XA_USER,
    XA_GROUP,
    XA_SERVER,
    XA_SERVER_ARGS,
    XA_INSTANCES,
    XA_LOG_ON_SUCCESS,
    XA_LOG_ON_FAILURE,
    XA_LOG_TYPE,
    XA_ONLY_FROM,
    XA_NO_ACCESS,
    XA_ACCESS_TIMES,
    XA_TYPE,
    XA_RPC_VERSION,
    XA_RPC_NUMBER,
    XA_ID,
    XA_ENV,
    XA_PORT,
    XA_PASSENV,
    XA_FLAGS,
    XA_NICE,
    XA_REDIRECT,
    XA_BANNER,
    XA_BIND,
    XA_PER_SOURCE,
    XA_GROUPS,
    XA_BANNER_SUCCESS,
    XA_BANNER_FAIL,
    XA_CPS,
    XA_DISABLE,
    XA_MAX_LOAD,
    XA_RLIMIT_AS,
    XA_RLIMIT_CPU,
    XA_RLIMIT_DATA,
    XA_RLIMIT_FILES,
    XA_RLIMIT_RSS,
    XA_RLIMIT_STACK,
    XA_V6ONLY,
    XA_DENY_TIME,
    XA_UMASK,
    XA_LIBWRAP,
    XA_DISABLED,
    XA_ENABLED,
    XA_COUNT
};

/* The service types and flags xinetd knows (src/nvlists.c). */
enum {
    XT_RPC = 1 << 0,
    XT_INTERNAL = 1 << 1,
    XT_UNLISTED = 1 << 2,
    XT_SPECIAL = 1 << 3,
    XT_TCPMUX = 1 << 4,
    XT_TCPMUXPLUS = 1 << 5,
};

enum {
    XF_REUSE = 1 << 0,
    XF_INTERCEPT = 1 << 1,
    XF_NORETRY = 1 << 2,
    XF_IDONLY = 1 << 3,
    XF_NAMEINARGS = 1 << 4,
    XF_NODELAY = 1 << 5,
    XF_KEEPALIVE = 1 << 6,
    XF_NOLIBWRAP = 1 << 7,
    XF_SENSOR = 1 << 8,
    XF_IPV4 = 1 << 9,
    XF_IPV6 = 1 << 10,
    XF_LABELED = 1 << 11,
};

/* A service or the defaults, after its entry was read with xinetd's rules:
 * for an attribute set once (most of them), the line that set it; for the
 * lists, their content. */
struct xinetd_conf {
    const struct xinetd_entry *entry;
    const struct xinetd_attr *attr[XA_COUNT]; /* the line that set it, or NULL */
    struct xinetd_access only_from;
    struct xinetd_access no_access;
    bool passenv_present;
    struct psup_import_strv passenv;
    struct psup_import_strv env; /* "NAME=value" */
    unsigned types;
    unsigned flags;
    bool disabled;         /* disable = yes */
    const char *refused;   /* why xinetd would disable it, or NULL */
    const struct xinetd_attr *refused_at;
    struct psup_import_strv disabled_ids; /* defaults: disabled = ... */
    struct psup_import_strv enabled_ids;  /* defaults: enabled = ... */
    bool enabled_present;
};

/* The state the translation needs besides the service. */
struct xinetd_context {
    const struct psup_import_options *opts;
    struct psup_import_result *r;
    struct psup_import_services_db *services_db;
    const struct xinetd_conf *defaults;
    bool logging_noted;
};

/* Translate one service that xinetd would run into r (or say why not). */
int psup_import_xinetd_convert(struct xinetd_context *ctx, const struct xinetd_conf *c);

/* One translation under way (xinetd_convert.c, xinetd_settings.c). */
struct xinetd_conv {
    struct xinetd_context *ctx;
    const struct xinetd_conf *c;
    struct psup_import_service *s;
    const char *id;
    char what[96]; /* "service ID": the NAME of messages about the whole service */
    bool dgram;
    bool waits; /* wait = yes for a program: psup's wait mode */
};

/* A step's result when the service is not imported (already reported). */
#define XINETD_REFUSED 1

/* Report that the service is not imported; returns XINETD_REFUSED. */
int psup_import_xinetd_refuse(struct xinetd_conv *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The service's attribute, or else the defaults' (confparse.c service_fill). */
const struct xinetd_attr *psup_import_xinetd_filled(const struct xinetd_conv *v,
                                                    enum xinetd_attr_id id);

/* only_from and no_access; then everything after the program. */
int psup_import_xinetd_access(struct xinetd_conv *v);
int psup_import_xinetd_settings(struct xinetd_conv *v);

/* The values of an attribute (first value, or NULL when not set). */
const char *psup_import_xinetd_value(const struct xinetd_conf *c, enum xinetd_attr_id id);

#endif
