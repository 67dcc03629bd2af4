/* SPDX-License-Identifier: MIT */
/*
 * Listener addresses as written in the configuration ("HOST:PORT",
 * "[V6]:PORT", "*:PORT", "unix:/path", "udp://HOST:PORT") and socket
 * addresses formatted for logs and handler environments.
 *
 * Pure: no system calls, no errno, no allocation. The formatting functions
 * are also called by a worker between clone and exec, where nothing that
 * touches errno or global state may run.
 */
#ifndef PSUP_ADDR_H
#define PSUP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proto/inet.h"

enum psup_proto {
    PSUP_PROTO_TCP,
    PSUP_PROTO_UNIX,
    PSUP_PROTO_UDP,
};

/* A parsed listener address. For "*:PORT" the socket address is the IPv6
 * wildcard and any_family is set: psup binds one dual-stack socket. */
struct psup_addr {
    enum psup_proto proto;
    bool any_family;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
};

/* Longest text psup_addr_format writes, with its terminating NUL. */
#define PSUP_ADDR_STRLEN (sizeof(struct sockaddr_un) + 16)

/* Parse a listener address. Returns 0, or -1 with *why set to a static
 * sentence saying what was expected. "localhost" is accepted as 127.0.0.1;
 * no other name is resolved (psup does no DNS). An IPv4-mapped IPv6 address
 * ("[::ffff:127.0.0.1]:80") cannot be bound: PSUP_ADDR_V4_MAPPED, with out
 * set to the IPv4 address to write instead. Paths that can only name a
 * directory ("unix:/", "unix:dir/", "unix:..") and "unix:@" are errors. */
#define PSUP_ADDR_V4_MAPPED (-2)
int psup_addr_parse(const char *spec, struct psup_addr *out, const char **why);

/* Format a listener address back into the configuration's syntax, with the
 * port actually bound when the socket address comes from getsockname. */
size_t psup_addr_format(const struct psup_addr *a, char *buf, size_t size);

/* Whether two listener addresses name the same socket (same protocol,
 * family, address, port or path). Used to keep listeners across reloads. */
bool psup_addr_same(const struct psup_addr *a, const struct psup_addr *b);

/* A hash of what psup_addr_same compares: same addresses, same hash. */
uint64_t psup_addr_hash(const struct psup_addr *a);

/* What part of its port a TCP or UDP listener takes. Two listeners of one
 * protocol on one port cannot both be bound when one is a wildcard of the
 * other's family: 0.0.0.0 and any IPv4 address, [::] (v6 only) and any
 * IPv6 address, "*" and anything (psup sets SO_REUSEADDR on TCP sockets,
 * and the kernel still refuses these next to a listening socket; on UDP
 * sockets psup sets nothing, and the kernel refuses the same). Port 0 and
 * unix sockets never overlap, nor do a TCP and a UDP port. */
enum psup_addr_scope {
    PSUP_SCOPE_NONE,   /* unix, or port 0 */
    PSUP_SCOPE_V4_ONE, /* one IPv4 address */
    PSUP_SCOPE_V4_ALL, /* 0.0.0.0 */
    PSUP_SCOPE_V6_ONE, /* one IPv6 address (v6 only) */
    PSUP_SCOPE_V6_ALL, /* [::] (v6 only) */
    PSUP_SCOPE_ALL,    /* "*": one dual-stack socket */
};
enum psup_addr_scope psup_addr_scope(const struct psup_addr *a);
bool psup_addr_scopes_overlap(enum psup_addr_scope a, enum psup_addr_scope b);

/* Whether a and b (different addresses) cannot be bound side by side: the
 * same protocol and port, and overlapping scopes. */
bool psup_addr_overlap(const struct psup_addr *a, const struct psup_addr *b);

#endif
