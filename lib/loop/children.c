/* SPDX-License-Identifier: MIT */
/*
 * psup's children as the kernel knows them, workers or not: whether any is
 * left, signalling all of them (the orphans of handlers that came back to
 * psup as PID 1 or subreaper included), and the records about them.
 * /proc is read, never written; nothing here waits.
 */
#include "loop/children.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"

bool psup_children_any(void)
{
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Signal every child listed in /proc/self/task/TID/children (psup has a
 * single thread). Returns 0, or -errno if the file cannot be read: the
 * kernel lists children there only with CONFIG_PROC_CHILDREN. */
static int signal_listed_children(int sig)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
    FILE *f = fopen(path, "re");

    if (!f)
        return -errno;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
        kill((pid_t)pid, sig);
    fclose(f);
    return 0;
}

/* The parent named by /proc/PID/stat ("PID (COMM) STATE PPID ..."; COMM
 * may hold spaces and parentheses, so read after the last ')'), or -1. */
static long parent_of(int proc, const char *pid)
{
    char buf[512];
    int fd = openat(proc, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    int stat = openat(fd, "stat", O_RDONLY | O_CLOEXEC);
    close(fd);
    if (stat < 0)
        return -1;
    ssize_t n = read(stat, buf, sizeof(buf) - 1);
    close(stat);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *end = strrchr(buf, ')');
    long ppid;
    return end && sscanf(end + 1, " %*c %ld", &ppid) == 1 ? ppid : -1;
}

/* Without the children file: every process names its parent in
 * /proc/PID/stat. Returns 0, or -ENOENT if /proc is not there (no entry
 * for psup itself: not mounted, or something else mounted there). */
static int signal_children_by_scan(int sig)
{
    DIR *dir = opendir("/proc");

    if (!dir)
        return -errno;
    long self = getpid();
    bool seen_self = false;
    struct dirent *d;
    while ((d = readdir(dir))) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        long pid = strtol(d->d_name, NULL, 10);
        seen_self |= pid == self;
        if (parent_of(dirfd(dir), d->d_name) == self)
            kill((pid_t)pid, sig);
    }
    closedir(dir);
    return seen_self ? 0 : -ENOENT;
}

int psup_children_signal(int sig)
{
    int rc = signal_listed_children(sig);

    return rc == -ENOENT ? signal_children_by_scan(sig) : rc;
}

void psup_children_log_reaped(pid_t pid, int status)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_DEBUG, "reaped_orphan");
    psup_log_int(&l, "pid", pid);
    psup_log_wait_status(&l, status);
    psup_log_end(&l);
}

void psup_children_log_left(void)
{
    struct psup_log l;

    psup_log_begin(&l, PSUP_LOG_WARN, "orphans_left");
    psup_log_str(&l, "reason", "cannot list children (/proc)");
    psup_log_end(&l);
}
