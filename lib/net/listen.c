/* SPDX-License-Identifier: MIT */
/*
 * Binding listeners: TCP and UDP over IPv4 and IPv6 (one dual-stack socket
 * for "*:PORT"), unix stream sockets with stale-file recovery, and the
 * reverse on close.
 *
 * Unix socket files. Whoever can write a directory on the socket's path can
 * change what the path names between any two system calls: swap a directory
 * for a symlink to another, or the file for another file. So psup opens the
 * socket's directory once and names the file only relative to it (bind and
 * connect take paths, so they run with the working directory there), and
 * never removes a file by name after a check: it first moves the entry into
 * a private directory (0700, made in the socket's directory, so a rename
 * reaches it), where nobody else can touch it, checks it there, and deletes
 * it or puts it back. The same private directory is where a new socket is
 * bound and given its mode and owner before it is moved to its path.
 */
#include "net/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_int_option(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value));
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ------------------------------------------------------------------------ */
/* Steps relative to a directory descriptor. */

/* Run a bind or a connect of sock to name (no slash in it) with psup's
 * working directory at dir, so that the name resolves in that directory and
 * nowhere else. psup is single-threaded, and its workers do not share its
 * working directory (no CLONE_FS). */
static int at_dir(int dir, int sock, const char *name, bool do_bind)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (saved < 0)
        return -errno;
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", name);
    if (fchdir(dir) < 0)
        rc = -errno;
    else if (do_bind)
        rc = bind(sock, (const struct sockaddr *)&un, sizeof(un)) < 0 ? -errno : 0;
    else
        rc = connect(sock, (const struct sockaddr *)&un, sizeof(un)) < 0 ? -errno : 0;
    if (fchdir(saved) < 0 && rc == 0)
        rc = -errno;
    close(saved);
    return rc;
}

/* Move from/from_name to to/to_name unless the target exists. Where the
 * file system has no RENAME_NOREPLACE, a hard link does the same: it fails
 * if the target exists. */
static int move_noreplace(int from, const char *from_name, int to, const char *to_name)
{
    if (renameat2(from, from_name, to, to_name, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    if (linkat(from, from_name, to, to_name, 0) < 0)
        return -errno;
    unlinkat(from, from_name, 0);
    return 0;
}

struct private_dir {
    int fd;
    char name[32];
};

/* Make a directory only psup can enter, beside the socket's name. Its name
 * is random; one that exists already (anyone may create names here) is
 * skipped. */
static int make_private(int dir, struct private_dir *p)
{
    for (int tries = 0; tries < 16; tries++) {
        unsigned char r[8];
        struct stat st;
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return -EIO;
        snprintf(p->name, sizeof(p->name), ".psup-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
                 r[2], r[3], r[4], r[5], r[6], r[7]);
        if (mkdirat(dir, p->name, 0700) < 0) {
            if (errno == EEXIST)
                continue;
            return -errno;
        }
        p->fd = openat(dir, p->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (p->fd < 0)
            return -errno;
        /* Still the one just made: swapped for another meanwhile, it is
         * not ours to use, nor to remove. */
        if (fstat(p->fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077) == 0)
            return 0;
        close_fd(&p->fd);
        return -EEXIST;
    }
    return -EEXIST;
}

static void drop_private(int dir, struct private_dir *p)
{
    unlinkat(p->fd, "sock", 0);
    /* Fails, and leaves the directory, if something that could not be put
     * back is kept in it (take_out). */
    unlinkat(dir, p->name, AT_REMOVEDIR);
    close_fd(&p->fd);
}

/* Remove dir/name if it is the socket file (dev, ino): moved into the
 * private directory first, checked there, then deleted or put back.
 * Returns 0 (removed, or already gone), -ESTALE when something else was
 * there (put back), or -errno (it could not be put back: it stays in the
 * private directory, which is then left in place). */
static int take_out(int dir, const char *name, int priv, dev_t dev, ino_t ino)
{
    struct stat st;

    if (renameat(dir, name, priv, "old") < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstatat(priv, "old", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == dev && st.st_ino == ino)
        return unlinkat(priv, "old", 0) < 0 ? -errno : 0;
    int rc = move_noreplace(priv, "old", dir, name);
    return rc < 0 ? rc : -ESTALE;
}

/* ------------------------------------------------------------------------ */
/* A unix socket file. */

/* A path that exists: take it over if it is a socket nobody listens on.
 * Returns 0 when the name is free to use, or -errno with *what set. */
static int reclaim_unix_path(const struct psup_listener *l, int priv, const char **what)
{
    struct stat st;

    if (fstatat(l->dir_fd, l->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : (*what = "stat", -errno);
    if (!S_ISSOCK(st.st_mode)) {
        *what = "the path exists and is not a socket (not removed)";
        return -EEXIST;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0)
        return *what = "socket", -errno;
    int rc = at_dir(l->dir_fd, probe, l->name, false);
    close(probe);
    if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS) {
        *what = "in use by another process";
        return -EADDRINUSE;
    }
    if (rc != -ECONNREFUSED)
        return *what = "connect", rc;
    /* A stale socket file left by a crashed run (lxd#296 and many others):
     * removed only if it is still the socket just probed. */
    rc = take_out(l->dir_fd, l->name, priv, st.st_dev, st.st_ino);
    if (rc == -ESTALE)
        *what = "the path changed while psup took it over (nothing removed)";
    else if (rc < 0)
        *what = "the path changed while psup took it over (what replaced it is kept in a "
                ".psup-* directory beside it)";
    return rc == -ESTALE ? -EEXIST : rc;
}

/* The socket file's directory, opened once, and its name there. */
static int open_directory(struct psup_listener *l)
{
    const char *path = l->addr.u.un.sun_path;
    const char *slash = strrchr(path, '/');
    char dir[sizeof(l->addr.u.un.sun_path)];

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    snprintf(l->name, sizeof(l->name), "%s", slash ? slash + 1 : path);
    l->dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return l->dir_fd < 0 ? -errno : 0;
}

/* Give the file at_dir/name (or, with name NULL, the file file_fd) the
 * settings perms asks for. */
static int apply_perms(int dir, const char *name, int file_fd, const struct psup_socket_perms *p,
                       const char **what)
{
    if (p->uid != (uid_t)-1 || p->gid != (gid_t)-1) {
        int rc = name ? fchownat(dir, name, p->uid, p->gid, AT_SYMLINK_NOFOLLOW)
                      : fchownat(file_fd, "", p->uid, p->gid, AT_EMPTY_PATH);
        if (rc < 0)
            return *what = "chown", -errno;
    }
    if (p->mode >= 0) {
        /* chmod has no form that takes an O_PATH descriptor (before
         * fchmodat2); /proc's link to it reaches that inode and no other. */
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", file_fd);
        int rc = name ? fchmodat(dir, name, (mode_t)p->mode, 0)
                      : fchmodat(AT_FDCWD, proc, (mode_t)p->mode, 0);
        if (rc < 0)
            return *what = "chmod", -errno;
    }
    return 0;
}

/* Bind the socket in the private directory, set it up there, and move it
 * to its name. */
static int place_socket(struct psup_listener *l, int priv, const struct psup_socket_perms *perms,
                        const char **what)
{
    struct stat st;
    int rc = at_dir(priv, l->fd, "sock", true);

    if (rc < 0)
        return *what = "bind", rc;
    /* Nobody else can reach the private directory: these act on the file
     * just bound, and it cannot be connected to before it is moved. */
    if (perms && (rc = apply_perms(priv, "sock", -1, perms, what)) < 0)
        return rc;
    l->file_fd = openat(priv, "sock", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (l->file_fd < 0 || fstat(l->file_fd, &st) < 0)
        return *what = "open socket file", -errno;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    if ((rc = move_noreplace(priv, "sock", l->dir_fd, l->name)) < 0) {
        close_fd(&l->file_fd);
        *what = rc == -EEXIST ? "the path was taken while psup bound it" : "rename";
    }
    return rc;
}

static int bind_unix_file(struct psup_listener *l, const struct psup_socket_perms *perms,
                          const char **what)
{
    struct private_dir priv = {.fd = -1};
    int rc = open_directory(l);

    if (rc < 0)
        return *what = "open directory", rc;
    if ((rc = make_private(l->dir_fd, &priv)) < 0)
        return *what = "make a private directory", rc;
    rc = reclaim_unix_path(l, priv.fd, what);
    if (rc == 0)
        rc = place_socket(l, priv.fd, perms, what);
    drop_private(l->dir_fd, &priv);
    return rc;
}

/* The file at the listener's name is still the one psup made. */
static bool file_in_place(const struct psup_listener *l)
{
    struct stat st;

    return fstatat(l->dir_fd, l->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == l->dev &&
           st.st_ino == l->ino;
}

/* Remove psup's socket file if it is still the one at its name. Without a
 * private directory (psup cannot create one any more) the file stays: the
 * next start takes it over as a stale socket. */
static void remove_unix_file(struct psup_listener *l)
{
    struct private_dir priv = {.fd = -1};

    /* Someone else's (a new socket bound after this one was deleted): not
     * even moved aside for a moment, which would refuse its clients. The
     * check is only a shortcut: take_out checks again where it counts. */
    if (!file_in_place(l))
        return;
    if (make_private(l->dir_fd, &priv) == 0) {
        take_out(l->dir_fd, l->name, priv.fd, l->dev, l->ino);
        drop_private(l->dir_fd, &priv);
    }
}

/* ------------------------------------------------------------------------ */
/* Listeners. */

static int open_socket(const struct psup_addr *addr, int *fd_out)
{
    int family = addr->u.sa.sa_family;
    int type = addr->proto == PSUP_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -errno;
    /* TCP only: a port whose last connections are in TIME_WAIT can be
     * bound again at once. UDP has no TIME_WAIT, and with SO_REUSEADDR two
     * UDP sockets could share an address, the later one taking every
     * datagram: a second psup would silently steal the service. */
    if (type == SOCK_STREAM && family != AF_UNIX &&
        set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
        goto fail;
    /* "*:PORT" is one dual-stack socket; an explicit "[V6]:PORT" is v6 only,
     * so that it can sit next to an IPv4 listener on the same port. */
    if (family == AF_INET6 &&
        set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, addr->any_family ? 0 : 1) < 0)
        goto fail;
    /* A datagram's destination address comes with it (IPV6_PKTINFO, also
     * for IPv4 datagrams on a dual-stack socket, v4-mapped): the handler's
     * UDPLOCALIP, and the address its replies are sent from, which on a
     * wildcard socket the kernel would otherwise pick by route. */
    if (type == SOCK_DGRAM &&
        (family == AF_INET ? set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1)
                           : set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)) < 0)
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
    l->port = (uint16_t)psup_sockaddr_port(&bound.u.sa);
    psup_addr_format(&bound, l->bound, sizeof(l->bound));
}

static bool is_unix_file(const struct psup_addr *addr)
{
    return addr->u.sa.sa_family == AF_UNIX && addr->u.un.sun_path[0] != '\0';
}

/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped by the kernel
 * at net.core.rmem_max. Either way the kernel stores twice the value (the
 * other half for its bookkeeping), which is what SO_RCVBUF reads back. */
static int apply_recv_buffer(struct psup_listener *l, int bytes)
{
    int got = 0;
    socklen_t len = sizeof(got);

    if (set_int_option(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes) < 0 &&
        set_int_option(l->fd, SOL_SOCKET, SO_RCVBUF, bytes) < 0)
        return -errno;
    if (getsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0)
        return -errno;
    l->recv_buffer = bytes;
    l->recv_buffer_got = got / 2;
    return 0;
}

int psup_listener_open(struct psup_listener *l, const struct psup_addr *addr,
                       const struct psup_socket_sizes *sizes,
                       const struct psup_socket_perms *perms, const char *owner,
                       const char **what)
{
    struct psup_addr use = *addr;
    int rc;

    memset(l, 0, sizeof(*l));
    l->fd = l->dir_fd = l->file_fd = -1;
    l->addr = *addr;
    l->backlog = sizes->backlog;
    strncpy(l->owner, owner, sizeof(l->owner) - 1);

    rc = open_socket(&use, &l->fd);
    if (rc == -EAFNOSUPPORT && addr->any_family) {
        ipv4_wildcard(addr, &use);
        rc = open_socket(&use, &l->fd);
    }
    if (rc < 0)
        return *what = "socket", rc;
    l->family = use.u.sa.sa_family;
    /* Before bind: no datagram can arrive before the buffer is sized. */
    if (addr->proto == PSUP_PROTO_UDP && (rc = apply_recv_buffer(l, sizes->recv_buffer)) < 0)
        *what = "recv_buffer";
    else if (is_unix_file(addr))
        rc = bind_unix_file(l, perms, what);
    else if (bind(l->fd, &use.u.sa, use.len) < 0)
        rc = (*what = "bind", -errno);
    /* Only now can clients connect: the file has its mode and owner. */
    if (rc == 0 && addr->proto != PSUP_PROTO_UDP && listen(l->fd, sizes->backlog) < 0)
        rc = (*what = "listen", -errno);
    if (rc < 0) {
        psup_listener_close(l);
        return rc;
    }
    remember_bound(l, &use);
    return 0;
}

int psup_listener_set_backlog(struct psup_listener *l, int backlog)
{
    if (backlog == l->backlog || l->addr.proto == PSUP_PROTO_UDP)
        return 0;
    if (listen(l->fd, backlog) < 0)
        return -errno;
    l->backlog = backlog;
    return 0;
}

int psup_listener_set_recv_buffer(struct psup_listener *l, int bytes)
{
    if (bytes == l->recv_buffer || l->addr.proto != PSUP_PROTO_UDP)
        return 0;
    return apply_recv_buffer(l, bytes);
}

int psup_listener_set_perms(struct psup_listener *l, const struct psup_socket_perms *perms,
                            const char **what)
{
    if (l->file_fd < 0)
        return 0; /* TCP, or an abstract unix socket: no file */
    return apply_perms(-1, NULL, l->file_fd, perms, what);
}

bool psup_listener_matches(const struct psup_listener *l, const struct psup_addr *addr,
                           const char *owner)
{
    if (!psup_addr_same(&l->addr, addr))
        return false;
    if (l->file_fd >= 0)
        return file_in_place(l);
    if (addr->u.sa.sa_family != AF_UNIX && psup_sockaddr_port(&addr->u.sa) == 0)
        return strcmp(l->owner, owner) == 0;
    return true;
}

void psup_listener_close(struct psup_listener *l)
{
    if (l->file_fd >= 0)
        remove_unix_file(l);
    close_fd(&l->file_fd);
    close_fd(&l->dir_fd);
    close_fd(&l->fd);
}

/* ------------------------------------------------------------------------ */
/* The backlog at shutdown (docs/design.md, "The backlog at shutdown"). */

/* A classic BPF program that accepts nothing: attached to a listening TCP
 * socket, it drops every packet that reaches it. */
static int drop_every_packet(int fd)
{
    struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    struct sock_fprog prog = {.len = 1, .filter = code};

    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

int psup_listener_refuse_new(struct psup_listener *l)
{
    if (l->addr.proto == PSUP_PROTO_TCP) {
        /* SYNs and the ACKs that would complete a handshake reach the
         * listening socket and are dropped: a client retries its SYN and
         * is refused once the socket closes. A connection already in the
         * accept queue is a socket of its own, cloned before the filter
         * existed: unfiltered, it is accepted and served as any other. */
        return drop_every_packet(l->fd);
    }
    if (l->file_fd >= 0) {
        /* connect() by path then finds nothing (ENOENT); the socket and
         * its queue live on. */
        remove_unix_file(l);
        close_fd(&l->file_fd);
        close_fd(&l->dir_fd);
        return 0;
    }
    return -EOPNOTSUPP; /* an abstract name cannot be withdrawn without closing */
}

bool psup_listener_fd_has_queued(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;

    /* A listening socket polls readable while its accept queue holds a
     * connection (TCP and unix alike). */
    while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
        ;
    return n > 0 && (pfd.revents & POLLIN);
}
