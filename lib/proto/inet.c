/* SPDX-License-Identifier: MIT */
/*
 * Addresses as the supervisor and its workers exchange them: 16-byte keys
 * (IPv4 in v4-mapped form), numeric text, ports, CIDR matching, per-source
 * keys, and decimal numbers. Workers run this code while they share the
 * supervisor's memory, so it is built as child code (lib/child/README.md):
 * plain loops over bytes, no libc call that could touch errno (inet_ntop
 * can), no allocation.
 */
#include "proto/inet.h"

#include <netinet/in.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4_mapped(const uint8_t key[16])
{
    for (int i = 0; i < 12; i++) {
        if (key[i] != v4_mapped_prefix[i])
            return false;
    }
    return true;
}

/* Whether the first bits of a and b are equal. */
static bool same_prefix(const uint8_t a[16], const uint8_t b[16], unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    for (unsigned i = 0; i < whole; i++) {
        if (a[i] != b[i])
            return false;
    }
    if (rest == 0)
        return true;

    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Zero every bit of addr past the first bits; returns whether any was set. */
bool psup_ip_clear_host_bits(uint8_t addr[16], unsigned bits)
{
    bool had = false;

    for (unsigned i = 0; i < 16; i++) {
        uint8_t keep;
        if (bits >= 8 * (i + 1))
            keep = 0xff;
        else if (bits <= 8 * i)
            keep = 0;
        else
            keep = (uint8_t)(0xff << (8 - (bits - 8 * i)));
        if (addr[i] & (uint8_t)~keep)
            had = true;
        addr[i] &= keep;
    }
    return had;
}

static const char hexdigits[] = "0123456789abcdef";

size_t psup_fmt_uint(unsigned long long v, char *buf)
{
    char tmp[21];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

static size_t fmt_ipv4(const uint8_t b[4], char *buf)
{
    size_t n = 0;

    for (int i = 0; i < 4; i++) {
        if (i)
            buf[n++] = '.';
        n += psup_fmt_uint(b[i], buf + n);
    }
    buf[n] = '\0';
    return n;
}

static size_t fmt_hex16(unsigned v, char *buf)
{
    size_t n = 0;
    bool started = false;

    for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned d = (v >> shift) & 0xf;
        if (d || started || shift == 0) {
            buf[n++] = hexdigits[d];
            started = true;
        }
    }
    return n;
}

/* RFC 5952: lowercase, no leading zeros, the longest run of two or more zero
 * groups (the first one on a tie) written as "::". */
size_t psup_ip6_format(const uint8_t b[16], char *buf)
{
    unsigned g[8];
    int best = -1, best_len = 0;

    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j == i ? i + 1 : j;
    }

    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            buf[n++] = ':';
            buf[n++] = ':';
            i += best_len - 1;
            continue;
        }
        if (i && !(best >= 0 && i == best + best_len))
            buf[n++] = ':';
        n += fmt_hex16(g[i], buf + n);
    }
    buf[n] = '\0';
    return n;
}

size_t psup_ip_format(const struct sockaddr *sa, char *buf)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        return fmt_ipv4((const uint8_t *)&in4->sin_addr, buf);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        return is_v4_mapped(b) ? fmt_ipv4(b + 12, buf) : psup_ip6_format(b, buf);
    }
    buf[0] = '\0';
    return 0;
}

size_t psup_ip_key_format(const uint8_t key[16], char *buf)
{
    return is_v4_mapped(key) ? fmt_ipv4(key + 12, buf) : psup_ip6_format(key, buf);
}

/* A port in network order, read byte by byte: ntohs is a libc call in an
 * unoptimised build. */
static unsigned be16(const void *p)
{
    const uint8_t *b = p;

    return (unsigned)b[0] << 8 | b[1];
}

unsigned psup_sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return be16(&((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return be16(&((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

bool psup_ip_key(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
        return true;
    }
    return false;
}

/* An IPv4 peer (a v4-mapped key) is matched only by rules inside the
 * v4-mapped space, that is by IPv4 rules, as nginx does: "::/0" means every
 * IPv6 client, and denying it must not lock out IPv4 clients too. */
bool psup_cidr_match(const struct psup_cidr *rule, const uint8_t key[16])
{
    if (rule->prefix < 96 && is_v4_mapped(key))
        return false;
    return same_prefix(rule->addr, key, rule->prefix > 128 ? 128 : rule->prefix);
}

static bool match_any(const struct psup_cidr *rules, size_t n, const uint8_t key[16])
{
    for (size_t i = 0; i < n; i++) {
        if (psup_cidr_match(&rules[i], key))
            return true;
    }
    return false;
}

bool psup_access_allowed(const struct psup_cidr *allow, size_t n_allow,
                         const struct psup_cidr *deny, size_t n_deny,
                         const uint8_t key[16])
{
    if (match_any(deny, n_deny, key))
        return false;
    return n_allow == 0 || match_any(allow, n_allow, key);
}

void psup_source_key(const uint8_t key[16], unsigned v6_prefix, uint8_t out[16])
{
    for (int i = 0; i < 16; i++)
        out[i] = key[i];
    if (is_v4_mapped(key))
        return;
    psup_ip_clear_host_bits(out, v6_prefix > 128 ? 128 : v6_prefix);
}
