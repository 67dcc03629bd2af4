/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets: bound once, kept across reloads while their address is
 * unchanged, shared (never accepted on) by the supervisor with its workers.
 * Every socket is close-on-exec and non-blocking: workers accept after epoll
 * says a connection is there, and EAGAIN means another worker took it.
 */
#ifndef PSUP_LISTEN_H
#define PSUP_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

#include "net/addr.h"

struct psup_listener {
    struct psup_addr addr; /* as configured */
    char owner[72];        /* the service that asked for it */
    int fd;
    int backlog;
    char bound[PSUP_ADDR_STRLEN]; /* as bound: the kernel's port for port 0 */
    bool created_file;     /* a unix socket file psup made (to unlink) */
    dev_t dev;
    ino_t ino;
};

/* Create, bind and listen. Returns 0, or -errno with *what naming the step
 * that failed ("socket", "bind", "listen", or a sentence such as "in use by
 * another process" for a live unix socket). */
int psup_listener_open(struct psup_listener *l, const struct psup_addr *addr, int backlog,
                       const char *owner, const char **what);

/* Apply a new backlog to an open listener (listen() again). */
int psup_listener_set_backlog(struct psup_listener *l, int backlog);

/* Whether this listener serves addr for owner: the same address, and for a
 * port-0 address also the same service (each of those is its own socket). */
bool psup_listener_matches(const struct psup_listener *l, const struct psup_addr *addr,
                           const char *owner);

/* Close; a unix socket file is removed only if it is still the one psup
 * created (another process may have replaced it). */
void psup_listener_close(struct psup_listener *l);

#endif
