/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/http/cgi_response.c: a table of CGI header blocks
 * with the verdict and status each gives, the HTTP head written for
 * them (hop-by-hop fields dropped, Date and Server added unless the
 * script sent them, framing), error responses and the Date format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "http/cgi_response.h"

struct response_case {
    const char *block;
    int rc;     /* PSUP_HTTP_DONE, PSUP_HTTP_MORE or 502 */
    int status; /* when DONE */
    enum psup_cgi_kind kind;
};

static const struct response_case cases[] = {
    {"Content-Type: text/plain\n\nbody", PSUP_HTTP_DONE, 200, PSUP_CGI_DOCUMENT},
    {"Content-Type: text/plain\r\n\r\nbody", PSUP_HTTP_DONE, 200, PSUP_CGI_DOCUMENT},
    {"content-type:text/plain\n\n", PSUP_HTTP_DONE, 200, PSUP_CGI_DOCUMENT},
    {"Status: 404 Not Found\nContent-Type: text/plain\n\n", PSUP_HTTP_DONE, 404, PSUP_CGI_DOCUMENT},
    {"Status: 204\n\n", PSUP_HTTP_DONE, 204, PSUP_CGI_DOCUMENT},
    {"Status: 299 Custom Thing\n\n", PSUP_HTTP_DONE, 299, PSUP_CGI_DOCUMENT},
    {"Location: https://e.example/x\n\n", PSUP_HTTP_DONE, 302, PSUP_CGI_CLIENT_REDIRECT},
    {"Location: mailto:a@b\n\n", PSUP_HTTP_DONE, 302, PSUP_CGI_CLIENT_REDIRECT},
    {"Location: /other?x=1\n\n", PSUP_HTTP_DONE, 200, PSUP_CGI_LOCAL_REDIRECT},
    {"Status: 303 See Other\nLocation: /x\n\n", PSUP_HTTP_DONE, 303, PSUP_CGI_DOCUMENT},
    {"Status: 301\nLocation: relative\n\n", PSUP_HTTP_DONE, 301, PSUP_CGI_DOCUMENT},
    {"Content-Type: a/b\nSet-Cookie: a\nSet-Cookie: b\n\n", PSUP_HTTP_DONE, 200, PSUP_CGI_DOCUMENT},
    {"Content-Type: text/plain\n", PSUP_HTTP_MORE, 0, 0},
    {"Content-Ty", PSUP_HTTP_MORE, 0, 0},
    {"", PSUP_HTTP_MORE, 0, 0},
    {"\n", 502, 0, 0},
    {"hello world\n\n", 502, 0, 0},
    {"<html>\n", 502, 0, 0},
    {"X-Only: 1\n\n", 502, 0, 0},
    {"Content-Type : text/plain\n\n", 502, 0, 0},
    {"Content-Type: text/plain\n folded\n\n", 502, 0, 0},
    {"Content-Type: text/plain\rX: y\n\n", 502, 0, 0},
    {"Content-Type: a\x01\n\n", 502, 0, 0},
    {"Content-Type: a\nContent-Type: b\n\n", 502, 0, 0},
    {"Status: 200\nStatus: 200\n\n", 502, 0, 0},
    {"Status: 100 Continue\n\n", 502, 0, 0},
    {"Status: 600\n\n", 502, 0, 0},
    {"Status: 20\n\n", 502, 0, 0},
    {"Status: 200OK\n\n", 502, 0, 0},
    {"Location: /a\nLocation: /b\n\n", 502, 0, 0},
    {"Location: //e.example/x\n\n", 502, 0, 0},
    {"Location: relative\n\n", 502, 0, 0},
    {"Status: 302\nLocation:\n\n", 502, 0, 0},
    {"Content-Length: 1\nContent-Length: 1\nContent-Type: a\n\n", 502, 0, 0},
};

static void test_response_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct response_case *c = &cases[i];
        struct psup_http_field fields[8];
        struct psup_cgi_response resp;
        int rc = psup_cgi_response_parse(c->block, strlen(c->block), 256, fields, 8, &resp);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": got %d (%s), want %d", i, c->block, rc,
                     resp.why ? resp.why : "", c->rc);
        if (rc == PSUP_HTTP_DONE && (resp.status != c->status || resp.kind != c->kind))
            fail_msg("case %zu: status %d kind %d", i, resp.status, (int)resp.kind);
        if (rc == 502 && !resp.why)
            fail_msg("case %zu: 502 without a reason", i);
    }
}

static void test_limits(void **state)
{
    struct psup_http_field fields[2];
    struct psup_cgi_response resp;
    const char *three = "A: 1\nB: 2\nC: 3\n\n";
    char big[300];

    (void)state;
    assert_int_equal(psup_cgi_response_parse(three, strlen(three), 256, fields, 2, &resp), 502);
    memset(big, 'x', sizeof big);
    memcpy(big, "Content-Type: ", 14);
    assert_int_equal(psup_cgi_response_parse(big, 255, 256, fields, 2, &resp), PSUP_HTTP_MORE);
    assert_int_equal(psup_cgi_response_parse(big, 256, 256, fields, 2, &resp), 502);
    assert_int_equal(psup_cgi_response_parse(big, sizeof big, 256, fields, 2, &resp), 502);
}

static size_t head_for(const char *block, int minor, bool head, char *out, size_t cap,
                       enum psup_cgi_framing *framing_out)
{
    static struct psup_http_field fields[16];
    static struct psup_cgi_response resp;
    struct psup_http_request req;

    memset(&req, 0, sizeof req);
    req.minor = minor;
    req.head = head;
    assert_int_equal(psup_cgi_response_parse(block, strlen(block), 1024, fields, 16, &resp),
                     PSUP_HTTP_DONE);
    *framing_out = psup_cgi_response_framing(&resp, &req);
    return psup_cgi_response_head(&resp, *framing_out, "DATE", "psup/T", out, cap);
}

static void test_head_written(void **state)
{
    char out[1024];
    enum psup_cgi_framing framing;
    size_t n;

    (void)state;
    n = head_for("Status: 404 Gone Fishing\r\nContent-Type: text/plain\nConnection: keep-alive\n"
                 "Transfer-Encoding: gzip\nX-A:  b \n\nbody",
                 1, false, out, sizeof out, &framing);
    out[n] = 0;
    assert_int_equal(framing, PSUP_CGI_FRAME_CHUNKED);
    assert_string_equal(out, "HTTP/1.1 404 Gone Fishing\r\nDate: DATE\r\nServer: psup/T\r\n"
                             "Content-Type: text/plain\r\nX-A: b\r\n"
                             "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");

    n = head_for("Location: http://e.example/\nDate: D\nServer: S\n\n", 0, false, out, sizeof out,
                 &framing);
    out[n] = 0;
    assert_int_equal(framing, PSUP_CGI_FRAME_CLOSE);
    assert_string_equal(out, "HTTP/1.1 302 Found\r\nLocation: http://e.example/\r\nDate: D\r\n"
                             "Server: S\r\nConnection: close\r\n\r\n");

    n = head_for("Content-Type: a/b\nContent-Length: 3\n\n", 1, false, out, sizeof out, &framing);
    assert_int_equal(framing, PSUP_CGI_FRAME_CLOSE);
    n = head_for("Content-Type: a/b\n\n", 1, true, out, sizeof out, &framing);
    assert_int_equal(framing, PSUP_CGI_FRAME_NONE);
    n = head_for("Status: 304\n\n", 1, false, out, sizeof out, &framing);
    assert_int_equal(framing, PSUP_CGI_FRAME_NONE);
    out[n] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 304 Not Modified\r\n"));
    assert_null(strstr(out, "Transfer-Encoding"));
    assert_int_equal(head_for("Content-Type: a/b\n\n", 1, false, out, 40, &framing), 0);
}

static void test_error_response(void **state)
{
    char out[512];
    size_t n;

    (void)state;
    n = psup_cgi_error_response(431, false, "DATE", "psup/T", out, sizeof out);
    out[n] = 0;
    assert_string_equal(out, "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: DATE\r\n"
                             "Server: psup/T\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 36\r\nConnection: close\r\n\r\n"
                             "431 Request Header Fields Too Large\n");
    n = psup_cgi_error_response(504, true, "DATE", "psup/T", out, sizeof out);
    out[n] = 0;
    assert_non_null(strstr(out, "Content-Length: 20\r\n"));
    assert_int_equal(strcmp(out + n - 4, "\r\n\r\n"), 0);
    assert_int_equal(psup_cgi_error_response(400, false, "DATE", "psup/T", out, 20), 0);
}

static void test_date(void **state)
{
    char out[32];

    (void)state;
    psup_cgi_format_date(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    psup_cgi_format_date(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    psup_cgi_format_date(951782400, out); /* a leap day of a century year */
    assert_string_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    psup_cgi_format_date(4102444799LL, out);
    assert_string_equal(out, "Thu, 31 Dec 2099 23:59:59 GMT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_head_written),
        cmocka_unit_test(test_error_response),
        cmocka_unit_test(test_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
