// SPDX-License-Identifier: MIT
//
// bench-listenserver: a persistent server in the style of systemd's socket
// activation (and psup's wait mode), for bench/wait.py. It takes its
// listening socket from LISTEN_FDS (fd 3, checked against LISTEN_PID),
// forks -p N processes in all (default 1), and each one loops: accept,
// write "hello\n", close. Nothing runs per connection but that: with the
// same server behind psup and behind systemd-socket-activate, what differs
// is only what the launcher left in its way (psup must leave nothing).
//
// It exits on SIGTERM (the default action), with its children: they share
// its process group, which both launchers signal.

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char hello[] = "hello\n";

static int listen_fd(void) {
  const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

  if (!fds || !pid || atoi(pid) != getpid() || atoi(fds) < 1) {
    fprintf(stderr, "bench-listenserver: no socket in LISTEN_FDS for pid %d\n", getpid());
    exit(2);
  }
  return 3;
}

static void serve(int fd) {
  for (;;) {
    int c = accept(fd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
        continue;
      perror("bench-listenserver: accept");
      exit(3);
    }
    ssize_t n = send(c, hello, sizeof(hello) - 1, MSG_NOSIGNAL);
    (void)n; /* a client that went away is the load generator's business */
    close(c);
  }
}

int main(int argc, char **argv) {
  int procs = 1;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-p") && i + 1 < argc)
      procs = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench-listenserver [-p PROCESSES]\n");
      return 2;
    }
  }
  int fd = listen_fd();
  for (int i = 1; i < procs; i++) {
    pid_t pid = fork();
    if (pid == 0)
      serve(fd);
    if (pid < 0) {
      perror("bench-listenserver: fork");
      return 3;
    }
  }
  /* The first process serves too; the kernel spreads accepts among all. */
  serve(fd);
}
