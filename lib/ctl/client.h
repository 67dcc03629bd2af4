/* SPDX-License-Identifier: MIT */
/*
 * psup ctl's side of the admin endpoint (spec/control.md): one HTTP/1.1
 * request to a unix or TCP admin listener and its whole answer, with a
 * deadline. A command-line tool's code: it blocks (in poll, never past the
 * deadline); nothing here runs in the supervisor.
 */
#ifndef PSUP_CTL_CLIENT_H
#define PSUP_CTL_CLIENT_H

#include <stddef.h>

#include "net/addr.h"

/* The most of an answer psup ctl reads (the endpoint's own limit is 8 MiB
 * of body). */
#define PSUP_CTL_MAX_RESPONSE (9u << 20)

struct psup_ctl_response {
    int status;             /* the HTTP status code */
    char content_type[128]; /* "" if the answer had none */
    char *body;             /* NUL-terminated (the caller frees it) */
    size_t body_len;
};

/* The admin address: "unix:/path", "unix:@name", "HOST:PORT" or
 * "[V6]:PORT" (a port, not 0; no wildcard). Returns 0, or -1 with *why a
 * sentence. */
int psup_ctl_parse_addr(const char *text, struct psup_addr *out, const char **why);

/* Send "METHOD TARGET" (no body) and read the answer to the end, within
 * timeout_ms in all. Returns 0 with *resp filled, or -errno with *why the
 * step that failed ("connect", "send", "receive", or "the answer is not
 * HTTP": -EPROTO; -ETIMEDOUT past the deadline). */
int psup_ctl_request(const struct psup_addr *addr, const char *method, const char *target,
                     int timeout_ms, struct psup_ctl_response *resp, const char **why);

void psup_ctl_response_free(struct psup_ctl_response *resp);

#endif
