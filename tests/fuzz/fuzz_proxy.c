/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for lib/child/proxy.c: arbitrary bytes as the start of a
 * connection. Besides the sanitizers, it checks the contract of proxy.h:
 *
 * - every answer is one of the documented ones, and an error or an
 *   incomplete header leaves no address behind;
 * - a complete header lies within the bytes, ends where its version says
 *   (v1: the first CRLF; v2: 16 + its length), and carries addresses only
 *   for v1 TCP4/TCP6 and v2 PROXY, equal to the bytes (v2) or to what
 *   inet_pton makes of the text (v1);
 * - v1 TCP4/TCP6 lines are accepted exactly when an independent check
 *   (inet_pton, strict decimal ports) accepts them;
 * - every prefix of a complete header is answered "at least n" with n
 *   within the header: the reader never reads past it;
 * - the versions accepted only select, never change, the result;
 * - psup_proxy_read on a socket holding the bytes agrees with the parser
 *   and leaves exactly the bytes after the header unread.
 *
 * Built by tests/fuzz/run.sh (clang, libFuzzer) or with tests/fuzz/replay.c
 * (any compiler, the seed corpus only), with the code under test:
 *
 * fuzz-sources: lib/child/proxy.c
 * fuzz-max-len: 2300
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child/proxy.h"

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_proxy: %s:%d: invariant broken: %s\n", __FILE__,    \
                    __LINE__, #cond);                                                 \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#define FIELDS_SIZE offsetof(struct psup_proxy_header, raw)

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* 2 KiB each: kept off the stack. */
static struct psup_proxy_header result, other, from_socket;
static uint8_t leftover[PSUP_PROXY_MAX + 4096];

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void check_nothing_kept(const struct psup_proxy_header *h)
{
    CHECK(!h->has_addresses);
    CHECK(h->length == 0);
    CHECK(all_zero(h->src_addr, 16) && all_zero(h->dst_addr, 16));
    CHECK(h->src_port == 0 && h->dst_port == 0);
    CHECK(h->authority_len == 0 && h->unique_id_len == 0);
}

/* ------------------------------------------------------------------------ */
/* Version 1: an independent judge of TCP4/TCP6 lines. */

static bool oracle_port(const char *s, unsigned *port)
{
    size_t n = strlen(s);

    if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
        return false;
    *port = (unsigned)strtoul(s, NULL, 10);
    return *port <= 65535;
}

static bool oracle_ip(int family, const char *s, uint8_t out[16])
{
    uint8_t v4[4];

    if (family == AF_INET6)
        return inet_pton(AF_INET6, s, out) == 1;
    if (inet_pton(AF_INET, s, v4) != 1)
        return false;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
    return true;
}

/* The fields of a "PROXY TCPx " line without its CRLF, judged with libc:
 * exactly four fields separated by single spaces. */
struct v1_expect {
    uint8_t src[16], dst[16];
    unsigned sport, dport;
};

static bool oracle_v1(const uint8_t *line, size_t n, struct v1_expect *e)
{
    char text[PSUP_PROXY_V1_MAX + 1];
    char *field[5];
    int nfields = 0;
    int family = line[9] == '6' ? AF_INET6 : AF_INET;

    if (n - 11 >= sizeof(text) || memchr(line + 11, 0, n - 11))
        return false;
    memcpy(text, line + 11, n - 11);
    text[n - 11] = '\0';
    for (char *p = text, *sp; nfields < 5; p = sp + 1) {
        field[nfields++] = p;
        if (!(sp = strchr(p, ' ')))
            break;
        *sp = '\0';
    }
    return nfields == 4 && oracle_ip(family, field[0], e->src) &&
           oracle_ip(family, field[1], e->dst) && oracle_port(field[2], &e->sport) &&
           oracle_port(field[3], &e->dport);
}

static void check_v1(const uint8_t *data, size_t size, int r, const struct psup_proxy_header *h)
{
    const uint8_t *lf = memchr(data, '\n', size < PSUP_PROXY_V1_MAX ? size : PSUP_PROXY_V1_MAX);

    if (r == 0) {
        CHECK(lf && (size_t)(lf - data) + 1 == h->length);
        CHECK(h->length >= PSUP_PROXY_V1_MIN && data[h->length - 2] == '\r');
        CHECK(h->authority_len == 0 && h->unique_id_len == 0);
    }
    if (!lf || lf - data < 13 || lf[-1] != '\r')
        return;
    size_t line = (size_t)(lf - data) - 1; /* without CRLF */
    bool tcp = memcmp(data, "PROXY TCP4 ", 11) == 0 || memcmp(data, "PROXY TCP6 ", 11) == 0;
    if (!tcp) {
        CHECK(!h->has_addresses);
        return;
    }
    struct v1_expect e;
    bool valid = oracle_v1(data, line, &e);
    CHECK(valid == (r == 0));
    if (valid) {
        CHECK(h->has_addresses);
        CHECK(memcmp(h->src_addr, e.src, 16) == 0 && memcmp(h->dst_addr, e.dst, 16) == 0);
        CHECK(h->src_port == e.sport && h->dst_port == e.dport);
    }
}

/* ------------------------------------------------------------------------ */
/* Version 2. */

static void check_v2(const uint8_t *data, const struct psup_proxy_header *h)
{
    size_t total = 16 + ((size_t)data[14] << 8 | data[15]);
    bool proxy = (data[12] & 0xf) == 1;
    size_t block = data[13] == 0x11 ? 12 : 36;

    CHECK(memcmp(data, v2_signature, 12) == 0 && data[12] >> 4 == 2);
    CHECK(h->length == total && total <= PSUP_PROXY_MAX);
    CHECK(h->has_addresses == proxy);
    if (!proxy) {
        CHECK(h->authority_len == 0 && h->unique_id_len == 0);
        return;
    }
    CHECK(data[13] == 0x11 || data[13] == 0x21);
    const uint8_t *a = data + 16;
    if (block == 12) {
        CHECK(all_zero(h->src_addr, 10) && h->src_addr[10] == 0xff && h->src_addr[11] == 0xff);
        CHECK(memcmp(h->src_addr + 12, a, 4) == 0 && memcmp(h->dst_addr + 12, a + 4, 4) == 0);
    } else {
        CHECK(memcmp(h->src_addr, a, 16) == 0 && memcmp(h->dst_addr, a + 16, 16) == 0);
    }
    CHECK(h->src_port == (a[block - 4] << 8 | a[block - 3]));
    CHECK(h->dst_port == (a[block - 2] << 8 | a[block - 1]));
    /* Exposed TLV values lie in the TLV area, after their 3-byte head. */
    if (h->authority_len) {
        CHECK(h->authority_off >= 16 + block + 3 && h->authority_len <= PSUP_PROXY_AUTHORITY_MAX);
        CHECK((size_t)h->authority_off + h->authority_len <= total);
        CHECK(data[h->authority_off - 3] == 0x02);
        for (size_t i = 0; i < h->authority_len; i++)
            CHECK(data[h->authority_off + i] > ' ' && data[h->authority_off + i] != 0x7f);
    }
    if (h->unique_id_len) {
        CHECK(h->unique_id_off >= 16 + block + 3 && h->unique_id_len <= PSUP_PROXY_UNIQUE_ID_MAX);
        CHECK((size_t)h->unique_id_off + h->unique_id_len <= total);
        CHECK(data[h->unique_id_off - 3] == 0x05);
    }
}

/* ------------------------------------------------------------------------ */

static void check_answer(size_t size, unsigned accept, int r, const struct psup_proxy_header *h)
{
    if (r < 0) {
        CHECK(r == -EPROTO || r == -EPROTONOSUPPORT || r == -EMSGSIZE);
        CHECK(all_zero(h, FIELDS_SIZE));
        return;
    }
    if (r > 0) {
        CHECK((size_t)r > size && r <= PSUP_PROXY_MAX);
        check_nothing_kept(h);
        return;
    }
    CHECK(h->version == 1 || h->version == 2);
    CHECK(accept & (h->version == 1 ? PSUP_PROXY_V1 : PSUP_PROXY_V2));
    CHECK(h->length > 0 && h->length <= size);
    if (!h->has_addresses)
        CHECK(all_zero(h->src_addr, 16) && all_zero(h->dst_addr, 16) && h->src_port == 0 &&
              h->dst_port == 0);
}

/* Each prefix of a complete header of length len: "at least n", with
 * prefix < n <= len. All of them for short headers, a sample otherwise. */
static void check_prefixes(const uint8_t *data, size_t len, unsigned accept)
{
    size_t step = len <= 128 ? 1 : len / 61 + 1;

    for (size_t k = 0; k < len; k += (k < 20 || k + 20 > len) ? 1 : step) {
        int need = psup_proxy_parse(data, k, accept, &other);
        CHECK(need > 0 && (size_t)need > k && (size_t)need <= len);
    }
}

/* The reader on a socket holding the bytes, its end shut: the same answer
 * as the parser, and the rest left unread. */
static void check_reader(const uint8_t *data, size_t size, unsigned accept, int r)
{
    int fds[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    CHECK(size == 0 || send(fds[1], data, size, MSG_NOSIGNAL) == (ssize_t)size);
    shutdown(fds[1], SHUT_WR);
    int rr = psup_proxy_read(fds[0], accept, 10000, &from_socket);
    CHECK(rr == (r > 0 ? -ECONNRESET : r));
    if (rr == 0) {
        CHECK(memcmp(&from_socket, &result, FIELDS_SIZE) == 0);
        CHECK(memcmp(from_socket.raw, data, result.length) == 0);
        ssize_t rest = recv(fds[0], leftover, sizeof(leftover), MSG_DONTWAIT);
        CHECK((size_t)(rest < 0 ? 0 : rest) == size - result.length);
        CHECK(memcmp(leftover, data + result.length, size - result.length) == 0);
    }
    close(fds[0]);
    close(fds[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned masks[] = {PSUP_PROXY_ANY, PSUP_PROXY_V1, PSUP_PROXY_V2};
    int r = psup_proxy_parse(data, size, PSUP_PROXY_ANY, &result);

    check_answer(size, PSUP_PROXY_ANY, r, &result);
    if (size > 0 && data[0] == 'P' && r <= 0)
        check_v1(data, size, r, &result);
    if (r == 0 && result.version == 2)
        check_v2(data, &result);
    if (r == 0) {
        check_prefixes(data, result.length, PSUP_PROXY_ANY);
        CHECK(psup_proxy_parse(data, result.length, PSUP_PROXY_ANY, &other) == 0);
        CHECK(memcmp(&other, &result, FIELDS_SIZE) == 0);
    }
    /* One version only: the same header, or "not this version". */
    for (size_t i = 1; i < 3; i++) {
        int ri = psup_proxy_parse(data, size, masks[i], &other);
        check_answer(size, masks[i], ri, &other);
        if (r == 0 && (masks[i] & result.version))
            CHECK(ri == 0 && memcmp(&other, &result, FIELDS_SIZE) == 0);
        if (r == 0 && !(masks[i] & result.version))
            CHECK(ri == -EPROTONOSUPPORT);
    }
    if (size <= PSUP_PROXY_MAX + 1024)
        check_reader(data, size, PSUP_PROXY_ANY, r);
    return 0;
}
