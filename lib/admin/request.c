/* SPDX-License-Identifier: MIT */
/*
 * Reading an admin request (request.h): lib/http's strict head parser with
 * the admin's limits, then the method, the path and the body.
 */
#include "admin/request.h"

#include <string.h>

static int fail(struct psup_admin_request *req, int status, const char *why)
{
    req->why = why;
    return status;
}

static enum psup_admin_method method_of(struct psup_http_span m)
{
    /* Method names are case-sensitive (RFC 9110 9.1). */
    if (m.len == 3 && memcmp(m.p, "GET", 3) == 0)
        return PSUP_ADMIN_GET;
    if (m.len == 4 && memcmp(m.p, "HEAD", 4) == 0)
        return PSUP_ADMIN_HEAD;
    if (m.len == 4 && memcmp(m.p, "POST", 4) == 0)
        return PSUP_ADMIN_POST;
    return PSUP_ADMIN_OTHER;
}

/* The head is complete: take what the router needs from it. */
static int take_head(const struct psup_http_request *h, struct psup_admin_request *req)
{
    req->method = method_of(h->method);
    if (h->path.len >= sizeof(req->path))
        return fail(req, 414, "path longer than the admin endpoint serves");
    /* The parser refused %00, an encoded '/' and dot segments: the decoded
     * path is one plain string that routes compare whole. */
    size_t n = psup_http_decode_path(h->path, req->path);
    req->path[n] = '\0';
    req->query = h->query;
    if (h->body == PSUP_HTTP_BODY_CHUNKED)
        return fail(req, 411, "a body must come with Content-Length");
    if (h->expect_continue)
        return fail(req, 417, "100-continue is not offered: send the body at once");
    return PSUP_HTTP_DONE;
}

int psup_admin_request_parse(const char *buf, size_t len, struct psup_admin_request *req)
{
    static const struct psup_http_limits limits = {
        PSUP_ADMIN_MAX_HEAD, PSUP_ADMIN_MAX_FIELDS, PSUP_ADMIN_MAX_BODY};
    struct psup_http_field fields[PSUP_ADMIN_MAX_FIELDS];
    struct psup_http_request h;

    memset(req, 0, sizeof(*req));
    int rc = psup_http_request_parse(buf, len, &limits, fields, &h);
    if (rc != PSUP_HTTP_DONE)
        return rc == PSUP_HTTP_MORE ? rc : fail(req, rc, h.why);
    rc = take_head(&h, req);
    if (rc != PSUP_HTTP_DONE)
        return rc;
    size_t body = h.body == PSUP_HTTP_BODY_LENGTH ? (size_t)h.content_length : 0;
    req->length = h.head_len + body;
    if (len - h.head_len < body)
        return PSUP_HTTP_MORE;
    req->body = (struct psup_http_span){buf + h.head_len, body};
    return PSUP_HTTP_DONE;
}

bool psup_admin_query_has(const struct psup_admin_request *req, const char *name)
{
    const char *p = req->query.p, *end = p + req->query.len;
    size_t n = strlen(name);

    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *key_end = eq ? eq : stop;
        if ((size_t)(key_end - p) == n && memcmp(p, name, n) == 0)
            return true;
        p = stop + 1;
    }
    return false;
}
