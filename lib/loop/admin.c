/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's sockets (admin.h). The endpoint shares the loop with
 * everything psup does, so no client of it may cost the loop more than a
 * bounded amount of work, memory or time:
 *
 * - at most max_clients at once; one more is answered 503 in a single
 *   non-blocking write and closed, never queued;
 * - one request per connection (Connection: close), at most
 *   PSUP_ADMIN_MAX_REQUEST bytes, and it must arrive within HEAD_TIMEOUT_MS
 *   of the accept, or the connection is closed;
 * - the answer is rendered at once into one buffer (at most
 *   PSUP_ADMIN_MAX_RESPONSE) and written without blocking as the client
 *   reads it; a client that does not take it within WRITE_TIMEOUT_MS is
 *   closed;
 * - after the answer psup shuts its side down and reads what the client may
 *   still send (so that a close with unread input does not reset the
 *   answer away), for at most LINGER_MS and LINGER_BYTES.
 *
 * Every socket is non-blocking and close-on-exec. A worker closes every
 * descriptor but its own service's right after its clone, so a client of
 * the endpoint never stays open in a worker.
 */
#include "loop/admin.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/list.h"
#include "base/log.h"
#include "net/listen.h"

#define HEAD_TIMEOUT_MS 5000
#define WRITE_TIMEOUT_MS 10000
#define LINGER_MS 2000
#define LINGER_BYTES 65536
#define ADMIN_BACKLOG 128
#define ACCEPTS_PER_TURN 64      /* then the loop serves others first */
#define ACCEPT_RETRY_MS 250      /* after EMFILE and the like */

struct psup_admin_server {
    uv_loop_t *loop;
    struct psup_admin_state *st;
    struct admin_listener **listeners;
    size_t n_listeners;
    struct psup_list clients;
    unsigned n_clients;
    unsigned max_clients;
    uv_timer_t retry;            /* accepting again after a lack of resources */
    bool accept_failing;         /* logged once per episode */
    bool closed;
};

struct admin_listener {
    uv_poll_t poll;
    struct psup_listener sock;
    enum psup_admin_kind kind;
    struct psup_admin_server *srv;
    bool paused;                 /* not polled until the retry timer */
};

enum phase { READING, WRITING, LINGERING };

struct admin_client {
    uv_poll_t poll;
    uv_timer_t timer;
    struct psup_list link;
    struct psup_admin_server *srv;
    int fd;
    unsigned open_handles;       /* freed once both are closed */
    enum psup_admin_kind kind;
    enum phase phase;
    size_t in_len;
    size_t need;                 /* the request's length once its head is read */
    size_t drained;
    struct psup_admin_response resp;
    bool have_resp;
    char head[1024];
    size_t head_len;
    size_t sent;                 /* of head and body */
    char in[PSUP_ADMIN_MAX_REQUEST];
};

/* ------------------------------------------------------------------------ */
/* Clients. */

static void client_closed_cb(uv_handle_t *h)
{
    struct admin_client *c = h->data;

    if (--c->open_handles)
        return;
    close(c->fd);
    if (c->have_resp)
        psup_admin_response_free(&c->resp);
    free(c);
}

static void client_close(struct admin_client *c)
{
    if (uv_is_closing((uv_handle_t *)&c->poll))
        return;
    psup_list_remove(&c->link);
    c->srv->n_clients--;
    uv_close((uv_handle_t *)&c->poll, client_closed_cb);
    uv_close((uv_handle_t *)&c->timer, client_closed_cb);
}

static void client_cb(uv_poll_t *h, int status, int events);

static void client_timeout_cb(uv_timer_t *t)
{
    client_close(t->data);
}

/* Wait for events, within timeout_ms. Returns false if the client is
 * closed instead (it cannot be polled). */
static bool client_wait(struct admin_client *c, int events, uint64_t timeout_ms)
{
    if (uv_poll_start(&c->poll, events, client_cb) < 0) {
        client_close(c);
        return false;
    }
    uv_timer_start(&c->timer, client_timeout_cb, timeout_ms, 0);
    return true;
}

/* Everything is sent: shut the sending side and read what is left. */
static void client_linger(struct admin_client *c)
{
    psup_admin_response_free(&c->resp); /* no need to hold it any longer */
    c->have_resp = false;
    shutdown(c->fd, SHUT_WR);
    c->phase = LINGERING;
    client_wait(c, UV_READABLE, LINGER_MS);
}

/* Send what the kernel takes now of the head and then the body. */
static void client_write(struct admin_client *c)
{
    size_t body = c->resp.head_only ? 0 : c->resp.body.len;
    size_t total = c->head_len + body;

    while (c->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->head_len)
            iov[n++] = (struct iovec){c->head + c->sent, c->head_len - c->sent};
        size_t off = c->sent > c->head_len ? c->sent - c->head_len : 0;
        if (body > off)
            iov[n++] = (struct iovec){c->resp.body.data + off, body - off};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the client reads slowly: wait for room */
        if (w < 0) {
            client_close(c);
            return;
        }
        c->sent += (size_t)w;
    }
    client_linger(c);
}

/* Who a unix client is (its pid and uid when it connected), for the log
 * of a control request. */
static void peer_of(int fd, struct psup_admin_request *req)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
        req->has_peer = true;
        req->peer_pid = cred.pid;
        req->peer_uid = cred.uid;
    }
}

/* The request is complete, or known to be wrong: answer it. */
static void client_answer(struct admin_client *c, int rc, const struct psup_admin_request *req)
{
    struct psup_admin_state *st = c->srv->st;

    psup_admin_response_init(&c->resp);
    c->have_resp = true;
    if (rc == PSUP_HTTP_DONE) {
        struct psup_admin_request with_peer = *req;
        uv_update_time(c->srv->loop);
        st->now_ms = uv_now(c->srv->loop);
        if (c->kind == PSUP_ADMIN_UNIX)
            peer_of(c->fd, &with_peer);
        psup_admin_handle(st, &with_peer, c->kind, &c->resp);
    } else {
        psup_admin_error(&c->resp, rc, req->why);
    }
    c->head_len = psup_admin_response_head(&c->resp, c->head, sizeof(c->head));
    if (!c->head_len) {
        client_close(c);
        return;
    }
    c->phase = WRITING;
    if (client_wait(c, UV_WRITABLE, WRITE_TIMEOUT_MS))
        client_write(c);
}

/* Whether what has arrived since the last parse could change its result:
 * a parse costs the whole buffer, so a client trickling a byte at a time
 * must not make one per byte. The first bytes are parsed at once (garbage
 * such as a TLS handshake is refused before the timeout), then each new
 * line, and a body only once it is whole. */
static bool worth_parsing(const struct admin_client *c, size_t before, bool eof)
{
    if (eof || before == 0 || c->in_len == sizeof(c->in))
        return true;
    if (c->need)
        return c->in_len >= c->need;
    return memchr(c->in + before, '\n', c->in_len - before) != NULL;
}

/* Read what has arrived; answer once the request is whole or wrong. */
static void client_read(struct admin_client *c)
{
    struct psup_admin_request req;
    size_t before = c->in_len;
    bool eof = false;

    while (c->in_len < sizeof(c->in)) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            client_close(c); /* reset */
            return;
        }
        if (n == 0) {
            eof = true; /* the client may have shut its side after the request */
            break;
        }
        c->in_len += (size_t)n;
    }
    if (!worth_parsing(c, before, eof))
        return;
    int rc = psup_admin_request_parse(c->in, c->in_len, &req);
    if (rc == PSUP_HTTP_MORE && c->in_len == sizeof(c->in)) {
        rc = 431;
        req.why = "request larger than the admin endpoint takes";
    }
    if (rc == PSUP_HTTP_MORE && eof)
        client_close(c); /* gone before its request was whole */
    else if (rc == PSUP_HTTP_MORE)
        c->need = req.length;
    else
        client_answer(c, rc, &req);
}

/* After the answer: discard input until the client closes, or enough. */
static void client_drain(struct admin_client *c)
{
    char scratch[4096];

    for (;;) {
        ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->drained += n > 0 ? (size_t)n : 0;
        if (n <= 0 || c->drained >= LINGER_BYTES) {
            client_close(c);
            return;
        }
    }
}

static void client_cb(uv_poll_t *h, int status, int events)
{
    struct admin_client *c = h->data;

    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->phase == READING && (events & UV_READABLE))
        client_read(c);
    else if (c->phase == WRITING && (events & UV_WRITABLE))
        client_write(c);
    else if (c->phase == LINGERING && (events & UV_READABLE))
        client_drain(c);
}

static void client_start(struct psup_admin_server *srv, int fd, enum psup_admin_kind kind)
{
    struct admin_client *c = malloc(sizeof(*c));

    if (!c) {
        close(fd);
        return;
    }
    memset(c, 0, offsetof(struct admin_client, in));
    c->srv = srv;
    c->fd = fd;
    c->kind = kind;
    if (uv_poll_init(srv->loop, &c->poll, fd) < 0) {
        close(fd);
        free(c);
        return;
    }
    uv_timer_init(srv->loop, &c->timer);
    c->poll.data = c->timer.data = c;
    c->open_handles = 2;
    psup_list_append(&srv->clients, &c->link);
    srv->n_clients++;
    client_wait(c, UV_READABLE, HEAD_TIMEOUT_MS);
}

/* ------------------------------------------------------------------------ */
/* Accepting. */

/* Over max_clients: say so in one write that cannot block (a fresh
 * socket's buffer is empty) and close. What the client has already sent is
 * read first: a close with unread input would reset the connection and
 * could destroy the answer before the client reads it. */
static void refuse_busy(int fd)
{
    char scratch[4096];
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 27\r\n"
                               "Connection: close\r\n\r\n"
                               "503 too many admin clients\n";

    for (int i = 0; i < 4 && recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
        ;
    (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void listener_cb(uv_poll_t *h, int status, int events);

static void retry_cb(uv_timer_t *t)
{
    struct psup_admin_server *srv = t->data;

    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct admin_listener *l = srv->listeners[i];
        if (l->paused && uv_poll_start(&l->poll, UV_READABLE, listener_cb) == 0)
            l->paused = false;
    }
}

static void accept_failed(struct psup_admin_server *srv, struct admin_listener *l, int err)
{
    struct psup_log log;

    /* The listener stays readable: stop polling it for a while instead of
     * spinning on the error. */
    uv_poll_stop(&l->poll);
    l->paused = true;
    uv_timer_start(&srv->retry, retry_cb, ACCEPT_RETRY_MS, 0);
    if (!srv->accept_failing) {
        srv->accept_failing = true;
        psup_log_begin(&log, PSUP_LOG_ERROR, "admin_accept_failed");
        psup_log_str(&log, "addr", l->sock.bound);
        psup_log_errno(&log, err);
        psup_log_end(&log);
    }
}

static void listener_cb(uv_poll_t *h, int status, int events)
{
    struct admin_listener *l = h->data;
    struct psup_admin_server *srv = l->srv;

    (void)events;
    if (status < 0) {
        accept_failed(srv, l, -status); /* not polled again at once */
        return;
    }
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int fd = accept4(l->sock.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (fd < 0) {
            accept_failed(srv, l, errno);
            return;
        }
        srv->accept_failing = false;
        if (srv->n_clients >= srv->max_clients)
            refuse_busy(fd);
        else
            client_start(srv, fd, l->kind);
    }
}

/* ------------------------------------------------------------------------ */
/* Listeners. */

static void listener_closed_cb(uv_handle_t *h)
{
    struct admin_listener *l = h->data;

    psup_listener_close(&l->sock);
    free(l);
}

static void listener_close(struct admin_listener *l)
{
    uv_close((uv_handle_t *)&l->poll, listener_closed_cb);
}

static void log_bind_failure(const char *text, const char *what, int err)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_ERROR, "admin_bind_failed");
    psup_log_str(&l, "addr", text);
    psup_log_str(&l, "step", what);
    psup_log_errno(&l, -err);
    psup_log_end(&l);
}

static struct psup_socket_perms socket_perms(const struct psup_admin_config *cfg)
{
    return (struct psup_socket_perms){cfg->socket_mode, cfg->socket_uid, cfg->socket_gid};
}

static int listener_open(struct psup_admin_server *srv, const struct psup_admin_config *cfg,
                         size_t i, struct admin_listener **out)
{
    struct admin_listener *l = calloc(1, sizeof(*l));
    struct psup_socket_perms perms = socket_perms(cfg);
    struct psup_socket_sizes sizes = {.backlog = ADMIN_BACKLOG};
    const char *what = "socket";
    /* A unix socket file gets its mode (0600 unless set) and owner before
     * it is at its path: it never accepts a connection with wider access. */
    int rc = l ? psup_listener_open(&l->sock, &cfg->listen[i], &sizes, &perms, "admin", &what)
               : -ENOMEM;

    if (rc == 0 && (rc = uv_poll_init(srv->loop, &l->poll, l->sock.fd)) < 0) {
        what = "poll";
        psup_listener_close(&l->sock);
    }
    if (rc < 0) {
        log_bind_failure(cfg->listen_text[i], what, rc);
        free(l);
        return rc;
    }
    l->srv = srv;
    l->poll.data = l;
    l->kind = cfg->listen[i].proto == PSUP_PROTO_UNIX ? PSUP_ADMIN_UNIX : PSUP_ADMIN_TCP;
    *out = l;
    return 0;
}

static struct admin_listener *find_listener(const struct psup_admin_server *srv, bool *taken,
                                            const struct psup_addr *addr)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        if (!taken[i] && psup_listener_matches(&srv->listeners[i]->sock, addr, "admin")) {
            taken[i] = true;
            return srv->listeners[i];
        }
    }
    return NULL;
}

void psup_admin_server_abandon(struct psup_admin_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++)
        if (plan->fresh[i])
            listener_close(plan->next[i]);
    free(plan->next);
    free(plan->fresh);
    free(plan->taken);
    memset(plan, 0, sizeof(*plan));
}

int psup_admin_server_plan(struct psup_admin_server *srv, const struct psup_admin_config *cfg,
                           struct psup_admin_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    plan->next = calloc(cfg->n_listen + 1, sizeof(*plan->next));
    plan->fresh = calloc(cfg->n_listen + 1, sizeof(*plan->fresh));
    plan->taken = calloc(srv->n_listeners + 1, sizeof(*plan->taken));
    if (!plan->next || !plan->fresh || !plan->taken) {
        psup_admin_server_abandon(plan);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        struct admin_listener *l = find_listener(srv, plan->taken, &cfg->listen[i]);
        if (!l) {
            int rc = listener_open(srv, cfg, i, &l);
            if (rc < 0) {
                psup_admin_server_abandon(plan);
                return rc;
            }
            plan->fresh[i] = true;
        }
        plan->next[plan->n++] = l;
    }
    return 0;
}

static void log_listening(const struct admin_listener *l)
{
    struct psup_log log;

    psup_log_begin(&log, PSUP_LOG_INFO, "admin_listening");
    psup_log_str(&log, "addr", l->sock.bound);
    psup_log_end(&log);
}

/* A kept socket file takes the new configuration's mode and owner; if it
 * cannot, it keeps the old ones (the reload is past its commit point). */
static void update_kept(struct admin_listener *l, const struct psup_admin_config *cfg)
{
    struct psup_socket_perms perms = socket_perms(cfg);
    const char *what = "chmod";
    struct psup_log log;
    int rc = psup_listener_set_perms(&l->sock, &perms, &what);

    if (rc == 0)
        return;
    psup_log_begin(&log, PSUP_LOG_ERROR, "admin_update_failed");
    psup_log_str(&log, "addr", l->sock.bound);
    psup_log_str(&log, "step", what);
    psup_log_errno(&log, -rc);
    psup_log_end(&log);
}

void psup_admin_server_commit(struct psup_admin_server *srv, const struct psup_admin_config *cfg,
                              struct psup_admin_plan *plan)
{
    for (size_t i = 0; i < srv->n_listeners; i++)
        if (!plan->taken[i])
            listener_close(srv->listeners[i]);
    for (size_t i = 0; i < plan->n; i++) {
        struct admin_listener *l = plan->next[i];
        if (!plan->fresh[i]) {
            update_kept(l, cfg);
            continue;
        }
        if (uv_poll_start(&l->poll, UV_READABLE, listener_cb) < 0)
            l->paused = true; /* the retry timer tries again */
        log_listening(l);
    }
    free(srv->listeners);
    srv->listeners = plan->next;
    srv->n_listeners = plan->n;
    srv->max_clients = cfg->max_clients;
    free(plan->fresh);
    free(plan->taken);
    memset(plan, 0, sizeof(*plan));
}

/* ------------------------------------------------------------------------ */
/* The server. */

struct psup_admin_server *psup_admin_server_new(uv_loop_t *loop, struct psup_admin_state *st)
{
    struct psup_admin_server *srv = calloc(1, sizeof(*srv));

    if (!srv)
        return NULL;
    srv->loop = loop;
    srv->st = st;
    srv->max_clients = 32;
    psup_list_init(&srv->clients);
    uv_timer_init(loop, &srv->retry);
    srv->retry.data = srv;
    return srv;
}

static void nothing_cb(uv_handle_t *h)
{
    (void)h;
}

void psup_admin_server_close(struct psup_admin_server *srv)
{
    struct psup_list *p, *tmp;

    if (!srv || srv->closed)
        return;
    srv->closed = true;
    psup_list_foreach_safe(p, tmp, &srv->clients)
        client_close(PSUP_CONTAINER(p, struct admin_client, link));
    for (size_t i = 0; i < srv->n_listeners; i++)
        listener_close(srv->listeners[i]);
    srv->n_listeners = 0;
    uv_close((uv_handle_t *)&srv->retry, nothing_cb);
}

void psup_admin_server_free(struct psup_admin_server *srv)
{
    if (!srv)
        return;
    free(srv->listeners);
    free(srv);
}
