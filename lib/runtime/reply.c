/* SPDX-License-Identifier: MIT */
/*
 * Sending a datagram handler's replies (reply.h, spec/udp.md). Each message
 * the handler writes is read whole and sent at once as one datagram; a
 * reply that cannot be sent (the socket's send buffer full, a message too
 * large for UDP, an address the kernel refuses) is dropped, counted and
 * logged, never queued: UDP promises no delivery, and a queue would let
 * one handler hold the supervisor's memory. Nothing here blocks.
 */
#include "runtime/reply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fd.h"
#include "runtime/generation.h"
#include "runtime/report.h"

/* One message read at a time, shared by every reply socket (the
 * supervisor has one thread). A message larger than this cannot be one
 * UDP datagram anyway (65527 bytes at most). */
static uint8_t message[PSUP_DGRAM_MAX];

/* The client's address in the listening socket's family: a v4-mapped
 * address on an IPv4 socket becomes a plain IPv4 one. */
static void set_destination(struct psup_reply *r, int family)
{
    if (family == AF_INET) {
        r->to.in4.sin_family = AF_INET;
        r->to.in4.sin_port = htons(r->peer.port);
        memcpy(&r->to.in4.sin_addr, r->peer.addr + 12, 4);
        r->to_len = sizeof(r->to.in4);
        return;
    }
    r->to.in6.sin6_family = AF_INET6;
    r->to.in6.sin6_port = htons(r->peer.port);
    memcpy(&r->to.in6.sin6_addr, r->peer.addr, 16);
    r->to_len = sizeof(r->to.in6);
}

static bool unspecified(const uint8_t a[16])
{
    static const uint8_t zero[16];

    return memcmp(a, zero, sizeof(zero)) == 0;
}

/* The source of every reply: the address the client sent to, so that a
 * client with a connected socket (dig, nc -u) accepts the reply, and a
 * wildcard socket on a host of several addresses answers from the right
 * one (the kernel would pick one by route). */
static void set_source(struct psup_reply *r, int family, const struct psup_route *route)
{
    struct cmsghdr *h = &r->from.hdr;

    if (unspecified(route->source))
        return;
    memset(&r->from, 0, sizeof(r->from));
    if (family == AF_INET) {
        struct in_pktinfo pi = {0};
        memcpy(&pi.ipi_spec_dst, route->source + 12, 4);
        h->cmsg_level = IPPROTO_IP;
        h->cmsg_type = IP_PKTINFO;
        h->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(h), &pi, sizeof(pi));
        r->from_len = CMSG_SPACE(sizeof(pi));
        return;
    }
    /* An IPv4 client of a dual-stack socket too: Linux takes a v4-mapped
     * IPV6_PKTINFO for an IPv4 datagram. */
    struct in6_pktinfo pi = {.ipi6_ifindex = route->ifindex};
    memcpy(&pi.ipi6_addr, route->source, 16);
    h->cmsg_level = IPPROTO_IPV6;
    h->cmsg_type = IPV6_PKTINFO;
    h->cmsg_len = CMSG_LEN(sizeof(pi));
    memcpy(CMSG_DATA(h), &pi, sizeof(pi));
    r->from_len = CMSG_SPACE(sizeof(pi));
    r->to.in6.sin6_scope_id = route->scope_id;
}

static void failed(struct psup_reply *r, int err, const char *reason, uint64_t now)
{
    r->service->counters.replies_failed++;
    psup_report_reply_failed(r->service, r->conn, r->pid, &r->peer, err, reason, now);
}

/* Follow fd, the reply socket of w's datagram (taken over), replying to
 * w's client. Returns NULL (fd closed, the failure reported) if it
 * cannot. */
static struct psup_reply *reply_new(struct psup_worker *w, int fd, uint64_t now)
{
    const struct psup_generation *g = w->gen;
    struct psup_reply *r = calloc(1, sizeof(*r));
    int err = ENOMEM;

    if (r && w->listener < g->plan->n_listeners) {
        const struct psup_plan_listener *l = &psup_plan_listeners(g->plan)[w->listener];
        r->sock = fcntl(l->fd, F_DUPFD_CLOEXEC, 3);
        err = r->sock < 0 ? errno : 0;
        r->fd = fd;
        r->service = w->service;
        r->worker = w;
        r->conn = w->child.conn_id;
        r->pid = w->pid;
        r->peer = w->peer;
        set_destination(r, l->family);
        set_source(r, l->family, &w->route);
    }
    if (!r || err) {
        /* The handler's writes to its stdout fail (EPIPE): it runs, but
         * cannot answer. */
        struct psup_reply tmp = {.service = w->service, .conn = w->child.conn_id,
                                 .pid = w->pid, .peer = w->peer};
        failed(&tmp, err, "follow", now);
        psup_fd_close(fd);
        free(r);
        return NULL;
    }
    w->service->replying++;
    w->reply = r;
    return r;
}

/* Close any descriptor a handler passed along with a message (SCM_RIGHTS):
 * nothing of the handler's may stay open in the supervisor. The control
 * buffer has no room for them, so the kernel drops them; this is the
 * second line. Returns whether the message carried credentials: every
 * message does (SO_PASSCRED), the end of the stream does not. */
static bool scan_control(struct msghdr *mh)
{
    bool creds = false;

    for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
        if (h->cmsg_level != SOL_SOCKET)
            continue;
        if (h->cmsg_type == SCM_CREDENTIALS) {
            creds = true;
        } else if (h->cmsg_type == SCM_RIGHTS) {
            size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                psup_fd_close(fd);
            }
        }
    }
    return creds;
}

/* Read one message: its length, 0 for an empty one, -1 at the end, or
 * -errno (EAGAIN: none there now). */
static ssize_t read_message(struct psup_reply *r, bool *truncated)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {.iov_base = message, .iov_len = sizeof(message)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    ssize_t n;

    do {
        n = recvmsg(r->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? -EAGAIN : -1; /* a socket error ends it too */
    *truncated = (mh.msg_flags & MSG_TRUNC) != 0;
    if (!scan_control(&mh) && n == 0)
        return -1;
    return n;
}

static void send_reply(struct psup_reply *r, size_t len, uint64_t now)
{
    struct iovec iov = {.iov_base = message, .iov_len = len};
    struct msghdr mh = {.msg_name = &r->to, .msg_namelen = r->to_len, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = r->from_len ? r->from.buf : NULL,
                        .msg_controllen = r->from_len};
    ssize_t n;

    do {
        n = sendmsg(r->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        /* EAGAIN: the socket's send buffer is full; EMSGSIZE: more than a
         * datagram holds; EINVAL, EPERM, ENETUNREACH: the kernel refuses
         * the address or the route. The reply is dropped either way. */
        failed(r, errno, "send", now);
        return;
    }
    r->service->counters.replies++;
    if (r->worker)
        r->worker->replies++;
}

enum psup_reply_state psup_reply_pump(struct psup_reply *r, size_t max_bytes, unsigned max_msgs,
                                      uint64_t now)
{
    size_t bytes = 0;

    for (unsigned i = 0; i < max_msgs && bytes < max_bytes; i++) {
        bool truncated = false;
        ssize_t n = read_message(r, &truncated);
        if (n == -EAGAIN)
            return PSUP_REPLY_AGAIN;
        if (n < 0)
            return PSUP_REPLY_END;
        if (truncated)
            failed(r, EMSGSIZE, "send", now);
        else
            send_reply(r, (size_t)n, now);
        bytes += (size_t)n;
    }
    return PSUP_REPLY_BUDGET;
}

void psup_reply_follow(struct psup_runtime *rt, struct psup_worker *w, int fd, uint64_t now)
{
    int err = EMFILE;

    if (w->gen->svc->mode != PSUP_MODE_DATAGRAM) {
        psup_fd_close(fd);
        return;
    }
    if (fd >= 0) {
        struct psup_reply *r = reply_new(w, fd, now);
        if (!r || (rt->hooks.reply_socket && rt->hooks.reply_socket(rt->hooks.arg, r)))
            return; /* reply_new reported its own failure */
        psup_reply_free(r);
        err = ENOMEM;
    }
    w->service->counters.replies_failed++;
    psup_report_reply_failed(w->service, w->child.conn_id, w->pid, &w->peer, err, "follow", now);
}

void psup_reply_end(struct psup_runtime *rt, struct psup_worker *w)
{
    /* The hook detaches the reply from the worker (and may free it). */
    if (w->reply && rt->hooks.reply_done)
        rt->hooks.reply_done(rt->hooks.arg, w->reply);
    w->reply = NULL;
}

void psup_reply_detach(struct psup_reply *r)
{
    if (r->worker)
        r->worker->reply = NULL;
    r->worker = NULL;
}

void psup_reply_free(struct psup_reply *r)
{
    struct psup_service *s = r->service;

    psup_reply_detach(r);
    psup_fd_close(r->fd);
    psup_fd_close(r->sock);
    free(r);
    s->replying--;
    psup_service_release(s);
}
