/* SPDX-License-Identifier: MIT */
/*
 * CIDR allow/deny rules and per-source keys. Only psup_cidr_parse may call
 * libc (inet_pton). Matching and keys run in workers that share memory with
 * the supervisor, so they are plain byte loops that never touch errno.
 */
#include "net/access.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

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
        memset(out->addr, 0, 10);
        out->addr[10] = out->addr[11] = 0xff;
    }
    if (slash && parse_prefix(slash + 1, max, &prefix) < 0) {
        *why = v6 ? "the prefix length must be a number from 0 to 128"
                  : "the prefix length must be a number from 0 to 32";
        return -1;
    }

    /* IPv4 rules live in the v4-mapped space ::ffff:0:0/96. */
    out->prefix = v6 ? prefix : prefix + 96;
    if (psup_ip_clear_host_bits(out->addr, out->prefix)) {
        *why = host_bits_sentence(out->addr, out->prefix, !v6);
        return -1;
    }
    return 0;
}

