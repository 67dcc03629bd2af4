/* SPDX-License-Identifier: MIT */
/*
 * A CGI script's response header block (RFC 3875 section 6) and the HTTP/1.1
 * response head psup-cgi writes for it; also the relay's own short error
 * responses. Pure: no I/O, no allocation, no clock (the caller gives the
 * Date value).
 */
#ifndef PSUP_CGI_RESPONSE_H
#define PSUP_CGI_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http_request.h"

enum psup_cgi_kind {
    PSUP_CGI_DOCUMENT,        /* Content-Type and/or Status: sent as it is */
    PSUP_CGI_LOCAL_REDIRECT,  /* Location: /path?query and no Status */
    PSUP_CGI_CLIENT_REDIRECT, /* Location: scheme:... and no Status: a 302 */
};

struct psup_cgi_response {
    enum psup_cgi_kind kind;
    int status;
    struct psup_http_span reason; /* the script's, or empty */
    struct psup_http_span location;
    bool has_status;
    bool has_location;
    bool has_content_type;
    bool has_content_length;
    bool has_date;
    bool has_server;
    struct psup_http_field *fields; /* every field but Status, in order */
    size_t n_fields;
    size_t head_len;                /* bytes of the block, its blank line included */
    const char *why;                /* for 502: what was wrong */
};

/*
 * Parses the header block at the start of buf[0..len). Lines end in LF or
 * CRLF (scripts write both). At most max_fields fields are kept. Returns
 * PSUP_HTTP_DONE, PSUP_HTTP_MORE (nothing wrong yet; at max_head bytes it
 * is 502 instead), or 502 with resp->why: a bare CR, a line that is not
 * "Name: value", obs-fold, a repeated Status, Content-Type or Location, a
 * Status that is not 200-599, a Location that is neither /path nor an
 * absolute URI without Status, or none of Status, Content-Type and Location.
 */
int psup_cgi_response_parse(const char *buf, size_t len, size_t max_head,
                            struct psup_http_field *fields, size_t max_fields,
                            struct psup_cgi_response *resp);

enum psup_cgi_framing {
    PSUP_CGI_FRAME_NONE,    /* HEAD, 204, 304: no body at all */
    PSUP_CGI_FRAME_CLOSE,   /* the body ends when the connection closes */
    PSUP_CGI_FRAME_CHUNKED, /* HTTP/1.1 client and no Content-Length from the script */
};

enum psup_cgi_framing psup_cgi_response_framing(const struct psup_cgi_response *resp,
                                                const struct psup_http_request *req);

/*
 * Writes the HTTP/1.1 response head for resp into out[0..cap): the status
 * line (302 for a client redirect, 200 without Status), Date and Server
 * unless the script sent them, the script's fields minus the hop-by-hop
 * ones psup-cgi owns (Connection, Keep-Alive, Transfer-Encoding, TE,
 * Trailer, Upgrade, Proxy-Connection), Transfer-Encoding: chunked if
 * framing says so, Connection: close and the blank line. Returns the
 * length, or 0 if cap is too small.
 */
size_t psup_cgi_response_head(const struct psup_cgi_response *resp, enum psup_cgi_framing framing,
                              const char *date, const char *server, char *out, size_t cap);

/*
 * psup-cgi's own response for status (a short text/plain body naming it,
 * left out for HEAD). Returns the length, or 0 if cap is too small.
 */
size_t psup_cgi_error_response(int status, bool head, const char *date, const char *server,
                               char *out, size_t cap);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for a time in seconds
 * since the epoch, into out (at least 30 bytes). Independent of the locale. */
void psup_cgi_format_date(long long epoch_seconds, char *out);

#endif
