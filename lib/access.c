/* SPDX-License-Identifier: MIT */
/*
 * CIDR allow/deny rules and per-source keys. Only psup_cidr_parse may call
 * libc (inet_pton). Matching and keys run in workers that share memory with
 * the supervisor, so they are plain byte loops that never touch errno.
 */
#include "access.h"

#include <arpa/inet.h>
#include <stdio.h>
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
static bool clear_host_bits(uint8_t addr[16], unsigned bits)
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

/* "24" -> 24; digits only, at most max. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* The suggestion names the network the user probably meant. The buffer is
 * static: parse runs in the supervisor only, and the caller copies the
 * sentence into its error list before the next call. */
static const char *host_bits_sentence(const uint8_t net[16], unsigned prefix, bool v4)
{
    static char msg[160];
    char ip[INET6_ADDRSTRLEN];

    if (v4)
        inet_ntop(AF_INET, net + 12, ip, sizeof(ip));
    else
        inet_ntop(AF_INET6, net, ip, sizeof(ip));
    snprintf(msg, sizeof(msg), "host bits are set beyond /%u; did you mean %s/%u?",
             v4 ? prefix - 96 : prefix, ip, v4 ? prefix - 96 : prefix);
    return msg;
}

int psup_cidr_parse(const char *text, struct psup_cidr *out, const char **why)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
    bool v6 = memchr(text, ':', hlen) != NULL;
    unsigned max = v6 ? 128 : 32, prefix = max;

    memset(out, 0, sizeof(*out));
    if (hlen == 0 || hlen >= sizeof(host)) {
        *why = "expected ADDRESS or ADDRESS/PREFIX";
        return -1;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (v6 && inet_pton(AF_INET6, host, out->addr) != 1) {
        *why = "not a valid IPv6 address";
        return -1;
    }
    if (!v6) {
        if (inet_pton(AF_INET, host, out->addr + 12) != 1) {
            *why = "not a valid IPv4 address (names are not resolved)";
            return -1;
        }
        memcpy(out->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
    }
    if (slash && parse_prefix(slash + 1, max, &prefix) < 0) {
        *why = v6 ? "the prefix length must be a number from 0 to 128"
                  : "the prefix length must be a number from 0 to 32";
        return -1;
    }

    /* IPv4 rules live in the v4-mapped space ::ffff:0:0/96. */
    out->prefix = v6 ? prefix : prefix + 96;
    if (clear_host_bits(out->addr, out->prefix)) {
        *why = host_bits_sentence(out->addr, out->prefix, !v6);
        return -1;
    }
    return 0;
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
    clear_host_bits(out, v6_prefix > 128 ? 128 : v6_prefix);
}
