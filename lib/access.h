/* SPDX-License-Identifier: MIT */
/*
 * Access rules: CIDR allow/deny lists over IPv4 and IPv6 (an IPv4 peer and
 * its v4-mapped IPv6 form match the same rules), and the per-source
 * connection counts behind max_per_source and TCPCONNNUM.
 *
 * Pure: no system calls. psup_access_allowed runs in workers before exec.
 */
#ifndef PSUP_ACCESS_H
#define PSUP_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address prefix in the 16-byte key form of psup_ip_key: IPv4 rules are
 * stored v4-mapped with 96 added to their prefix length. */
struct psup_cidr {
    uint8_t addr[16];
    unsigned prefix; /* 0..128 */
};

/* Parse "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1". Host bits
 * beyond the prefix are an error (a typo like 10.1.0.0/8 is caught).
 * Returns 0, or -1 with *why set to a static sentence. */
int psup_cidr_parse(const char *text, struct psup_cidr *out, const char **why);

bool psup_cidr_match(const struct psup_cidr *rule, const uint8_t key[16]);

/* Deny wins; an empty allow list allows everyone. */
bool psup_access_allowed(const struct psup_cidr *allow, size_t n_allow,
                         const struct psup_cidr *deny, size_t n_deny,
                         const uint8_t key[16]);

/* Mask a key to the per-source grouping: IPv4 addresses are always counted
 * whole; IPv6 addresses by their first v6_prefix bits. */
void psup_source_key(const uint8_t key[16], unsigned v6_prefix, uint8_t out[16]);

#endif
