/* SPDX-License-Identifier: MIT */
/*
 * psup import: xinetd and inetd configurations turned into a psup
 * configuration (docs/migrating.md, psup(1)).
 *
 * A run reads the inputs, builds one psup service per service it can carry
 * over (struct psup_import_service, close to the JSON it becomes), and
 * collects one message per setting it could not carry over, or worth a
 * note, each naming the file and line it came from. cmd/psup/import.c
 * prints the services as JSON on stdout and the messages on stderr, and
 * chooses the exit status: 0 when everything was carried over, 1 when
 * something was not, 2 when an input cannot be read or parsed.
 *
 * No global state; nothing here exits or prints.
 */
#ifndef PSUP_IMPORT_H
#define PSUP_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A growable list of owned strings. */
struct psup_import_strv {
    char **items;
    size_t count;
    size_t cap;
};

enum psup_import_mode {
    PSUP_IMPORT_MODE_DEFAULT, /* accept for stream, datagram for UDP: not written */
    PSUP_IMPORT_MODE_WAIT,    /* inetd wait = yes: the server gets the sockets */
};

/* A user or group as written: a name, or all digits (written as a JSON
 * number, which psup reads as a numeric id). */
struct psup_import_id {
    char *text; /* NULL: not set */
    bool numeric;
};

/* The resource limits psup's "rlimits" accepts that xinetd sets. */
enum psup_import_rlimit {
    PSUP_IMPORT_RLIMIT_AS,
    PSUP_IMPORT_RLIMIT_CPU,
    PSUP_IMPORT_RLIMIT_DATA,
    PSUP_IMPORT_RLIMIT_NOFILE,
    PSUP_IMPORT_RLIMIT_STACK,
    PSUP_IMPORT_RLIMIT_COUNT,
};

struct psup_import_limit {
    bool set;
    bool unlimited;
    uint64_t value;
};

/* One psup service; every field unset by default (zero). */
struct psup_import_service {
    char *name;
    struct psup_import_strv listen;
    enum psup_import_mode mode;
    struct psup_import_strv command; /* argv */
    char *command_line;              /* or a line for /bin/sh -c */
    struct psup_import_id user;
    struct psup_import_id group;
    int supplementary_groups; /* -1 not written, else 0 or 1 */
    long max_workers;         /* 0: not written */
    bool reject_overload;
    long max_per_source; /* 0: not written */
    double rate;         /* 0: not written */
    long rate_burst;     /* 0: not written */
    struct psup_import_strv allow;
    struct psup_import_strv deny;
    struct psup_import_strv env_names;
    struct psup_import_strv env_values;
    bool clear_env;
    struct psup_import_strv pass_env;
    bool nice_set;
    int nice;
    int umask; /* -1: not written */
    struct psup_import_limit rlimits[PSUP_IMPORT_RLIMIT_COUNT];
};

struct psup_import_message;

/* What a run produced. */
struct psup_import_result {
    struct psup_import_service **services;
    size_t n_services;
    size_t cap_services;
    struct psup_import_message *messages;
    size_t n_messages;
    size_t cap_messages;
    bool lost;   /* something was not carried over: exit 1 */
    bool failed; /* an input could not be read or parsed: exit 2 */
};

struct psup_import_options {
    const char *services_path; /* the services database; NULL: /etc/services */
    bool include_disabled;     /* import services the input disables, too */
};

void psup_import_result_init(struct psup_import_result *r);
void psup_import_result_free(struct psup_import_result *r);

/* Import xinetd configuration files and directories (read as xinetd's
 * includedir reads them), in order, as one configuration; or one inetd.conf.
 * Return 0 (look at r->lost), -EINVAL when an input cannot be read or
 * parsed (r->failed, the reason is among the messages), -ENOMEM. */
int psup_import_xinetd(const char *const *paths, size_t n_paths,
                       const struct psup_import_options *opts, struct psup_import_result *r);
int psup_import_inetd(const char *path, const struct psup_import_options *opts,
                      struct psup_import_result *r);

/* The same from text in memory, named origin in messages (for tests). */
int psup_import_xinetd_text(const char *origin, const char *text,
                            const struct psup_import_options *opts, struct psup_import_result *r);
int psup_import_inetd_text(const char *origin, const char *text,
                           const struct psup_import_options *opts, struct psup_import_result *r);

/* The messages, one line each, in the order of the inputs. */
size_t psup_import_message_count(const struct psup_import_result *r);
const char *psup_import_message(const struct psup_import_result *r, size_t i);

/* The psup configuration, as JSON for people: a fixed key order, two-space
 * indentation, arrays of strings on one line. Returns 0 or -errno. */
int psup_import_emit(FILE *out, const struct psup_import_result *r);

#endif
