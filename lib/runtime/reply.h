/* SPDX-License-Identifier: MIT */
/*
 * A datagram handler's replies (spec/udp.md): the supervisor's end of the
 * handler's reply socket (SOCK_SEQPACKET, so each write of the handler is
 * one message), read message by message, each sent to the client as one
 * datagram from the listening socket, with the address the client sent to
 * as its source. The runtime makes, counts and ends them; the loop watches
 * the socket and says when to read (lib/loop/replies.c). A reply socket
 * may outlive its handler (a process the handler started may hold it):
 * it keeps its service alive, never its worker.
 */
#ifndef PSUP_REPLY_H
#define PSUP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime/runtime.h"

struct psup_reply {
    int fd;                       /* the supervisor's end of the reply socket */
    int sock;                     /* the listening socket, duplicated: a reload
                                     or a shutdown that closes the listener
                                     leaves the replies their way out */
    struct psup_service *service; /* holds one of its `replying` */
    struct psup_worker *worker;   /* until it is reaped: its count, its slot */
    unsigned long long conn;
    pid_t pid;
    struct psup_peer peer;
    union {
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } to;
    socklen_t to_len;
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    } from;                       /* the source address: IP(V6)_PKTINFO */
    size_t from_len;              /* 0: the kernel chooses */
    void *watch;                  /* the loop's */
};

enum psup_reply_state {
    PSUP_REPLY_AGAIN,  /* read all there was: wait for more */
    PSUP_REPLY_BUDGET, /* stopped at the budget: more may be there */
    PSUP_REPLY_END,    /* every writer is gone (or the socket failed) */
};

/* A datagram handler's reply socket fd came with w's BUSY or RUNNING (-1:
 * it did not, psup being out of descriptors): follow it through the loop's
 * hook (taken over). If it cannot be followed, the handler's writes to its
 * stdout fail; that is counted and reported. For a worker of another mode,
 * fd is only closed. */
void psup_reply_follow(struct psup_runtime *rt, struct psup_worker *w, int fd, uint64_t now);

/* w's handler was reaped, or its datagram given up: send what its reply
 * socket holds, and follow it only a little longer (the loop's hook). */
void psup_reply_end(struct psup_runtime *rt, struct psup_worker *w);


/* Read what the socket holds and send it, at most max_bytes and max_msgs
 * messages; count each reply sent or failed. */
enum psup_reply_state psup_reply_pump(struct psup_reply *r, size_t max_bytes, unsigned max_msgs,
                                      uint64_t now);

/* The worker was reaped (or went back to waiting): the reply no longer
 * counts for it. */
void psup_reply_detach(struct psup_reply *r);

/* Close and free; the service goes too if nothing else holds it. */
void psup_reply_free(struct psup_reply *r);

#endif
