/* SPDX-License-Identifier: MIT */
/*
 * Addresses as the supervisor and its workers exchange them: the 16-byte key
 * (IPv4 as v4-mapped IPv6), ports, numeric text, CIDR matching and per-source
 * keys; and decimal numbers. Built as child code: workers call all of it
 * while they share the supervisor's memory (lib/child/README.md).
 */
#ifndef PSUP_INET_H
#define PSUP_INET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text psup_ip_format writes, with its terminating NUL. */
#define PSUP_IP_STRLEN 46

/* An address prefix in the 16-byte key form of psup_ip_key: IPv4 rules are
 * stored v4-mapped with 96 added to their prefix length. */
struct psup_cidr {
    uint8_t addr[16];
    unsigned prefix; /* 0..128 */
};

/* A source as max_per_source and TCPCONNNUM count it: 16 bytes of address (psup_ip_key form) or a uid, with its kind. */
struct psup_source {
    uint8_t kind; /* PSUP_SOURCE_IP or PSUP_SOURCE_UID */
    uint8_t key[16];
};
#define PSUP_SOURCE_IP 1
#define PSUP_SOURCE_UID 2

/* Format the IP of an AF_INET or AF_INET6 socket address: IPv6 in the
 * compact form of RFC 5952, v4-mapped IPv6 as dotted IPv4. buf must hold
 * PSUP_IP_STRLEN bytes. Returns the length written (0 for other families). */
size_t psup_ip_format(const struct sockaddr *sa, char *buf);

/* Format a key of psup_ip_key's form as psup_ip_format does (v4-mapped
 * as dotted IPv4). */
size_t psup_ip_key_format(const uint8_t key[16], char *buf);

/* Format 16 bytes as IPv6 text (RFC 5952), even a v4-mapped address. */
size_t psup_ip6_format(const uint8_t b[16], char *buf);

/* The port of an AF_INET or AF_INET6 socket address, host order. */
unsigned psup_sockaddr_port(const struct sockaddr *sa);

/* Write v in decimal into buf (at least 21 bytes); returns the length. */
size_t psup_fmt_uint(unsigned long long v, char *buf);

/* The 16-byte form of an IP used as a key and for CIDR matching: IPv4 as
 * v4-mapped IPv6, so that an IPv4 peer and its v4-mapped form are the same
 * source. Returns false for other families. */
bool psup_ip_key(const struct sockaddr *sa, uint8_t key[16]);

/* Zero every bit of addr past the first bits; returns whether any was set. */
bool psup_ip_clear_host_bits(uint8_t addr[16], unsigned bits);

bool psup_cidr_match(const struct psup_cidr *rule, const uint8_t key[16]);

/* Deny wins; an empty allow list allows everyone. */
bool psup_access_allowed(const struct psup_cidr *allow, size_t n_allow,
                         const struct psup_cidr *deny, size_t n_deny,
                         const uint8_t key[16]);

/* Mask a key to the per-source grouping: IPv4 addresses are always counted
 * whole; IPv6 addresses by their first v6_prefix bits. */
void psup_source_key(const uint8_t key[16], unsigned v6_prefix, uint8_t out[16]);

#endif
