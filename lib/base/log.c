/* SPDX-License-Identifier: MIT */
/*
 * The log writer. Records are formatted into a fixed buffer and written in
 * one write(2) to the log fd; nothing here allocates. Values are escaped so
 * that a record is always one line and, in JSON mode, valid JSON even when
 * a handler writes arbitrary bytes to its stderr.
 */
#include "base/log.h"
#include "base/utf8.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/inet.h"

static struct {
    int fd;
    enum psup_log_format format;
    enum psup_log_level threshold;
} sink = {2, PSUP_LOG_TEXT, PSUP_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void psup_log_setup(int fd, enum psup_log_format format, enum psup_log_level threshold)
{
    sink.fd = fd;
    sink.format = format;
    sink.threshold = threshold;
}

void psup_log_set_format(enum psup_log_format format)
{
    sink.format = format;
}

enum psup_log_format psup_log_format(void)
{
    return sink.format;
}

/* Room kept at the end of the buffer for a closing quote, the truncation
 * marker and the record's tail; field content never goes past CONTENT_MAX. */
#define CONTENT_MAX (PSUP_LOG_MAX - 48)

/* Append n bytes if they fit; otherwise append nothing and mark the record
 * truncated, so a value is only ever cut between two characters. */
static bool put(struct psup_log *l, const char *s, size_t n)
{
    if (l->truncated || l->len + n > CONTENT_MAX) {
        l->truncated = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

/* The closing characters of a field, written into the reserve. */
static void put_tail(struct psup_log *l, const char *s, size_t n)
{
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static bool put_escaped_char(unsigned char c, bool json, psup_log_sink put_fn, void *arg)
{
    static const char hex[] = "0123456789abcdef";
    char esc[7];

    switch (c) {
    case '"': return put_fn(arg, "\\\"", 2, false);
    case '\\': return put_fn(arg, "\\\\", 2, false);
    case '\n': return put_fn(arg, "\\n", 2, false);
    case '\r': return put_fn(arg, "\\r", 2, false);
    case '\t': return put_fn(arg, "\\t", 2, false);
    default: break;
    }
    if (json) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        return put_fn(arg, esc, 6, false);
    }
    memcpy(esc, "\\x", 2);
    esc[2] = hex[c >> 4];
    esc[3] = hex[c & 0xf];
    return put_fn(arg, esc, 4, false);
}

/* How many bytes from p on are printable ASCII that need no escape. */
static size_t plain_run(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* Copy a value with escapes: control characters, quotes and backslashes
 * always; a byte that is not valid UTF-8 becomes U+FFFD in JSON (which can
 * only carry characters, so consumers never choke) and \xNN in text, which
 * keeps the byte. Runs of plain ASCII go out in one piece each (a handler's
 * stderr lines are mostly that), as divisible text. */
void psup_log_escape(const char *s, size_t n, bool json, psup_log_sink put_fn, void *arg)
{
    const unsigned char *p = (const unsigned char *)s;
    bool more = true;

    for (size_t i = 0; i < n && more;) {
        size_t run = plain_run(p + i, n - i);
        if (run) {
            more = put_fn(arg, s + i, run, true);
            i += run;
            continue;
        }
        size_t len = p[i] < 0x20 || p[i] == '"' || p[i] == '\\' || p[i] == 0x7f
                         ? 0
                         : psup_utf8_len(p + i, n - i);
        if (len == 0 && json && p[i] >= 0x80) {
            more = put_fn(arg, "\\ufffd", 6, false);
            i++;
            continue;
        }
        if (len == 0) {
            more = put_escaped_char(p[i], json, put_fn, arg);
            i++;
            continue;
        }
        more = put_fn(arg, s + i, len, false);
        i += len;
    }
}

/* Divisible text that does not fit whole is cut where the room ends: every
 * byte of it is a character, so the value is still cut between two. */
static bool put_record(void *arg, const char *s, size_t n, bool divisible)
{
    struct psup_log *l = arg;

    if (divisible && !l->truncated && l->len + n > CONTENT_MAX) {
        put(l, s, CONTENT_MAX - l->len);
        l->truncated = true;
        return false;
    }
    return put(l, s, n);
}

static void put_escaped(struct psup_log *l, const char *s, size_t n, bool json)
{
    psup_log_escape(s, n, json, put_record, l);
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f)
            return true;
    }
    return false;
}

static void put_key(struct psup_log *l, const char *key)
{
    if (sink.format == PSUP_LOG_JSON) {
        put(l, ",\"", 2);
        put(l, key, strlen(key));
        put(l, "\":", 2);
    } else {
        put(l, " ", 1);
        put(l, key, strlen(key));
        put(l, "=", 1);
    }
}

void psup_log_bytes(struct psup_log *l, const char *key, const char *value, size_t len)
{
    bool json = sink.format == PSUP_LOG_JSON;
    bool quoted = json || needs_quotes(value, len);
    size_t start = l->len;

    if (l->skip)
        return;
    put_key(l, key);
    if (quoted)
        put(l, "\"", 1);
    if (l->truncated) {
        l->len = start; /* no room for even the key: drop the whole field */
        return;
    }
    if (quoted) {
        put_escaped(l, value, len, json);
        put_tail(l, "\"", 1);
    } else if (!put(l, value, len)) {
        l->len = start;
    }
}

void psup_log_str(struct psup_log *l, const char *key, const char *value)
{
    if (!value)
        value = "";
    psup_log_bytes(l, key, value, strlen(value));
}

/* Numbers are never quoted, in either format. */
static void put_number(struct psup_log *l, const char *key, const char *text, int n)
{
    size_t start = l->len;

    if (l->skip || n < 0)
        return;
    put_key(l, key);
    put(l, text, (size_t)n);
    if (l->truncated)
        l->len = start;
}

/* Every connection logs a few numbers: psup_fmt_uint, not snprintf. */
void psup_log_int(struct psup_log *l, const char *key, long long value)
{
    char text[24];
    unsigned long long magnitude = value < 0 ? 0 - (unsigned long long)value
                                             : (unsigned long long)value;
    size_t sign = value < 0;

    text[0] = '-';
    put_number(l, key, text, (int)(sign + psup_fmt_uint(magnitude, text + sign)));
}

void psup_log_uint(struct psup_log *l, const char *key, unsigned long long value)
{
    char text[24];

    put_number(l, key, text, (int)psup_fmt_uint(value, text));
}

void psup_log_bool(struct psup_log *l, const char *key, bool value)
{
    put_number(l, key, value ? "true" : "false", value ? 4 : 5);
}

void psup_log_secs(struct psup_log *l, const char *key, double seconds)
{
    char text[32];
    put_number(l, key, text, snprintf(text, sizeof(text), "%.3f", seconds));
}

void psup_log_errno(struct psup_log *l, int err)
{
    const char *name = strerrorname_np(err);
    char buf[128];

    psup_log_str(l, "errno", name ? name : "unknown");
    psup_log_str(l, "error", strerror_r(err, buf, sizeof(buf)));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for now. The part up to the seconds changes
 * once a second, so it is formatted only then (psup logs from one thread). */
static void format_stamp(char stamp[32])
{
    static time_t cached_second = -1;
    static char cached[24];
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_second) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    size_t n = strlen(cached);
    memcpy(stamp, cached, n);
    stamp[n++] = '.';
    stamp[n++] = (char)('0' + ms / 100);
    stamp[n++] = (char)('0' + ms / 10 % 10);
    stamp[n++] = (char)('0' + ms % 10);
    stamp[n++] = 'Z';
    stamp[n] = '\0';
}

void psup_log_begin(struct psup_log *l, enum psup_log_level level, const char *event)
{
    char stamp[32];

    l->len = 0;
    l->truncated = false;
    l->skip = level < sink.threshold;
    if (l->skip)
        return;
    format_stamp(stamp);

    if (sink.format == PSUP_LOG_JSON) {
        put(l, "{\"ts\":\"", 7);
        put(l, stamp, strlen(stamp));
        put(l, "\"", 1);
    } else {
        put(l, "ts=", 3);
        put(l, stamp, strlen(stamp));
    }
    psup_log_str(l, "level", level_names[level]);
    psup_log_str(l, "event", event);
}

/* Writing to a non-blocking stderr. psup's log writes block (a log reader
 * that stops reading stops psup, docs/design.md), but fd 2 may be
 * O_NONBLOCK: set by a parent, or by another process sharing its open file
 * description, so psup cannot clear it without changing theirs. There a
 * full pipe says EAGAIN: psup waits up to LOG_WAIT_MS for room, and after
 * that drops records, counting them, without waiting again until one gets
 * through; that one is followed by event=log_dropped. */
#define LOG_WAIT_MS 1000

static struct {
    unsigned long long records;
    bool dropping; /* the last record was dropped: do not wait again */
} dropped;

static bool wait_writable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;

    while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    return n > 0;
}

/* One write; retry on EINTR and finish a short write (a pipe reader never
 * sees a torn record, as it is at most PIPE_BUF bytes). Returns whether
 * the record was written. */
static bool write_record(const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t w = write(sink.fd, buf + off, len - off);
        if (w >= 0) {
            off += (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        /* Part of a record out (not on a pipe: up to PIPE_BUF a write
         * there is whole or nothing): finish it whatever the wait, as a
         * blocking write would, or the reader gets a torn line. */
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && (off || !dropped.dropping) &&
            wait_writable(sink.fd, off ? -1 : LOG_WAIT_MS))
            continue;
        dropped.records++;
        dropped.dropping = true;
        return false; /* nowhere left to report it but the count */
    }
    dropped.dropping = false;
    return true;
}

static void report_dropped(void)
{
    struct psup_log l;

    if (!dropped.records)
        return;
    unsigned long long n = dropped.records;
    dropped.records = 0;
    psup_log_begin(&l, PSUP_LOG_WARN, "log_dropped");
    psup_log_uint(&l, "records", n);
    psup_log_end(&l);
}

void psup_log_end(struct psup_log *l)
{
    if (l->skip)
        return;
    if (l->truncated) {
        if (sink.format == PSUP_LOG_JSON)
            put_tail(l, ",\"truncated\":true", 17);
        else
            put_tail(l, " truncated=true", 15);
    }
    if (sink.format == PSUP_LOG_JSON)
        put_tail(l, "}", 1);
    put_tail(l, "\n", 1);

    if (write_record(l->buf, l->len))
        report_dropped();
}

void psup_log_wait_status(struct psup_log *l, int status)
{
    char buf[16];

    if (WIFEXITED(status)) {
        psup_log_int(l, "status", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        psup_log_str(l, "signal", psup_signal_name(WTERMSIG(status), buf));
        if (WCOREDUMP(status))
            psup_log_str(l, "core", "dumped");
    }
}

void psup_log_exit(int status)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_INFO, "exit");
    psup_log_int(&l, "status", status);
    psup_log_end(&l);
}

void psup_log_problems(const char *event, const struct psup_diag *diag)
{
    for (size_t i = 0; i < diag->count; i++) {
        struct psup_log l;
        psup_log_begin(&l, PSUP_LOG_ERROR, event);
        psup_log_str(&l, "problem", diag->items[i]);
        psup_log_end(&l);
    }
}

const char *psup_signal_name(int sig, char buf[16])
{
    const char *abbrev = sigabbrev_np(sig);

    if (abbrev)
        return abbrev;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        /* At most 64 real-time signals: two digits. */
        snprintf(buf, 16, "RTMIN+%u", (unsigned)(sig - SIGRTMIN) % 100u);
        return buf;
    }
    snprintf(buf, 16, "%d", sig);
    return buf;
}
