/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the admin endpoint's request reader, then, for what it
 * accepts, the router with a table of routes like the endpoint's (a GET
 * page, a control route naming a service), from both kinds of listener;
 * for what it refuses, the error answer. Invariants: the request's pieces
 * lie inside the input, the decoded path is a NUL-terminated string that
 * starts with '/', a control route is never rendered for a TCP listener,
 * every status is one the endpoint answers, and every head is whole.
 *
 * fuzz-sources: lib/admin/request.c lib/admin/dispatch.c lib/http/http_request.c lib/base/buf.c lib/base/log.c lib/base/utf8.c lib/proto/inet.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rendered_control;

static void render_page(const struct psup_admin_state *st, const struct psup_admin_request *req,
                        struct psup_admin_response *resp)
{
    (void)st;
    psup_buf_put(&resp->body, req->path, strlen(req->path));
}

static void render_control(const struct psup_admin_state *st, const struct psup_admin_request *req,
                           struct psup_admin_response *resp)
{
    (void)st;
    rendered_control = 1;
    psup_buf_put(&resp->body, req->body.p, req->body.len);
}

static const struct psup_admin_route routes[] = {
    {"/", PSUP_ADMIN_GET, false, render_page},
    {"/status", PSUP_ADMIN_GET, false, render_page},
    {"/services/*/pause", PSUP_ADMIN_POST, true, render_control},
};

static void check_inside(const char *p, size_t n, const char *buf, size_t len)
{
    if (n && (p < buf || p + n > buf + len))
        abort();
}

static void check_head(const struct psup_admin_response *resp)
{
    char head[1024];
    size_t n = psup_admin_response_head(resp, head, sizeof(head));

    if (n < 4 || memcmp(head, "HTTP/1.1 ", 9) != 0 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0)
        abort();
}

static void answer(const struct psup_admin_request *req, enum psup_admin_kind kind)
{
    struct psup_admin_response resp;

    rendered_control = 0;
    psup_admin_response_init(&resp);
    psup_admin_dispatch(routes, sizeof(routes) / sizeof(routes[0]), NULL, req, kind, &resp);
    if (rendered_control && kind != PSUP_ADMIN_UNIX)
        abort();
    if (resp.status != 200 && resp.status != 403 && resp.status != 404 && resp.status != 405)
        abort();
    if (resp.status == 405 && !resp.allow)
        abort();
    check_head(&resp);
    psup_admin_response_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct psup_admin_request req;
    char *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = psup_admin_request_parse(buf, size, &req);
    if (rc == PSUP_HTTP_DONE) {
        size_t n = strnlen(req.path, sizeof(req.path));
        if (n == sizeof(req.path) || req.path[0] != '/' || req.length > size)
            abort();
        check_inside(req.query.p, req.query.len, buf, size);
        check_inside(req.body.p, req.body.len, buf, size);
        answer(&req, PSUP_ADMIN_TCP);
        answer(&req, PSUP_ADMIN_UNIX);
    } else if (rc != PSUP_HTTP_MORE) {
        struct psup_admin_response resp;
        if (rc < 400 || rc > 599 || !req.why)
            abort();
        psup_admin_response_init(&resp);
        psup_admin_error(&resp, rc, req.why);
        check_head(&resp);
        psup_admin_response_free(&resp);
    }
    free(buf);
    return 0;
}
