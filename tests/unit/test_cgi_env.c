/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/http/cgi_env.c: the meta-variables of a request,
 * what is removed from the inherited environment, HTTP_* naming and
 * joining, SERVER_NAME and SERVER_PORT fallbacks, and the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/cgi_env.h"

static char arena[8192];
static char *envp[128];

static const char *get(const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static void build(const char *head, char *const *inherited, const char *server_name)
{
    static struct psup_http_field fields[16];
    static struct psup_http_request req;
    struct psup_http_limits limits = {.max_head = 4096, .max_fields = 16, .max_body = 1000};
    struct psup_cgi_env_input in = {&req, 42, inherited, server_name, "psup/T"};

    assert_int_equal(psup_http_request_parse(head, strlen(head), &limits, fields, &req),
                     PSUP_HTTP_DONE);
    assert_int_equal(psup_cgi_env_build(&in, arena, sizeof arena, envp, 128), 0);
}

static char *const tcp_env[] = {
    "PATH=/bin", "PROTO=TCP", "TCPLOCALIP=127.0.0.1", "TCPLOCALPORT=8080",
    "REMOTE_ADDR=127.0.0.2", "REMOTE_PORT=5555", "PSUP_CONN_ID=7",
    "HTTP_PROXY=http://inherited", "HTTP_HOST=inherited", "QUERY_STRING=inherited",
    "SERVER_NAME=inherited", "CONTENT_LENGTH=9", "AUTH_TYPE=Basic", NULL,
};

static void test_get_with_query(void **state)
{
    (void)state;
    build("GET /a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: h.example:81\r\nUser-Agent: t\r\n\r\n",
          tcp_env, NULL);
    assert_string_equal(get("GATEWAY_INTERFACE"), "CGI/1.1");
    assert_string_equal(get("SERVER_PROTOCOL"), "HTTP/1.1");
    assert_string_equal(get("SERVER_SOFTWARE"), "psup/T");
    assert_string_equal(get("SERVER_NAME"), "h.example");
    assert_string_equal(get("SERVER_PORT"), "8080");
    assert_string_equal(get("REQUEST_METHOD"), "GET");
    assert_string_equal(get("REQUEST_URI"), "/a%20b/c?x=1&y=%41");
    assert_string_equal(get("SCRIPT_NAME"), "");
    assert_string_equal(get("PATH_INFO"), "/a b/c");
    assert_string_equal(get("QUERY_STRING"), "x=1&y=%41");
    assert_string_equal(get("HTTP_HOST"), "h.example:81");
    assert_string_equal(get("HTTP_USER_AGENT"), "t");
    assert_string_equal(get("REMOTE_ADDR"), "127.0.0.2");
    assert_string_equal(get("REMOTE_PORT"), "5555");
    assert_string_equal(get("PSUP_CONN_ID"), "7");
    assert_string_equal(get("PATH"), "/bin");
    assert_null(get("CONTENT_LENGTH"));
    assert_null(get("CONTENT_TYPE"));
    assert_null(get("HTTP_PROXY"));
    assert_null(get("AUTH_TYPE"));
    assert_null(get("REMOTE_USER"));
}

static void test_post_and_headers(void **state)
{
    (void)state;
    build("POST / HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n"
          "X-Multi: a\r\nCookie: c=1\r\nx-multi: b\r\nCookie: d=2\r\nProxy: evil\r\n"
          "X_Under: forged\r\nAccept-Language: de\r\n\r\n",
          tcp_env, NULL);
    assert_string_equal(get("SERVER_PROTOCOL"), "HTTP/1.0");
    assert_string_equal(get("CONTENT_LENGTH"), "42");
    assert_string_equal(get("CONTENT_TYPE"), "text/plain");
    assert_string_equal(get("HTTP_X_MULTI"), "a, b");
    assert_string_equal(get("HTTP_COOKIE"), "c=1; d=2");
    assert_string_equal(get("HTTP_ACCEPT_LANGUAGE"), "de");
    assert_string_equal(get("QUERY_STRING"), "");
    assert_null(get("HTTP_PROXY"));
    assert_null(get("HTTP_X_UNDER"));
    assert_null(get("HTTP_CONTENT_TYPE"));
    assert_null(get("HTTP_CONTENT_LENGTH"));
    assert_null(get("HTTP_HOST"));
    /* No Host: the local address. */
    assert_string_equal(get("SERVER_NAME"), "127.0.0.1");
}

static void test_server_name_fallbacks(void **state)
{
    char *const v6[] = {"TCPLOCALIP=::1", "TCPLOCALPORT=81", NULL};
    char *const unix_env[] = {"PROTO=UNIX", NULL};

    (void)state;
    build("GET / HTTP/1.0\r\n\r\n", v6, NULL);
    assert_string_equal(get("SERVER_NAME"), "[::1]");
    build("GET / HTTP/1.0\r\n\r\n", v6, "www.example");
    assert_string_equal(get("SERVER_NAME"), "www.example");
    build("GET / HTTP/1.1\r\nHost: [::1]:99\r\n\r\n", unix_env, NULL);
    assert_string_equal(get("SERVER_NAME"), "[::1]");
    assert_string_equal(get("SERVER_PORT"), "99");
    build("GET / HTTP/1.1\r\nHost:\r\n\r\n", unix_env, NULL);
    assert_string_equal(get("SERVER_NAME"), "localhost");
    assert_string_equal(get("SERVER_PORT"), "80");
    build("GET http://abs.example/p HTTP/1.1\r\nHost: other\r\n\r\n", v6, NULL);
    assert_string_equal(get("SERVER_NAME"), "abs.example");
    assert_string_equal(get("REQUEST_URI"), "/p");
    assert_string_equal(get("HTTP_HOST"), "other");
}

static void test_chunked_body_length(void **state)
{
    (void)state;
    build("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", tcp_env, NULL);
    assert_string_equal(get("CONTENT_LENGTH"), "42");
    assert_null(get("HTTP_TRANSFER_ENCODING"));
}

/* The bounds are enough; one byte or entry less than needed is ENOSPC. */
static void test_bounds(void **state)
{
    static struct psup_http_field fields[16];
    static struct psup_http_request req;
    const char *head = "GET /%41%41%41?q HTTP/1.1\r\nHost: h\r\nA: 1\r\na: 2\r\nB: x\r\n\r\n";
    struct psup_http_limits limits = {.max_head = 4096, .max_fields = 16, .max_body = 1000};
    struct psup_cgi_env_input in = {&req, 0, tcp_env, "n", "psup/T"};
    size_t bytes, entries, used = 0, count = 0;

    (void)state;
    assert_int_equal(psup_http_request_parse(head, strlen(head), &limits, fields, &req),
                     PSUP_HTTP_DONE);
    psup_cgi_env_bounds(&in, &bytes, &entries);
    assert_true(bytes <= sizeof arena && entries <= 128);
    assert_int_equal(psup_cgi_env_build(&in, arena, bytes, envp, entries), 0);
    for (char **e = envp; *e; e++, count++)
        used += strlen(*e) + 1;
    assert_int_equal(psup_cgi_env_build(&in, arena, used, envp, count + 1), -ENOSPC);
    assert_int_equal(psup_cgi_env_build(&in, arena, used + 1, envp, count), -ENOSPC);
    assert_int_equal(psup_cgi_env_build(&in, arena, used + 1, envp, count + 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_query),
        cmocka_unit_test(test_post_and_headers),
        cmocka_unit_test(test_server_name_fallbacks),
        cmocka_unit_test(test_chunked_body_length),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
