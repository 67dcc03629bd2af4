/* SPDX-License-Identifier: MIT */
/* Descriptor helpers: stdio sanity at start-up, O_NONBLOCK, quiet close. */
#include "base/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int psup_fd_ensure_stdio(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* open() returns the lowest free number, which is fd itself. */
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0)
            return -errno;
        if (nfd != fd) {
            close(nfd);
            return -EBADF;
        }
    }
    return 0;
}

int psup_fd_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -errno;
    int want = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (want != flags && fcntl(fd, F_SETFL, want) < 0)
        return -errno;
    return 0;
}

void psup_fd_close(int fd)
{
    int saved = errno;

    if (fd >= 0)
        close(fd);
    errno = saved;
}
