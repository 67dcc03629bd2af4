/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the request head parser, then on what it accepts the
 * chunked decoder (fed in uneven pieces), the CGI environment and a local
 * redirect's target. Each check aborts on a broken invariant: a span
 * outside the input, a decoded body longer than its input, an environment
 * entry that is not NAME=value.
 *
 * fuzz-sources: lib/http/http_request.c lib/http/http_chunked.c lib/http/cgi_env.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cgi_env.h"
#include "http/http_chunked.h"
#include "http/http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(struct psup_http_span s, const char *buf, size_t len)
{
    /* An absolute-form target without a path has the path "/" (static). */
    if (s.len == 0 || (s.len == 1 && s.p[0] == '/'))
        return;
    if (s.p < buf || s.p + s.len > buf + len)
        abort();
}

static void check_request(const struct psup_http_request *req, const char *buf, size_t len)
{
    if (req->head_len > len || req->n_fields > 16)
        abort();
    check_span(req->method, buf, len);
    check_span(req->target, buf, len);
    check_span(req->path, buf, len);
    check_span(req->host, buf, len);
    for (size_t i = 0; i < req->n_fields; i++) {
        check_span(req->fields[i].name, buf, len);
        check_span(req->fields[i].value, buf, len);
    }
    if (req->path.len == 0 || req->path.p[0] != '/')
        abort();
}

static void check_env(const struct psup_http_request *req)
{
    char *const inherited[] = {"PATH=/bin", "HTTP_PROXY=x", "TCPLOCALIP=::1", "TCPLOCALPORT=80", NULL};
    struct psup_cgi_env_input in = {req, 7, inherited, NULL, "psup/fuzz"};
    size_t bytes, entries;

    psup_cgi_env_bounds(&in, &bytes, &entries);
    char *arena = malloc(bytes);
    char **envp = malloc(entries * sizeof *envp);
    if (!arena || !envp || psup_cgi_env_build(&in, arena, bytes, envp, entries) != 0)
        abort();
    for (char **e = envp; *e; e++)
        if (!strchr(*e, '=') || strncmp(*e, "HTTP_PROXY=", 11) == 0)
            abort();
    free(arena);
    free(envp);
}

/* The body in pieces of sizes taken from the input itself. */
static void check_chunked(const char *body, size_t len)
{
    struct psup_http_chunked c;
    char piece[64];
    size_t at = 0;
    uint64_t total = 0;

    psup_http_chunked_init(&c, 4096);
    while (at < len) {
        size_t n = 1 + (unsigned char)body[at] % sizeof piece, used, out;
        if (n > len - at)
            n = len - at;
        memcpy(piece, body + at, n);
        int rc = psup_http_chunked_decode(&c, piece, n, &used, &out);
        if (used > n || out > used || (rc == PSUP_HTTP_MORE && used != n))
            abort();
        total += out;
        if (total > 4096)
            abort();
        at += used;
        if (rc != PSUP_HTTP_MORE)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct psup_http_limits limits = {.max_head = 1024, .max_fields = 16, .max_body = 4096};
    struct psup_http_field fields[16];
    struct psup_http_request req;
    char *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = psup_http_request_parse(buf, size, &limits, fields, &req);
    if (rc != PSUP_HTTP_DONE && rc != PSUP_HTTP_MORE && (rc < 400 || rc > 599 || !req.why))
        abort();
    if (rc == PSUP_HTTP_DONE) {
        check_request(&req, buf, size);
        check_env(&req);
        if (req.body == PSUP_HTTP_BODY_CHUNKED)
            check_chunked(buf + req.head_len, size - req.head_len);
        if (psup_http_target_parse(req.target, &req) == PSUP_HTTP_DONE)
            check_request(&req, buf, size);
    }
    free(buf);
    return 0;
}
