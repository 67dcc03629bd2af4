/* SPDX-License-Identifier: MIT */
/*
 * A socket-activated server (systemd's sd_listen_fds protocol, inetd's
 * wait = yes) that reports, from inside, what it was given: at start it
 * records its descriptors (each socket's type, whether it listens, its
 * O_NONBLOCK and close-on-exec flags), LISTEN_FDS, LISTEN_PID against its
 * own pid, LISTEN_FDNAMES, its signal mask and dispositions, process group
 * and session, and environment, as "key=value" lines (env:NAME=value, as
 * tests/helpers/report.c writes them). Then it serves that report on every
 * socket it was given: to each connection it accepts (then closes it), or
 * in reply to each datagram, with "conn=N" and "served_by=PID" added.
 *
 * Options: --once (exit after one), --idle-ms N (exit after N ms without
 * one), --exit-at-once (exit 0 before serving anything: inetd's looping
 * server), --hold-ms N (hold each connection that long before answering),
 * --nonblock (make its sockets non-blocking once the report is taken, as
 * gunicorn does). Each answer also says whether fd 3 is non-blocking now.
 * SIGTERM is graceful, as in real servers: the connection in hand is
 * answered, then it exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_FDS 16

static char report[60000];
static size_t used;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(report + used, sizeof(report) - used, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(report) - used)
        used += (size_t)n;
}

static void put_fd(int fd)
{
    char path[64], target[256];
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    put("fd.%d=%s", fd, target);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
        len = sizeof(listening);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        put(" %s%s", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" : "other",
            listening ? " listening" : "");
    }
    put(" nonblock=%d cloexec=%d\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0,
        (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
}

static void put_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fds[256], n = 0;

    while (d && (e = readdir(d)) != NULL && n < 256)
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            fds[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    put("fds=");
    for (int i = 0; i < n; i++)
        put("%d,", fds[i]);
    put("\n");
    for (int i = 0; i < n; i++)
        put_fd(fds[i]);
}

static void put_status(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[512], key[32], val[64];

    while (f && fgets(line, sizeof(line), f))
        if ((!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7) ||
             !strncmp(line, "SigCgt:", 7) || !strncmp(line, "NoNewPrivs:", 11)) &&
            sscanf(line, "%31[^:]:%63s", key, val) == 2)
            put("%s=%s\n", key, val);
    if (f)
        fclose(f);
}

static void take_report(int *n_listen)
{
    const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

    put_fds();
    put_status();
    put("pid=%d\nppid=%d\npgid=%d\nsid=%d\n", getpid(), getppid(), getpgrp(), getsid(0));
    put("uid=%d\ngid=%d\n", getuid(), getgid());
    put("listen_pid_is_mine=%d\n", pid && atoi(pid) == getpid());
    for (char **e = environ; *e; e++)
        put("env:%s\n", *e);
    *n_listen = fds && pid && atoi(pid) == getpid() ? atoi(fds) : 0;
    if (*n_listen > MAX_FDS)
        *n_listen = MAX_FDS;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static size_t reply(char *buf, size_t size, unsigned long conn)
{
    int n = snprintf(buf, size, "%.*sconn=%lu\nserved_by=%d\nnonblock_now=%d\nend=1\n",
                     (int)used, report, conn, getpid(), (fcntl(3, F_GETFL) & O_NONBLOCK) != 0);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* One connection or datagram on fd; returns whether one was served. */
static int serve_one(int fd, unsigned long conn, int hold_ms)
{
    static char buf[65536];
    int type = 0;
    socklen_t len = sizeof(type);

    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (type == SOCK_DGRAM) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        char in[2048];
        if (recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *)&peer, &plen) < 0)
            return 0;
        pause_ms(hold_ms);
        size_t n = reply(buf, sizeof(buf), conn);
        sendto(fd, buf, n, 0, (struct sockaddr *)&peer, plen);
        return 1;
    }
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        return 0;
    fprintf(stderr, "sdserver %d: took conn %lu\n", getpid(), conn);
    pause_ms(hold_ms);
    size_t n = reply(buf, sizeof(buf), conn);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(c, buf + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(c);
    return 1;
}

int main(int argc, char **argv)
{
    int once = 0, idle_ms = -1, hold_ms = 0, nonblock = 0, n_listen;
    unsigned long served = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--once"))
            once = 1;
        else if (!strcmp(argv[i], "--exit-at-once"))
            return 0;
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            idle_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hold-ms") && i + 1 < argc)
            hold_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--nonblock"))
            nonblock = 1;
    }
    take_report(&n_listen);
    if (n_listen <= 0) {
        fprintf(stderr, "sdserver: no LISTEN_FDS for me\n");
        return 2;
    }
    for (int i = 0; nonblock && i < n_listen; i++)
        fcntl(3 + i, F_SETFL, fcntl(3 + i, F_GETFL) | O_NONBLOCK);
    /* No SA_RESTART: poll returns EINTR, and the loop ends. */
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "sdserver %d: serving %d sockets\n", getpid(), n_listen);
    long long last = now_ms();
    while (!stopping) {
        struct pollfd p[MAX_FDS];
        for (int i = 0; i < n_listen; i++)
            p[i] = (struct pollfd){.fd = 3 + i, .events = POLLIN};
        int left = idle_ms < 0 ? -1 : (int)(last + idle_ms - now_ms());
        if (idle_ms >= 0 && left <= 0)
            return 0;
        int r = poll(p, (nfds_t)n_listen, left);
        if (r < 0 && errno != EINTR)
            return 3;
        if (stopping)
            break;
        for (int i = 0; r > 0 && i < n_listen; i++) {
            if (!(p[i].revents & POLLIN) || !serve_one(p[i].fd, served + 1, hold_ms))
                continue;
            served++;
            last = now_ms();
            if (once)
                return 0;
        }
    }
    return 0;
}
