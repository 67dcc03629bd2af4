/* SPDX-License-Identifier: MIT */
/*
 * Small descriptor helpers for the supervisor side. Every descriptor psup
 * opens is close-on-exec from birth; these cover the few cases where a flag
 * must be changed afterwards.
 */
#ifndef PSUP_FD_H
#define PSUP_FD_H

#include <stdbool.h>

/* Make sure fds 0, 1 and 2 are open (on /dev/null if not), so that no socket
 * psup opens later can land on them and be mistaken for stdio by a handler.
 * Returns 0 or -errno. */
int psup_fd_ensure_stdio(void);

/* Set or clear O_NONBLOCK. Returns 0 or -errno. */
int psup_fd_set_nonblock(int fd, bool on);

/* close() that keeps errno and ignores EINTR (on Linux the fd is closed
 * whatever close returns). A negative fd is ignored. */
void psup_fd_close(int fd);

#endif
