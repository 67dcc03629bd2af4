/* SPDX-License-Identifier: MIT */
/*
 * Binding listeners: TCP over IPv4 and IPv6 (one dual-stack socket for
 * "*:PORT"), unix stream sockets with stale-file recovery, and the reverse
 * on close.
 */
#include "net/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_int_option(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value));
}

/* A path that exists: recover it if it is a socket nobody listens on.
 * Returns 0 when the path is free to bind, or -errno with *what set. */
static int reclaim_unix_path(const struct sockaddr_un *un, const char **what)
{
    struct stat st;

    if (lstat(un->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : (*what = "stat", -errno);
    if (!S_ISSOCK(st.st_mode)) {
        *what = "the path exists and is not a socket (not removed)";
        return -EEXIST;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0)
        return *what = "socket", -errno;
    int rc = connect(probe, (const struct sockaddr *)un, sizeof(*un));
    int err = errno;
    close(probe);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
        *what = "in use by another process";
        return -EADDRINUSE;
    }
    if (err != ECONNREFUSED)
        return *what = "connect", -err;
    /* A stale socket file left by a crashed run (lxd#296 and many others). */
    if (unlink(un->sun_path) < 0 && errno != ENOENT)
        return *what = "unlink stale socket", -errno;
    return 0;
}

static int open_socket(const struct psup_addr *addr, int *fd_out)
{
    int family = addr->u.sa.sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -errno;
    if (family != AF_UNIX && set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
        goto fail;
    /* "*:PORT" is one dual-stack socket; an explicit "[V6]:PORT" is v6 only,
     * so that it can sit next to an IPv4 listener on the same port. */
    if (family == AF_INET6 &&
        set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, addr->any_family ? 0 : 1) < 0)
        goto fail;
    *fd_out = fd;
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

/* "*:PORT" on a host without IPv6: fall back to 0.0.0.0. */
static void ipv4_wildcard(const struct psup_addr *from, struct psup_addr *to)
{
    memset(to, 0, sizeof(*to));
    to->proto = from->proto;
    to->any_family = true;
    to->u.in4.sin_family = AF_INET;
    to->u.in4.sin_port = from->u.in6.sin6_port;
    to->u.in4.sin_addr.s_addr = htonl(INADDR_ANY);
    to->len = sizeof(to->u.in4);
}

static void remember_bound(struct psup_listener *l, const struct psup_addr *used)
{
    struct psup_addr bound = *used;
    socklen_t len = sizeof(bound.u);

    if (used->u.sa.sa_family != AF_UNIX && getsockname(l->fd, &bound.u.sa, &len) == 0)
        bound.len = len;
    psup_addr_format(&bound, l->bound, sizeof(l->bound));
}

static void remember_file(struct psup_listener *l)
{
    struct stat st;
    const struct sockaddr_un *un = &l->addr.u.un;

    if (un->sun_path[0] != '\0' && stat(un->sun_path, &st) == 0) {
        l->created_file = true;
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
}

int psup_listener_open(struct psup_listener *l, const struct psup_addr *addr, int backlog,
                       const char *owner, const char **what)
{
    struct psup_addr use = *addr;
    int rc;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->addr = *addr;
    l->backlog = backlog;
    strncpy(l->owner, owner, sizeof(l->owner) - 1);

    if (addr->u.sa.sa_family == AF_UNIX && addr->u.un.sun_path[0] != '\0' &&
        (rc = reclaim_unix_path(&addr->u.un, what)) < 0)
        return rc;
    rc = open_socket(&use, &l->fd);
    if (rc == -EAFNOSUPPORT && addr->any_family) {
        ipv4_wildcard(addr, &use);
        rc = open_socket(&use, &l->fd);
    }
    if (rc < 0)
        return *what = "socket", rc;
    if (bind(l->fd, &use.u.sa, use.len) < 0) {
        *what = "bind";
        goto fail;
    }
    if (use.u.sa.sa_family == AF_UNIX)
        remember_file(l);
    if (listen(l->fd, backlog) < 0) {
        *what = "listen";
        goto fail;
    }
    remember_bound(l, &use);
    return 0;
fail:
    rc = -errno;
    psup_listener_close(l);
    return rc;
}

int psup_listener_set_backlog(struct psup_listener *l, int backlog)
{
    if (backlog == l->backlog)
        return 0;
    if (listen(l->fd, backlog) < 0)
        return -errno;
    l->backlog = backlog;
    return 0;
}

bool psup_listener_matches(const struct psup_listener *l, const struct psup_addr *addr,
                           const char *owner)
{
    if (!psup_addr_same(&l->addr, addr))
        return false;
    if (addr->u.sa.sa_family != AF_UNIX && psup_sockaddr_port(&addr->u.sa) == 0)
        return strcmp(l->owner, owner) == 0;
    return true;
}

void psup_listener_close(struct psup_listener *l)
{
    struct stat st;

    if (l->created_file && stat(l->addr.u.un.sun_path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(l->addr.u.un.sun_path);
    l->created_file = false;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
