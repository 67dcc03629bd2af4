/* SPDX-License-Identifier: MIT */
/*
 * The worker's descriptors: before it waits it closes every one but its
 * service's listeners and the channel, and before it execs it marks every
 * one from 3 up close-on-exec. close_range(2) does each in one call
 * (CLOSE_RANGE_CLOEXEC needs Linux 5.11). Where it cannot be used (an older
 * kernel, or a container runtime whose seccomp profile refuses it) the
 * supervisor chose a fallback at start, the plan's fd_closing: list
 * /proc/self/fd, or, without /proc, try every number below the soft
 * RLIMIT_NOFILE. Child code: lib/child/README.md.
 */
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

/* The kernel's getdents64 record. */
struct kernel_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

enum fd_action { FD_CLOSE, FD_SET_CLOEXEC };

static void act(int fd, enum fd_action action)
{
    /* close is never retried (the descriptor is gone even on EINTR); a
     * number that is not open fails with EBADF, which is what we wanted. */
    if (action == FD_CLOSE)
        psup_sys(SYS_close, fd);
    else
        psup_sys(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

/* Whether fd is one of keep[0..n), ascending. */
static bool kept(const int32_t *keep, size_t n, long fd)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keep[mid] == fd)
            return true;
        if (keep[mid] < fd)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A /proc/self/fd entry's descriptor; -1 for "." and "..". */
static long fd_of_name(const char *name)
{
    long fd = 0;

    if (*name < '0' || *name > '9')
        return -1;
    for (; *name >= '0' && *name <= '9' && fd < INT32_MAX / 10; name++)
        fd = fd * 10 + (*name - '0');
    return *name ? -1 : fd;
}

/* Act on every open descriptor from first up that is not kept, as listed
 * in /proc/self/fd. Closing entries already listed does not disturb the
 * listing: its position is a descriptor number. Returns 0 or -errno. */
static long walk_proc(long first, const int32_t *keep, size_t n_keep, enum fd_action action)
{
    long dir = psup_sys(SYS_openat, AT_FDCWD, "/proc/self/fd",
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char buf[768] __attribute__((aligned(8))); /* small frames: lib/child/README.md */
    long n;

    if (dir < 0)
        return dir;
    while ((n = psup_sys(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n;) {
            const struct kernel_dirent64 *d = (const void *)(buf + off);
            long fd = fd_of_name(d->name);
            if (fd >= first && fd != dir && !kept(keep, n_keep, fd))
                act((int)fd, action);
            off += d->reclen;
        }
    }
    psup_child_close((int)dir);
    return n;
}

/* Act on every number from first below the soft RLIMIT_NOFILE that is not
 * kept: slow with a high limit, but needs nothing from the system. Returns
 * 0 or -errno. */
static long walk_below_limit(long first, const int32_t *keep, size_t n_keep,
                             enum fd_action action)
{
    struct rlimit limit;
    long r = psup_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &limit);

    if (r < 0)
        return r;
    for (uint64_t fd = (uint64_t)first; fd < limit.rlim_cur && fd <= INT32_MAX; fd++)
        if (!kept(keep, n_keep, (long)fd))
            act((int)fd, action);
    return 0;
}

static long walk(const struct psup_plan *p, long first, const int32_t *keep, size_t n_keep,
                 enum fd_action action)
{
    /* /proc can still fail here (a descriptor limit reached): the slow way
     * then, rather than a failed connection. */
    if (p->fd_closing == PSUP_FDS_PROC && walk_proc(first, keep, n_keep, action) == 0)
        return 0;
    return walk_below_limit(first, keep, n_keep, action);
}

long psup_child_close_others(const struct psup_plan *p)
{
    unsigned next = 3;
    long r = 0;

    const int32_t *keep = psup_plan_at(p, p->keep_fds);

    if (p->fd_closing != PSUP_FDS_CLOSE_RANGE)
        return walk(p, 3, keep, p->n_keep_fds, FD_CLOSE);
    /* The gaps between the kept descriptors, then everything above. */
    for (size_t i = 0; i < p->n_keep_fds && r == 0; i++) {
        unsigned fd = (unsigned)keep[i];
        if (fd > next)
            r = psup_sys(SYS_close_range, next, fd - 1, 0);
        if (fd >= next)
            next = fd + 1;
    }
    if (r == 0)
        r = psup_sys(SYS_close_range, next, ~0U, 0);
    return r;
}

long psup_child_cloexec_from(const struct psup_plan *p, unsigned first)
{
    if (p->fd_closing != PSUP_FDS_CLOSE_RANGE)
        return walk(p, first, NULL, 0, FD_SET_CLOEXEC);
    return psup_sys(SYS_close_range, first, ~0U, PSUP_CLOSE_RANGE_CLOEXEC);
}
