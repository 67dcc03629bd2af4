/* SPDX-License-Identifier: MIT */
/*
 * Readiness for the supervisor's supervisor (spec/readiness.md): systemd's
 * notification protocol on $NOTIFY_SOCKET (READY=1, RELOADING=1 with
 * MONOTONIC_USEC, STOPPING=1, STATUS=, and WATCHDOG=1 at half of
 * $WATCHDOG_USEC), and s6's notification descriptor (--ready-fd: a newline,
 * then close). Datagrams are sent without blocking; one the receiver has no
 * room for waits in a short queue, in order.
 */
#ifndef PSUP_NOTIFY_H
#define PSUP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#define PSUP_NOTIFY_QUEUE 8
#define PSUP_NOTIFY_MAX 512 /* bytes of one message */

struct psup_notify_msg {
    int kind; /* notify.c: a state change, a STATUS= update, a WATCHDOG=1 */
    size_t len;
    char text[PSUP_NOTIFY_MAX];
};

struct psup_notify {
    int fd;                       /* the datagram socket, or -1 */
    struct sockaddr_un addr;
    socklen_t addr_len;
    int ready_fd;                 /* --ready-fd, or -1 (once written) */
    bool failing;                 /* notify_failed logged, nothing sent since */
    uv_timer_t watchdog, status, retry;
    bool timers;                  /* the three timers are initialised */
    /* The one-line STATUS= summary ("4 services, 11 workers, 2 busy"),
     * asked for once a second and sent when it changed. */
    void (*summary)(void *arg, char *buf, size_t size);
    void *arg;
    char last_status[PSUP_NOTIFY_MAX];
    struct psup_notify_msg queue[PSUP_NOTIFY_QUEUE];
    size_t queued;
};

/* Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, open the socket and
 * start the watchdog and status timers on loop (none without a socket).
 * ready_fd is --ready-fd's descriptor, or -1. An address psup cannot use is
 * logged (notify_failed) and ignored. */
void psup_notify_init(struct psup_notify *n, uv_loop_t *loop, int ready_fd,
                      void (*summary)(void *arg, char *buf, size_t size), void *arg);

/* Every service is serving: READY=1 with STATUS=status; the newline on the
 * ready descriptor the first time. */
void psup_notify_ready(struct psup_notify *n, const char *status);

/* A reload begins: RELOADING=1 and MONOTONIC_USEC= (followed by
 * psup_notify_ready once it is done, applied or rejected). */
void psup_notify_reloading(struct psup_notify *n);

/* A stop begins: STOPPING=1 with STATUS=status. */
void psup_notify_stopping(struct psup_notify *n, const char *status);

/* Close the socket and the ready descriptor (the timers are closed with
 * the loop's other handles). */
void psup_notify_close(struct psup_notify *n);

#endif
