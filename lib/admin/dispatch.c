/* SPDX-License-Identifier: MIT */
/*
 * Applying a table of routes to a request (admin.h): path patterns, the
 * method, control from unix listeners only, and the head of every answer.
 * Knows no route of its own, so it is unit tested and fuzzed with tables
 * of the tests' own.
 */
#include "admin/admin.h"

#include <stdio.h>
#include <string.h>

bool psup_admin_path_matches(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (pattern[0] == '*' && (pattern[1] == '/' || !pattern[1])) {
            size_t seg = strcspn(path, "/");
            if (seg == 0)
                return false; /* "*" is one non-empty segment */
            pattern++;
            path += seg;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

static bool takes(const struct psup_admin_route *r, enum psup_admin_method m)
{
    return r->method == m || (r->method == PSUP_ADMIN_GET && m == PSUP_ADMIN_HEAD);
}

void psup_admin_response_init(struct psup_admin_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    psup_buf_init(&resp->body, PSUP_ADMIN_MAX_RESPONSE);
    resp->status = 200;
}

void psup_admin_response_free(struct psup_admin_response *resp)
{
    psup_buf_free(&resp->body);
}

void psup_admin_error(struct psup_admin_response *resp, int status, const char *why)
{
    psup_buf_free(&resp->body);
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    psup_buf_printf(&resp->body, "%d %s\n", status, psup_http_reason(status));
    if (why)
        psup_buf_printf(&resp->body, "%s\n", why);
}

/* 405: the path exists, the method does not; Allow lists what it takes. */
static void not_allowed(const struct psup_admin_route *routes, size_t n, const char *path,
                        struct psup_admin_response *resp)
{
    bool get = false, post = false;

    for (size_t i = 0; i < n; i++) {
        if (psup_admin_path_matches(routes[i].path, path)) {
            get = get || routes[i].method == PSUP_ADMIN_GET;
            post = post || routes[i].method == PSUP_ADMIN_POST;
        }
    }
    resp->allow = get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : "POST";
    psup_admin_error(resp, 405, "this path does not take that method");
}

void psup_admin_dispatch(const struct psup_admin_route *routes, size_t n,
                         const struct psup_admin_state *st, const struct psup_admin_request *req,
                         enum psup_admin_kind kind, struct psup_admin_response *resp)
{
    const struct psup_admin_route *found = NULL;
    bool path_known = false;

    resp->head_only = req->method == PSUP_ADMIN_HEAD;
    for (size_t i = 0; i < n && !found; i++) {
        if (!psup_admin_path_matches(routes[i].path, req->path))
            continue;
        path_known = true;
        if (takes(&routes[i], req->method))
            found = &routes[i];
    }
    if (!found) {
        if (path_known)
            not_allowed(routes, n, req->path, resp);
        else
            psup_admin_error(resp, 404, "no such page");
        return;
    }
    if (found->control && kind != PSUP_ADMIN_UNIX) {
        psup_admin_error(resp, 403, "control requests are taken on unix: admin listeners only");
        return;
    }
    found->render(st, req, resp);
    if (resp->body.failed)
        psup_admin_error(resp, 500, "the answer did not fit in memory");
}

size_t psup_admin_response_head(const struct psup_admin_response *resp, char *out, size_t size)
{
    bool html = resp->content_type && strncmp(resp->content_type, "text/html", 9) == 0;
    int n = snprintf(out, size,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "%s%s%s"
                     "%s"
                     "Connection: close\r\n\r\n",
                     resp->status, psup_http_reason(resp->status),
                     resp->content_type ? resp->content_type : "text/plain; charset=utf-8",
                     resp->body.len, resp->allow ? "Allow: " : "", resp->allow ? resp->allow : "",
                     resp->allow ? "\r\n" : "",
                     /* The page fetches /status from its own origin and
                      * nothing else: no external resources, no framing. */
                     html ? "Content-Security-Policy: default-src 'none'; "
                            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "connect-src 'self'; img-src data:; frame-ancestors 'none'\r\n"
                          : "");
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}
