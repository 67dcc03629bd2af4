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

/* Show the client in this worker's tally entry; with count, return how many
 * of the service's handlers serve it now, this one included. */
static unsigned publish_source(const struct psup_child *c, const struct psup_peer *peer,
                               bool count)
{
    struct psup_source src;

    psup_peer_source(peer, c->plan->per_source_ipv6_prefix, &src);
    return psup_tally_publish(c->tally, c->plan->tally_capacity, c->tally_slot, c->conn_id,
                              &src, count);
}

/* The connection goes to a handler: what the worker becomes it with. */
static bool admit(struct psup_child *c, uint32_t index, int conn, const struct sockaddr *remote,
                  const struct psup_peer *peer, unsigned connnum, int log_pipe)
{
    struct psup_handover *h = &c->handover;

    h->conn = conn;
    h->log_pipe = log_pipe;
    h->listener = index;
    h->connnum = connnum;
    h->peer = *peer;
    memcpy(&h->remote, remote, sizeof(h->remote));
    return true;
}

/* No limit to check: count the client's connections in the tally, tell the
 * supervisor, and admit the connection. Returns false if the supervisor
 * could not be told (the caller then closes the connection). */
static bool run_without_verdict(struct psup_child *c, uint32_t index, int conn,
                                const struct sockaddr *remote, struct psup_msg *m)
{
    unsigned connnum = publish_source(c, &m->peer, true);

    m->kind = PSUP_MSG_RUNNING;
    if (psup_child_send(c, m, -1) < 0) {
        psup_tally_withdraw(c->tally, c->tally_slot);
        return false;
    }
    return admit(c, index, conn, remote, &m->peer, connnum, -1);
}

/* Ask the supervisor about the connection (BUSY, with the stderr pipe's
 * read end in "log" mode) and wait for its verdict. Returns the verdict, or
 * one whose code is PSUP_VERDICT_CLOSE if none could be had: the supervisor
 * was not reachable, or did not answer in time (it is then told so). */
static uint64_t ask_supervisor(struct psup_child *c, struct psup_msg *m, int log_read)
{
    uint64_t verdict = psup_verdict_encode(PSUP_VERDICT_CLOSE, 0, 0, 0);

    m->kind = PSUP_MSG_BUSY;
    m->seq = ++c->seq;
    if (psup_child_send(c, m, log_read) < 0)
        return verdict;
    if (psup_child_wait_verdict(c->plan, m->seq, &verdict) < 0) {
        /* The supervisor logs the client given up when it reads this, and
         * counts the worker idle again. */
        m->kind = PSUP_MSG_GAVE_UP;
        psup_child_send(c, m, -1);
        verdict = psup_verdict_encode(PSUP_VERDICT_CLOSE, 0, 0, 0);
    }
    return verdict;
}

/* Whether allow/deny let the client in. */
static bool allowed(const struct psup_plan *p, const struct psup_plan_listener *l,
                    const struct psup_peer *peer)
{
    return l->proto == PSUP_PROTO_UNIX ||
           psup_access_allowed(psup_plan_at(p, p->allow), p->n_allow, psup_plan_at(p, p->deny),
                               p->n_deny, peer->addr);
}

bool psup_child_take(struct psup_child *c, uint32_t index, int conn,
                     const struct sockaddr *remote)
{
    const struct psup_plan *p = c->plan;
    const struct psup_plan_listener *l = &psup_plan_listeners(p)[index];
    struct psup_msg m = {.listener = index};
    int log_pipe[2] = {-1, -1};

    describe_peer(conn, l, remote, &m.peer);

    /* allow/deny are decided here, without a round trip: a denied client
     * costs one accept and one message, never a process. */
    if (!allowed(p, l, &m.peer)) {
        m.kind = PSUP_MSG_DENIED;
        psup_child_send(c, &m, -1);
        refuse(c, conn, psup_plan_str(p, p->deny_message));
        return false;
    }

    if (!p->needs_verdict && c->tally_slot != PSUP_TALLY_NONE) {
        if (run_without_verdict(c, index, conn, remote, &m))
            return true;
        psup_child_close(conn);
        return false;
    }

    if (p->stderr_mode == PSUP_STDERR_LOG &&
        psup_sys(SYS_pipe2, log_pipe, O_CLOEXEC) < 0)
        log_pipe[0] = log_pipe[1] = -1; /* the supervisor sees no fd: inherit */
    uint64_t verdict = ask_supervisor(c, &m, log_pipe[0]);
    psup_child_close(log_pipe[0]);

    enum psup_verdict code = psup_verdict_code(verdict);
    if (code == PSUP_VERDICT_RUN) {
        if (verdict & PSUP_VERDICT_NO_LOG_PIPE) {
            psup_child_close(log_pipe[1]);
            log_pipe[1] = -1;
        }
        /* Visible to the TCPCONNNUM of workers that need no verdict (a
         * reload may leave both kinds running). */
        if (c->tally_slot != PSUP_TALLY_NONE)
            publish_source(c, &m.peer, false);
        return admit(c, index, conn, remote, &m.peer, psup_verdict_connnum(verdict),
                     log_pipe[1]);
    }
    psup_child_close(log_pipe[1]);
    refuse(c, conn, refusal_text(p, code));
    return false;
}
