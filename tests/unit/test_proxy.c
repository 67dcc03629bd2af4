/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/child/proxy.c: tables of valid and invalid version 1
 * and version 2 headers (spec/proxy.md), the "at least n bytes" answers
 * that let the reader stop exactly at the end of a header, and the reader
 * itself on socket pairs: the bytes after the header stay unread, one
 * deadline for the whole header however slowly it comes, early close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "child/proxy.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Helpers. */

/* The 16-byte form psup keeps: IPv6 as is, IPv4 v4-mapped. */
static void ip16(const char *text, uint8_t out[16])
{
    uint8_t v4[4];

    if (inet_pton(AF_INET, text, v4) == 1) {
        memset(out, 0, 16);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, v4, 4);
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, text, out), 1);
}

static void assert_ip(const uint8_t got[16], const char *text)
{
    uint8_t want[16];

    ip16(text, want);
    assert_memory_equal(got, want, 16);
}

static void assert_no_addresses(const struct psup_proxy_header *h)
{
    static const uint8_t zero[16];

    assert_false(h->has_addresses);
    assert_memory_equal(h->src_addr, zero, 16);
    assert_memory_equal(h->dst_addr, zero, 16);
    assert_int_equal(h->src_port, 0);
    assert_int_equal(h->dst_port, 0);
}

static int parse_text(const char *text, unsigned accept, struct psup_proxy_header *h)
{
    return psup_proxy_parse((const uint8_t *)text, strlen(text), accept, h);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Independent CRC32C (RFC 4960 appendix B) for building v2 headers. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;

    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

/* ------------------------------------------------------------------------ */
/* Version 2 headers, built field by field. */

struct v2 {
    uint8_t b[PSUP_PROXY_MAX + 64];
    size_t len;
};

static void v2_start(struct v2 *h, uint8_t ver_cmd, uint8_t fam)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

    memcpy(h->b, sig, 12);
    h->b[12] = ver_cmd;
    h->b[13] = fam;
    h->len = 16;
}

static void v2_put(struct v2 *h, const void *bytes, size_t n)
{
    memcpy(h->b + h->len, bytes, n);
    h->len += n;
}

static void v2_port(struct v2 *h, uint16_t port)
{
    uint8_t be[2] = {(uint8_t)(port >> 8), (uint8_t)port};

    v2_put(h, be, 2);
}

/* A TCP address block: IPv4 (fam 0x11) or IPv6 (0x21) by the text. */
static void v2_addresses(struct v2 *h, const char *src, const char *dst, uint16_t sport,
                         uint16_t dport)
{
    uint8_t a[16];

    if (h->b[13] >> 4 == 1) {
        assert_int_equal(inet_pton(AF_INET, src, a), 1);
        v2_put(h, a, 4);
        assert_int_equal(inet_pton(AF_INET, dst, a), 1);
        v2_put(h, a, 4);
    } else {
        assert_int_equal(inet_pton(AF_INET6, src, a), 1);
        v2_put(h, a, 16);
        assert_int_equal(inet_pton(AF_INET6, dst, a), 1);
        v2_put(h, a, 16);
    }
    v2_port(h, sport);
    v2_port(h, dport);
}

static size_t v2_tlv(struct v2 *h, uint8_t type, const void *value, size_t n)
{
    uint8_t head[3] = {type, (uint8_t)(n >> 8), (uint8_t)n};

    v2_put(h, head, 3);
    v2_put(h, value, n);
    return h->len - n; /* the value's offset */
}

/* Write the body length (bytes after the fixed 16). */
static void v2_finish(struct v2 *h)
{
    size_t body = h->len - 16;

    h->b[14] = (uint8_t)(body >> 8);
    h->b[15] = (uint8_t)body;
}

/* Add a CRC32C TLV and fill it in: the last step before sending. */
static void v2_checksum(struct v2 *h)
{
    static const uint8_t zero[4];
    size_t at = v2_tlv(h, 0x03, zero, 4);

    v2_finish(h);
    uint32_t crc = crc32c(h->b, h->len);
    h->b[at] = (uint8_t)(crc >> 24);
    h->b[at + 1] = (uint8_t)(crc >> 16);
    h->b[at + 2] = (uint8_t)(crc >> 8);
    h->b[at + 3] = (uint8_t)crc;
}

static void v2_proxy_tcp4(struct v2 *h)
{
    v2_start(h, 0x21, 0x11);
    v2_addresses(h, "192.0.2.1", "198.51.100.2", 56324, 443);
}

/* ------------------------------------------------------------------------ */
/* The parse contract, checked on every valid header: each prefix shorter
 * than the header gets an answer n with prefix < n <= header length (so a
 * reader that reads up to n bytes never takes a byte after it), and the
 * header followed by other bytes parses the same. */

static void assert_exact_needs(const uint8_t *header, size_t len, unsigned accept)
{
    uint8_t buf[PSUP_PROXY_MAX + 16];
    struct psup_proxy_header whole, h;

    assert_int_equal(psup_proxy_parse(header, len, accept, &whole), 0);
    assert_int_equal(whole.length, len);
    for (size_t k = 0; k < len; k++) {
        int need = psup_proxy_parse(header, k, accept, &h);
        assert_true((size_t)need > k);
        assert_true((size_t)need <= len);
    }
    memcpy(buf, header, len);
    memcpy(buf + len, "\r\nGET / HTTP/1.0\r\n", 16);
    assert_int_equal(psup_proxy_parse(buf, len + 16, accept, &h), 0);
    assert_memory_equal(&h, &whole, offsetof(struct psup_proxy_header, raw));
}

/* ------------------------------------------------------------------------ */
/* Version 1. */

struct v1_valid {
    const char *line;
    const char *src; /* NULL: no addresses */
    const char *dst;
    uint16_t sport, dport;
};

static const struct v1_valid v1_valid[] = {
    {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1", "192.168.0.11", 56324, 443},
    {"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0", "255.255.255.255", 0, 65535},
    {"PROXY TCP4 10.0.0.1 10.200.30.4 9 10\r\n", "10.0.0.1", "10.200.30.4", 9, 10},
    {"PROXY TCP6 2001:db8::1 ::1 1 2\r\n", "2001:db8::1", "::1", 1, 2},
    {"PROXY TCP6 :: 1:: 80 8080\r\n", "::", "1::", 80, 8080},
    {"PROXY TCP6 FFFF:ffff:0:00:000:0000:1:2 1:2:3:4:5:6:7:: 5 6\r\n",
     "ffff:ffff::1:2", "1:2:3:4:5:6:7:0", 5, 6},
    {"PROXY TCP6 ::ffff:192.0.2.1 ::ffff:10.0.0.1 1234 80\r\n", "192.0.2.1", "10.0.0.1", 1234, 80},
    {"PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1.2.3.4 7 8\r\n", "1:2:3:4:5:6:102:304", "::102:304", 7, 8},
    {"PROXY TCP6 1::8 1:2:3::6:7:8 7 8\r\n", "1::8", "1:2:3::6:7:8", 7, 8},
    {"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "65535 65535\r\n", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535},
    {"PROXY UNKNOWN\r\n", NULL, NULL, 0, 0},
    {"PROXY UNKNOWN whatever the proxy \x01 wanted\r\n", NULL, NULL, 0, 0},
    /* The protocol's own example of the longest line: exactly 107 bytes. */
    {"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "65535 65535\r\n", NULL, NULL, 0, 0},
};

static void test_v1_valid(void **state)
{
    struct psup_proxy_header h;
    (void)state;

    assert_int_equal(strlen(v1_valid[ARRAY_LEN(v1_valid) - 1].line), PSUP_PROXY_V1_MAX);
    for (size_t i = 0; i < ARRAY_LEN(v1_valid); i++) {
        const struct v1_valid *c = &v1_valid[i];
        assert_int_equal(parse_text(c->line, PSUP_PROXY_ANY, &h), 0);
        assert_int_equal(h.version, 1);
        assert_int_equal(h.length, strlen(c->line));
        assert_int_equal(h.authority_len + h.unique_id_len, 0);
        if (!c->src) {
            assert_no_addresses(&h);
        } else {
            assert_true(h.has_addresses);
            assert_ip(h.src_addr, c->src);
            assert_ip(h.dst_addr, c->dst);
            assert_int_equal(h.src_port, c->sport);
            assert_int_equal(h.dst_port, c->dport);
        }
        assert_exact_needs((const uint8_t *)c->line, strlen(c->line), PSUP_PROXY_V1);
    }
}

struct invalid {
    const char *line;
    size_t len;
    int err;
};

/* A string literal and its length, which may hold a NUL. */
#define TEXT(s) s, sizeof(s) - 1

static const struct invalid v1_invalid[] = {
    /* Not a PROXY line at all. */
    {TEXT("GET / HTTP/1.1\r\n"), -EPROTO},
    {TEXT("PROXZ TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), -EPROTO},
    {TEXT("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), -EPROTO},
    {TEXT("PROXY\tTCP4 1.2.3.4 1.2.3.4 1 2\r\n"), -EPROTO},
    {TEXT("PROXY \r\n"), -EPROTO},
    {TEXT("PROXY UNKNOWN\n"), -EPROTO},
    /* Line ends: CRLF and only CRLF. */
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1\r 2\r\n"), -EPROTO},
    /* Single spaces, exactly the fields. */
    {TEXT("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), -EPROTO},
    {TEXT(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"), -EPROTO},
    {TEXT("PROXY TCP4\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"), -EPROTO},
    /* Protocol names. */
    {TEXT("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY UNKNOWNX\r\n"), -EPROTO},
    {TEXT("PROXY UNKNOWN\r \r\n"), -EPROTO},
    /* IPv4: four numbers 0-255, no leading zeros. */
    {TEXT("PROXY TCP4 192.168.0.01 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 010.1.1.1 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 00.1.1.1 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.a 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.1000 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 ::1 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 localhost 1 2\r\n"), -EPROTO},
    /* IPv6: RFC 4291 text. */
    {TEXT("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 ::1:2:3:4:5:6:7:8 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1::2::3 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 ::: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 :1:: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 12345:: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 gg:: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 [::1] ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 ::1.2.3.04 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 ::1:2:3:4:5:6:1.2.3.4 ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 1.2.3.4:: ::1 1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP6 ::1.2.3 ::1 1 2\r\n"), -EPROTO},
    /* Ports: 0-65535, no leading zeros, digits only. */
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), -EPROTO},
    {TEXT("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n"), -EPROTO},
    /* Length: no LF in 107 bytes. */
    {TEXT("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "65535 655350\r\n"), -EMSGSIZE},
    {TEXT("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), -EMSGSIZE},
};

static void test_v1_invalid(void **state)
{
    struct psup_proxy_header h;
    (void)state;

    assert_int_equal(v1_invalid[ARRAY_LEN(v1_invalid) - 2].len, PSUP_PROXY_V1_MAX + 1);
    for (size_t i = 0; i < ARRAY_LEN(v1_invalid); i++) {
        const struct invalid *c = &v1_invalid[i];
        assert_int_equal(psup_proxy_parse((const uint8_t *)c->line, c->len, PSUP_PROXY_ANY, &h),
                         c->err);
        assert_no_addresses(&h);
        assert_int_equal(h.length, 0);
    }
}

static void test_v1_incomplete(void **state)
{
    struct psup_proxy_header h;
    (void)state;

    /* Nothing yet: the shortest header of the accepted versions. */
    assert_int_equal(psup_proxy_parse(NULL, 0, PSUP_PROXY_ANY, &h), PSUP_PROXY_V1_MIN);
    assert_int_equal(psup_proxy_parse(NULL, 0, PSUP_PROXY_V1, &h), PSUP_PROXY_V1_MIN);
    assert_int_equal(psup_proxy_parse(NULL, 0, PSUP_PROXY_V2, &h), PSUP_PROXY_V2_FIXED);
    assert_int_equal(parse_text("PRO", PSUP_PROXY_ANY, &h), PSUP_PROXY_V1_MIN);
    assert_int_equal(h.version, 0);
    assert_int_equal(parse_text("PROXY TC", PSUP_PROXY_ANY, &h), PSUP_PROXY_V1_MIN);
    assert_int_equal(h.version, 1);
    /* After the shortest line's worth: one byte more, until the LF. */
    assert_int_equal(parse_text("PROXY TCP4 1.2.3.4", PSUP_PROXY_ANY, &h), 19);
    assert_int_equal(parse_text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", PSUP_PROXY_ANY, &h), 32);
    assert_false(h.has_addresses);
    /* 107 bytes without LF are too many: refused without waiting for more. */
    const struct invalid *longest = &v1_invalid[ARRAY_LEN(v1_invalid) - 1];
    assert_int_equal(psup_proxy_parse((const uint8_t *)longest->line, PSUP_PROXY_V1_MAX,
                                      PSUP_PROXY_ANY, &h), -EMSGSIZE);
    assert_int_equal(psup_proxy_parse((const uint8_t *)longest->line, PSUP_PROXY_V1_MAX - 1,
                                      PSUP_PROXY_ANY, &h), PSUP_PROXY_V1_MAX);
    /* A wrong byte is refused at once, without waiting for a whole line. */
    assert_int_equal(parse_text("G", PSUP_PROXY_ANY, &h), -EPROTO);
    assert_int_equal(parse_text("PROXX", PSUP_PROXY_ANY, &h), -EPROTO);
}

static void test_versions_not_accepted(void **state)
{
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    assert_int_equal(parse_text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PSUP_PROXY_V2, &h),
                     -EPROTONOSUPPORT);
    /* Refused as soon as the signature is complete. */
    assert_int_equal(parse_text("PROXY ", PSUP_PROXY_V2, &h), -EPROTONOSUPPORT);
    assert_int_equal(parse_text("PROXY", PSUP_PROXY_V2, &h), PSUP_PROXY_V1_MIN);
    v2_proxy_tcp4(&v);
    v2_finish(&v);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V1, &h), -EPROTONOSUPPORT);
    assert_int_equal(psup_proxy_parse(v.b, 12, PSUP_PROXY_V1, &h), -EPROTONOSUPPORT);
    assert_int_equal(psup_proxy_parse(v.b, 11, PSUP_PROXY_V1, &h), PSUP_PROXY_V2_FIXED);
    assert_int_equal(psup_proxy_parse(v.b, v.len, 0, &h), -EPROTONOSUPPORT);
}

/* ------------------------------------------------------------------------ */
/* Version 2. */

static void test_v2_tcp4_and_tcp6(void **state)
{
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    v2_proxy_tcp4(&v);
    v2_finish(&v);
    assert_int_equal(v.len, 28);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_ANY, &h), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.length, 28);
    assert_true(h.has_addresses);
    assert_ip(h.src_addr, "192.0.2.1");
    assert_ip(h.dst_addr, "198.51.100.2");
    assert_int_equal(h.src_port, 56324);
    assert_int_equal(h.dst_port, 443);
    assert_int_equal(h.authority_len + h.unique_id_len, 0);
    assert_exact_needs(v.b, v.len, PSUP_PROXY_V2);

    v2_start(&v, 0x21, 0x21);
    v2_addresses(&v, "2001:db8::7", "::ffff:10.1.2.3", 1, 65535);
    v2_finish(&v);
    assert_int_equal(v.len, 52);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
    assert_int_equal(h.length, 52);
    assert_true(h.has_addresses);
    assert_ip(h.src_addr, "2001:db8::7");
    assert_ip(h.dst_addr, "10.1.2.3");
    assert_int_equal(h.src_port, 1);
    assert_int_equal(h.dst_port, 65535);
    assert_exact_needs(v.b, v.len, PSUP_PROXY_ANY);
}

static void test_v2_local_keeps_own_addresses(void **state)
{
    static const uint8_t fams[] = {0x00, 0x11, 0x21, 0x31, 0x12, 0xff};
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    /* The usual health check: no address at all. */
    v2_start(&v, 0x20, 0x00);
    v2_finish(&v);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
    assert_int_equal(h.length, 16);
    assert_no_addresses(&h);
    assert_exact_needs(v.b, v.len, PSUP_PROXY_V2);
    /* With whatever family and block: both are ignored, TLVs too. */
    for (size_t i = 0; i < ARRAY_LEN(fams); i++) {
        v2_start(&v, 0x20, fams[i]);
        v2_put(&v, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d", 13);
        v2_finish(&v);
        assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
        assert_int_equal(h.length, 29);
        assert_no_addresses(&h);
        assert_int_equal(h.authority_len + h.unique_id_len, 0);
    }
}

static void test_v2_tlvs(void **state)
{
    static const uint8_t id[PSUP_PROXY_UNIQUE_ID_MAX] = {0, 1, 2, 0xff};
    static const uint8_t ssl[] = {0x01, 0, 0, 0, 0, 0x21, 0, 7, 'T', 'L', 'S', 'v', '1', '.', '3'};
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x01, "h2", 2);                 /* ALPN: skipped */
    v2_tlv(&v, 0x04, "", 0);                   /* NOOP, empty */
    size_t authority = v2_tlv(&v, 0x02, "www.example.com", 15);
    v2_tlv(&v, 0x20, ssl, sizeof(ssl));         /* SSL with a sub-TLV: skipped whole */
    size_t unique = v2_tlv(&v, 0x05, id, sizeof(id));
    v2_tlv(&v, 0xEA, "\x01vpce-0123", 10);      /* a vendor's type */
    v2_checksum(&v);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
    assert_int_equal(h.length, v.len);
    assert_true(h.has_addresses);
    assert_int_equal(h.authority_off, authority);
    assert_int_equal(h.authority_len, 15);
    assert_memory_equal(v.b + h.authority_off, "www.example.com", 15);
    assert_int_equal(h.unique_id_off, unique);
    assert_int_equal(h.unique_id_len, sizeof(id));
    assert_memory_equal(v.b + h.unique_id_off, id, sizeof(id));
    assert_exact_needs(v.b, v.len, PSUP_PROXY_ANY);

    /* UTF-8 in the authority passes. */
    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x02, "b\xc3\xbc" "cher.example", 15);
    v2_finish(&v);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
    assert_int_equal(h.authority_len, 15);
}

static void test_v2_largest(void **state)
{
    static uint8_t pad[PSUP_PROXY_V2_MAX_BODY];
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x04, pad, PSUP_PROXY_V2_MAX_BODY - 12 - 3);
    v2_finish(&v);
    assert_int_equal(v.len, PSUP_PROXY_MAX);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_V2, &h), 0);
    assert_int_equal(h.length, PSUP_PROXY_MAX);
    assert_exact_needs(v.b, v.len, PSUP_PROXY_ANY);

    /* One byte more is over the limit, refused from the fixed part alone. */
    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x04, pad, PSUP_PROXY_V2_MAX_BODY - 12 - 3 + 1);
    v2_finish(&v);
    assert_int_equal(psup_proxy_parse(v.b, 16, PSUP_PROXY_V2, &h), -EMSGSIZE);
    assert_int_equal(psup_proxy_parse(v.b, 15, PSUP_PROXY_V2, &h), PSUP_PROXY_V2_FIXED);
}

/* A broken v2 header: start from a valid TCP4 one, change one thing. */
enum v2_flaw {
    SIGNATURE, VERSION_1, VERSION_3, COMMAND_2, COMMAND_F, FAMILY_4, TRANSPORT_3,
    UNSPEC, UNIX_STREAM, UDP4, UDP6, INET_NO_TRANSPORT, TCP4_SHORT, TCP6_SHORT,
    TCP6_BLOCK_OF_TCP4, TLV_OVERRUN, TLV_LEFTOVER_1, TLV_LEFTOVER_2, AUTHORITY_LONG,
    AUTHORITY_SPACE, AUTHORITY_CONTROL, AUTHORITY_TWICE, UNIQUE_ID_LONG, UNIQUE_ID_TWICE,
    CRC_WRONG, CRC_SHORT, CRC_TWICE,
};

static void v2_flawed(struct v2 *v, enum v2_flaw flaw)
{
    static const uint8_t block4[12], block6[36];
    uint8_t big[PSUP_PROXY_AUTHORITY_MAX + 1];
    uint8_t fam = flaw == TCP6_SHORT || flaw == TCP6_BLOCK_OF_TCP4 ? 0x21
                  : flaw == FAMILY_4 ? 0x41 : flaw == TRANSPORT_3 ? 0x13
                  : flaw == UNSPEC ? 0x00 : flaw == UNIX_STREAM ? 0x31
                  : flaw == UDP4 ? 0x12 : flaw == UDP6 ? 0x22
                  : flaw == INET_NO_TRANSPORT ? 0x10 : 0x11;
    uint8_t ver_cmd = flaw == VERSION_1 ? 0x11 : flaw == VERSION_3 ? 0x31
                      : flaw == COMMAND_2 ? 0x22 : flaw == COMMAND_F ? 0x2f : 0x21;

    memset(big, 'a', sizeof(big)); /* a clean authority, too long */
    v2_start(v, ver_cmd, fam);
    if (flaw == SIGNATURE)
        v->b[4] = ' ';
    if (flaw == TCP4_SHORT)
        v2_put(v, block4, 11);
    else if (flaw == TCP6_SHORT)
        v2_put(v, block6, 35);
    else if (flaw == UDP6)
        v2_put(v, block6, 36);
    else
        v2_put(v, block4, 12);
    switch (flaw) {
    case TLV_OVERRUN: v2_tlv(v, 0x04, "abcde", 5); v->b[v->len - 6] = 6; break;
    case TLV_LEFTOVER_1: v2_tlv(v, 0x04, "ab", 2); v2_put(v, "\x04", 1); break;
    case TLV_LEFTOVER_2: v2_put(v, "\x04\x00", 2); break;
    case AUTHORITY_LONG: v2_tlv(v, 0x02, big, PSUP_PROXY_AUTHORITY_MAX + 1); break;
    case AUTHORITY_SPACE: v2_tlv(v, 0x02, "a b", 3); break;
    case AUTHORITY_CONTROL: v2_tlv(v, 0x02, "ab\n", 3); break;
    case AUTHORITY_TWICE: v2_tlv(v, 0x02, "a", 1); v2_tlv(v, 0x02, "b", 1); break;
    case UNIQUE_ID_LONG: v2_tlv(v, 0x05, big, PSUP_PROXY_UNIQUE_ID_MAX + 1); break;
    case UNIQUE_ID_TWICE: v2_tlv(v, 0x05, "a", 1); v2_tlv(v, 0x05, "a", 1); break;
    case CRC_WRONG: v2_checksum(v); v->b[17] ^= 1; break;
    case CRC_SHORT: v2_tlv(v, 0x03, "abc", 3); break;
    case CRC_TWICE: v2_tlv(v, 0x03, "abcd", 4); v2_checksum(v); break;
    default: break;
    }
    v2_finish(v);
}

static const struct {
    enum v2_flaw flaw;
    int err;
    size_t refused_at; /* bytes after which the flaw is seen; 0: the whole header */
} v2_invalid[] = {
    {SIGNATURE, -EPROTO, 5},
    {VERSION_1, -EPROTO, 13},
    {VERSION_3, -EPROTO, 13},
    {COMMAND_2, -EPROTO, 13},
    {COMMAND_F, -EPROTO, 13},
    {FAMILY_4, -EPROTO, 14},
    {TRANSPORT_3, -EPROTO, 14},
    {UNSPEC, -EPROTONOSUPPORT, 14},
    {UNIX_STREAM, -EPROTONOSUPPORT, 14},
    {UDP4, -EPROTONOSUPPORT, 14},
    {UDP6, -EPROTONOSUPPORT, 14},
    {INET_NO_TRANSPORT, -EPROTONOSUPPORT, 14},
    {TCP4_SHORT, -EPROTO, 16},
    {TCP6_SHORT, -EPROTO, 16},
    {TCP6_BLOCK_OF_TCP4, -EPROTO, 16},
    {TLV_OVERRUN, -EPROTO, 0},
    {TLV_LEFTOVER_1, -EPROTO, 0},
    {TLV_LEFTOVER_2, -EPROTO, 0},
    {AUTHORITY_LONG, -EPROTO, 0},
    {AUTHORITY_SPACE, -EPROTO, 0},
    {AUTHORITY_CONTROL, -EPROTO, 0},
    {AUTHORITY_TWICE, -EPROTO, 0},
    {UNIQUE_ID_LONG, -EPROTO, 0},
    {UNIQUE_ID_TWICE, -EPROTO, 0},
    {CRC_WRONG, -EPROTO, 0},
    {CRC_SHORT, -EPROTO, 0},
    {CRC_TWICE, -EPROTO, 0},
};

static void test_v2_invalid(void **state)
{
    struct psup_proxy_header h;
    struct v2 v;
    (void)state;

    for (size_t i = 0; i < ARRAY_LEN(v2_invalid); i++) {
        v2_flawed(&v, v2_invalid[i].flaw);
        assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_ANY, &h), v2_invalid[i].err);
        assert_no_addresses(&h);
        assert_int_equal(h.length, 0);
        /* Seen as early as the bytes allow, and not before. */
        size_t at = v2_invalid[i].refused_at ? v2_invalid[i].refused_at : v.len;
        assert_int_equal(psup_proxy_parse(v.b, at, PSUP_PROXY_ANY, &h), v2_invalid[i].err);
        assert_true(psup_proxy_parse(v.b, at - 1, PSUP_PROXY_ANY, &h) > 0);
    }
    /* The checksum's own flaw check is honest: the same header with a
     * correct checksum passes. */
    v2_proxy_tcp4(&v);
    v2_checksum(&v);
    assert_int_equal(psup_proxy_parse(v.b, v.len, PSUP_PROXY_ANY, &h), 0);
}

static void test_crc32c_known_answer(void **state)
{
    (void)state;
    /* RFC 3720 B.4 / the usual check value of CRC-32C. */
    assert_int_equal(crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
}

/* ------------------------------------------------------------------------ */
/* The reader, on a socket pair: fds[0] is psup's side. */

static const char payload[] = "GET / HTTP/1.0\r\n\r\n";

static void make_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* The header read, then exactly the payload still there. */
static void assert_payload_left(int fd)
{
    char buf[sizeof(payload) + 8];

    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), sizeof(payload) - 1);
    assert_memory_equal(buf, payload, sizeof(payload) - 1);
}

static void read_and_check_rest(const uint8_t *header, size_t len, unsigned accept)
{
    static struct psup_proxy_header h, want;
    int fds[2];

    make_pair(fds);
    send_all(fds[1], header, len);
    send_all(fds[1], payload, sizeof(payload) - 1);
    assert_int_equal(psup_proxy_read(fds[0], accept, 2000, &h), 0);
    assert_int_equal(h.length, len);
    assert_memory_equal(h.raw, header, len);
    assert_int_equal(psup_proxy_parse(header, len, accept, &want), 0);
    assert_memory_equal(&h, &want, offsetof(struct psup_proxy_header, raw));
    assert_payload_left(fds[0]);
    close(fds[0]);
    close(fds[1]);
}

static void test_read_leaves_the_rest(void **state)
{
    static const char *lines[] = {
        "PROXY UNKNOWN\r\n", /* 15 bytes: a fixed 16-byte read would take one too many */
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP6 2001:db8::1 ::1 1 2\r\n",
    };
    static uint8_t pad[PSUP_PROXY_V2_MAX_BODY];
    struct v2 v;
    (void)state;

    for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
        read_and_check_rest((const uint8_t *)lines[i], strlen(lines[i]), PSUP_PROXY_ANY);
        read_and_check_rest((const uint8_t *)lines[i], strlen(lines[i]), PSUP_PROXY_V1);
    }
    v2_start(&v, 0x20, 0x00);
    v2_finish(&v);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_ANY);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_V2);
    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x02, "example.org", 11);
    v2_checksum(&v);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_ANY);
    /* Longer than a v1 line's worth, and the longest. */
    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x04, pad, 200);
    v2_finish(&v);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_ANY);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_V2);
    v2_proxy_tcp4(&v);
    v2_tlv(&v, 0x04, pad, PSUP_PROXY_V2_MAX_BODY - 15);
    v2_finish(&v);
    read_and_check_rest(v.b, v.len, PSUP_PROXY_ANY);
}

/* A sender on its own thread: the header byte by byte (optionally paced),
 * then the payload. Stops early when psup's side is closed. */
struct sender {
    int fd;
    const uint8_t *bytes;
    size_t len;
    long pause_ns;
    pthread_t thread;
};

static void *send_slowly(void *arg)
{
    struct sender *s = arg;
    struct timespec pause = {.tv_nsec = s->pause_ns};

    for (size_t i = 0; i < s->len; i++) {
        if (send(s->fd, s->bytes + i, 1, MSG_NOSIGNAL) != 1)
            return NULL;
        if (s->pause_ns)
            nanosleep(&pause, NULL);
    }
    send(s->fd, payload, sizeof(payload) - 1, MSG_NOSIGNAL);
    return NULL;
}

static void start_sender(struct sender *s, int fd, const void *bytes, size_t len, long pause_ns)
{
    *s = (struct sender){.fd = fd, .bytes = bytes, .len = len, .pause_ns = pause_ns};
    assert_int_equal(pthread_create(&s->thread, NULL, send_slowly, s), 0);
}

static void test_read_in_pieces(void **state)
{
    static const char line[] = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 1\r\n";
    static struct psup_proxy_header h;
    struct sender s;
    struct v2 v;
    int fds[2];
    (void)state;

    /* However the bytes happen to be split, the header and only it. */
    for (int round = 0; round < 20; round++) {
        make_pair(fds);
        start_sender(&s, fds[1], line, sizeof(line) - 1, 0);
        assert_int_equal(psup_proxy_read(fds[0], PSUP_PROXY_ANY, 5000, &h), 0);
        assert_int_equal(h.length, sizeof(line) - 1);
        assert_ip(h.src_addr, "2001:db8::1");
        assert_int_equal(pthread_join(s.thread, NULL), 0);
        assert_payload_left(fds[0]);
        close(fds[0]);
        close(fds[1]);
    }
    v2_start(&v, 0x21, 0x21);
    v2_addresses(&v, "2001:db8::1", "2001:db8::2", 7, 8);
    v2_tlv(&v, 0x05, "id", 2);
    v2_finish(&v);
    for (int round = 0; round < 20; round++) {
        make_pair(fds);
        start_sender(&s, fds[1], v.b, v.len, 0);
        assert_int_equal(psup_proxy_read(fds[0], PSUP_PROXY_ANY, 5000, &h), 0);
        assert_int_equal(h.length, v.len);
        assert_int_equal(h.unique_id_len, 2);
        assert_int_equal(pthread_join(s.thread, NULL), 0);
        assert_payload_left(fds[0]);
        close(fds[0]);
        close(fds[1]);
    }
}

/* Read with a short timeout; returns the result and checks the time it
 * took: at least the timeout, and not much more. */
static int read_timed(int fd, int timeout_ms)
{
    static struct psup_proxy_header h;
    double start = now_seconds();
    int r = psup_proxy_read(fd, PSUP_PROXY_ANY, timeout_ms, &h);
    double took = now_seconds() - start;

    assert_true(took >= timeout_ms / 1000.0);
    assert_true(took < timeout_ms / 1000.0 + 1.0);
    return r;
}

static void test_read_timeout(void **state)
{
    int fds[2];
    (void)state;

    make_pair(fds);
    assert_int_equal(read_timed(fds[0], 100), -ETIMEDOUT);
    /* Half a header, and no more. */
    send_all(fds[1], "PROXY TCP4 1.2.3.4 ", 19);
    assert_int_equal(read_timed(fds[0], 100), -ETIMEDOUT);
    close(fds[0]);
    close(fds[1]);

    make_pair(fds);
    send_all(fds[1], "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
    assert_int_equal(read_timed(fds[0], 100), -ETIMEDOUT);
    close(fds[0]);
    close(fds[1]);
}

/* A byte every 20 ms never completes a 100 ms deadline: the deadline is for
 * the whole header, not for each read. */
static void test_read_trickle_does_not_extend(void **state)
{
    static const char line[] = "PROXY TCP4 192.168.100.100 192.168.100.101 65535 65535\r\n";
    struct sender s;
    int fds[2];
    (void)state;

    make_pair(fds);
    start_sender(&s, fds[1], line, sizeof(line) - 1, 20 * 1000000L);
    assert_int_equal(read_timed(fds[0], 100), -ETIMEDOUT);
    close(fds[0]); /* the sender's next send fails: it stops */
    assert_int_equal(pthread_join(s.thread, NULL), 0);
    close(fds[1]);
}

/* Send bytes on a fresh pair (then shut the sending side, or not), and
 * read a header from the other side. */
static int read_sent(const void *bytes, size_t n, bool shut, unsigned accept)
{
    static struct psup_proxy_header h;
    int fds[2];

    make_pair(fds);
    if (n)
        send_all(fds[1], bytes, n);
    if (shut)
        shutdown(fds[1], SHUT_WR);
    int r = psup_proxy_read(fds[0], accept, 5000, &h);
    close(fds[0]);
    close(fds[1]);
    return r;
}

static void test_read_early_close(void **state)
{
    (void)state;

    assert_int_equal(read_sent("", 0, true, PSUP_PROXY_ANY), -ECONNRESET);
    assert_int_equal(read_sent("PROXY TCP4 1.2.3.4 5.6.7.8", 26, true, PSUP_PROXY_ANY),
                     -ECONNRESET);
    assert_int_equal(read_sent("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x01", 17, true,
                               PSUP_PROXY_ANY), -ECONNRESET);
}

static void test_read_refusals(void **state)
{
    static struct psup_proxy_header h;
    char line[110];
    (void)state;

    assert_int_equal(read_sent(payload, sizeof(payload) - 1, false, PSUP_PROXY_ANY), -EPROTO);
    assert_int_equal(read_sent("PROXY UNKNOWN\r\n", 15, false, PSUP_PROXY_V2),
                     -EPROTONOSUPPORT);
    /* No LF in 107 bytes: refused, not waited on. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    assert_int_equal(read_sent(line, sizeof(line), false, PSUP_PROXY_ANY), -EMSGSIZE);
    assert_int_equal(psup_proxy_read(0, PSUP_PROXY_ANY, 0, &h), -EINVAL);
}

/* Over TCP on loopback, with the header in two segments. */
static void test_read_tcp(void **state)
{
    static const char line[] = "PROXY TCP4 203.0.113.9 127.0.0.1 40000 7000\r\n";
    static struct psup_proxy_header h;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int one = 1;
    (void)state;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(client, (struct sockaddr *)&sin, sizeof(sin)), 0);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(conn >= 0);
    send_all(client, line, 20);
    send_all(client, line + 20, sizeof(line) - 1 - 20);
    send_all(client, payload, sizeof(payload) - 1);

    assert_int_equal(psup_proxy_read(conn, PSUP_PROXY_ANY, 5000, &h), 0);
    assert_int_equal(h.length, sizeof(line) - 1);
    assert_ip(h.src_addr, "203.0.113.9");
    assert_int_equal(h.src_port, 40000);
    /* The payload may still be on its way: wait for it with a bound. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[sizeof(payload) + 8];
    assert_int_equal(recv(conn, buf, sizeof(payload) - 1, MSG_WAITALL), sizeof(payload) - 1);
    assert_memory_equal(buf, payload, sizeof(payload) - 1);
    close(conn);
    close(client);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v1_incomplete),
        cmocka_unit_test(test_versions_not_accepted),
        cmocka_unit_test(test_v2_tcp4_and_tcp6),
        cmocka_unit_test(test_v2_local_keeps_own_addresses),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_largest),
        cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test(test_read_leaves_the_rest),
        cmocka_unit_test(test_read_in_pieces),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_read_trickle_does_not_extend),
        cmocka_unit_test(test_read_early_close),
        cmocka_unit_test(test_read_refusals),
        cmocka_unit_test(test_read_tcp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
