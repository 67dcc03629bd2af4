/* SPDX-License-Identifier: MIT */
/*
 * The configuration: a JSON file turned into plain structs, validated in full
 * (every problem reported with its JSON path), with names resolved at load
 * (programs on PATH, users and groups) so that nothing is looked up later in
 * a worker. cJSON is used only in lib/config.
 *
 * The normative reference for every key is spec/config.md.
 */
#ifndef PSUP_CONFIG_H
#define PSUP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "net/access.h"
#include "net/addr.h"
#include "base/diag.h"
#include "base/log.h"

enum psup_stderr_mode {
    PSUP_STDERR_INHERIT,
    PSUP_STDERR_NULL,
    PSUP_STDERR_LOG,
};

/* What psup speaks on a service's connections (spec/cgi.md). */
enum psup_protocol {
    PSUP_PROTOCOL_RAW, /* the handler gets the connection as it is (default) */
    PSUP_PROTOCOL_CGI, /* psup-cgi reads an HTTP request and runs the command
                          as a CGI script */
};

/* Which PROXY protocol headers a service takes (spec/proxy.md); the values
 * are lib/child/proxy.h's PSUP_PROXY_V1, _V2 and _ANY. */
enum psup_proxy_protocol {
    PSUP_PROXY_PROTOCOL_NONE = 0,
    PSUP_PROXY_PROTOCOL_V1 = 1,
    PSUP_PROXY_PROTOCOL_V2 = 2,
    PSUP_PROXY_PROTOCOL_ANY = 3,
};

/* When a wait-mode service starts its servers (spec/wait.md). */
enum psup_start {
    PSUP_START_ON_DEMAND, /* when the first connection or datagram arrives */
    PSUP_START_ALWAYS,    /* at once, and again whenever one exits */
};

enum psup_overload {
    PSUP_OVERLOAD_QUEUE,  /* wait in the kernel backlog (default) */
    PSUP_OVERLOAD_REJECT, /* accept and close at once, with overload_message */
};

/* How a service serves its listeners (spec/config.md, "mode"). */
enum psup_mode {
    PSUP_MODE_ACCEPT,   /* stream listeners: a handler per connection */
    PSUP_MODE_DATAGRAM, /* UDP listeners: a handler per datagram (spec/udp.md) */
    PSUP_MODE_WAIT,     /* a server given the listening sockets (spec/wait.md) */
};

/* The receive buffer of a UDP listener unless recv_buffer says otherwise:
 * about 10000 datagrams of up to 100 bytes (spec/udp.md). */
#define PSUP_RECV_BUFFER_DEFAULT (4 * 1024 * 1024)

/* The largest pool bound (min_spare, max_spare, max_workers). */
#define PSUP_MAX_WORKERS 65536u

struct psup_rlimit {
    int resource;        /* RLIMIT_NOFILE, ... */
    const char *name;    /* "nofile", ... (static string) */
    struct rlimit value; /* RLIM_INFINITY for "unlimited" */
};

/* A file as a reload compares it: another inode, size or time is another
 * file. */
struct psup_file_id {
    unsigned long long dev, ino, size;
    long long mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

struct psup_service_config {
    char *name;
    /* The service's JSON object printed back without whitespace: two
     * loads of an unchanged service give equal strings (reload uses it). */
    char *canonical;

    struct psup_addr *listen;
    char **listen_text; /* the strings as written, for logs */
    size_t n_listen;

    /* What is exec'd: program is the resolved absolute (or cwd-relative)
     * path; argv is NULL-terminated. A string command becomes
     * program "/bin/sh", argv {"sh", "-c", text}. */
    char *program;
    char **argv;
    size_t argc;
    bool shell;

    enum psup_mode mode;
    enum psup_start start;  /* wait mode */
    unsigned instances;     /* wait mode: servers at once, default 1 */

    unsigned min_spare;
    unsigned max_spare;
    unsigned max_workers;
    int backlog;
    int recv_buffer; /* bytes, for UDP listeners (SO_RCVBUF) */

    /* Environment: env holds "NAME=value" strings from the env object, in
     * file order. clear_env and pass_env as in spec/config.md. */
    char **env;
    size_t n_env;
    bool clear_env;
    char **pass_env;
    size_t n_pass_env;

    /* The handler's process. -1 / false where not set. */
    char *cwd;
    int umask;           /* 0..0777, or -1 to keep psup's */
    bool set_nice;
    int nice;
    struct psup_rlimit *rlimits;
    size_t n_rlimits;

    /* Credentials, resolved at load. set_ids is true when user or group
     * is set and applying them changes something. */
    bool set_ids;
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups, applied with setgroups */
    size_t n_groups;
    char *user_name; /* for USER and LOGNAME; NULL without user */
    char *user_home; /* for HOME; NULL without user */
    bool no_new_privileges; /* PR_SET_NO_NEW_PRIVS before exec */

    /* Exec the program before the connection (spec/prestart.md), and what
     * was exec'd as it was at load (the end of the "#!" chain): a reload
     * sees a program replaced on disk as a changed service. */
    bool prestart;
    struct psup_file_id program_id;

    enum psup_stderr_mode stderr_mode;

    /* Access and limits (issue 4). n_allow == 0 allows everyone. */
    struct psup_cidr *allow;
    size_t n_allow;
    struct psup_cidr *deny;
    size_t n_deny;
    char *deny_message;         /* NULL: close without a word */
    unsigned max_per_source;    /* 0: unlimited */
    unsigned per_source_ipv6_prefix; /* 1..128, default 128 */
    char *per_source_message;
    double rate;                /* new connections per second; 0: unlimited */
    unsigned rate_burst;
    char *rate_message;
    enum psup_overload on_overload;
    char *overload_message;
    double timeout;             /* seconds a handler may run; 0: no limit */

    /* "protocol": "cgi": the worker execs the relay (relay, relay_argv:
     * psup-cgi OPTIONS -- PROGRAM ARGS, built at load from program, argv,
     * the http object, timeout and kill_grace) instead of program. NULL
     * for "raw". */
    enum psup_protocol protocol;
    char *relay;
    char **relay_argv;
    size_t relay_argc;

    /* PROXY protocol (spec/proxy.md). proxy_from holds the balancers;
     * proxy_timeout_ms bounds the whole header (at least 1). */
    enum psup_proxy_protocol proxy_protocol;
    struct psup_cidr *proxy_from;
    size_t n_proxy_from;
    int proxy_timeout_ms;

    /* A service psup cannot do without (spec/config.md, "essential"):
     * failing for fatal_after seconds stops psup with exit status 4. */
    bool essential;
    double fatal_after;         /* seconds; 0 unless essential */

    /* The files of unix:/path listeners: mode, owner and group, or -1,
     * (uid_t)-1, (gid_t)-1 to leave them as bind makes them. */
    int socket_mode;
    uid_t socket_uid;
    gid_t socket_gid;
};

/* The admin endpoint (spec/admin.md): HTTP on psup's own loop. */
struct psup_admin_config {
    struct psup_addr *listen; /* none (n_listen 0): no admin endpoint */
    char **listen_text;       /* the strings as written, for logs */
    size_t n_listen;
    unsigned max_clients;     /* connections served at once, default 32 */
    /* The files of unix:/path admin sockets: mode 0600 by default (control
     * requests are taken there), owner and group as bind makes them unless
     * set ((uid_t)-1, (gid_t)-1). */
    int socket_mode;
    uid_t socket_uid;
    gid_t socket_gid;
};

struct psup_config {
    struct psup_service_config *services;
    size_t n_services;
    double shutdown_timeout; /* seconds, default 7 */
    double shutdown_delay;   /* seconds of serving after SIGTERM, default 0 */
    double kill_grace;       /* seconds between SIGTERM and SIGKILL, default 2 */
    enum psup_log_format log_format;
    bool log_format_set;     /* false: the file did not say */
    struct psup_admin_config admin;
    unsigned refs;           /* see psup_config_ref */
};

/* Where psup-cgi is (psup resolves it at start, relative to its own binary:
 * spec/cgi.md), or NULL if psup could not find its own binary: a cgi
 * service is then a configuration error. Kept for every later load. */
void psup_config_set_cgi_relay(const char *path);

/* Read, parse and validate a configuration file. Returns a configuration
 * with one reference, or NULL with every problem appended to diag (a file
 * that cannot be read, JSON syntax with line and column, or each semantic
 * error with its JSON path). */
struct psup_config *psup_config_load(const char *path, struct psup_diag *diag);

/* The same from text already in memory; origin names it in messages.
 * Relative paths (programs, cwd) are resolved against psup's working
 * directory. */
struct psup_config *psup_config_parse(const char *text, size_t len, const char *origin,
                                      struct psup_diag *diag);

struct psup_config *psup_config_ref(struct psup_config *cfg);
void psup_config_unref(struct psup_config *cfg);

/* Whether a reload may keep a service's workers: the same JSON, and the
 * same settings resolved from it at load (program, ids, groups, home, cwd,
 * backlog), which can change while the JSON does not. */
bool psup_config_service_same(const struct psup_service_config *a,
                              const struct psup_service_config *b);

/* Problems psup --check can foresee but not be sure of, because they
 * depend on when and how psup runs: a unix socket whose directory is
 * missing or not writable, a privileged port without the capability to
 * bind it. Appended to out as "JSONPATH: SENTENCE"; returns how many. */
size_t psup_config_warn(const struct psup_config *cfg, struct psup_diag *out);

/* A one-line human summary of a service for psup --check. */
void psup_config_describe(const struct psup_service_config *svc, char *buf, size_t size);

/* The closest accepted name to an unknown one, or NULL if none is close
 * enough to suggest ("did you mean"). Exposed for unit tests. */
const char *psup_config_suggest(const char *unknown, const char *const *known);

#endif
