/* SPDX-License-Identifier: MIT */
/*
 * libpsup-test-late.so, linked into late_exit: an exit handler that runs
 * after every other one, the prestart library's included (a library the
 * program needs is initialised before LD_PRELOAD's, and exit handlers run
 * in the reverse order of registration). It reports what fds 0 and 1 are
 * then (the connection, or /dev/null once it was let go), then waits (LATE_WAIT_MS,
 * default 5000) for the file LATE_REPORT.eof, which the test creates once
 * its client has read the end of the reply: so it shows that the client
 * saw the end before the process exited (spec/prestart.md, "The end of a
 * reply").
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/* What fd is: "socket", "null" (/dev/null), "closed" or "other". */
static const char *state(int fd)
{
    char link[64], target[256];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
        return "closed";
    target[n] = '\0';
    if (strncmp(target, "socket:", 7) == 0)
        return "socket";
    return strcmp(target, "/dev/null") == 0 ? "null" : "other";
}

static void late(void *arg)
{
    const char *path = getenv("LATE_REPORT");
    const char *wait = getenv("LATE_WAIT_MS");
    char marker[4096];
    struct stat st;
    long ms = wait ? atol(wait) : 5000;
    bool seen = false;

    (void)arg;
    if (!path)
        return;
    const char *fd0 = state(0), *fd1 = state(1);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "fd0=%s\nfd1=%s\n", fd0, fd1);
    fflush(f);
    snprintf(marker, sizeof(marker), "%s.eof", path);
    for (long waited = 0; waited < ms && !(seen = stat(marker, &st) == 0); waited += 10)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    fprintf(f, "eof_seen_before_exit=%d\n", seen);
    fclose(f);
}

/* Called by late_exit, so that the link keeps this library as needed. */
void psup_test_late_hook(void);
void psup_test_late_hook(void)
{
}

__attribute__((constructor)) static void init(void)
{
    /* No DSO handle: not run with this library's destructors, but as a
     * process-wide exit handler, after those registered later. */
    __cxa_atexit(late, NULL, NULL);
}
