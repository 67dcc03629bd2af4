/* SPDX-License-Identifier: MIT */
/*
 * Reading handlers' stderr pipes and turning bytes into log records. Each
 * capture reads at most READ_BUDGET bytes per wake-up, so one flooding
 * handler cannot starve the loop.
 */
#include "loop/errlog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fd.h"
#include "base/log.h"

#define READ_BUDGET (64 * 1024)

struct psup_errlog {
    uv_poll_t poll;
    struct psup_list link;
    int fd;
    bool closing;
    struct psup_errlog **slot; /* the worker's pointer to us, while it lives */
    char service[72];
    unsigned long long conn;
    pid_t pid;
    unsigned part;           /* parts of the current line already logged */
    size_t len;              /* bytes of the current line in buf */
    size_t width;            /* their size once escaped */
    char buf[PSUP_ERRLOG_LINE];
};

/* How many bytes a byte of a line can take once escaped in a record: a
 * part is cut before its escaped form could overflow PSUP_LOG_MAX. Bytes
 * above 0x7f count as much as invalid UTF-8 would (\ufffd). */
#define PART_WIDTH 3600

static size_t escaped_width(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    if (c < 0x20 || c >= 0x7f)
        return 6;
    return 1;
}

/* Log buf[0..len) as a line or as one part of a longer line. */
static void emit(struct psup_errlog *e, size_t len, bool complete)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "stderr");
    psup_log_str(&l, "service", e->service);
    psup_log_uint(&l, "conn", e->conn);
    psup_log_int(&l, "pid", e->pid);
    psup_log_bytes(&l, "line", e->buf, len);
    if (e->part || !complete)
        psup_log_uint(&l, "part", e->part + 1);
    if (!complete)
        psup_log_bool(&l, "continued", true);
    psup_log_end(&l);
    e->part = complete ? 0 : e->part + 1;
}

/* Where to cut a part: never inside a UTF-8 sequence, whose bytes would
 * each become U+FFFD and not reassemble. */
static size_t part_end(const struct psup_errlog *e)
{
    for (size_t back = 1; back <= 3 && back <= e->len; back++) {
        unsigned char b = (unsigned char)e->buf[e->len - back];
        if ((b & 0xc0) == 0x80)
            continue;
        size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
        return need > back ? e->len - back : e->len;
    }
    return e->len;
}

static void emit_part(struct psup_errlog *e)
{
    size_t cut = part_end(e);

    emit(e, cut, false);
    memmove(e->buf, e->buf + cut, e->len - cut);
    e->len -= cut;
    e->width = 0;
    for (size_t i = 0; i < e->len; i++)
        e->width += escaped_width((unsigned char)e->buf[i]);
}

static void consume(struct psup_errlog *e, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\n') {
            emit(e, e->len, true);
            e->len = e->width = 0;
            continue;
        }
        size_t w = escaped_width(c);
        if (e->len == sizeof(e->buf) || e->width + w > PART_WIDTH)
            emit_part(e);
        e->buf[e->len++] = (char)c;
        e->width += w;
    }
}

static void close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void finish(struct psup_errlog *e)
{
    if (e->closing)
        return;
    if (e->len)
        emit(e, e->len, true); /* a last line without a newline */
    e->closing = true;
    if (e->slot)
        *e->slot = NULL;
    e->slot = NULL;
    psup_list_remove(&e->link);
    uv_poll_stop(&e->poll);
    uv_close((uv_handle_t *)&e->poll, close_cb);
    psup_fd_close(e->fd);
    e->fd = -1;
}

enum drained { DRAINED_AGAIN, DRAINED_BUDGET, DRAINED_END };

/* Read until the pipe is empty, at EOF, or the budget is used. */
static enum drained drain(struct psup_errlog *e)
{
    char chunk[8192];
    size_t total = 0;

    while (total < READ_BUDGET) {
        ssize_t n = read(e->fd, chunk, sizeof(chunk));
        if (n > 0) {
            consume(e, chunk, (size_t)n);
            total += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return DRAINED_AGAIN;
        return DRAINED_END; /* EOF, or an error that will not go away */
    }
    return DRAINED_BUDGET;
}

static void readable_cb(uv_poll_t *h, int status, int events)
{
    struct psup_errlog *e = h->data;

    (void)events;
    if (status < 0 || drain(e) == DRAINED_END)
        finish(e);
}

bool psup_errlog_open(uv_loop_t *loop, struct psup_list *all, int fd, const char *service,
                      unsigned long long conn, pid_t pid, struct psup_errlog **slot)
{
    struct psup_errlog *e = calloc(1, sizeof(*e));

    if (!e || psup_fd_set_nonblock(fd, true) < 0 || uv_poll_init(loop, &e->poll, fd) < 0) {
        free(e);
        psup_fd_close(fd);
        return false;
    }
    e->slot = slot;
    *slot = e;
    e->poll.data = e;
    e->fd = fd;
    e->conn = conn;
    e->pid = pid;
    strncpy(e->service, service, sizeof(e->service) - 1);
    psup_list_append(all, &e->link);
    uv_poll_start(&e->poll, UV_READABLE | UV_DISCONNECT, readable_cb);
    return true;
}

void psup_errlog_handler_gone(struct psup_errlog *e)
{
    /* Log what the handler wrote before its conn_end line; the pipe stays
     * watched if a background child of it still holds the write end. */
    e->slot = NULL;
    enum drained d;
    while ((d = drain(e)) == DRAINED_BUDGET)
        ;
    if (d == DRAINED_END)
        finish(e);
}

void psup_errlog_close_all(struct psup_list *all)
{
    while (!psup_list_empty(all)) {
        struct psup_errlog *e = PSUP_CONTAINER(all->next, struct psup_errlog, link);
        while (drain(e) == DRAINED_BUDGET)
            ;
        finish(e);
    }
}
