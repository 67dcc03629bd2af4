/* SPDX-License-Identifier: MIT */
/*
 * psup's own process, as /proc describes it, for the standard process_*
 * metrics (the names and meanings Prometheus's client libraries use). A
 * read of /proc is answered from kernel memory: it does not block the loop.
 */
#include "admin/render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A small file of /proc, whole, NUL-terminated; false if unreadable. */
static bool read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0)
        return false;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return len > 0;
}

/* The boot time (btime in /proc/stat), seconds since the epoch. */
static double boot_time(void)
{
    char buf[8192];
    const char *p;

    if (!read_small("/proc/stat", buf, sizeof(buf)) || !(p = strstr(buf, "\nbtime ")))
        return 0;
    return strtod(p + 7, NULL);
}

/* /proc/self/stat: CPU time, start time, virtual and resident size. The
 * command name may hold spaces and parentheses: fields start after the
 * last ')'. */
static void read_stat(struct psup_process_stats *out)
{
    char buf[1024];
    unsigned long long utime, stime, start, vsize, rss;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);

    if (!read_small("/proc/self/stat", buf, sizeof(buf)) || ticks <= 0 || page <= 0)
        return;
    const char *p = strrchr(buf, ')');
    /* Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss). */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                            "%*d %*d %*d %llu %llu %llu",
                     &utime, &stime, &start, &vsize, &rss) != 5)
        return;
    out->cpu_seconds = (double)(utime + stime) / ticks;
    out->start_time = boot_time() + (double)start / ticks;
    out->virtual_bytes = vsize;
    out->resident_bytes = rss * (unsigned long long)page;
    out->have_stat = true;
}

/* Open descriptors: the entries of /proc/self/fd but the one reading it. */
static void count_fds(struct psup_process_stats *out)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    struct rlimit lim;

    if (!d)
        return;
    int own = dirfd(d);
    unsigned long long n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != own)
            n++;
    closedir(d);
    out->open_fds = n;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
        out->max_fds = lim.rlim_cur;
    out->have_fds = true;
}

void psup_process_stats(struct psup_process_stats *out)
{
    memset(out, 0, sizeof(*out));
    read_stat(out);
    count_fds(out);
}

void psup_admin_format_time(double t, char out[32])
{
    time_t sec = (time_t)t;
    struct tm tm;
    char day[24];

    gmtime_r(&sec, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", day, (int)((t - (double)sec) * 1000.0) % 1000);
}
