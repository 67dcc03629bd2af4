/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/addr.c: every listener address form, valid and
 * invalid, formatted back; RFC 5952 IPv6 formatting; address identity;
 * ports, decimal formatting and the 16-byte peer keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>

#include "net/addr.h"

struct parse_case {
    const char *spec;
    enum psup_proto proto;
    int family;
    const char *formatted; /* NULL: an error, with why */
    const char *why;
};

static const struct parse_case parse_cases[] = {
    {"127.0.0.1:7000", PSUP_PROTO_TCP, AF_INET, "127.0.0.1:7000", NULL},
    {"localhost:80", PSUP_PROTO_TCP, AF_INET, "127.0.0.1:80", NULL},
    {"0.0.0.0:0", PSUP_PROTO_TCP, AF_INET, "0.0.0.0:0", NULL},
    {"1.2.3.4:65535", PSUP_PROTO_TCP, AF_INET, "1.2.3.4:65535", NULL},
    {"tcp://1.2.3.4:01", PSUP_PROTO_TCP, AF_INET, "1.2.3.4:1", NULL},
    {"[::1]:7000", PSUP_PROTO_TCP, AF_INET6, "[::1]:7000", NULL},
    {"[2001:0db8:0:0:0:0:0:1]:80", PSUP_PROTO_TCP, AF_INET6, "[2001:db8::1]:80", NULL},
    {"[::]:80", PSUP_PROTO_TCP, AF_INET6, "[::]:80", NULL},
    {"*:8080", PSUP_PROTO_TCP, AF_INET6, "*:8080", NULL},
    {"unix:/tmp/psup.sock", PSUP_PROTO_UNIX, AF_UNIX, "unix:/tmp/psup.sock", NULL},
    {"unix:relative.sock", PSUP_PROTO_UNIX, AF_UNIX, "unix:relative.sock", NULL},
    {"unix:@psup-test", PSUP_PROTO_UNIX, AF_UNIX, "unix:@psup-test", NULL},
    {"udp://10.0.0.1:53", PSUP_PROTO_UDP, AF_INET, "udp://10.0.0.1:53", NULL},
    {"udp://[::1]:53", PSUP_PROTO_UDP, AF_INET6, "udp://[::1]:53", NULL},
    {"udp://*:53", PSUP_PROTO_UDP, AF_INET6, "udp://*:53", NULL},
    {"foo", 0, 0, NULL, "expected HOST:PORT, [IPV6]:PORT, *:PORT or unix:/path"},
    {"1.2.3.4", 0, 0, NULL, "expected HOST:PORT, [IPV6]:PORT, *:PORT or unix:/path"},
    {":80", 0, 0, NULL, "expected HOST:PORT with HOST an IPv4 address, localhost or *"},
    {"1.2.3.4:", 0, 0, NULL, "port must be a number from 0 to 65535"},
    {"1.2.3.4:65536", 0, 0, NULL, "port must be a number from 0 to 65535"},
    {"1.2.3.4:http", 0, 0, NULL, "port must be a number from 0 to 65535"},
    {"1.2.3.4:-1", 0, 0, NULL, "port must be a number from 0 to 65535"},
    {"example.com:80", 0, 0, NULL, "not a valid IPv4 address (names are not resolved)"},
    {"::1:80", 0, 0, NULL, "an IPv6 address must be written [IPV6]:PORT"},
    {"[::1]7000", 0, 0, NULL, "expected [IPV6]:PORT"},
    {"[::1", 0, 0, NULL, "expected [IPV6]:PORT"},
    {"[]:80", 0, 0, NULL, "expected an IPv6 address between [ and ]"},
    {"[1.2.3.4]:80", 0, 0, NULL, "not a valid IPv6 address (names are not resolved)"},
    {"[fe80::1%eth0]:80", 0, 0, NULL, "not a valid IPv6 address (names are not resolved)"},
    {"unix:", 0, 0, NULL, "expected unix:/path (the path is empty)"},
    {"unix:@", 0, 0, NULL, "the abstract socket name after @ is empty"},
    {"unix:/", 0, 0, NULL, "the path names a directory, not a socket file"},
    {"unix:/run/psup/", 0, 0, NULL, "the path names a directory, not a socket file"},
    {"unix:..", 0, 0, NULL, "the path names a directory, not a socket file"},
    {"unix:/run/.", 0, 0, NULL, "the path names a directory, not a socket file"},
    {"unix:/run/.x", PSUP_PROTO_UNIX, AF_UNIX, "unix:/run/.x", NULL},
    {"unix:@/", PSUP_PROTO_UNIX, AF_UNIX, "unix:@/", NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *t = &parse_cases[i];
        struct psup_addr a;
        const char *why = NULL;
        char buf[PSUP_ADDR_STRLEN];
        int rc = psup_addr_parse(t->spec, &a, &why);

        if (!t->formatted) {
            if (rc != -1 || !why || strcmp(why, t->why) != 0)
                fail_msg("\"%s\": expected \"%s\", got rc %d \"%s\"", t->spec, t->why, rc,
                         why ? why : "(null)");
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": unexpected error \"%s\"", t->spec, why);
        if (a.proto != t->proto || a.u.sa.sa_family != t->family)
            fail_msg("\"%s\": wrong protocol or family", t->spec);
        psup_addr_format(&a, buf, sizeof(buf));
        if (strcmp(buf, t->formatted) != 0)
            fail_msg("\"%s\": formatted as \"%s\", expected \"%s\"", t->spec, buf, t->formatted);
    }
}

static void test_parse_star_is_dual_stack(void **state)
{
    struct psup_addr a;
    const char *why;

    (void)state;
    assert_int_equal(psup_addr_parse("*:9000", &a, &why), 0);
    assert_true(a.any_family);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_memory_equal(&a.u.in6.sin6_addr, &in6addr_any, 16);
    assert_int_equal(psup_sockaddr_port(&a.u.sa), 9000);

    assert_int_equal(psup_addr_parse("127.0.0.1:9000", &a, &why), 0);
    assert_false(a.any_family);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
}

static void test_unix_lengths(void **state)
{
    char spec[5 + 120];
    struct psup_addr a;
    const char *why = NULL;

    (void)state;

    /* 107 bytes is the longest path that leaves room for the NUL. */
    memcpy(spec, "unix:/", 6);
    memset(spec + 6, 'a', 106);
    spec[5 + 107] = '\0';
    assert_int_equal(psup_addr_parse(spec, &a, &why), 0);
    spec[5 + 107] = 'a';
    spec[5 + 108] = '\0';
    assert_int_equal(psup_addr_parse(spec, &a, &why), -1);
    assert_string_equal(why, "unix socket path is longer than 107 bytes");

    /* An abstract name's length is the socket address length: no NUL. */
    assert_int_equal(psup_addr_parse("unix:@abc", &a, &why), 0);
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 4);
    assert_int_equal(a.u.un.sun_path[0], '\0');
    assert_memory_equal(a.u.un.sun_path + 1, "abc", 3);
}

static void test_format_truncates(void **state)
{
    struct psup_addr a;
    const char *why;
    char small[8];

    (void)state;
    assert_int_equal(psup_addr_parse("127.0.0.1:7000", &a, &why), 0);
    assert_int_equal(psup_addr_format(&a, small, sizeof(small)), strlen("127.0.0.1:7000"));
    assert_string_equal(small, "127.0.0");
}

struct same_case {
    const char *a, *b;
    bool same;
};

static const struct same_case same_cases[] = {
    {"127.0.0.1:7000", "127.0.0.1:7000", true},
    {"localhost:7000", "127.0.0.1:7000", true},
    {"127.0.0.1:7000", "127.0.0.1:7001", false},
    {"127.0.0.1:7000", "127.0.0.2:7000", false},
    {"[::1]:7000", "[0:0::1]:7000", true},
    {"[::1]:7000", "127.0.0.1:7000", false},
    {"*:7000", "*:7000", true},
    {"*:7000", "[::]:7000", false},
    {"unix:/tmp/a", "unix:/tmp/a", true},
    {"unix:/tmp/a", "unix:/tmp/b", false},
    {"unix:@a", "unix:/a", false},
    {"unix:@a", "unix:@a", true},
    {"udp://1.2.3.4:53", "1.2.3.4:53", false},
};

static void test_same_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(same_cases) / sizeof(same_cases[0]); i++) {
        const struct same_case *t = &same_cases[i];
        struct psup_addr a, b;
        const char *why;

        assert_int_equal(psup_addr_parse(t->a, &a, &why), 0);
        assert_int_equal(psup_addr_parse(t->b, &b, &why), 0);
        if (psup_addr_same(&a, &b) != t->same || psup_addr_same(&b, &a) != t->same)
            fail_msg("%s vs %s: expected %s", t->a, t->b, t->same ? "same" : "different");
        if (t->same && psup_addr_hash(&a) != psup_addr_hash(&b))
            fail_msg("%s vs %s: the same, with different hashes", t->a, t->b);
    }
}

/* "[::ffff:A.B.C.D]:P" cannot be bound; the IPv4 address comes back. */
static void test_v4_mapped_is_refused(void **state)
{
    struct psup_addr a;
    const char *why = NULL;
    char buf[PSUP_ADDR_STRLEN];

    (void)state;
    assert_int_equal(psup_addr_parse("[::ffff:10.1.2.3]:7000", &a, &why), PSUP_ADDR_V4_MAPPED);
    assert_string_equal(why, "an IPv4-mapped IPv6 address cannot be bound");
    psup_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "10.1.2.3:7000");
    assert_int_equal(psup_addr_parse("[::ffff:0:0]:7000", &a, &why), PSUP_ADDR_V4_MAPPED);
}

struct overlap_case {
    const char *a, *b;
    bool overlap;
};

/* As Linux decides for two listening TCP sockets with SO_REUSEADDR, and for
 * two UDP sockets without it; a TCP and a UDP socket never clash. */
static const struct overlap_case overlap_cases[] = {
    {"*:80", "127.0.0.1:80", true},   {"*:80", "[::1]:80", true},
    {"*:80", "0.0.0.0:80", true},     {"*:80", "[::]:80", true},
    {"0.0.0.0:80", "1.2.3.4:80", true}, {"[::]:80", "[::1]:80", true},
    {"0.0.0.0:80", "0.0.0.0:80", true}, {"[::]:80", "0.0.0.0:80", false},
    {"[::]:80", "1.2.3.4:80", false}, {"[::1]:80", "127.0.0.1:80", false},
    {"1.2.3.4:80", "1.2.3.5:80", false}, {"*:80", "127.0.0.1:81", false},
    {"*:0", "127.0.0.1:0", false},    {"unix:/a", "*:80", false},
    {"udp://*:80", "udp://1.2.3.4:80", true}, {"udp://0.0.0.0:80", "udp://1.2.3.4:80", true},
    {"udp://[::]:80", "udp://0.0.0.0:80", false}, {"udp://1.2.3.4:80", "udp://1.2.3.5:80", false},
    {"udp://*:80", "*:80", false},     {"udp://*:80", "127.0.0.1:80", false},
    {"0.0.0.0:80", "udp://1.2.3.4:80", false}, {"udp://*:0", "udp://127.0.0.1:0", false},
};

static void test_overlap_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(overlap_cases) / sizeof(overlap_cases[0]); i++) {
        const struct overlap_case *t = &overlap_cases[i];
        struct psup_addr a, b;
        const char *why;

        assert_int_equal(psup_addr_parse(t->a, &a, &why), 0);
        assert_int_equal(psup_addr_parse(t->b, &b, &why), 0);
        if (psup_addr_overlap(&a, &b) != t->overlap || psup_addr_overlap(&b, &a) != t->overlap)
            fail_msg("%s beside %s: expected %s", t->a, t->b, t->overlap ? "an overlap" : "none");
    }
}

struct ip_case {
    const char *in;
    const char *out;
};

static const struct ip_case ip_cases[] = {
    {"1.2.3.4", "1.2.3.4"},
    {"0.0.0.0", "0.0.0.0"},
    {"255.255.255.255", "255.255.255.255"},
    {"::", "::"},
    {"::1", "::1"},
    {"1::", "1::"},
    {"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
    {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"}, /* first run on a tie */
    {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},             /* the longest run */
    {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"}, /* one zero group stays */
    {"fe80::1:2", "fe80::1:2"},
    {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
    {"abcd:ef01:2345:6789:abcd:ef01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"},
    {"::ffff:1.2.3.4", "1.2.3.4"}, /* v4-mapped as dotted IPv4 */
    {"::ffff:0:0", "0.0.0.0"},
    {"::fffe:1.2.3.4", "::fffe:102:304"},
};

static void sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(4242);
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
        in4->sin_family = AF_INET;
        in4->sin_port = htons(4242);
        assert_int_equal(inet_pton(AF_INET, ip, &in4->sin_addr), 1);
    }
}

static void test_ip_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
        struct sockaddr_storage ss;
        char buf[PSUP_IP_STRLEN];

        sockaddr_of(ip_cases[i].in, &ss);
        size_t n = psup_ip_format((struct sockaddr *)&ss, buf);
        if (strcmp(buf, ip_cases[i].out) != 0 || n != strlen(ip_cases[i].out))
            fail_msg("%s: formatted as \"%s\" (%zu), expected \"%s\"", ip_cases[i].in, buf, n,
                     ip_cases[i].out);
        assert_int_equal(psup_sockaddr_port((struct sockaddr *)&ss), 4242);
    }
}

static void test_ip_format_longest(void **state)
{
    struct sockaddr_storage ss;
    char buf[PSUP_IP_STRLEN + 8];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    sockaddr_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &ss);
    assert_int_equal(psup_ip_format((struct sockaddr *)&ss, buf), 39);
    assert_int_equal(buf[39], '\0');
}

static void test_other_families(void **state)
{
    struct sockaddr_un un;
    char buf[PSUP_IP_STRLEN] = "junk";
    uint8_t key[16];

    (void)state;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(psup_ip_format((struct sockaddr *)&un, buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(psup_sockaddr_port((struct sockaddr *)&un), 0);
    assert_false(psup_ip_key((struct sockaddr *)&un, key));
}

static void test_ip_key(void **state)
{
    struct sockaddr_storage v4, mapped, v6;
    uint8_t k4[16], km[16], k6[16], want[16];

    (void)state;
    sockaddr_of("10.1.2.3", &v4);
    sockaddr_of("::ffff:10.1.2.3", &mapped);
    sockaddr_of("2001:db8::7", &v6);
    assert_true(psup_ip_key((struct sockaddr *)&v4, k4));
    assert_true(psup_ip_key((struct sockaddr *)&mapped, km));
    assert_true(psup_ip_key((struct sockaddr *)&v6, k6));
    assert_memory_equal(k4, km, 16);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", want), 1);
    assert_memory_equal(k6, want, 16);
}

static void test_fmt_uint(void **state)
{
    static const struct {
        unsigned long long v;
        const char *s;
    } cases[] = {
        {0, "0"}, {7, "7"}, {10, "10"}, {65535, "65535"}, {ULLONG_MAX, "18446744073709551615"},
    };
    char buf[21];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(psup_fmt_uint(cases[i].v, buf), strlen(cases[i].s));
        assert_string_equal(buf, cases[i].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_star_is_dual_stack),
        cmocka_unit_test(test_unix_lengths),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test(test_same_table),
        cmocka_unit_test(test_v4_mapped_is_refused),
        cmocka_unit_test(test_overlap_table),
        cmocka_unit_test(test_ip_format_table),
        cmocka_unit_test(test_ip_format_longest),
        cmocka_unit_test(test_other_families),
        cmocka_unit_test(test_ip_key),
        cmocka_unit_test(test_fmt_uint),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
