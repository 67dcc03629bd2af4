/* SPDX-License-Identifier: MIT */
/*
 * Taking a connection: who the client is, allow/deny, and the supervisor's
 * verdict where a limit needs it; then the connection is admitted (the
 * worker becomes its handler, exec.c) or closed, and the worker waits
 * again. spec/pool.md has the protocol. Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>

/* How long, and how much of its input, a refused client may keep a worker
 * waiting for it to close (spec/pool.md, "Refusing a client"). */
#define REFUSAL_LINGER_MS 1000
#define REFUSAL_DISCARD_MAX 65536

/* Best-effort write of a refusal message to a client we are about to close:
 * never blocks, never raises SIGPIPE. */
static void send_message(int fd, const char *text)
{
    size_t len = text ? strlen(text) : 0;

    if (len)
        psup_sys(SYS_sendto, fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
}

/* Read and drop the client's input until it closes, for up to linger_ms
 * (0: only what has already arrived) and REFUSAL_DISCARD_MAX bytes. */
static void discard_input(int fd, int linger_ms)
{
    int64_t deadline = psup_child_monotonic_ms() + linger_ms;
    char buf[512]; /* the worker's stack is small (lib/child/README.md) */
    size_t total = 0;

    while (total < REFUSAL_DISCARD_MAX) {
        long n = psup_sys(SYS_recvfrom, fd, buf, sizeof(buf), MSG_DONTWAIT, 0, 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN)
            return; /* the client closed (0), or reset */
        int64_t left = deadline - psup_child_monotonic_ms();
        if (left <= 0)
            return;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = left % 1000 * 1000000};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        psup_sys(SYS_ppoll, &pfd, 1, &ts, 0, PSUP_KSIGSET_SIZE);
    }
}

/* Refuse a client with text. Closing a socket whose input was not read
 * makes the kernel send a reset, and a reset can destroy the message before
 * the client reads it (a client that sent a request first, as every HTTP
 * client does). So: the message, then the end of output (the client sees
 * the message and a clean EOF), then its input read and dropped until it
 * closes, then the close. The wait is bounded in time and bytes, and only
 * a few workers of the service wait at once (half its min_spare): a worker
 * is idle capacity, and a flood of clients that never close must not take
 * all of it. The others only drop what has already arrived. */
static void refuse(const struct psup_child *c, int conn, const char *text)
{
    const struct psup_plan *p = c->plan;
    bool linger = c->tally_slot != PSUP_TALLY_NONE &&
                  psup_tally_linger_begin(c->tally, p->tally_capacity, c->tally_slot,
                                          p->min_spare / 2);

    send_message(conn, text);
    psup_sys(SYS_shutdown, conn, SHUT_WR);
    discard_input(conn, linger ? REFUSAL_LINGER_MS : 0);
    if (linger)
        psup_tally_linger_end(c->tally, c->tally_slot);
    psup_child_close(conn);
}

static void describe_peer(int conn, const struct psup_plan_listener *l,
                          const struct sockaddr *remote, struct psup_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    if (l->proto == PSUP_PROTO_UNIX) {
        struct ucred cred = {0};
        socklen_t len = sizeof(cred);
        psup_sys(SYS_getsockopt, conn, SOL_SOCKET, SO_PEERCRED, &cred, &len);
        peer->family = AF_UNIX;
        peer->pid = cred.pid;
        peer->uid = cred.uid;
        peer->gid = cred.gid;
        return;
    }
    peer->family = AF_INET6;
    peer->port = (uint16_t)psup_sockaddr_port(remote);
    psup_ip_key(remote, peer->addr);
}

static const char *refusal_text(const struct psup_plan *p, enum psup_verdict code)
{
    switch (code) {
    case PSUP_VERDICT_PER_SOURCE: return psup_plan_str(p, p->per_source_message);
    case PSUP_VERDICT_RATE: return psup_plan_str(p, p->rate_message);
    case PSUP_VERDICT_OVERLOAD: return psup_plan_str(p, p->overload_message);
    default: return NULL;
    }
}

_Static_assert(PSUP_PROXY_PROTOCOL_V1 == PSUP_PROXY_V1 && PSUP_PROXY_PROTOCOL_V2 == PSUP_PROXY_V2 &&
                   PSUP_PROXY_PROTOCOL_ANY == PSUP_PROXY_ANY,
               "a service's proxy_protocol is the reader's accept argument");

/* A service behind a load balancer (spec/proxy.md): the connection must
 * come from proxy_from and start with a PROXY header, whose source is then
 * the client everywhere; the connection's own peer becomes m->proxy.
 * Returns false when the connection was refused, reported and closed
 * (without a word: the peer is a balancer, or not one at all). */
static bool take_proxy_header(struct psup_child *c, int conn, struct psup_msg *m)
{
    const struct psup_plan *p = c->plan;
    long r = -EACCES;

    m->proxy = m->peer;
    /* Before any byte is read: a connection from elsewhere must not hold
     * a worker for proxy_timeout. */
    if (!psup_access_allowed(psup_plan_at(p, p->proxy_from), p->n_proxy_from, NULL, 0,
                             m->peer.addr))
        goto refuse;
    /* Busy from here on: the supervisor starts a spare in this worker's
     * place while the header arrives, so slow balancers cannot take every
     * spare for proxy_timeout each. */
    m->kind = PSUP_MSG_READING;
    psup_child_send(c, m, -1, -1);
    r = psup_proxy_read(conn, p->proxy_protocol, p->proxy_timeout_ms, &c->proxy);
    if (r < 0)
        goto refuse;
    /* LOCAL and UNKNOWN keep the connection's own addresses. */
    if (c->proxy.has_addresses) {
        memcpy(m->peer.addr, c->proxy.src_addr, sizeof(m->peer.addr));
        m->peer.port = c->proxy.src_port;
    }
    return true;
refuse:
    m->kind = PSUP_MSG_PROXY_REFUSED;
    m->err = (int32_t)-r;
    psup_child_send(c, m, -1, -1);
    psup_child_close(conn);
    return false;
}

unsigned psup_child_publish(const struct psup_child *c, const struct psup_peer *peer,
                            bool count)
{
    struct psup_source src;

    psup_peer_source(peer, c->plan->per_source_ipv6_prefix, &src);
    return psup_tally_publish(c->tally, c->plan->tally_capacity, c->tally_slot, c->conn_id,
                              &src, count);
}

void psup_child_set_handover(struct psup_child *c, int in, int out, int log_pipe, char **envp)
{
    c->handover = (struct psup_handover){.in = in, .out = out, .log_pipe = log_pipe,
                                         .envp = envp};
}

/* The address the client connected to (TCP): a PROXY header's
 * destination, or the socket's own. */
static void local_address(const struct psup_child *c, int conn, const struct psup_msg *m,
                          struct psup_peer *local)
{
    struct sockaddr_storage sa = {0};
    socklen_t len = sizeof(sa);

    memset(local, 0, sizeof(*local));
    local->family = AF_INET6;
    if (m->proxy.family && c->proxy.has_addresses) {
        memcpy(local->addr, c->proxy.dst_addr, sizeof(local->addr));
        local->port = c->proxy.dst_port;
    } else if (psup_sys(SYS_getsockname, conn, &sa, &len) == 0) {
        psup_ip_key((const struct sockaddr *)&sa, local->addr);
        local->port = (uint16_t)psup_sockaddr_port((const struct sockaddr *)&sa);
    }
}

/* The handler's environment for a connection: the client is m's peer (a
 * PROXY header's source, if any), its proxy m's proxy. */
static char **connection_env(struct psup_child *c, const struct psup_plan_listener *l, int conn,
                             const struct psup_msg *m, unsigned connnum)
{
    struct psup_peer local = {0};

    if (l->proto != PSUP_PROTO_UNIX)
        local_address(c, conn, m, &local);
    return psup_child_env(c, l, &local, &m->peer, &m->proxy, connnum);
}

/* No limit to check: count the client's connections in the tally, tell the
 * supervisor, and admit the connection. Returns false if the supervisor
 * could not be told (the caller then closes the connection). */
static bool run_without_verdict(struct psup_child *c, const struct psup_plan_listener *l,
                                int conn, struct psup_msg *m)
{
    unsigned connnum = psup_child_publish(c, &m->peer, true);

    m->kind = PSUP_MSG_RUNNING;
    if (psup_child_send(c, m, -1, -1) < 0) {
        psup_tally_withdraw(c->tally, c->tally_slot);
        return false;
    }
    psup_child_set_handover(c, conn, conn, -1, connection_env(c, l, conn, m, connnum));
    return true;
}

uint64_t psup_child_ask(struct psup_child *c, struct psup_msg *m, int log_read, int reply)
{
    uint64_t verdict = psup_verdict_encode(PSUP_VERDICT_CLOSE, 0, 0, 0);

    m->kind = PSUP_MSG_BUSY;
    m->seq = ++c->seq;
    if (psup_child_send(c, m, log_read, reply) < 0)
        return verdict;
    if (psup_child_wait_verdict(c->plan, m->seq, &verdict) < 0) {
        /* The supervisor logs the client given up when it reads this, and
         * counts the worker idle again. */
        m->kind = PSUP_MSG_GAVE_UP;
        psup_child_send(c, m, -1, -1);
        verdict = psup_verdict_encode(PSUP_VERDICT_CLOSE, 0, 0, 0);
    }
    return verdict;
}

void psup_child_log_pipe(const struct psup_child *c, int log_pipe[2])
{
    log_pipe[0] = log_pipe[1] = -1;
    if (c->plan->stderr_mode == PSUP_STDERR_LOG &&
        psup_sys(SYS_pipe2, log_pipe, O_CLOEXEC) < 0)
        log_pipe[0] = log_pipe[1] = -1; /* the supervisor sees no fd: inherit */
}

void psup_child_admitted(struct psup_child *c, const struct psup_peer *peer, uint64_t verdict,
                         int *log_write)
{
    if (verdict & PSUP_VERDICT_NO_LOG_PIPE) {
        psup_child_close(*log_write);
        *log_write = -1;
    }
    /* Visible to the TCPCONNNUM of workers that need no verdict (a reload
     * may leave both kinds running). */
    if (c->tally_slot != PSUP_TALLY_NONE)
        psup_child_publish(c, peer, false);
}

bool psup_child_allowed(const struct psup_plan *p, const uint8_t addr[16])
{
    return psup_access_allowed(psup_plan_at(p, p->allow), p->n_allow, psup_plan_at(p, p->deny),
                               p->n_deny, addr);
}

bool psup_child_take(struct psup_child *c, uint32_t index, int conn,
                     const struct sockaddr *remote)
{
    const struct psup_plan *p = c->plan;
    const struct psup_plan_listener *l = &psup_plan_listeners(p)[index];
    struct psup_msg m = {.listener = index};
    int log_pipe[2];

    describe_peer(conn, l, remote, &m.peer);
    if (p->proxy_protocol && !take_proxy_header(c, conn, &m))
        return false;

    /* allow/deny are decided here, without a round trip: a denied client
     * costs one accept and one message, never a process. */
    if (l->proto != PSUP_PROTO_UNIX && !psup_child_allowed(p, m.peer.addr)) {
        m.kind = PSUP_MSG_DENIED;
        psup_child_send(c, &m, -1, -1);
        refuse(c, conn, psup_plan_str(p, p->deny_message));
        return false;
    }

    if (!p->needs_verdict && c->tally_slot != PSUP_TALLY_NONE) {
        if (run_without_verdict(c, l, conn, &m))
            return true;
        psup_child_close(conn);
        return false;
    }

    psup_child_log_pipe(c, log_pipe);
    uint64_t verdict = psup_child_ask(c, &m, log_pipe[0], -1);
    psup_child_close(log_pipe[0]);

    enum psup_verdict code = psup_verdict_code(verdict);
    if (code == PSUP_VERDICT_RUN) {
        psup_child_admitted(c, &m.peer, verdict, &log_pipe[1]);
        char **envp = connection_env(c, l, conn, &m, psup_verdict_connnum(verdict));
        psup_child_set_handover(c, conn, conn, log_pipe[1], envp);
        return true;
    }
    psup_child_close(log_pipe[1]);
    refuse(c, conn, refusal_text(p, code));
    return false;
}
