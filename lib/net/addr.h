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
 * no other name is resolved (psup does no DNS). */
int psup_addr_parse(const char *spec, struct psup_addr *out, const char **why);

/* Format a listener address back into the configuration's syntax, with the
 * port actually bound when the socket address comes from getsockname. */
size_t psup_addr_format(const struct psup_addr *a, char *buf, size_t size);

/* Whether two listener addresses name the same socket (same protocol,
 * family, address, port or path). Used to keep listeners across reloads. */
bool psup_addr_same(const struct psup_addr *a, const struct psup_addr *b);

#endif
