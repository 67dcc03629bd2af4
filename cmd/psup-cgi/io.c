/* SPDX-License-Identifier: MIT */
/*
 * psup-cgi's waiting and writing: every wait is a poll with a deadline that
 * also watches a signalfd, so a timeout or a SIGTERM from psup is never
 * missed while the relay blocks; writes to the client are bounded by
 * SO_SNDTIMEO instead.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

/* How long a closing relay keeps reading what the client still sends: a
 * close with unread data makes the kernel send a reset, which can destroy
 * the response before the client has read it (RFC 9112 9.6). */
enum { LINGER_MS = 2000 };

int64_t relay_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void relay_log(const char *fmt, ...)
{
    char line[512];
    const char *conn = getenv("PSUP_CONN_ID");
    int n = snprintf(line, sizeof line, "psup-cgi: conn=%s ", conn ? conn : "-");
    va_list ap;

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';

    /* One write: the line never interleaves with the script's own stderr. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/*
 * SIGTERM, SIGINT and SIGHUP (psup stopping the handler's group) and
 * SIGCHLD (the script) are blocked and read from a signalfd; SIGPIPE is
 * ignored so a client that went away is an EPIPE, not the relay's death.
 * The script gets all of them back at their defaults (script.c).
 */
int relay_signals_init(struct relay *r)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return -errno;
    r->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return r->sigfd < 0 ? -errno : 0;
}

/* Drains the signalfd: WAIT_TERMINATED, WAIT_CHILD, or WAIT_READY if
 * nothing that matters was there. */
static int read_signals(struct relay *r)
{
    struct signalfd_siginfo si;
    int result = WAIT_READY;

    while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            if (result == WAIT_READY)
                result = WAIT_CHILD;
            continue;
        }
        r->terminated = true;

        /* The script leads its own group: pass psup's signal on to it. */
        relay_script_signal(r, (int)si.ssi_signo);
        result = WAIT_TERMINATED;
    }
    return result;
}

int relay_wait(struct relay *r, int fd, int64_t deadline_ms, bool child_wakes)
{
    struct pollfd p[2] = {{.fd = r->sigfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};

    for (;;) {
        int64_t now = relay_now_ms();
        int timeout = deadline_ms == INT64_MAX ? -1
                      : deadline_ms <= now     ? 0
                      : deadline_ms - now > 60000 ? 60000
                                                  : (int)(deadline_ms - now);
        int n = poll(p, fd >= 0 ? 2 : 1, timeout);

        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && p[0].revents) {
            int why = read_signals(r);
            if (why == WAIT_TERMINATED || (why == WAIT_CHILD && child_wakes))
                return why;
        }
        if (n > 0 && fd >= 0 && p[1].revents)
            return WAIT_READY;
        if (n == 0 && relay_now_ms() >= deadline_ms)
            return WAIT_TIMEOUT;
    }
}

ssize_t relay_read(int fd, void *p, size_t n)
{
    ssize_t got;

    do
        got = read(fd, p, n);
    while (got < 0 && errno == EINTR);
    return got < 0 ? -errno : got;
}

/* EAGAIN from a blocking socket means SO_SNDTIMEO passed: the client
 * stopped reading. */
int relay_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int relay_writev_all(int fd, const void *iov_in, int iovcnt)
{
    struct iovec iov[4];
    int first = 0;

    if (iovcnt > 4)
        return -EINVAL;
    memcpy(iov, iov_in, sizeof *iov * (size_t)iovcnt);
    while (first < iovcnt) {
        ssize_t w = writev(fd, iov + first, iovcnt - first);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        while (first < iovcnt && (size_t)w >= iov[first].iov_len)
            w -= (ssize_t)iov[first++].iov_len;
        if (first < iovcnt) {
            iov[first].iov_base = (char *)iov[first].iov_base + w;
            iov[first].iov_len -= (size_t)w;
        }
    }
    return 0;
}

void relay_date(char out[32])
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    psup_cgi_format_date((long long)ts.tv_sec, out);
}

void relay_send_error(struct relay *r, int status)
{
    char date[32], out[512];
    size_t n;

    if (r->responded)
        return;
    relay_date(date);
    n = psup_cgi_error_response(status, r->req.head, date, r->server, out, sizeof out);
    r->responded = true;
    if (n > 0)
        relay_write_all(CLIENT_OUT, out, n);
}

static void linger(struct relay *r)
{
    int64_t deadline = relay_now_ms() + LINGER_MS;
    char scratch[16384];

    while (relay_wait(r, CLIENT_IN, deadline, false) == WAIT_READY)
        if (relay_read(CLIENT_IN, scratch, sizeof scratch) <= 0)
            return;
}

void relay_close_client(struct relay *r, bool unread_request)
{
    char byte;

    /* The end of the response for the client, whatever it sends next. */
    if (shutdown(CLIENT_OUT, SHUT_WR) == 0 &&
        (unread_request || recv(CLIENT_IN, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0))
        linger(r);
    close(CLIENT_IN);
    close(CLIENT_OUT);
}
