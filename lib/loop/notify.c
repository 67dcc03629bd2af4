/* SPDX-License-Identifier: MIT */
/*
 * sd_notify and s6's notification descriptor (notify.h, spec/readiness.md),
 * written from systemd's description of the protocol (sd_notify(3)): one
 * AF_UNIX datagram per message, newline-separated KEY=VALUE assignments,
 * to the path or abstract name (a leading '@') in $NOTIFY_SOCKET. Nothing
 * here may block the loop: datagrams go out with MSG_DONTWAIT, and one that
 * finds the receiver's queue full waits in psup's own short queue for a
 * retry timer.
 */
#include "loop/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/fd.h"
#include "base/log.h"

enum {
    MSG_STATE,    /* READY, RELOADING, STOPPING: each one counts */
    MSG_STATUS,   /* a newer one replaces one still waiting */
    MSG_WATCHDOG, /* likewise */
};

#define STATUS_PERIOD_MS 1000 /* STATUS= at most this often, when it changed */
#define RETRY_MS 50           /* after the receiver's queue was full */

static void log_failure_now(const char *where, int err, const char *why)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "notify_failed");
    psup_log_str(&l, "target", where);
    if (err)
        psup_log_errno(&l, err);
    else
        psup_log_str(&l, "error", why);
    psup_log_end(&l);
}

/* One warning per streak of failures: the receiver may be gone for good. */
static void log_failure(struct psup_notify *n, const char *where, int err, const char *why)
{
    if (!n->failing)
        log_failure_now(where, err, why);
    n->failing = true;
}

/* $NOTIFY_SOCKET: "/path" or "@abstract". Returns 0 or -EINVAL. */
static int parse_address(const char *text, struct sockaddr_un *a, socklen_t *len)
{
    size_t n = strlen(text);

    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if ((text[0] != '/' && text[0] != '@') || n < 2 || n >= sizeof(a->sun_path))
        return -EINVAL;
    memcpy(a->sun_path, text, n);
    if (text[0] == '@')
        a->sun_path[0] = '\0'; /* an abstract name: no NUL at its end */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (text[0] == '/'));
    return 0;
}

static void pop_front(struct psup_notify *n)
{
    memmove(&n->queue[0], &n->queue[1], (n->queued - 1) * sizeof(n->queue[0]));
    n->queued--;
}

static void retry_cb(uv_timer_t *t);

/* Send what waits, in order, until the receiver's queue is full. */
static void flush(struct psup_notify *n)
{
    while (n->queued) {
        const struct psup_notify_msg *m = &n->queue[0];
        ssize_t r = sendto(n->fd, m->text, m->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                           (const struct sockaddr *)&n->addr, n->addr_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
            uv_timer_start(&n->retry, retry_cb, RETRY_MS, 0);
            return;
        }
        if (r < 0)
            log_failure(n, "NOTIFY_SOCKET", errno, NULL); /* gone: drop it */
        else
            n->failing = false;
        pop_front(n);
    }
}

static void retry_cb(uv_timer_t *t)
{
    flush(t->data);
}

/* Queue a message and send what can be sent. A full queue drops its
 * oldest update (STATUS=, WATCHDOG=1) first, state changes last. */
static void enqueue(struct psup_notify *n, int kind, const char *text)
{
    if (n->fd < 0)
        return;
    struct psup_notify_msg *last = n->queued ? &n->queue[n->queued - 1] : NULL;
    if (!last || last->kind == MSG_STATE || last->kind != kind) {
        if (n->queued == PSUP_NOTIFY_QUEUE) {
            size_t drop = 0;
            while (drop < n->queued && n->queue[drop].kind == MSG_STATE)
                drop++;
            drop = drop == n->queued ? 0 : drop;
            memmove(&n->queue[drop], &n->queue[drop + 1],
                    (n->queued - drop - 1) * sizeof(n->queue[0]));
            n->queued--;
        }
        last = &n->queue[n->queued++];
    }
    last->kind = kind;
    snprintf(last->text, sizeof(last->text), "%s", text);
    last->len = strlen(last->text);
    if (!uv_is_active((uv_handle_t *)&n->retry))
        flush(n);
}

static void watchdog_cb(uv_timer_t *t)
{
    enqueue(t->data, MSG_WATCHDOG, "WATCHDOG=1");
}

static void status_cb(uv_timer_t *t)
{
    struct psup_notify *n = t->data;
    char text[PSUP_NOTIFY_MAX - 8], msg[PSUP_NOTIFY_MAX];

    n->summary(n->arg, text, sizeof(text));
    if (strcmp(text, n->last_status) == 0)
        return;
    snprintf(n->last_status, sizeof(n->last_status), "%s", text);
    snprintf(msg, sizeof(msg), "STATUS=%s", text);
    enqueue(n, MSG_STATUS, msg);
}

/* $WATCHDOG_USEC, when $WATCHDOG_PID is unset or psup's own pid (a
 * supervisor's watchdog is meant for its main process only), else 0. */
static unsigned long long watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;

    if (!usec || !*usec)
        return 0;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (errno || *end || usec[0] == '-')
        return 0;
    if (pid && *pid) {
        long p = strtol(pid, &end, 10);
        if (*end || p != (long)getpid())
            return 0;
    }
    return v;
}

static void start_timers(struct psup_notify *n, uv_loop_t *loop)
{
    uv_timer_t *timers[] = {&n->watchdog, &n->status, &n->retry};

    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = n;
    }
    n->timers = true;
    /* systemd asks for a ping at least every WATCHDOG_USEC; half of it, as
     * sd_watchdog_enabled(3) advises, leaves room for a slow loop turn. */
    unsigned long long usec = watchdog_usec();
    if (usec) {
        uint64_t ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&n->watchdog, watchdog_cb, ms, ms);
    }
}

void psup_notify_init(struct psup_notify *n, uv_loop_t *loop, int ready_fd,
                      void (*summary)(void *arg, char *buf, size_t size), void *arg)
{
    const char *where = getenv("NOTIFY_SOCKET");

    memset(n, 0, sizeof(*n));
    n->fd = -1;
    n->ready_fd = ready_fd;
    n->summary = summary;
    n->arg = arg;
    if (!where || !*where)
        return;
    if (parse_address(where, &n->addr, &n->addr_len) < 0) {
        log_failure(n, where, 0, "not a path or an @abstract name");
        return;
    }
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        log_failure(n, where, errno, NULL);
        return;
    }
    start_timers(n, loop);
}

/* s6: one newline, then close (the supervisor reads EOF after it). */
static void write_ready_fd(struct psup_notify *n)
{
    ssize_t r;

    if (n->ready_fd < 0)
        return;
    while ((r = write(n->ready_fd, "\n", 1)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        log_failure_now("ready-fd", errno, NULL);
    psup_fd_close(n->ready_fd);
    n->ready_fd = -1;
}

void psup_notify_ready(struct psup_notify *n, const char *status)
{
    char msg[PSUP_NOTIFY_MAX];

    write_ready_fd(n);
    snprintf(n->last_status, sizeof(n->last_status), "%s", status);
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    enqueue(n, MSG_STATE, msg);
    /* Updates follow the first READY=1, never precede it. */
    if (n->timers && !uv_is_active((uv_handle_t *)&n->status))
        uv_timer_start(&n->status, status_cb, STATUS_PERIOD_MS, STATUS_PERIOD_MS);
}

void psup_notify_reloading(struct psup_notify *n)
{
    struct timespec ts;
    char msg[PSUP_NOTIFY_MAX];

    /* Type=notify-reload: systemd matches the reload it asked for by this
     * time, taken after the signal arrived. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    enqueue(n, MSG_STATE, msg);
}

void psup_notify_stopping(struct psup_notify *n, const char *status)
{
    char msg[PSUP_NOTIFY_MAX];

    snprintf(n->last_status, sizeof(n->last_status), "%s", status);
    snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", status);
    enqueue(n, MSG_STATE, msg);
}

void psup_notify_close(struct psup_notify *n)
{
    if (n->fd >= 0 && n->queued)
        flush(n); /* a last chance for what waits: STOPPING=1 */
    psup_fd_close(n->fd);
    psup_fd_close(n->ready_fd);
    n->fd = n->ready_fd = -1;
}
