/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol header: a strict parser (spec/proxy.md says what is
 * accepted) and a reader that takes exactly the header off a socket.
 *
 * Runs in a worker that shares the supervisor's memory (see proxy.h): no
 * libc function but memcmp/memchr, system calls through psup_sys() only.
 * Built without sanitizers like worker.c; the unit tests and the fuzzer
 * build their own sanitized copy.
 */
#include "child/proxy.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "proto/rawsys.h"

static const uint8_t v1_signature[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Version 2, byte 13: version (high nibble) and command. */
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
/* Byte 14: address family (high nibble) and transport. */
#define V2_FAM_UNSPEC 0x0
#define V2_FAM_INET 0x1
#define V2_FAM_INET6 0x2
#define V2_FAM_UNIX 0x3
#define V2_TRANSPORT_STREAM 0x1
#define V2_TRANSPORT_DGRAM 0x2
/* Address blocks: two addresses and two ports. */
#define V2_INET_BLOCK 12
#define V2_INET6_BLOCK 36

#define TLV_AUTHORITY 0x02
#define TLV_CRC32C 0x03
#define TLV_UNIQUE_ID 0x05
#define TLV_HEADER 3

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)be16(p) << 16 | be16(p + 2);
}

/* IPv4 as psup keeps every address (struct psup_peer): ::ffff:a.b.c.d. */
static void v4_mapped(const uint8_t v4[4], uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

/* ------------------------------------------------------------------------ */
/* Version 1: text. The fields are parsed here rather than with inet_pton or
 * strtol, which may set errno and read the locale. */

/* A span of the line still to parse. */
struct cursor {
    const uint8_t *p;
    const uint8_t *end;
};

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uint8_t c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A decimal number of s[0..n) without a leading zero ("0" itself is fine:
 * the protocol forbids leading zeros, which some read as octal), at most
 * max. */
static bool parse_decimal(const uint8_t *s, size_t n, unsigned max, unsigned *value)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return false;
    *value = v;
    return true;
}

/* A dotted quad: exactly four numbers 0-255, no leading zeros. */
static bool parse_ipv4(const uint8_t *s, size_t n, uint8_t out[4])
{
    const uint8_t *end = s + n;

    for (int part = 0; part < 4; part++) {
        const uint8_t *dot = part < 3 ? memchr(s, '.', (size_t)(end - s)) : end;
        unsigned v;
        if (!dot || !parse_decimal(s, (size_t)(dot - s), 255, &v))
            return false;
        out[part] = (uint8_t)v;
        s = dot + 1;
    }
    return true;
}

/* One IPv6 group: 1 to 4 hex digits at c->p, which advances past them. */
static bool take_hex_group(struct cursor *c, unsigned *group)
{
    unsigned v = 0;
    int digits = 0;
    int d;

    while (c->p < c->end && (d = hex_value(*c->p)) >= 0) {
        if (++digits > 4)
            return false;
        v = v << 4 | (unsigned)d;
        c->p++;
    }
    *group = v;
    return digits > 0;
}

/* The groups of an IPv6 address before and after "::" (gap < 0: none), to
 * be spread over 16 bytes. */
struct ipv6_groups {
    uint16_t g[8];
    int n;
    int gap;
};

static void spread_groups(const struct ipv6_groups *in, uint8_t out[16])
{
    int zeros = 8 - in->n;
    int at = 0;

    memset(out, 0, 16);
    for (int i = 0; i < in->n; i++) {
        if (i == in->gap)
            at += zeros;
        out[2 * at] = (uint8_t)(in->g[i] >> 8);
        out[2 * at + 1] = (uint8_t)in->g[i];
        at++;
    }
}

/* The text forms of RFC 4291 section 2.2: eight groups of 1-4 hex digits,
 * one "::" for one or more zero groups, and a dotted quad for the last 32
 * bits (::ffff:192.0.2.1, as inet_ntop writes a v4-mapped address). No zone
 * index. */
static bool parse_ipv6(const uint8_t *s, size_t n, uint8_t out[16])
{
    struct cursor c = {s, s + n};
    struct ipv6_groups gr = {.gap = -1};

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gr.gap = 0;
        c.p += 2;
    }
    while (c.p < c.end) {
        size_t left = (size_t)(c.end - c.p);
        unsigned group;
        if (memchr(c.p, '.', left) && !memchr(c.p, ':', left)) {
            /* The dotted-quad tail: two groups, and the end. */
            uint8_t v4[4];
            if (gr.n > 6 || !parse_ipv4(c.p, left, v4))
                return false;
            gr.g[gr.n++] = (uint16_t)(v4[0] << 8 | v4[1]);
            gr.g[gr.n++] = (uint16_t)(v4[2] << 8 | v4[3]);
            break;
        }
        if (gr.n == 8 || !take_hex_group(&c, &group))
            return false;
        gr.g[gr.n++] = (uint16_t)group;
        if (c.p == c.end)
            break;
        if (*c.p++ != ':' || c.p == c.end)
            return false;
        if (*c.p == ':') {
            if (gr.gap >= 0)
                return false;
            gr.gap = gr.n;
            c.p++;
        }
    }
    /* "::" stands for at least one group. */
    if (gr.gap < 0 ? gr.n != 8 : gr.n > 7)
        return false;
    spread_groups(&gr, out);
    return true;
}

/* The next field: up to the next space (which is consumed), or with last
 * set the rest of the line, which must then hold no space. Empty fields
 * (two spaces in a row) are returned empty, and no parser accepts them. */
static bool take_field(struct cursor *c, bool last, struct cursor *field)
{
    const uint8_t *space = memchr(c->p, ' ', (size_t)(c->end - c->p));

    field->p = c->p;
    if (last) {
        field->end = c->end;
        c->p = c->end;
        return space == NULL;
    }
    if (!space)
        return false;
    field->end = space;
    c->p = space + 1;
    return true;
}

static bool take_address(struct cursor *c, bool ipv6, uint8_t out[16])
{
    struct cursor f;
    uint8_t v4[4];

    if (!take_field(c, false, &f))
        return false;
    if (ipv6)
        return parse_ipv6(f.p, (size_t)(f.end - f.p), out);
    if (!parse_ipv4(f.p, (size_t)(f.end - f.p), v4))
        return false;
    v4_mapped(v4, out);
    return true;
}

static bool take_port(struct cursor *c, bool last, uint16_t *port)
{
    struct cursor f;
    unsigned v;

    if (!take_field(c, last, &f) || !parse_decimal(f.p, (size_t)(f.end - f.p), 65535, &v))
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool starts_with(const struct cursor *c, const char *word)
{
    size_t n = strlen(word);

    return (size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0;
}

/* The line after "PROXY " and before CRLF. */
static int parse_v1_fields(struct cursor *c, struct psup_proxy_header *out)
{
    bool ipv6;

    if (starts_with(c, "UNKNOWN")) {
        /* The protocol has the receiver ignore the rest of an UNKNOWN line
         * (it may repeat addresses psup could not use anyway). */
        c->p += 7;
        return c->p == c->end || *c->p == ' ' ? 0 : -EPROTO;
    }
    if (starts_with(c, "TCP4 "))
        ipv6 = false;
    else if (starts_with(c, "TCP6 "))
        ipv6 = true;
    else
        return -EPROTO;
    c->p += 5;
    if (!take_address(c, ipv6, out->src_addr) || !take_address(c, ipv6, out->dst_addr) ||
        !take_port(c, false, &out->src_port) || !take_port(c, true, &out->dst_port))
        return -EPROTO;
    out->has_addresses = true;
    return 0;
}

/* buf starts with "PROXY ". The line ends at the first LF, which must come
 * within PSUP_PROXY_V1_MAX bytes and right after a CR. */
static int parse_v1(const uint8_t *buf, size_t len, struct psup_proxy_header *out)
{
    size_t scan = len < PSUP_PROXY_V1_MAX ? len : PSUP_PROXY_V1_MAX;
    const uint8_t *lf = memchr(buf, '\n', scan);

    if (!lf) {
        if (len >= PSUP_PROXY_V1_MAX)
            return -EMSGSIZE;
        return len + 1 > PSUP_PROXY_V1_MIN ? (int)len + 1 : PSUP_PROXY_V1_MIN;
    }
    size_t line = (size_t)(lf - buf) + 1;
    if (line < PSUP_PROXY_V1_MIN || lf[-1] != '\r')
        return -EPROTO;
    struct cursor c = {buf + sizeof(v1_signature), lf - 1};
    int r = parse_v1_fields(&c, out);
    if (r < 0)
        return r;
    out->length = (uint16_t)line;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Version 2: binary. */

/* CRC32C (Castagnoli, as in SCTP, RFC 4960 appendix B), bit by bit: at most
 * PSUP_PROXY_MAX bytes, once per header, so no table is worth its cache
 * lines. */
static uint32_t crc32c_byte(uint32_t crc, uint8_t byte)
{
    crc ^= byte;
    for (int bit = 0; bit < 8; bit++)
        crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    return crc;
}

/* The header's CRC32C with the 4 bytes of the checksum's value at
 * value_off counted as zeros, as the sender computed it. */
static uint32_t header_crc32c(const uint8_t *buf, size_t len, size_t value_off)
{
    uint32_t crc = 0xFFFFFFFFu;

    for (size_t i = 0; i < len; i++)
        crc = crc32c_byte(crc, i - value_off < 4 ? 0 : buf[i]);
    return ~crc;
}

/* The authority is a host name: no control character, no space (it may
 * reach a handler's environment, and logs). UTF-8 bytes pass. */
static bool authority_is_clean(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* The TLV types that may appear once, as bits of tlv_walk.seen. */
#define SEEN_AUTHORITY 1u
#define SEEN_UNIQUE_ID 2u
#define SEEN_CRC32C 4u

/* What the TLV walk found besides the exposed fields. */
struct tlv_walk {
    unsigned seen;
    size_t crc_off; /* offset of the CRC32C value, if seen */
};

static unsigned seen_bit(uint8_t type)
{
    switch (type) {
    case TLV_AUTHORITY: return SEEN_AUTHORITY;
    case TLV_UNIQUE_ID: return SEEN_UNIQUE_ID;
    case TLV_CRC32C: return SEEN_CRC32C;
    default: return 0;
    }
}

static int take_tlv(uint8_t type, size_t off, size_t n, const uint8_t *buf,
                    struct tlv_walk *w, struct psup_proxy_header *out)
{
    unsigned bit = seen_bit(type);

    if (w->seen & bit)
        return -EPROTO; /* which of two would be the one? */
    w->seen |= bit;
    switch (type) {
    case TLV_AUTHORITY:
        if (n > PSUP_PROXY_AUTHORITY_MAX || !authority_is_clean(buf + off, n))
            return -EPROTO;
        out->authority_off = (uint16_t)off;
        out->authority_len = (uint16_t)n;
        return 0;
    case TLV_UNIQUE_ID:
        if (n > PSUP_PROXY_UNIQUE_ID_MAX)
            return -EPROTO;
        out->unique_id_off = (uint16_t)off;
        out->unique_id_len = (uint16_t)n;
        return 0;
    case TLV_CRC32C:
        if (n != 4)
            return -EPROTO;
        w->crc_off = off;
        return 0;
    default:
        return 0; /* ALPN, NOOP, SSL, NETNS, vendors' types: not used */
    }
}

/* The TLVs in buf[pos..end): each must fit, and nothing may be left over
 * that is too short to be one. */
static int walk_tlvs(const uint8_t *buf, size_t pos, size_t end, struct psup_proxy_header *out)
{
    struct tlv_walk w = {0};

    while (pos < end) {
        if (end - pos < TLV_HEADER)
            return -EPROTO;
        size_t n = be16(buf + pos + 1);
        size_t value = pos + TLV_HEADER;
        if (n > end - value)
            return -EPROTO;
        int r = take_tlv(buf[pos], value, n, buf, &w, out);
        if (r < 0)
            return r;
        pos = value + n;
    }
    if ((w.seen & SEEN_CRC32C) && header_crc32c(buf, end, w.crc_off) != be32(buf + w.crc_off))
        return -EPROTO;
    return 0;
}

/* Byte 13, as soon as it is there: only version 2, LOCAL or PROXY. */
static int check_version_command(uint8_t ver_cmd)
{
    if (ver_cmd >> 4 != V2_VERSION || (ver_cmd & 0xf) > V2_CMD_PROXY)
        return -EPROTO;
    return 0;
}

/* Byte 14 of a PROXY command: the size of its address block, or why not.
 * Values the protocol does not define are errors; defined ones without a
 * TCP address are refused (spec/proxy.md: a proxied client psup cannot
 * name would be judged as the proxy itself). */
static int address_block_size(uint8_t fam)
{
    unsigned family = fam >> 4;
    unsigned transport = fam & 0xf;

    if (family > V2_FAM_UNIX || transport > V2_TRANSPORT_DGRAM)
        return -EPROTO;
    if (transport != V2_TRANSPORT_STREAM)
        return -EPROTONOSUPPORT;
    if (family == V2_FAM_INET)
        return V2_INET_BLOCK;
    if (family == V2_FAM_INET6)
        return V2_INET6_BLOCK;
    return -EPROTONOSUPPORT; /* UNSPEC, UNIX */
}

static void take_addresses(const uint8_t *block, int size, struct psup_proxy_header *out)
{
    const uint8_t *ports = block + size - 4;

    if (size == V2_INET_BLOCK) {
        v4_mapped(block, out->src_addr);
        v4_mapped(block + 4, out->dst_addr);
    } else {
        memcpy(out->src_addr, block, 16);
        memcpy(out->dst_addr, block + 16, 16);
    }
    out->src_port = (uint16_t)be16(ports);
    out->dst_port = (uint16_t)be16(ports + 2);
    out->has_addresses = true;
}

/* buf starts with the 12-byte signature. Each byte is checked as soon as
 * it is there, so a wrong header is refused before its body is waited for. */
static int parse_v2(const uint8_t *buf, size_t len, struct psup_proxy_header *out)
{
    int block = 0;

    if (len > 12 && check_version_command(buf[12]) < 0)
        return -EPROTO;
    bool proxy = len > 12 && (buf[12] & 0xf) == V2_CMD_PROXY;
    /* LOCAL (the proxy's own connection, a health check): the protocol
     * has the receiver ignore the family and the whole block. */
    if (proxy && len > 13 && (block = address_block_size(buf[13])) < 0)
        return block;
    if (len < PSUP_PROXY_V2_FIXED)
        return PSUP_PROXY_V2_FIXED;
    size_t body = be16(buf + 14);
    if (body > PSUP_PROXY_V2_MAX_BODY)
        return -EMSGSIZE;
    if (body < (size_t)block)
        return -EPROTO;
    size_t total = PSUP_PROXY_V2_FIXED + body;
    if (len < total)
        return (int)total;
    if (proxy) {
        int r = walk_tlvs(buf, PSUP_PROXY_V2_FIXED + (size_t)block, total, out);
        if (r < 0)
            return r;
        take_addresses(buf + PSUP_PROXY_V2_FIXED, block, out);
    }
    out->length = (uint16_t)total;
    return 0;
}

/* ------------------------------------------------------------------------ */

/* Which version the first bytes are a signature of: 1 or 2 once it is
 * complete, 0 while they are a prefix of one, -EPROTO otherwise. The first
 * byte already tells the two apart. */
static int detect_version(const uint8_t *buf, size_t len)
{
    const uint8_t *sig = v1_signature;
    size_t sig_len = sizeof(v1_signature);

    if (len == 0)
        return 0;
    if (buf[0] == v2_signature[0]) {
        sig = v2_signature;
        sig_len = sizeof(v2_signature);
    }
    if (memcmp(buf, sig, len < sig_len ? len : sig_len) != 0)
        return -EPROTO;
    if (len < sig_len)
        return 0;
    return sig == v1_signature ? 1 : 2;
}

/* The shortest header the bytes so far may start. */
static int shortest_header(const uint8_t *buf, size_t len, unsigned accept)
{
    if (len > 0)
        return buf[0] == v2_signature[0] ? PSUP_PROXY_V2_FIXED : PSUP_PROXY_V1_MIN;
    return (accept & PSUP_PROXY_V1) ? PSUP_PROXY_V1_MIN : PSUP_PROXY_V2_FIXED;
}

/* Every field but raw, which may be the buffer being parsed. */
static void reset_fields(struct psup_proxy_header *out)
{
    memset(out, 0, offsetof(struct psup_proxy_header, raw));
}

int psup_proxy_parse(const uint8_t *buf, size_t len, unsigned accept,
                     struct psup_proxy_header *out)
{
    reset_fields(out);
    int version = detect_version(buf, len);
    if (version < 0)
        return version;
    if (version == 0)
        return shortest_header(buf, len, accept);
    if (!(accept & (version == 1 ? PSUP_PROXY_V1 : PSUP_PROXY_V2)))
        return -EPROTONOSUPPORT;
    out->version = (uint8_t)version;
    int r = version == 1 ? parse_v1(buf, len, out) : parse_v2(buf, len, out);
    if (r < 0)
        reset_fields(out); /* no half-filled addresses after an error */
    return r;
}

/* ------------------------------------------------------------------------ */
/* The reader. */

#define NSEC_PER_SEC 1000000000L
#define KERNEL_SIGSET_SIZE 8

static struct timespec now_monotonic(void)
{
    struct timespec ts = {0};

    /* A real system call (psup_sys has no vDSO): the worker must not enter
     * libc. Once or twice per header. */
    psup_sys(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return ts;
}

static struct timespec add_ms(struct timespec t, int ms)
{
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= NSEC_PER_SEC) {
        t.tv_sec++;
        t.tv_nsec -= NSEC_PER_SEC;
    }
    return t;
}

/* deadline - now into *left; false when the deadline has passed. */
static bool time_left(const struct timespec *deadline, struct timespec *left)
{
    struct timespec now = now_monotonic();

    left->tv_sec = deadline->tv_sec - now.tv_sec;
    left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
    if (left->tv_nsec < 0) {
        left->tv_sec--;
        left->tv_nsec += NSEC_PER_SEC;
    }
    return left->tv_sec > 0 || (left->tv_sec == 0 && left->tv_nsec > 0);
}

/* Wait until fd has bytes (or an end, or an error, which the next recv
 * reports) or the deadline passes. Waiting before every read is what keeps
 * a slow sender from holding the worker past the deadline, though the
 * socket blocks. */
static int wait_readable(int fd, const struct timespec *deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        struct timespec left;
        if (!time_left(deadline, &left))
            return -ETIMEDOUT;
        long r = psup_sys(SYS_ppoll, &pfd, 1, &left, 0, KERNEL_SIGSET_SIZE);
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (r != -EINTR)
            return (int)r;
    }
}

/* raw holds any window below: need never exceeds PSUP_PROXY_MAX (the
 * parser's contract), nor does a v1 line. */
_Static_assert(PSUP_PROXY_V1_MAX <= PSUP_PROXY_MAX, "a v1 line fits in raw");

/* How many bytes to look at with MSG_PEEK: for v1 (or before the version
 * is known, if v1 is accepted) a whole line's worth, since its end can
 * only be found by looking; for v2 exactly what the header still needs. */
static size_t peek_window(const struct psup_proxy_header *h, unsigned accept, size_t have,
                          size_t need)
{
    size_t window = need - have;

    if (h->version != 2 && (accept & PSUP_PROXY_V1) && have < PSUP_PROXY_V1_MAX &&
        PSUP_PROXY_V1_MAX - have > window)
        window = PSUP_PROXY_V1_MAX - have;
    return window;
}

/* Take n bytes that a peek has shown are queued. */
static int consume(int fd, uint8_t *dst, size_t n)
{
    size_t got = 0;

    while (got < n) {
        long r = psup_sys(SYS_recvfrom, fd, dst + got, n - got, MSG_DONTWAIT, 0, 0);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ECONNRESET;
        got += (size_t)r;
    }
    return 0;
}

/*
 * Exactly the header, never a byte after it: the bytes are first looked at
 * with MSG_PEEK and only what psup_proxy_parse says belongs to the header
 * is then taken off the socket. While the header is incomplete every peeked
 * byte belongs to it (the parser's "at least n" guarantee), so taking them
 * all keeps the next ppoll from waking at once for bytes already seen.
 * A complete header usually costs ppoll, one peek and one read; reading
 * v1 a byte at a time instead would cost two system calls per byte.
 */
int psup_proxy_read(int fd, unsigned accept, int timeout_ms, struct psup_proxy_header *out)
{
    if (timeout_ms <= 0)
        return -EINVAL;
    struct timespec deadline = add_ms(now_monotonic(), timeout_ms);
    size_t have = 0;
    int need = psup_proxy_parse(out->raw, 0, accept, out);

    while (need > 0) {
        int r = wait_readable(fd, &deadline);
        if (r < 0)
            return r;
        size_t window = peek_window(out, accept, have, (size_t)need);
        long n = psup_sys(SYS_recvfrom, fd, out->raw + have, window,
                          MSG_PEEK | MSG_DONTWAIT, 0, 0);
        if (n == -EINTR || n == -EAGAIN)
            continue;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ECONNRESET;
        need = psup_proxy_parse(out->raw, have + (size_t)n, accept, out);
        if (need < 0)
            return need;
        size_t take = need == 0 ? out->length - have : (size_t)n;
        if ((r = consume(fd, out->raw + have, take)) < 0)
            return r;
        have += take;
    }
    return need;
}
