/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/http/http_request.c and http_chunked.c: a table of
 * request heads with the status each must give, what an accepted head
 * yields, partial input, limits, path decoding, and chunked bodies fed
 * whole and byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/http_chunked.h"
#include "http/http_request.h"

static const struct psup_http_limits limits = {.max_head = 256, .max_fields = 4, .max_body = 100};

struct head_case {
    const char *head;
    int status; /* PSUP_HTTP_DONE, PSUP_HTTP_MORE, or the status */
};

#define H11 "Host: h\r\n"

static const struct head_case head_cases[] = {
    /* accepted */
    {"GET / HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.0\r\n\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.9\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET /a%20b/c?x=%zz&y HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET /{a}|^`\\ HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET http://e.example:80/p HTTP/1.1\r\n" H11 "\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", PSUP_HTTP_DONE},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n", PSUP_HTTP_DONE},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", PSUP_HTTP_DONE},
    {"POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: Chunked\r\n\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.1\r\n" H11 "X: a\tb \xff\r\n\r\n", PSUP_HTTP_DONE},
    {"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", PSUP_HTTP_DONE},
    /* incomplete, nothing wrong yet */
    {"", PSUP_HTTP_MORE},
    {"GE", PSUP_HTTP_MORE},
    {"GET / HTTP/1.1\r", PSUP_HTTP_MORE},
    {"GET / HTTP/1.1\r\n" H11, PSUP_HTTP_MORE},
    {"GET / HTTP/1.1\r\n" H11 "\r", PSUP_HTTP_MORE},
    /* malformed: 400 */
    {"\x16\x03\x01\x02", 400},
    {"GET / HTTP/1.1\n" H11 "\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHo\rst: h\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET / HTTP/1.1 \r\n" H11 "\r\n", 400},
    {"GET /\r\n\r\n", 400},
    {"GET / http/1.1\r\n" H11 "\r\n", 400},
    {"GET / HTTP/1.10\r\n" H11 "\r\n", 400},
    {"GET a HTTP/1.1\r\n" H11 "\r\n", 400},
    {"OPTIONS * HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a#b HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a%2fb HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a%00 HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a%0a HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a%4 HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a/../b HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /a/%2e%2E/b HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET /. HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET ftp://h/ HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET http://u@h/ HTTP/1.1\r\n" H11 "\r\n", 400},
    {"GET / HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 H11 "\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h:80x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 " X: folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 "X\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 ": x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 "X(: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n" H11 "X: a\x01\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 6\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 0x5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    /* the other statuses */
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 101\r\n\r\n", 413},
    {"POST / HTTP/1.1\r\n" H11 "Content-Length: 99999999999999999999999\r\n\r\n", 413},
    {"GET / HTTP/1.1\r\n" H11 "Expect: something\r\n\r\n", 417},
    {"GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431},
    {"BREW / HTTP/1.1\r\n" H11 "\r\n", 501},
    {"CONNECT h:443 HTTP/1.1\r\n" H11 "\r\n", 501},
    {"get / HTTP/1.1\r\n" H11 "\r\n", 501},
    {"POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"GET / HTTP/2.0\r\n\r\n", 505},
    {"GET / HTTP/0.9\r\n\r\n", 505},
};

static void test_head_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof head_cases / sizeof *head_cases; i++) {
        const struct head_case *c = &head_cases[i];
        struct psup_http_field fields[4];
        struct psup_http_request req;
        int rc = psup_http_request_parse(c->head, strlen(c->head), &limits, fields, &req);
        if (rc != c->status)
            fail_msg("case %zu \"%s\": got %d (%s), want %d", i, c->head, rc,
                     req.why ? req.why : "", c->status);
        if (rc >= 400 && !req.why)
            fail_msg("case %zu: status %d without a reason", i, rc);
    }
}

static int parse(const char *head, struct psup_http_field *fields, struct psup_http_request *req)
{
    return psup_http_request_parse(head, strlen(head), &limits, fields, req);
}

static void assert_span(struct psup_http_span s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_accepted_request(void **state)
{
    const char *head = "POST /a%20b?x=1 HTTP/1.1\r\nHost: h.example:81\r\nX-A:  v \r\n"
                       "Content-Length: 3\r\nExpect: 100-Continue\r\n\r\nabc";
    struct psup_http_field fields[4];
    struct psup_http_request req;

    (void)state;
    assert_int_equal(parse(head, fields, &req), PSUP_HTTP_DONE);
    assert_span(req.method, "POST");
    assert_span(req.target, "/a%20b?x=1");
    assert_span(req.path, "/a%20b");
    assert_span(req.query, "x=1");
    assert_span(req.host, "h.example:81");
    assert_true(req.has_host);
    assert_false(req.head);
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.n_fields, 4);
    assert_span(req.fields[1].name, "X-A");
    assert_span(req.fields[1].value, "v");
    assert_int_equal(req.body, PSUP_HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 3);
    assert_true(req.expect_continue);
    assert_int_equal(req.head_len, strlen(head) - 3);
}

static void test_absolute_form_wins_over_host(void **state)
{
    struct psup_http_field fields[4];
    struct psup_http_request req;

    (void)state;
    assert_int_equal(parse("HEAD http://a.example HTTP/1.1\r\nHost: b\r\n\r\n", fields, &req),
                     PSUP_HTTP_DONE);
    assert_span(req.host, "a.example");
    assert_span(req.path, "/");
    assert_span(req.query, "");
    assert_true(req.head);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", fields, &req), PSUP_HTTP_DONE);
    assert_false(req.has_host);
    assert_int_equal(req.body, PSUP_HTTP_BODY_NONE);
    assert_int_equal(req.minor, 0);
}

/* Over max_head: 414 while in the target, 431 in the fields, and the
 * bytes past max_head are never looked at. */
static void test_head_limit(void **state)
{
    char head[600];
    struct psup_http_field fields[4];
    struct psup_http_request req;

    (void)state;
    memset(head, 'a', sizeof head);
    memcpy(head, "GET /", 5);
    assert_int_equal(psup_http_request_parse(head, 256, &limits, fields, &req), 414);
    assert_int_equal(psup_http_request_parse(head, 255, &limits, fields, &req), PSUP_HTTP_MORE);
    snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: h\r\nX: %0300d\r\n\r\n", 0);
    assert_int_equal(psup_http_request_parse(head, strlen(head), &limits, fields, &req), 431);
    memset(head, 'G', 300);
    assert_int_equal(psup_http_request_parse(head, 300, &limits, fields, &req), 400);
}

static void test_target_parse_and_decode(void **state)
{
    struct psup_http_request req;
    char out[64];
    struct psup_http_span ok = {"/x%41y/%C3%A9?q=%2F", 19};

    (void)state;
    memset(&req, 0, sizeof req);
    assert_int_equal(psup_http_target_parse(ok, &req), PSUP_HTTP_DONE);
    assert_span(req.query, "q=%2F");
    size_t n = psup_http_decode_path(req.path, out);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "/xAy/\xc3\xa9", 7);
    assert_int_equal(psup_http_target_parse((struct psup_http_span){"x", 1}, &req), 400);
    assert_int_equal(psup_http_target_parse((struct psup_http_span){"/a b", 4}, &req), 400);
    assert_int_equal(psup_http_target_parse((struct psup_http_span){"/..", 3}, &req), 400);
}

/* ------------------------------------------------------------------------
 * Chunked bodies. */

struct chunked_case {
    const char *body;
    int status;
    const char *decoded;
};

static const struct chunked_case chunked_cases[] = {
    {"5\r\nhello\r\n0\r\n\r\n", PSUP_HTTP_DONE, "hello"},
    {"5;a=b;c\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", PSUP_HTTP_DONE, "hello world"},
    {"A\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", PSUP_HTTP_DONE, "0123456789"},
    {"000\r\n\r\n", PSUP_HTTP_DONE, ""},
    {"5\r\nhel", PSUP_HTTP_MORE, "hel"},
    {"5\r\nhello\r\n0\r\n", PSUP_HTTP_MORE, "hello"},
    {"\r\n", 400, ""},
    {"g\r\n", 400, ""},
    {"5 \r\nhello\r\n0\r\n\r\n", 400, ""},
    {"5\nhello\r\n0\r\n\r\n", 400, ""},
    {"5\r\nhelloX\r\n0\r\n\r\n", 400, "hello"},
    {"5\r\nhello\n0\r\n\r\n", 400, "hello"},
    {"5;\x01\r\nhello\r\n", 400, ""},
    {"0\r\n bad\r\n\r\n", 400, ""},
    {"0\r\nX: a\rb\r\n\r\n", 400, ""},
    {"0\r\n\r\nX", 400, ""},
    {"65\r\n", 413, ""},
    {"ffffffffffffffffff\r\n", 413, ""},
    {"32\r\n", PSUP_HTTP_MORE, ""},
};

static int decode_all(const char *body, size_t step, char *decoded, size_t *decoded_len)
{
    struct psup_http_chunked c;
    size_t len = strlen(body), at = 0;
    char piece[128];
    int rc = PSUP_HTTP_MORE;

    psup_http_chunked_init(&c, 100);
    *decoded_len = 0;
    while (at < len && rc == PSUP_HTTP_MORE) {
        size_t n = len - at < step ? len - at : step, used, out;
        memcpy(piece, body + at, n);
        rc = psup_http_chunked_decode(&c, piece, n, &used, &out);
        memcpy(decoded + *decoded_len, piece, out);
        *decoded_len += out;
        at += used;
    }
    if (rc == PSUP_HTTP_DONE && at != len)
        rc = 400; /* the table's trailing garbage: the caller sees it unused */
    return rc;
}

static void test_chunked_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof chunked_cases / sizeof *chunked_cases; i++) {
        const struct chunked_case *c = &chunked_cases[i];
        for (size_t step = 1; step <= 128; step *= 128) {
            char decoded[256];
            size_t n;
            int rc = decode_all(c->body, step, decoded, &n);
            if (rc != c->status)
                fail_msg("chunked case %zu step %zu: got %d, want %d", i, step, rc, c->status);
            if (c->status < 400 && (n != strlen(c->decoded) || memcmp(decoded, c->decoded, n)))
                fail_msg("chunked case %zu step %zu: decoded %.*s", i, step, (int)n, decoded);
        }
    }
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(psup_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(psup_http_reason(504), "Gateway Timeout");
    assert_string_equal(psup_http_reason(299), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_table),
        cmocka_unit_test(test_accepted_request),
        cmocka_unit_test(test_absolute_form_wins_over_host),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_target_parse_and_decode),
        cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
