/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/admin/request.c and router.c: a table of requests
 * with the status each must give, what an accepted one yields (method,
 * decoded path, query, body), input arriving in pieces, the limits, and
 * the router's answers (404, 405 with Allow, 403 for control from TCP,
 * HEAD, the head's fields) with a table of routes of the test's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/request.h"

#define H11 "Host: h\r\n"

struct request_case {
    const char *text;
    int status; /* PSUP_HTTP_DONE, PSUP_HTTP_MORE, or the status */
};

static const struct request_case cases[] = {
    /* accepted */
    {"GET /metrics HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.0\r\n\r\n", PSUP_HTTP_DONE},
    {"HEAD /status HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET /readyz?verbose HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"POST /x HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\nabc", PSUP_HTTP_DONE},
    {"PUT /x HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE}, /* a method the router refuses */
    /* incomplete */
    {"", PSUP_HTTP_MORE},
    {"GET /metrics HTTP/1.1\r\n" H11, PSUP_HTTP_MORE},
    {"POST /x HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\nab", PSUP_HTTP_MORE},
    /* refused */
    {"GET / HTTP/1.1\r\n\r\n", 400},                      /* 1.1 without Host */
    {"GET / HTTP/1.1\n" H11 "\n", 400},                   /* bare LF */
    {"GET /a%2Fb HTTP/1.1\r\n" H11 "\r\n", 400},          /* an encoded slash */
    {"GET /../status HTTP/1.1\r\n" H11 "\r\n", 400},      /* a dot segment */
    {"\x16\x03\x01\x02\x00", 400},                        /* TLS to a plain port */
    {"BREW / HTTP/1.1\r\n" H11 "\r\n", 501},
    {"GET / HTTP/2.0\r\n" H11 "\r\n", 505},
    {"POST /x HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n", 411},
    {"POST /x HTTP/1.1\r\n" H11 "Content-Length: 4097\r\n\r\n", 413},
    {"POST /x HTTP/1.1\r\n" H11 "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n", 417},
    {"POST /x HTTP/1.1\r\n" H11 "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
};

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct psup_admin_request req;
        int rc = psup_admin_request_parse(cases[i].text, strlen(cases[i].text), &req);
        if (rc != cases[i].status)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].text, rc, cases[i].status);
        if (rc >= 400 && !req.why)
            fail_msg("case %zu: status %d without a reason", i, rc);
    }
}

static int parse(const char *text, struct psup_admin_request *req)
{
    return psup_admin_request_parse(text, strlen(text), req);
}

static void test_accepted_request_fields(void **state)
{
    struct psup_admin_request req;
    const char *text = "POST /st%61tus?a=1&verbose HTTP/1.1\r\n" H11
                       "Content-Length: 5\r\n\r\nhello and more";

    (void)state;
    assert_int_equal(parse(text, &req), PSUP_HTTP_DONE);
    assert_int_equal(req.method, PSUP_ADMIN_POST);
    assert_string_equal(req.path, "/status");
    assert_int_equal(req.query.len, strlen("a=1&verbose"));
    assert_int_equal(req.body.len, 5);
    assert_memory_equal(req.body.p, "hello", 5);
    assert_int_equal(req.length, strlen(text) - strlen(" and more"));
    assert_true(psup_admin_query_has(&req, "verbose"));
    assert_true(psup_admin_query_has(&req, "a"));
    assert_false(psup_admin_query_has(&req, "verb"));
    assert_false(psup_admin_query_has(&req, "1"));

    assert_int_equal(parse("GET /readyz HTTP/1.1\r\n" H11 "\r\n", &req), PSUP_HTTP_DONE);
    assert_int_equal(req.method, PSUP_ADMIN_GET);
    assert_false(psup_admin_query_has(&req, "verbose"));
    assert_int_equal(parse("GET /readyz?verbose=0 HTTP/1.1\r\n" H11 "\r\n", &req), PSUP_HTTP_DONE);
    assert_true(psup_admin_query_has(&req, "verbose"));
}

/* A request that arrives a byte at a time is MORE until its last byte;
 * once its head is whole, MORE says how long the request is (the loop
 * then waits for that much before parsing again). */
static void test_request_in_pieces(void **state)
{
    const char *text = "POST /x HTTP/1.1\r\n" H11 "Content-Length: 2\r\n\r\nok";
    struct psup_admin_request req;
    size_t n = strlen(text), head = n - 2;

    (void)state;
    for (size_t len = 0; len < n; len++) {
        if (psup_admin_request_parse(text, len, &req) != PSUP_HTTP_MORE)
            fail_msg("%zu bytes: not MORE", len);
        if (req.length != (len >= head ? n : 0))
            fail_msg("%zu bytes: length %zu", len, req.length);
    }
    assert_int_equal(psup_admin_request_parse(text, n, &req), PSUP_HTTP_DONE);
    assert_int_equal(req.length, n);
}

static char *repeat(const char *prefix, char fill, size_t n, const char *suffix)
{
    size_t a = strlen(prefix), c = strlen(suffix);
    char *s = malloc(a + n + c + 1);

    assert_non_null(s);
    memcpy(s, prefix, a);
    memset(s + a, fill, n);
    memcpy(s + a + n, suffix, c + 1);
    return s;
}

static void test_limits(void **state)
{
    struct psup_admin_request req;
    char *s;

    (void)state;
    /* A head that reaches the limit without ending: 431 at once. */
    s = repeat("GET / HTTP/1.1\r\n" H11 "X: ", 'a', PSUP_ADMIN_MAX_HEAD, "");
    assert_int_equal(parse(s, &req), 431);
    free(s);
    /* A request line that long: 414. */
    s = repeat("GET /", 'a', PSUP_ADMIN_MAX_HEAD, "");
    assert_int_equal(parse(s, &req), 414);
    free(s);
    /* A path the head allows but longer than any route: 414. */
    s = repeat("GET /", 'a', PSUP_ADMIN_MAX_PATH, " HTTP/1.1\r\n" H11 "\r\n");
    assert_int_equal(parse(s, &req), 414);
    free(s);
    /* Too many header lines: 431. */
    s = repeat("GET / HTTP/1.1\r\n" H11, 'x', 0, "");
    size_t len = strlen(s);
    char *many = malloc(len + (PSUP_ADMIN_MAX_FIELDS + 1) * 6 + 3);
    assert_non_null(many);
    memcpy(many, s, len);
    for (int i = 0; i <= PSUP_ADMIN_MAX_FIELDS; i++, len += 6)
        memcpy(many + len, "A: b\r\n", 6);
    memcpy(many + len, "\r\n", 3);
    assert_int_equal(parse(many, &req), 431);
    free(many);
    free(s);
}

static void test_path_patterns(void **state)
{
    (void)state;
    assert_true(psup_admin_path_matches("/", "/"));
    assert_false(psup_admin_path_matches("/", "/x"));
    assert_true(psup_admin_path_matches("/metrics", "/metrics"));
    assert_false(psup_admin_path_matches("/metrics", "/metrics/"));
    assert_false(psup_admin_path_matches("/metrics", "/metric"));
    assert_true(psup_admin_path_matches("/services/*/pause", "/services/echo/pause"));
    assert_false(psup_admin_path_matches("/services/*/pause", "/services//pause"));
    assert_false(psup_admin_path_matches("/services/*/pause", "/services/a/b/pause"));
    assert_true(psup_admin_path_matches("/services/*", "/services/a.b-c"));
    assert_false(psup_admin_path_matches("/services/*", "/services/"));
}

/* ------------------------------------------------------------------------ */
/* The router, with routes of the test's own. */

static void render_hello(const struct psup_admin_state *st, const struct psup_admin_request *req,
                         struct psup_admin_response *resp)
{
    (void)st;
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    psup_buf_puts(&resp->body, "hello\n");
}

static void render_huge(const struct psup_admin_state *st, const struct psup_admin_request *req,
                        struct psup_admin_response *resp)
{
    (void)st;
    (void)req;
    for (size_t n = 0; n <= PSUP_ADMIN_MAX_RESPONSE; n += 64)
        psup_buf_puts(&resp->body, "0123456789012345678901234567890123456789012345678901234567890123");
}

static const struct psup_admin_route test_routes[] = {
    {"/hello", PSUP_ADMIN_GET, false, render_hello},
    {"/services/*/poke", PSUP_ADMIN_POST, true, render_hello},
    {"/both", PSUP_ADMIN_GET, false, render_hello},
    {"/both", PSUP_ADMIN_POST, true, render_hello},
    {"/huge", PSUP_ADMIN_GET, false, render_huge},
};

struct answer {
    int status;
    char head[1024];
    char body[256];
    bool head_only;
};

static struct answer ask(const char *text, enum psup_admin_kind kind)
{
    struct psup_admin_request req;
    struct psup_admin_response resp;
    struct answer a;

    assert_int_equal(parse(text, &req), PSUP_HTTP_DONE);
    psup_admin_response_init(&resp);
    psup_admin_dispatch(test_routes, sizeof(test_routes) / sizeof(test_routes[0]), NULL, &req,
                        kind, &resp);
    a.status = resp.status;
    a.head_only = resp.head_only;
    assert_true(psup_admin_response_head(&resp, a.head, sizeof(a.head)) > 0);
    snprintf(a.body, sizeof(a.body), "%.*s", (int)resp.body.len, resp.body.data ? resp.body.data : "");
    psup_admin_response_free(&resp);
    return a;
}

static void test_router_answers(void **state)
{
    struct answer a;

    (void)state;
    a = ask("GET /hello HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "hello\n");
    assert_non_null(strstr(a.head, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(a.head, "Content-Length: 6\r\n"));
    assert_non_null(strstr(a.head, "Connection: close\r\n\r\n"));

    a = ask("HEAD /hello HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 200);
    assert_true(a.head_only);
    assert_non_null(strstr(a.head, "Content-Length: 6\r\n")); /* what GET would send */

    a = ask("GET /nothing HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_UNIX);
    assert_int_equal(a.status, 404);

    a = ask("POST /hello HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", PSUP_ADMIN_UNIX);
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "Allow: GET, HEAD\r\n"));
    a = ask("PUT /both HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_UNIX);
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "Allow: GET, HEAD, POST\r\n"));
    a = ask("GET /services/echo/poke HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "Allow: POST\r\n"));

    /* Control: unix listeners only. */
    a = ask("POST /services/echo/poke HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 403);
    a = ask("POST /services/echo/poke HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", PSUP_ADMIN_UNIX);
    assert_int_equal(a.status, 200);
    a = ask("POST /both HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 403);
    a = ask("GET /both HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 200);

    /* An answer past the ceiling is a 500, not a cut document. */
    a = ask("GET /huge HTTP/1.1\r\n" H11 "\r\n", PSUP_ADMIN_TCP);
    assert_int_equal(a.status, 500);
}

static void test_error_answer(void **state)
{
    struct psup_admin_response resp;
    char head[1024];

    (void)state;
    psup_admin_response_init(&resp);
    psup_admin_error(&resp, 431, "request head larger than the limit");
    assert_int_equal(resp.status, 431);
    assert_non_null(strstr(resp.body.data, "431 Request Header Fields Too Large\n"));
    assert_true(psup_admin_response_head(&resp, head, sizeof(head)) > 0);
    assert_non_null(strstr(head, "Content-Type: text/plain; charset=utf-8\r\n"));
    /* A head that does not fit is refused, not cut. */
    assert_int_equal(psup_admin_response_head(&resp, head, 40), 0);
    psup_admin_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_accepted_request_fields),
        cmocka_unit_test(test_request_in_pieces),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_path_patterns),
        cmocka_unit_test(test_router_answers),
        cmocka_unit_test(test_error_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
