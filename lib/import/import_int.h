/* SPDX-License-Identifier: MIT */
/*
 * Shared by the files of lib/import: messages with their origin, string
 * lists, services, the services database and the mappings both formats use.
 */
#ifndef PSUP_IMPORT_INT_H
#define PSUP_IMPORT_INT_H

#include <stdarg.h>

#include "import/import.h"

/* Where a setting was read. file_seq orders files as they were read, so
 * that messages come out in the order of the inputs. */
struct psup_import_where {
    const char *file;
    size_t file_seq;
    int line;
};

struct psup_import_message {
    size_t file_seq;
    int line;
    size_t seq;
    char *text;
};

/* "FILE:LINE: NAME: not imported: REASON"; sets r->lost. The same line twice
 * (a default inherited by several services) is written once. */
int psup_import_lost(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int psup_import_lostv(struct psup_import_result *r, const struct psup_import_where *w,
                      const char *name, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* "FILE:LINE: NAME: note: TEXT": carried over, with a difference worth
 * knowing; does not change the exit status. */
int psup_import_note(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: WHAT WAS EXPECTED" (or "FILE: ..." with line 0); sets r->failed
 * and returns -EINVAL (-ENOMEM if even that fails). */
int psup_import_fail(struct psup_import_result *r, const struct psup_import_where *w,
                     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "psup import: TEXT", after every line of the inputs. */
int psup_import_global(struct psup_import_result *r, bool lost, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Messages in input order (stable: equal positions keep their order). */
void psup_import_sort_messages(struct psup_import_result *r);

/* String lists. push copies s; push_owned takes it (and frees it on failure). */
int psup_import_strv_push(struct psup_import_strv *v, const char *s);
int psup_import_strv_push_owned(struct psup_import_strv *v, char *s);
int psup_import_strv_find(const struct psup_import_strv *v, const char *s); /* index or -1 */
void psup_import_strv_remove(struct psup_import_strv *v, size_t i);
void psup_import_strv_clear(struct psup_import_strv *v);
int psup_import_strv_copy(struct psup_import_strv *to, const struct psup_import_strv *from);

/* Services: a new one has nothing set; add takes ownership, even on failure. */
struct psup_import_service *psup_import_service_new(void);
void psup_import_service_free(struct psup_import_service *s);
int psup_import_add_service(struct psup_import_result *r, struct psup_import_service *s);
bool psup_import_name_taken(const struct psup_import_result *r, const char *name);

/* A psup service name from an xinetd id or an inetd service: characters
 * psup does not accept become '_', and at most 64 are kept. NULL: ENOMEM. */
char *psup_import_service_name(const char *text);

/* The services database (/etc/services), read once, when first needed. */
struct psup_import_services_db;
struct psup_import_services_db *psup_import_services_open(const char *path);
void psup_import_services_close(struct psup_import_services_db *db);
/* 0 and *port; 1 when the name is not there for proto; -errno when the
 * file cannot be read. */
int psup_import_services_lookup(struct psup_import_services_db *db, const char *name,
                                const char *proto, int *port);
const char *psup_import_services_path(const struct psup_import_services_db *db);

/* The command that replaces xinetd's or inetd's built-in service NAME:
 * 0, -ENOENT when there is none, -ENOMEM. */
int psup_import_internal_command(struct psup_import_service *s, const char *name, bool dgram);

/* A program and its arguments, argv[0] first, with where to report. */
struct psup_import_argv0 {
    struct psup_import_result *r;
    const struct psup_import_where *where;
    const char *name; /* the NAME of its messages */
    const char *server;
    char *const *argv;
    size_t argc;
};

/* Append its command to s (argv0.c says how); -ENOENT for tcpd without
 * the program it runs. */
int psup_import_argv0_command(const struct psup_import_argv0 *a, struct psup_import_service *s);

/* A listen address: "HOST:PORT", "[V6]:PORT", "*:PORT", with "udp://" in
 * front for UDP. host NULL or "*" means every address; family 4 or 6
 * narrows it ("0.0.0.0", "[::]"), 0 is both. NULL: ENOMEM. */
char *psup_import_listen_address(const char *host, int family, int port, bool udp);

/* Whether the address has port 0, which two services may both use. */
bool psup_import_listen_ephemeral(const char *address);

/* A user or group as written in the input ("65534" becomes a number). */
int psup_import_set_id(struct psup_import_id *id, const char *text);

/* Whether every string of the service is valid UTF-8 (JSON cannot hold
 * anything else); *bad is the first one that is not. */
bool psup_import_service_utf8(const struct psup_import_service *s, const char **bad);

/* An unsigned decimal number, the whole string; -1 if it is not one or is
 * above max. */
long psup_import_number(const char *text, long max);

/* A whole file, NUL-terminated, at most 16 MiB: 0 or -errno. */
int psup_import_read_file(const char *path, char **text);

/* The last component of a path. */
const char *psup_import_basename(const char *path);

#endif
