/* SPDX-License-Identifier: MIT */
/*
 * Strict HTTP/1.x request head parser (RFC 9112, RFC 9110). Lines end in
 * CRLF only; every byte of the head is checked against the grammar; the
 * framing headers are checked against each other. Pure: see the header.
 */
#include "http/http_request.h"

#include <string.h>

static const char *const known_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL,
};

bool psup_http_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* A field value's bytes: VCHAR, obs-text, SP and HTAB; never a control
 * character, so never a bare CR or a NUL. */
static bool is_field_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || is_vchar(c) || c >= 0x80;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static unsigned hex_value(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

bool psup_http_span_is(struct psup_http_span s, const char *lower_name)
{
    size_t n = strlen(lower_name);

    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != (unsigned char)lower_name[i])
            return false;
    return true;
}

static int fail(struct psup_http_request *req, int status, const char *why)
{
    req->why = why;
    return status;
}

/* ------------------------------------------------------------------------
 * The path: percent-escapes valid, nothing that would make PATH_INFO mean
 * something else than the segments the client sent. */

/* Decoded value of the escape at p (p[0] == '%'), or -1 if invalid. */
static int escape_at(const char *p, const char *end)
{
    if (end - p < 3 || !is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
        return -1;
    return (int)(hex_value((unsigned char)p[1]) * 16 + hex_value((unsigned char)p[2]));
}

static int check_segment(struct psup_http_request *req, const char *p, const char *end)
{
    size_t decoded = 0;
    bool all_dots = true;

    while (p < end) {
        int c = (unsigned char)*p;
        if (c == '%') {
            c = escape_at(p, end);
            if (c < 0)
                return fail(req, 400, "invalid percent-escape in the path");
            p += 3;
        } else {
            p++;
        }
        if (c < 0x20 || c == 0x7f)
            return fail(req, 400, "control character (or %00) in the path");
        if (c == '/')
            return fail(req, 400, "encoded slash (%2F) in the path");
        all_dots = all_dots && c == '.';
        decoded++;
    }
    if (all_dots && (decoded == 1 || decoded == 2))
        return fail(req, 400, "dot segment in the path");
    return PSUP_HTTP_DONE;
}

static int check_path(struct psup_http_request *req, struct psup_http_span path)
{
    const char *p = path.p + 1, *end = path.p + path.len;

    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        int rc = check_segment(req, p, seg_end);
        if (rc != PSUP_HTTP_DONE)
            return rc;
        p = seg_end + 1;
    }
    return PSUP_HTTP_DONE;
}

size_t psup_http_decode_path(struct psup_http_span path, char *out)
{
    const char *p = path.p, *end = path.p + path.len;
    size_t n = 0;

    while (p < end) {
        int c = *p == '%' ? escape_at(p, end) : -1;
        if (c >= 0) {
            out[n++] = (char)c;
            p += 3;
        } else {
            out[n++] = *p++;
        }
    }
    return n;
}

/* ------------------------------------------------------------------------
 * Host and authority: uri-host [ ":" port ], no userinfo. */

static bool valid_port(const char *p, const char *end)
{
    if (end - p > 5)
        return false;
    for (; p < end; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static bool valid_ip_literal(const char *p, const char *end)
{
    /* Between the brackets: hex digits, ':' and '.' (an IPv4 tail). The
     * relay passes it on and never resolves it, so the exact IPv6 grammar
     * is not needed to keep it harmless. */
    if (end - p < 3)
        return false;
    for (p++; p < end - 1; p++)
        if (!is_hex((unsigned char)*p) && *p != ':' && *p != '.')
            return false;
    return true;
}

static bool is_reg_name_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("-._~!$&'()*+,;=%", c) != NULL);
}

/* Valid uri-host [":" port]; *host_len_out gets the length without the port. */
static bool valid_authority(struct psup_http_span a, size_t *host_len_out)
{
    const char *p = a.p, *end = a.p + a.len, *host_end;

    if (a.len > 0 && *p == '[') {
        host_end = memchr(p, ']', a.len);
        if (!host_end || !valid_ip_literal(p, ++host_end))
            return false;
    } else {
        host_end = p;
        while (host_end < end && is_reg_name_char((unsigned char)*host_end))
            host_end++;
    }
    *host_len_out = (size_t)(host_end - p);
    if (host_end == end)
        return true;
    return *host_end == ':' && valid_port(host_end + 1, end);
}

/* ------------------------------------------------------------------------
 * The request line. */

static int parse_version(struct psup_http_request *req, const char *p, const char *end)
{
    if (end - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' ||
        p[5] > '9' || p[7] < '0' || p[7] > '9')
        return fail(req, 400, "malformed HTTP version");
    if (p[5] != '1')
        return fail(req, 505, "HTTP major version other than 1");

    /* A later 1.x is processed as the highest this server speaks (RFC 9110 2.5). */
    req->minor = p[7] == '0' ? 0 : 1;
    return PSUP_HTTP_DONE;
}

static int parse_method(struct psup_http_request *req, struct psup_http_span m)
{
    for (size_t i = 0; i < m.len; i++)
        if (!psup_http_is_tchar((unsigned char)m.p[i]))
            return fail(req, 400, "method is not a token");
    if (m.len == 0)
        return fail(req, 400, "empty method");
    for (const char *const *k = known_methods; *k; k++)
        if (m.len == strlen(*k) && memcmp(m.p, *k, m.len) == 0) {
            req->head = strcmp(*k, "HEAD") == 0;
            return PSUP_HTTP_DONE;
        }
    return fail(req, 501, "method not implemented");
}

static void split_query(struct psup_http_request *req, const char *p, const char *end)
{
    const char *q = memchr(p, '?', (size_t)(end - p));

    req->path = (struct psup_http_span){p, (size_t)((q ? q : end) - p)};
    req->query = q ? (struct psup_http_span){q + 1, (size_t)(end - q - 1)}
                   : (struct psup_http_span){end, 0};
    req->target = (struct psup_http_span){p, (size_t)(end - p)};
}

/* "http://authority/path?query": the authority becomes the host, and the
 * rest is handled as an origin-form target (RFC 9112 3.2.2). */
static int parse_absolute_form(struct psup_http_request *req, const char *p, const char *end)
{
    size_t scheme = (end - p > 7 && psup_http_span_is((struct psup_http_span){p, 7}, "http://"))
                        ? 7
                        : (end - p > 8 && psup_http_span_is((struct psup_http_span){p, 8}, "https://"))
                              ? 8
                              : 0;
    const char *a = p + scheme, *a_end = a;
    size_t host_len;

    if (scheme == 0)
        return fail(req, 400, "request target is neither origin-form nor http(s) absolute-form");
    while (a_end < end && *a_end != '/' && *a_end != '?')
        a_end++;
    req->host = (struct psup_http_span){a, (size_t)(a_end - a)};
    req->has_host = true;
    if (req->host.len == 0 || !valid_authority(req->host, &host_len))
        return fail(req, 400, "invalid authority in the request target");
    if (a_end == end || *a_end != '/') {
        /* No path: RFC 9112 3.2.1 makes it "/"; a query without a path is
         * not worth the special case. */
        if (a_end != end)
            return fail(req, 400, "query without a path in an absolute-form target");
        req->path = (struct psup_http_span){"/", 1};
        req->query = (struct psup_http_span){"", 0};
        req->target = req->path;
        return PSUP_HTTP_DONE;
    }
    split_query(req, a_end, end);
    return PSUP_HTTP_DONE;
}

static int parse_target(struct psup_http_request *req, const char *p, const char *end)
{
    int rc;

    for (const char *c = p; c < end; c++)
        if (!is_vchar((unsigned char)*c) || *c == '#')
            return fail(req, 400, "invalid character in the request target");
    if (p == end)
        return fail(req, 400, "empty request target");
    if (*p == '/')
        split_query(req, p, end), rc = PSUP_HTTP_DONE;
    else
        rc = parse_absolute_form(req, p, end);
    return rc == PSUP_HTTP_DONE ? check_path(req, req->path) : rc;
}

int psup_http_target_parse(struct psup_http_span target, struct psup_http_request *req)
{
    if (target.len == 0 || target.p[0] != '/')
        return fail(req, 400, "not an origin-form target");
    return parse_target(req, target.p, target.p + target.len);
}

static int parse_request_line(struct psup_http_request *req, const char *p, const char *end)
{
    const char *sp1 = memchr(p, ' ', (size_t)(end - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    int rc;

    if (!sp1)
        return fail(req, 400, "request line without a space");
    req->method = (struct psup_http_span){p, (size_t)(sp1 - p)};
    rc = parse_method(req, req->method);
    if (rc != PSUP_HTTP_DONE)
        return rc;
    if (!sp2)
        return fail(req, 400, "request line without a version (HTTP/0.9 is not served)");
    rc = parse_version(req, sp2 + 1, end);
    if (rc != PSUP_HTTP_DONE)
        return rc;
    return parse_target(req, sp1 + 1, sp2);
}

/* ------------------------------------------------------------------------
 * Header fields. */

static int parse_field(struct psup_http_request *req, const char *p, const char *end,
                       struct psup_http_field *field)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));

    if (*p == ' ' || *p == '\t')
        return fail(req, 400, "obsolete line folding in a header field");
    if (!colon || colon == p)
        return fail(req, 400, "header line without a field name and a colon");
    for (const char *c = p; c < colon; c++)
        if (!psup_http_is_tchar((unsigned char)*c))
            return fail(req, 400, *c == ' ' || *c == '\t' ? "whitespace before the colon"
                                                          : "field name is not a token");
    for (const char *c = colon + 1; c < end; c++)
        if (!is_field_byte((unsigned char)*c))
            return fail(req, 400, "control character in a field value");
    const char *v = colon + 1, *v_end = end;
    while (v < v_end && (*v == ' ' || *v == '\t'))
        v++;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    field->name = (struct psup_http_span){p, (size_t)(colon - p)};
    field->value = (struct psup_http_span){v, (size_t)(v_end - v)};
    return PSUP_HTTP_DONE;
}

/* Calls fn for each non-empty element of a comma-separated list. */
static int for_each_element(struct psup_http_span list, struct psup_http_request *req,
                            int (*fn)(struct psup_http_request *, struct psup_http_span, void *),
                            void *arg)
{
    const char *p = list.p, *end = list.p + list.len;

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e_end = comma ? comma : end, *e = p;
        while (e < e_end && (*e == ' ' || *e == '\t'))
            e++;
        while (e_end > e && (e_end[-1] == ' ' || e_end[-1] == '\t'))
            e_end--;
        if (e_end > e) {
            int rc = fn(req, (struct psup_http_span){e, (size_t)(e_end - e)}, arg);
            if (rc != PSUP_HTTP_DONE)
                return rc;
        }
        p = (comma ? comma : end) + 1;
    }
    return PSUP_HTTP_DONE;
}

struct length_state {
    bool seen;
};

/* Content-Length: digits; several (in one list or several lines) only if
 * identical, since two lengths are the start of a smuggled request. */
static int content_length_element(struct psup_http_request *req, struct psup_http_span v, void *arg)
{
    struct length_state *st = arg;
    uint64_t n = 0;

    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned)(unsigned char)v.p[i] - '0';
        if (d > 9)
            return fail(req, 400, "Content-Length is not a number");
        if (n > (UINT64_MAX - d) / 10)
            return fail(req, 413, "Content-Length too large");
        n = n * 10 + d;
    }
    if (st->seen && n != req->content_length)
        return fail(req, 400, "differing Content-Length values");
    st->seen = true;
    req->content_length = n;
    return PSUP_HTTP_DONE;
}

struct coding_state {
    size_t n;
    bool last_chunked;
    bool other;
    size_t chunked;
};

static int coding_element(struct psup_http_request *req, struct psup_http_span v, void *arg)
{
    struct coding_state *st = arg;

    (void)req;
    st->n++;
    st->last_chunked = psup_http_span_is(v, "chunked");
    if (st->last_chunked)
        st->chunked++;
    else
        st->other = true;
    return PSUP_HTTP_DONE;
}

struct framing {
    struct length_state length;
    struct coding_state coding;
    size_t n_te_fields;
    size_t n_host;
    struct psup_http_span host;
    bool expect_other;
};

static int note_field(struct psup_http_request *req, const struct psup_http_field *f, struct framing *fr)
{
    if (psup_http_span_is(f->name, "content-length")) {
        if (f->value.len == 0)
            return fail(req, 400, "empty Content-Length");
        return for_each_element(f->value, req, content_length_element, &fr->length);
    }
    if (psup_http_span_is(f->name, "transfer-encoding")) {
        fr->n_te_fields++;
        return for_each_element(f->value, req, coding_element, &fr->coding);
    }
    if (psup_http_span_is(f->name, "host")) {
        fr->n_host++;
        fr->host = f->value;
    } else if (psup_http_span_is(f->name, "expect")) {
        if (psup_http_span_is(f->value, "100-continue"))
            req->expect_continue = req->minor == 1; /* ignored in 1.0 (RFC 9110 10.1.1) */
        else
            fr->expect_other = true;
    }
    return PSUP_HTTP_DONE;
}

static int decide_framing(struct psup_http_request *req, const struct framing *fr,
                          const struct psup_http_limits *limits)
{
    if (fr->n_te_fields > 0) {
        if (req->minor == 0)
            return fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (fr->length.seen)
            return fail(req, 400, "both Transfer-Encoding and Content-Length");
        if (!fr->coding.last_chunked || fr->coding.chunked != 1)
            return fail(req, 400, "chunked is not the final transfer coding, once");
        if (fr->coding.other)
            return fail(req, 501, "transfer coding not implemented");
        req->body = PSUP_HTTP_BODY_CHUNKED;
        return PSUP_HTTP_DONE;
    }
    if (fr->length.seen) {
        if (req->content_length > limits->max_body)
            return fail(req, 413, "Content-Length over the body limit");
        req->body = PSUP_HTTP_BODY_LENGTH;
    }
    return PSUP_HTTP_DONE;
}

static int check_host(struct psup_http_request *req, const struct framing *fr)
{
    size_t host_len;

    if (fr->n_host > 1)
        return fail(req, 400, "more than one Host");
    if (fr->n_host == 0 && req->minor == 1)
        return fail(req, 400, "HTTP/1.1 request without Host");
    if (fr->n_host == 1 && fr->host.len > 0 && !valid_authority(fr->host, &host_len))
        return fail(req, 400, "invalid Host");
    if (!req->has_host && fr->n_host == 1) {
        /* The authority of an absolute-form target wins over Host (RFC 9112 3.2.2). */
        req->host = fr->host;
        req->has_host = fr->host.len > 0;
    }
    return PSUP_HTTP_DONE;
}

static int finish_head(struct psup_http_request *req, const struct psup_http_limits *limits)
{
    struct framing fr;
    int rc;

    memset(&fr, 0, sizeof fr);
    for (size_t i = 0; i < req->n_fields; i++) {
        rc = note_field(req, &req->fields[i], &fr);
        if (rc != PSUP_HTTP_DONE)
            return rc;
    }
    rc = check_host(req, &fr);
    if (rc == PSUP_HTTP_DONE)
        rc = decide_framing(req, &fr, limits);
    if (rc == PSUP_HTTP_DONE && fr.expect_other)
        rc = fail(req, 417, "expectation other than 100-continue");
    return rc;
}

/* ------------------------------------------------------------------------
 * Lines. */

/* A line that has not ended within the limit: 414 while the target is
 * still arriving, 431 once the header fields are. */
static int too_long(struct psup_http_request *req, bool in_request_line, bool in_target)
{
    if (in_target)
        return fail(req, 414, "request line longer than the head limit");
    if (in_request_line)
        return fail(req, 400, "method longer than the head limit");
    return fail(req, 431, "request head larger than the limit");
}

/* A request line that has not ended yet: refuse what is already wrong, a
 * TLS handshake or binary garbage, without waiting for the timeout. */
static int check_partial_line(struct psup_http_request *req, const char *p, const char *end)
{
    for (const char *c = p; c < end && *c != ' '; c++)
        if (!psup_http_is_tchar((unsigned char)*c) && !(*c == '\r' && c + 1 == end))
            return fail(req, 400, "method is not a token");
    return PSUP_HTTP_MORE;
}

static void reset(struct psup_http_request *req, struct psup_http_field *fields)
{
    memset(req, 0, sizeof *req);
    req->fields = fields;
}

int psup_http_request_parse(const char *buf, size_t len, const struct psup_http_limits *limits,
                            struct psup_http_field *fields, struct psup_http_request *req)
{
    const char *p = buf, *end = buf + (len < limits->max_head ? len : limits->max_head);
    bool in_request_line = true;

    reset(req, fields);

    /* RFC 9112 2.2: empty lines before the request line are ignored. */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    for (;;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        int rc;

        if (!lf) {
            if (len >= limits->max_head)
                return too_long(req, in_request_line,
                                in_request_line && memchr(p, ' ', (size_t)(end - p)));
            return in_request_line ? check_partial_line(req, p, end) : PSUP_HTTP_MORE;
        }
        if (lf == p || lf[-1] != '\r')
            return fail(req, 400, "line not ended by CRLF");
        if (memchr(p, '\r', (size_t)(lf - 1 - p)))
            return fail(req, 400, "bare CR");
        if (in_request_line) {
            rc = parse_request_line(req, p, lf - 1);
            in_request_line = false;
        } else if (lf - 1 == p) {
            req->head_len = (size_t)(lf + 1 - buf);
            return finish_head(req, limits);
        } else if (req->n_fields == limits->max_fields) {
            rc = fail(req, 431, "too many header fields");
        } else {
            rc = parse_field(req, p, lf - 1, &fields[req->n_fields++]);
        }
        if (rc != PSUP_HTTP_DONE)
            return rc;
        p = lf + 1;
    }
}

const char *psup_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
