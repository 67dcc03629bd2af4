/* SPDX-License-Identifier: MIT */
/*
 * The head of one HTTP/1.0 or HTTP/1.1 request (RFC 9112), parsed strictly
 * for psup-cgi: whatever this accepts reaches a CGI script, so anything a
 * front proxy could read differently (bare LF or CR, obs-fold, whitespace
 * before a colon, Content-Length beside Transfer-Encoding) is refused.
 *
 * Pure: no I/O, no allocation, no errno; the request points into the
 * caller's buffer. spec/cgi.md is the contract.
 */
#ifndef PSUP_HTTP_REQUEST_H
#define PSUP_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a parse returns besides an HTTP status code (400 and up). */
enum {
    PSUP_HTTP_DONE = 0, /* complete and valid */
    PSUP_HTTP_MORE = 1, /* valid so far: read more */
};

/* A piece of the caller's buffer (not NUL-terminated). */
struct psup_http_span {
    const char *p;
    size_t len;
};

struct psup_http_field {
    struct psup_http_span name;
    struct psup_http_span value; /* without leading and trailing whitespace */
};

struct psup_http_limits {
    size_t max_head;   /* bytes, from the request line to the empty line included */
    size_t max_fields; /* header field lines */
    uint64_t max_body; /* bytes of content, after chunked decoding */
};

enum psup_http_body {
    PSUP_HTTP_BODY_NONE,
    PSUP_HTTP_BODY_LENGTH,  /* Content-Length (possibly 0) */
    PSUP_HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

struct psup_http_request {
    struct psup_http_span method;
    struct psup_http_span target; /* as received; "path?query" for absolute-form */
    struct psup_http_span path;   /* still percent-encoded, starts with '/' */
    struct psup_http_span query;  /* after '?', possibly empty */
    struct psup_http_span host;   /* Host, or the authority of an absolute-form target */
    bool has_host;
    bool head;                    /* method HEAD: the response has no body */
    int minor;                    /* 0 for HTTP/1.0, 1 for HTTP/1.1 and later 1.x */
    struct psup_http_field *fields;
    size_t n_fields;
    enum psup_http_body body;
    uint64_t content_length;
    bool expect_continue; /* HTTP/1.1 with Expect: 100-continue */
    size_t head_len;      /* bytes of the head, the empty line included */
    const char *why;      /* for a status: what was wrong, for the relay's log */
};

/*
 * Parses the head at the start of buf[0..len), with at most max_fields
 * entries written to fields. Returns PSUP_HTTP_DONE (req filled,
 * head_len says where the body starts), PSUP_HTTP_MORE (nothing wrong in
 * what has arrived; a buffer already holding max_head bytes gives 414 or
 * 431 instead), or the status to answer with: 400, 413, 414, 417, 431, 501
 * or 505, with req->why set. Errors in a complete line are found as soon as
 * it has arrived, so a client sending garbage is answered at once.
 */
int psup_http_request_parse(const char *buf, size_t len, const struct psup_http_limits *limits,
                            struct psup_http_field *fields, struct psup_http_request *req);

/*
 * Checks an origin-form target ("/path?query") as the parser checks a
 * request's, and sets req's target, path and query from it (for a CGI
 * local redirect). Returns PSUP_HTTP_DONE or 400 with req->why.
 */
int psup_http_target_parse(struct psup_http_span target, struct psup_http_request *req);

/*
 * Percent-decodes a path the parser accepted into out (at least path.len
 * bytes). Returns the decoded length. The parser has already refused
 * invalid escapes, %00 and other control characters, an encoded '/', and
 * "." or ".." segments.
 */
size_t psup_http_decode_path(struct psup_http_span path, char *out);

/* Whether a span equals a lower-case ASCII name, ignoring case. */
bool psup_http_span_is(struct psup_http_span s, const char *lower);

/* Whether c may appear in a token (RFC 9110 tchar). */
bool psup_http_is_tchar(unsigned char c);

/* The reason phrase of a status code, or "" for an unknown one. */
const char *psup_http_reason(int status);

#endif
