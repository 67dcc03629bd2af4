/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets: bound once, kept across reloads while their address is
 * unchanged, shared (never accepted on) by the supervisor with its workers.
 * Every socket is close-on-exec and non-blocking: workers accept after epoll
 * says a connection is there, and EAGAIN means another worker took it.
 *
 * A unix socket file is made in a private directory, given its mode and
 * owner there, and only then moved to its path, so it never exists at its
 * path with other permissions; every later step (taking over a stale
 * socket, removing psup's own at exit) acts in the directory opened once at
 * the start, and removes nothing it has not first moved where nobody else
 * can reach it and checked there.
 */
#ifndef PSUP_LISTEN_H
#define PSUP_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

/* What a unix socket file should look like. -1 (and (uid_t)-1, (gid_t)-1)
 * leave it as bind makes it: mode 0777 & ~umask, psup's uid and gid. */
struct psup_socket_perms {
    int mode;
    uid_t uid;
    gid_t gid;
};

/* The sizes of a listener's queues: the listen backlog of a stream socket,
 * the receive buffer of a UDP socket (bytes, as SO_RCVBUF takes them). */
struct psup_socket_sizes {
    int backlog;
    int recv_buffer;
};

struct psup_listener {
    struct psup_addr addr; /* as configured */
    char owner[72];        /* the service that asked for it */
    int fd;
    int family;            /* as bound: AF_INET for "*:P" on a host without IPv6 */
    uint16_t port;         /* as bound: the kernel's for port 0 */
    int backlog;
    int recv_buffer;       /* UDP: asked for, and what the kernel gave (less */
    int recv_buffer_got;   /* without CAP_NET_ADMIN: net.core.rmem_max) */
    bool handed_over;      /* made blocking for a wait-mode service's servers
                              (lib/runtime/apply.c says when) */
    char bound[PSUP_ADDR_STRLEN]; /* as bound: the kernel's port for port 0 */
    /* A unix socket file psup made: its directory, opened once; the file
     * itself (O_PATH); its name in that directory; its identity. */
    int dir_fd;
    int file_fd;
    char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
};

/* Create, bind and listen (a UDP socket: size its receive buffer, bind,
 * and ask for each datagram's destination address); a unix socket file
 * gets perms (NULL: none). Returns 0, or -errno with *what naming the step
 * that failed ("socket", "recv_buffer", "bind", "listen", or a sentence
 * such as "in use by another process" for a live unix socket). */
int psup_listener_open(struct psup_listener *l, const struct psup_addr *addr,
                       const struct psup_socket_sizes *sizes,
                       const struct psup_socket_perms *perms, const char *owner,
                       const char **what);

/* Apply a new backlog to an open stream listener (listen() again). */
int psup_listener_set_backlog(struct psup_listener *l, int backlog);

/* Apply a new receive buffer size to an open UDP listener; what the kernel
 * gave is in recv_buffer_got. Returns 0 or -errno. */
int psup_listener_set_recv_buffer(struct psup_listener *l, int bytes);

/* Give a kept listener's socket file the settings perms asks for (those
 * left at -1 are not changed). Returns 0, or -errno with *what the step. */
int psup_listener_set_perms(struct psup_listener *l, const struct psup_socket_perms *perms,
                            const char **what);

/* Whether this listener serves addr for owner: the same address, and for a
 * port-0 address also the same service (each of those is its own socket);
 * for a unix socket file, only while the file at its path is still the one
 * psup made (deleted or replaced, a new socket must be bound). */
bool psup_listener_matches(const struct psup_listener *l, const struct psup_addr *addr,
                           const char *owner);

/* At shutdown: let no new connection into the backlog, and keep those
 * already in it for the workers to accept. TCP: a socket filter drops the
 * packets that would start or complete a handshake; a unix socket file is
 * removed (connect finds nothing). Returns 0 or -errno; -EOPNOTSUPP for an
 * abstract unix socket, which stays open to newcomers until it is closed. */
int psup_listener_refuse_new(struct psup_listener *l);

/* Whether connections wait in the backlog of the listening socket fd
 * (never blocks). */
bool psup_listener_fd_has_queued(int fd);

/* Close; a unix socket file is removed only if it is still the one psup
 * created (another process may have replaced it). */
void psup_listener_close(struct psup_listener *l);

#endif
