/* SPDX-License-Identifier: MIT */
/*
 * Reading handlers' stderr pipes and turning bytes into log records. Each
 * capture reads at most READ_BUDGET bytes and logs about RECORD_BUDGET
 * records per wake-up, so one flooding handler, or a process it left
 * behind, cannot starve the loop: every read is bounded, none loops until
 * the pipe is empty (a writer that never stops would keep it full).
 */
#include "loop/errlog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/fd.h"
#include "base/log.h"

#define READ_BUDGET (64 * 1024)
/* Writing a record costs far more than reading its bytes: "y\n" lines
 * would make 32768 records of one READ_BUDGET. A wake-up stops reading once
 * this many records were logged, so it logs at most RECORD_BUDGET +
 * READ_CHUNK - 1 of them (one byte can end at most one line). */
#define RECORD_BUDGET 256
#define READ_CHUNK 1024

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
    unsigned records;        /* logged in the current wake-up */
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
    e->records++;
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
            /* A CRLF line is logged without its CR. */
            if (e->len && e->buf[e->len - 1] == '\r')
                e->len--;
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

/* Read until the pipe is empty, at EOF, after max_bytes, or (with
 * max_records) once that many records were logged. */
static enum drained drain(struct psup_errlog *e, size_t max_bytes, unsigned max_records)
{
    char chunk[READ_CHUNK];
    size_t total = 0;

    e->records = 0;
    while (total < max_bytes && (!max_records || e->records < max_records)) {
        size_t want = max_bytes - total < sizeof(chunk) ? max_bytes - total : sizeof(chunk);
        ssize_t n = read(e->fd, chunk, want);
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
    if (status < 0 || drain(e, READ_BUDGET, RECORD_BUDGET) == DRAINED_END)
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

/* What the pipe holds now, at most one READ_BUDGET (the default capacity
 * of a pipe: everything a handler that did not enlarge its pipe wrote). */
static size_t held_bytes(const struct psup_errlog *e)
{
    int held = 0;

    if (ioctl(e->fd, FIONREAD, &held) < 0 || held < 0)
        return READ_BUDGET;
    return (size_t)held < READ_BUDGET ? (size_t)held : READ_BUDGET;
}

void psup_errlog_handler_gone(struct psup_errlog *e)
{
    /* Log what the handler wrote before its conn_end line: what the pipe
     * holds now, and no more. A process it left behind may hold the write
     * end and never stop writing, so reading "until empty" could last for
     * ever; what it writes from now on is logged by the watcher, a budget
     * per loop turn, until EOF (spec/logging.md). */
    e->slot = NULL;
    /* One byte more than it holds: at EOF (nobody else holds the write
     * end) the read returns 0, and a last line without a newline is logged
     * now, before conn_end, rather than at the next loop turn. */
    if (drain(e, held_bytes(e) + 1, 0) == DRAINED_END)
        finish(e);
}

void psup_errlog_close_all(struct psup_list *all)
{
    /* At exit every child is gone, but a process outside psup's tree (one
     * the write end was passed to) may still write: one budget each. */
    while (!psup_list_empty(all)) {
        struct psup_errlog *e = PSUP_CONTAINER(all->next, struct psup_errlog, link);
        drain(e, READ_BUDGET, 0);
        finish(e);
    }
}
