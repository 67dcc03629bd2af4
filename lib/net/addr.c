/* SPDX-License-Identifier: MIT */
/*
 * Listener address parsing and address formatting. The formatting half runs
 * in workers before exec, so it is written without libc calls that could set
 * errno (inet_ntop can): plain loops over bytes.
 */
#include "net/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* "7000" -> 7000; digits only, at most 65535. */
static int parse_port(const char *s, unsigned *port)
{
    unsigned long v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    *port = (unsigned)v;
    return 0;
}

/* Whether a path can only name a directory: "/", "dir/", ".", "dir/.."
 * (bind fails on each, with EADDRINUSE or ENOENT). */
static bool names_directory(const char *path, size_t len)
{
    const char *last = memrchr(path, '/', len);
    const char *name = last ? last + 1 : path;

    return path[len - 1] == '/' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static int parse_unix(const char *path, struct psup_addr *out, const char **why)
{
    size_t len = strlen(path);

    out->proto = PSUP_PROTO_UNIX;
    out->u.un.sun_family = AF_UNIX;
    if (len == 0) {
        *why = "expected unix:/path (the path is empty)";
        return -1;
    }
    if (strcmp(path, "@") == 0) {
        *why = "the abstract socket name after @ is empty";
        return -1;
    }
    if (path[0] != '@' && names_directory(path, len)) {
        *why = "the path names a directory, not a socket file";
        return -1;
    }
    if (len >= sizeof(out->u.un.sun_path)) {
        *why = "unix socket path is longer than 107 bytes";
        return -1;
    }
    memcpy(out->u.un.sun_path, path, len);
    if (path[0] == '@') {
        /* Linux abstract namespace: no file, the name starts with a NUL. */
        out->u.un.sun_path[0] = '\0';
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        out->len = (socklen_t)sizeof(out->u.un);
    }
    return 0;
}

/* "[::ffff:A.B.C.D]:P" cannot be bound: psup's "[IPV6]" sockets are v6
 * only, and the kernel refuses a v4-mapped address on them (EINVAL). out
 * becomes A.B.C.D:P, so that the caller can say what to write instead. */
static int v4_instead(struct psup_addr *out, const char **why)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = out->u.in6.sin6_port};

    memcpy(&in4.sin_addr, out->u.in6.sin6_addr.s6_addr + 12, 4);
    memset(&out->u, 0, sizeof(out->u));
    out->u.in4 = in4;
    out->len = sizeof(in4);
    *why = "an IPv4-mapped IPv6 address cannot be bound";
    return PSUP_ADDR_V4_MAPPED;
}

static int parse_inet(const char *spec, enum psup_proto proto, struct psup_addr *out,
                      const char **why)
{
    char host[64];
    const char *colon;
    unsigned port;

    out->proto = proto;
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':') {
            *why = "expected [IPV6]:PORT";
            return -1;
        }
        size_t hlen = (size_t)(end - spec - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            *why = "expected an IPv6 address between [ and ]";
            return -1;
        }
        memcpy(host, spec + 1, hlen);
        host[hlen] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon) {
            *why = "expected HOST:PORT, [IPV6]:PORT, *:PORT or unix:/path";
            return -1;
        }
        size_t hlen = (size_t)(colon - spec);
        if (hlen == 0 || hlen >= sizeof(host)) {
            *why = "expected HOST:PORT with HOST an IPv4 address, localhost or *";
            return -1;
        }
        memcpy(host, spec, hlen);
        host[hlen] = '\0';
    }
    if (parse_port(colon + 1, &port) < 0) {
        *why = "port must be a number from 0 to 65535";
        return -1;
    }

    if (spec[0] == '[') {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) != 1) {
            *why = "not a valid IPv6 address (names are not resolved)";
            return -1;
        }
        out->len = sizeof(out->u.in6);
        return IN6_IS_ADDR_V4MAPPED(&out->u.in6.sin6_addr) ? v4_instead(out, why) : 0;
    }
    if (strcmp(host, "*") == 0) {
        out->any_family = true;
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons((uint16_t)port);
        out->u.in6.sin6_addr = in6addr_any;
        out->len = sizeof(out->u.in6);
        return 0;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    out->u.in4.sin_family = AF_INET;
    out->u.in4.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &out->u.in4.sin_addr) != 1) {
        *why = strchr(host, ':') ? "an IPv6 address must be written [IPV6]:PORT"
                                 : "not a valid IPv4 address (names are not resolved)";
        return -1;
    }
    out->len = sizeof(out->u.in4);
    return 0;
}

int psup_addr_parse(const char *spec, struct psup_addr *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(spec, "unix:", 5) == 0)
        return parse_unix(spec + 5, out, why);
    if (strncmp(spec, "udp://", 6) == 0)
        return parse_inet(spec + 6, PSUP_PROTO_UDP, out, why);
    if (strncmp(spec, "tcp://", 6) == 0)
        return parse_inet(spec + 6, PSUP_PROTO_TCP, out, why);
    return parse_inet(spec, PSUP_PROTO_TCP, out, why);
}

size_t psup_addr_format(const struct psup_addr *a, char *buf, size_t size)
{
    char tmp[PSUP_ADDR_STRLEN];
    size_t n = 0;

    if (a->proto == PSUP_PROTO_UNIX) {
        const char *path = a->u.un.sun_path;
        size_t plen = a->len > offsetof(struct sockaddr_un, sun_path)
                          ? a->len - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        memcpy(tmp, "unix:", 5);
        n = 5;
        if (plen && path[0] == '\0') {
            tmp[n++] = '@';
            memcpy(tmp + n, path + 1, plen - 1);
            n += plen - 1;
        } else {
            size_t l = strnlen(path, sizeof(a->u.un.sun_path));
            memcpy(tmp + n, path, l);
            n += l;
        }
    } else {
        if (a->proto == PSUP_PROTO_UDP) {
            memcpy(tmp, "udp://", 6);
            n = 6;
        }
        if (a->any_family) {
            tmp[n++] = '*';
        } else if (a->u.sa.sa_family == AF_INET6) {
            tmp[n++] = '[';
            n += psup_ip6_format(a->u.in6.sin6_addr.s6_addr, tmp + n);
            tmp[n++] = ']';
        } else {
            n += psup_ip_format(&a->u.sa, tmp + n);
        }
        tmp[n++] = ':';
        n += psup_fmt_uint(psup_sockaddr_port(&a->u.sa), tmp + n);
    }
    tmp[n] = '\0';
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(buf, tmp, c);
        buf[c] = '\0';
    }
    return n;
}

bool psup_addr_same(const struct psup_addr *a, const struct psup_addr *b)
{
    if (a->proto != b->proto || a->any_family != b->any_family ||
        a->u.sa.sa_family != b->u.sa.sa_family || a->len != b->len)
        return false;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return a->u.in4.sin_port == b->u.in4.sin_port &&
               a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    case AF_INET6:
        return a->u.in6.sin6_port == b->u.in6.sin6_port &&
               memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
    case AF_UNIX:
        return memcmp(a->u.un.sun_path, b->u.un.sun_path,
                      a->len - offsetof(struct sockaddr_un, sun_path)) == 0;
    default:
        return false;
    }
}

/* ---- which addresses the kernel lets sit side by side ---------------- */

enum psup_addr_scope psup_addr_scope(const struct psup_addr *a)
{
    if (a->proto == PSUP_PROTO_UNIX || psup_sockaddr_port(&a->u.sa) == 0)
        return PSUP_SCOPE_NONE;
    if (a->any_family)
        return PSUP_SCOPE_ALL;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY) ? PSUP_SCOPE_V4_ALL
                                                              : PSUP_SCOPE_V4_ONE;
    return IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr) ? PSUP_SCOPE_V6_ALL : PSUP_SCOPE_V6_ONE;
}

bool psup_addr_scopes_overlap(enum psup_addr_scope a, enum psup_addr_scope b)
{
    static const unsigned char v4 = 1u << PSUP_SCOPE_V4_ONE | 1u << PSUP_SCOPE_V4_ALL;
    static const unsigned char v6 = 1u << PSUP_SCOPE_V6_ONE | 1u << PSUP_SCOPE_V6_ALL;
    static const unsigned char wild =
        1u << PSUP_SCOPE_V4_ALL | 1u << PSUP_SCOPE_V6_ALL | 1u << PSUP_SCOPE_ALL;
    unsigned both = 1u << a | 1u << b;

    if (a == PSUP_SCOPE_NONE || b == PSUP_SCOPE_NONE || !(both & wild))
        return false;
    /* A wildcard takes its family's port on every address; "*" both. */
    return (both & 1u << PSUP_SCOPE_ALL) || (both & v4) == both || (both & v6) == both;
}

bool psup_addr_overlap(const struct psup_addr *a, const struct psup_addr *b)
{
    /* TCP and UDP ports are separate name spaces. */
    return a->proto == b->proto && psup_sockaddr_port(&a->u.sa) == psup_sockaddr_port(&b->u.sa) &&
           psup_addr_scopes_overlap(psup_addr_scope(a), psup_addr_scope(b));
}

/* FNV-1a over the bytes psup_addr_same compares. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t psup_addr_hash(const struct psup_addr *a)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    unsigned char head[3] = {(unsigned char)a->proto, a->any_family,
                             (unsigned char)a->u.sa.sa_family};

    h = fnv(h, head, sizeof(head));
    switch (a->u.sa.sa_family) {
    case AF_INET:
        h = fnv(h, &a->u.in4.sin_port, 2);
        return fnv(h, &a->u.in4.sin_addr, 4);
    case AF_INET6:
        h = fnv(h, &a->u.in6.sin6_port, 2);
        return fnv(h, &a->u.in6.sin6_addr, 16);
    case AF_UNIX:
        return a->len > offsetof(struct sockaddr_un, sun_path)
                   ? fnv(h, a->u.un.sun_path, a->len - offsetof(struct sockaddr_un, sun_path))
                   : h;
    default:
        return h;
    }
}
