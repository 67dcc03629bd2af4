/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/access.c: CIDR parsing (with its error sentences),
 * matching of IPv4, IPv6 and v4-mapped peers, deny-wins evaluation and the
 * per-source keys. Table-driven; every row is one assertion that can fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "net/access.h"
#include "net/addr.h"

/* The 16-byte key of a peer written as text, built the way a worker does:
 * through a socket address and psup_ip_key. */
static void peer_key(const char *text, uint8_t key[16])
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        in4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &in4->sin_addr), 1);
    }
    assert_true(psup_ip_key((struct sockaddr *)&ss, key));
}

static struct psup_cidr rule(const char *text)
{
    struct psup_cidr r;
    const char *why = NULL;

    if (psup_cidr_parse(text, &r, &why) != 0)
        fail_msg("rule %s: %s", text, why);
    return r;
}

struct parse_case {
    const char *text;
    const char *net;  /* expected network as IPv6 text, NULL for an error */
    unsigned prefix;
    const char *why;  /* expected sentence for an error */
};

static const struct parse_case parse_cases[] = {
    {"10.0.0.0/8", "::ffff:10.0.0.0", 104, NULL},
    {"192.168.1.7", "::ffff:192.168.1.7", 128, NULL},
    {"192.168.1.128/25", "::ffff:192.168.1.128", 121, NULL},
    {"0.0.0.0/0", "::ffff:0.0.0.0", 96, NULL},
    {"2001:db8::/32", "2001:db8::", 32, NULL},
    {"::1", "::1", 128, NULL},
    {"::/0", "::", 0, NULL},
    {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0", 104, NULL},
    {"10.0.0.1/8", NULL, 0, "host bits are set beyond /8; did you mean 10.0.0.0/8?"},
    {"192.168.1.1/24", NULL, 0, "host bits are set beyond /24; did you mean 192.168.1.0/24?"},
    {"2001:db8::1/32", NULL, 0, "host bits are set beyond /32; did you mean 2001:db8::/32?"},
    {"10.0.0.1/33", NULL, 0, "the prefix length must be a number from 0 to 32"},
    {"::1/129", NULL, 0, "the prefix length must be a number from 0 to 128"},
    {"10.0.0.0/", NULL, 0, "the prefix length must be a number from 0 to 32"},
    {"10.0.0.0/8x", NULL, 0, "the prefix length must be a number from 0 to 32"},
    {"10.0.0.0/-1", NULL, 0, "the prefix length must be a number from 0 to 32"},
    {"/8", NULL, 0, "expected ADDRESS or ADDRESS/PREFIX"},
    {"", NULL, 0, "expected ADDRESS or ADDRESS/PREFIX"},
    {"example.com", NULL, 0, "not a valid IPv4 address (names are not resolved)"},
    {"1.2.3", NULL, 0, "not a valid IPv4 address (names are not resolved)"},
    {"256.0.0.0/8", NULL, 0, "not a valid IPv4 address (names are not resolved)"},
    {"fe80::1%eth0", NULL, 0, "not a valid IPv6 address"},
    {"2001:db8:::/48", NULL, 0, "not a valid IPv6 address"},
};

static void test_cidr_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *t = &parse_cases[i];
        struct psup_cidr r;
        const char *why = NULL;
        int rc = psup_cidr_parse(t->text, &r, &why);

        if (!t->net) {
            if (rc != -1 || !why || strcmp(why, t->why) != 0)
                fail_msg("\"%s\": expected error \"%s\", got rc %d \"%s\"", t->text, t->why,
                         rc, why ? why : "(null)");
            continue;
        }
        uint8_t want[16];
        assert_int_equal(inet_pton(AF_INET6, t->net, want), 1);
        if (rc != 0)
            fail_msg("\"%s\": unexpected error \"%s\"", t->text, why);
        if (r.prefix != t->prefix || memcmp(r.addr, want, 16) != 0)
            fail_msg("\"%s\": wrong network or prefix (/%u)", t->text, r.prefix);
    }
}

struct match_case {
    const char *rule;
    const char *peer;
    bool match;
};

static const struct match_case match_cases[] = {
    {"10.0.0.0/8", "10.1.2.3", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.0.0.0/8", "::ffff:10.1.2.3", true}, /* a v4-mapped peer is the IPv4 peer */
    {"::ffff:10.0.0.0/104", "10.2.3.4", true},
    {"0.0.0.0/0", "1.2.3.4", true},
    {"0.0.0.0/0", "::1", false},
    {"::/0", "2001:db8::1", true},
    {"::/0", "1.2.3.4", false}, /* IPv4 peers only match IPv4 rules */
    {"::/1", "::ffff:1.2.3.4", false},
    {"::1", "::1", true},
    {"::1/128", "::2", false},
    {"192.168.1.7", "192.168.1.7", true},
    {"192.168.1.7", "192.168.1.8", false},
    {"2001:db8::/32", "2001:db8:ffff::1", true},
    {"2001:db8::/32", "2001:db9::1", false},
    {"192.168.1.0/25", "192.168.1.127", true},
    {"192.168.1.0/25", "192.168.1.128", false},
    {"2001:db8::/33", "2001:db8:7fff::1", true},
    {"2001:db8::/33", "2001:db8:8000::1", false},
    {"128.0.0.0/1", "127.255.255.255", false},
    {"128.0.0.0/1", "200.1.1.1", true},
};

static void test_cidr_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *t = &match_cases[i];
        struct psup_cidr r = rule(t->rule);
        uint8_t key[16];

        peer_key(t->peer, key);
        if (psup_cidr_match(&r, key) != t->match)
            fail_msg("rule %s, peer %s: expected %s", t->rule, t->peer,
                     t->match ? "a match" : "no match");
    }
}

struct allow_case {
    const char *allow[3];
    const char *deny[3];
    const char *peer;
    bool allowed;
};

static const struct allow_case allow_cases[] = {
    {{NULL}, {NULL}, "1.2.3.4", true}, /* no rules: everyone */
    {{NULL}, {NULL}, "::1", true},
    {{"10.0.0.0/8"}, {NULL}, "10.1.1.1", true},
    {{"10.0.0.0/8"}, {NULL}, "11.1.1.1", false},
    {{"10.0.0.0/8"}, {"10.1.0.0/16"}, "10.1.2.3", false}, /* deny wins */
    {{"10.0.0.0/8"}, {"10.1.0.0/16"}, "10.2.0.1", true},
    {{"10.1.2.3"}, {"10.1.2.3"}, "10.1.2.3", false},
    {{NULL}, {"::/0"}, "1.2.3.4", true},
    {{NULL}, {"::/0"}, "::1", false},
    {{"0.0.0.0/0"}, {NULL}, "::1", false},
    {{"127.0.0.1", "::1"}, {NULL}, "::1", true},
    {{"127.0.0.1", "::1"}, {NULL}, "127.0.0.1", true},
    {{"127.0.0.1", "::1"}, {NULL}, "127.0.0.2", false},
};

static size_t rules(const char *const texts[3], struct psup_cidr out[3])
{
    size_t n = 0;

    while (n < 3 && texts[n]) {
        out[n] = rule(texts[n]);
        n++;
    }
    return n;
}

static void test_access_allowed_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(allow_cases) / sizeof(allow_cases[0]); i++) {
        const struct allow_case *t = &allow_cases[i];
        struct psup_cidr allow[3], deny[3];
        size_t na = rules(t->allow, allow), nd = rules(t->deny, deny);
        uint8_t key[16];

        peer_key(t->peer, key);
        if (psup_access_allowed(allow, na, deny, nd, key) != t->allowed)
            fail_msg("row %zu, peer %s: expected %s", i, t->peer,
                     t->allowed ? "allowed" : "refused");
    }
}

struct key_case {
    const char *peer;
    unsigned prefix;
    const char *want;
};

static const struct key_case key_cases[] = {
    {"10.1.2.3", 64, "::ffff:10.1.2.3"}, /* IPv4 is always whole */
    {"10.1.2.3", 1, "::ffff:10.1.2.3"},
    {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
    {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::"},
    {"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::"},
    {"2001:db8:1:2ff:3:4:5:6", 60, "2001:db8:1:2f0::"},
    {"2001:db8:1:2:3:4:5:6", 1, "::"},
    {"ffff:db8:1:2:3:4:5:6", 1, "8000::"},
    {"2001:db8:1:2:3:4:5:6", 200, "2001:db8:1:2:3:4:5:6"},
};

static void test_source_key_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *t = &key_cases[i];
        uint8_t key[16], out[16], want[16];

        peer_key(t->peer, key);
        assert_int_equal(inet_pton(AF_INET6, t->want, want), 1);
        psup_source_key(key, t->prefix, out);
        if (memcmp(out, want, 16) != 0)
            fail_msg("%s/%u: wrong key", t->peer, t->prefix);
    }
}

/* The key function works in place too (out == key), as a worker may call it. */
static void test_source_key_in_place(void **state)
{
    uint8_t key[16], want[16];

    (void)state;
    peer_key("2001:db8:1:2:3:4:5:6", key);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::", want), 1);
    psup_source_key(key, 32, key);
    assert_memory_equal(key, want, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parse_table),
        cmocka_unit_test(test_cidr_match_table),
        cmocka_unit_test(test_access_allowed_table),
        cmocka_unit_test(test_source_key_table),
        cmocka_unit_test(test_source_key_in_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
