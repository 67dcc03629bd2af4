/* SPDX-License-Identifier: MIT */
/*
 * One request to the admin endpoint, read strictly (spec/admin.md): the
 * head through lib/http's parser (the one psup-cgi uses), within the
 * admin's own limits; a body only with Content-Length, and small. The
 * request points into the caller's buffer.
 *
 * Pure: no I/O, no allocation, no errno. Unit tested (test_admin_request.c)
 * and fuzzed (tests/fuzz/fuzz_admin_request.c): this is network input.
 */
#ifndef PSUP_ADMIN_REQUEST_H
#define PSUP_ADMIN_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/http_request.h"

#define PSUP_ADMIN_MAX_HEAD 8192   /* bytes, request line to empty line */
#define PSUP_ADMIN_MAX_BODY 4096   /* bytes of a request body */
#define PSUP_ADMIN_MAX_FIELDS 64   /* header lines */
#define PSUP_ADMIN_MAX_PATH 256    /* bytes of the decoded path */
/* The most a request can take of a client's input buffer. */
#define PSUP_ADMIN_MAX_REQUEST (PSUP_ADMIN_MAX_HEAD + PSUP_ADMIN_MAX_BODY)

/* What kind of admin listener a request came from: control is for unix
 * listeners only, whose file mode says who may connect. */
enum psup_admin_kind {
    PSUP_ADMIN_TCP,
    PSUP_ADMIN_UNIX,
};

enum psup_admin_method {
    PSUP_ADMIN_GET,
    PSUP_ADMIN_HEAD,
    PSUP_ADMIN_POST,
    PSUP_ADMIN_OTHER, /* a method HTTP knows that no route takes: 405 */
};

struct psup_admin_request {
    enum psup_admin_method method;
    char path[PSUP_ADMIN_MAX_PATH];  /* percent-decoded, NUL-terminated */
    struct psup_http_span query;     /* after '?', possibly empty */
    struct psup_http_span body;      /* the Content-Length bytes, or empty */
    size_t length;                   /* bytes of the request, head and body;
                                        also set on PSUP_HTTP_MORE once the
                                        head is whole (0 before) */
    const char *why;                 /* with an error status: what was wrong */
    /* A unix client's credentials (SO_PEERCRED), set by the endpoint's
     * socket code: who asked for a control request, for the log. */
    bool has_peer;
    pid_t peer_pid;
    uid_t peer_uid;
};

/*
 * Parses the request at the start of buf[0..len). Returns PSUP_HTTP_DONE
 * (req filled), PSUP_HTTP_MORE (valid so far; a full buffer gives an error
 * instead), or the status to answer with (400, 411, 413, 414, 417, 431,
 * 501, 505) with req->why set.
 */
int psup_admin_request_parse(const char *buf, size_t len, struct psup_admin_request *req);

/* Whether the query has the parameter name ("verbose" in "?verbose",
 * "?verbose=1" or "?a&verbose"). */
bool psup_admin_query_has(const struct psup_admin_request *req, const char *name);

#endif
