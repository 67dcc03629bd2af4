/* SPDX-License-Identifier: MIT */
/*
 * Taking a datagram (datagram mode, spec/udp.md). The worker that epoll
 * woke reads it, once, with the address it was sent to; judges its sender
 * (allow/deny here, then the supervisor's verdict where a limit needs one);
 * and admits it for its handler (exec.c, or a prestarted program's
 * handoff), with the datagram in a pipe on fd 0 and one end of a reply
 * socket on fd 1. The other end goes to the supervisor, which
 * sends each message written there back to the client, from the listening
 * socket and the address the client sent to. Nothing is peeked and read
 * again later: the sender the limits judge is the sender of the datagram
 * the handler gets. Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>

/* A pipe holds at least one page, even one made by a user past
 * fs.pipe-user-pages-soft: a datagram this small needs no check. */
#define PIPE_MIN_CAPACITY 4096

struct datagram {
    size_t len;                 /* its bytes are in the worker's dgram buffer */
    struct sockaddr_in6 remote; /* the sender (a sockaddr_in on an IPv4 socket) */
    struct psup_peer local;     /* where it was sent: the address from the
                                   packet info, the listener's port */
};

static bool multicast_or_broadcast(const uint8_t a[16])
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (a[0] == 0xff)
        return true; /* IPv6 multicast */
    if (memcmp(a, v4_mapped, sizeof(v4_mapped)) != 0)
        return false;
    return (a[12] & 0xf0) == 0xe0 || (a[12] == 0xff && a[13] == 0xff && a[14] == 0xff &&
                                      a[15] == 0xff);
}

static void v4_mapped(const void *in4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, in4, 4);
}

/* The destination of the datagram, from its packet info: the handler's
 * UDPLOCALIP, and the source of its replies. An IPv4 socket's info also
 * names the interface's address for a datagram sent to a broadcast or
 * multicast address (ipi_spec_dst), which is what a reply can be sent
 * from; an IPv6 socket's does not, and such a reply's source is left to
 * the kernel. */
static void read_destination(const struct msghdr *mh, struct datagram *d,
                             struct psup_route *route)
{
    const struct cmsghdr *h = CMSG_FIRSTHDR(mh);
    uint8_t *local = d->local.addr;

    if (!h || (mh->msg_flags & MSG_CTRUNC))
        return; /* no info: unspecified, and the kernel picks the source */
    if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(h), sizeof(pi));
        v4_mapped(&pi.ipi_addr, local);
        v4_mapped(&pi.ipi_spec_dst, route->source);
    } else if (h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_PKTINFO) {
        struct in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(h), sizeof(pi));
        memcpy(local, &pi.ipi6_addr, 16);
        if (!multicast_or_broadcast(local))
            memcpy(route->source, local, 16);
        /* A link-local source names no interface by itself. */
        if (local[0] == 0xfe && (local[1] & 0xc0) == 0x80)
            route->ifindex = pi.ipi6_ifindex;
    }
}

/* Read the datagram the listener holds, if another worker has not. Returns
 * 0 or -errno (EAGAIN: nothing there). */
static long read_datagram(const struct psup_child *c, const struct psup_plan_listener *l,
                          struct datagram *d, struct psup_route *route)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    } control;
    struct iovec iov = {.iov_base = c->dgram, .iov_len = PSUP_DGRAM_MAX};
    struct msghdr mh = {.msg_name = &d->remote, .msg_namelen = sizeof(d->remote),
                        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};

    if (!c->dgram)
        return -EINVAL; /* a plan and a record that disagree: a bug */
    memset(d, 0, sizeof(*d));
    memset(&control, 0, sizeof(control));
    long n = psup_sys(SYS_recvmsg, l->fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return n;
    d->len = (size_t)n;
    d->local.family = AF_INET6;
    d->local.port = l->port;
    read_destination(&mh, d, route);
    route->scope_id = d->remote.sin6_family == AF_INET6 ? d->remote.sin6_scope_id : 0;
    return 0;
}

/* fd 0 for the handler: a pipe holding the whole datagram, its write end
 * closed, so the handler reads the datagram and then end of file. The pipe
 * is made large enough first, so the write never waits. Returns the read
 * end or -errno. */
static long stdin_pipe(const uint8_t *data, size_t len)
{
    int fds[2];
    long r = psup_sys(SYS_pipe2, fds, O_CLOEXEC);

    if (r < 0)
        return r;
    if (len > PIPE_MIN_CAPACITY) {
        r = psup_sys(SYS_fcntl, fds[1], F_GETPIPE_SZ);
        if (r >= 0 && (size_t)r < len)
            r = psup_sys(SYS_fcntl, fds[1], F_SETPIPE_SZ, len);
    }
    if (r >= 0 && len)
        r = psup_sys(SYS_write, fds[1], data, len);
    psup_child_close(fds[1]);
    if (r < 0) {
        psup_child_close(fds[0]);
        return r;
    }
    return fds[0];
}

/* fd 1 for the handler: pair[1], one end of a SOCK_SEQPACKET pair, which
 * keeps each write one message and tells the reader when every writer is
 * gone (the handler and whatever inherited the descriptor). pair[0] goes
 * to the supervisor. It reads with SO_PASSCRED, set here before any
 * message can be written: every message then carries credentials, which
 * tells one of zero bytes (send() with length 0, an empty reply) from the
 * end, where both read as 0 bytes. Returns 0 or -errno. */
static long reply_pair(int pair[2])
{
    int on = 1;
    long r = psup_sys(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair);

    if (r < 0)
        return r;
    r = psup_sys(SYS_setsockopt, pair[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    if (r < 0) {
        psup_child_close(pair[0]);
        psup_child_close(pair[1]);
    }
    return r;
}

static bool lack_of_resources(long err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -ENOBUFS;
}

/* Admit the datagram for its handler, with in (the datagram) and reply[1],
 * telling the supervisor (RUNNING), or asking it first (BUSY) where a limit
 * or the stderr log needs it. Returns true when admitted (c->handover);
 * false, having closed everything, when the datagram is dropped: refused,
 * or the supervisor not reachable. */
static bool admit(struct psup_child *c, struct psup_msg *m, char **envp, long in, int reply[2])
{
    int log_pipe[2];

    if (!c->plan->needs_verdict && c->tally_slot != PSUP_TALLY_NONE) {
        psup_child_publish(c, &m->peer, true);
        m->kind = PSUP_MSG_RUNNING;
        if (psup_child_send(c, m, -1, reply[0]) >= 0) {
            psup_child_close(reply[0]);
            psup_child_set_handover(c, (int)in, reply[1], -1, envp);
            return true;
        }
        psup_tally_withdraw(c->tally, c->tally_slot);
        psup_child_close(reply[0]);
    } else {
        psup_child_log_pipe(c, log_pipe);
        uint64_t verdict = psup_child_ask(c, m, log_pipe[0], reply[0]);
        psup_child_close(log_pipe[0]);
        psup_child_close(reply[0]);
        if (psup_verdict_code(verdict) == PSUP_VERDICT_RUN) {
            psup_child_admitted(c, &m->peer, verdict, &log_pipe[1]);
            psup_child_set_handover(c, (int)in, reply[1], log_pipe[1], envp);
            return true;
        }
        /* Refused (per source, rate, overload): dropped without a word, as
         * a reply would go to an address the sender may have forged. */
        psup_child_close(log_pipe[1]);
    }
    psup_child_close(reply[1]);
    psup_child_close((int)in);
    return false;
}

long psup_child_receive(struct psup_child *c, uint32_t index)
{
    const struct psup_plan *p = c->plan;
    const struct psup_plan_listener *l = &psup_plan_listeners(p)[index];
    struct psup_msg m = {.listener = index};
    struct datagram d;
    int reply[2];
    long r = read_datagram(c, l, &d, &m.route);

    if (r < 0)
        return r;
    m.peer.family = AF_INET6;
    m.peer.port = (uint16_t)psup_sockaddr_port((struct sockaddr *)&d.remote);
    psup_ip_key((struct sockaddr *)&d.remote, m.peer.addr);

    /* allow/deny here, without a round trip: a denied datagram costs one
     * read and one message, never a process. Source port 0 cannot be
     * answered, and only a forged or broken sender uses it. */
    if (m.peer.port == 0 || !psup_child_allowed(p, m.peer.addr)) {
        m.kind = PSUP_MSG_DENIED;
        psup_child_send(c, &m, -1, -1);
        return 0;
    }

    if ((r = reply_pair(reply)) < 0)
        return r;
    long in = stdin_pipe(c->dgram, d.len);
    if (in < 0) {
        psup_child_close(reply[0]);
        psup_child_close(reply[1]);
        if (lack_of_resources(in))
            return in;
        /* The pipe cannot hold the datagram (F_SETPIPE_SZ refused: a user
         * past its pipe quota): it is lost; say so. */
        psup_child_report(c, PSUP_MSG_ACCEPT_FAILED, PSUP_STEP_SETUP, in);
        return 0;
    }
    char **envp = psup_child_env(c, l, &d.local, &m.peer, NULL, 0);
    return admit(c, &m, envp, in, reply) ? 1 : 0;
}
