// SPDX-License-Identifier: MIT
//
// bench-spawnserver: the cheapest server that starts a process per
// connection *on the client's path*. One loop: accept, posix_spawn the
// handler with the connection on stdin and stdout, close, accept again.
// SIGCHLD is ignored, so the kernel reaps the handlers and the server does
// no bookkeeping at all: no limits, no logs, no environment, no timeouts.
//
// It is not a product and not a ceiling: it shows what the fork on the
// client's path costs when it is done as cheaply as Linux allows
// (posix_spawn is clone(CLONE_VM|CLONE_VFORK) + exec), next to tcpserver's
// fork and psup's pre-created workers. Loopback IPv4 only.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int listen_on(const char *ip, int port, int backlog) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, backlog) < 0) {
    fprintf(stderr, "bench-spawnserver: %s:%d: %s\n", ip, port, strerror(errno));
    exit(2);
  }
  return fd;
}

// Spawn attributes shared by every connection: SIGCHLD back to its default
// in the handler (it is ignored here, and an ignored disposition survives
// exec).
static void init_attributes(posix_spawnattr_t *attr) {
  sigset_t defaults;

  sigemptyset(&defaults);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_init(attr);
  posix_spawnattr_setsigdefault(attr, &defaults);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF);
}

static void spawn_handler(int conn, const posix_spawnattr_t *attr, char **argv) {
  posix_spawn_file_actions_t actions;
  pid_t pid;

  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, conn, 0);
  posix_spawn_file_actions_adddup2(&actions, conn, 1);
  int err = posix_spawn(&pid, argv[0], &actions, attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err) {
    // EAGAIN or ENOMEM: this connection is lost; pause a little rather
    // than spin (a benchmark that sees this has a problem to report).
    fprintf(stderr, "bench-spawnserver: posix_spawn: %s\n", strerror(err));
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fputs("usage: bench-spawnserver IP PORT HANDLER [ARGS...]\n", stderr);
    return 2;
  }
  int listener = listen_on(argv[1], atoi(argv[2]), 1024);
  posix_spawnattr_t attr;

  signal(SIGCHLD, SIG_IGN); // the kernel reaps: no zombies, no wait
  init_attributes(&attr);
  fprintf(stderr, "bench-spawnserver: listening on %s:%s\n", argv[1], argv[2]);
  for (;;) {
    int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
      continue;
    }
    spawn_handler(conn, &attr, argv + 3);
    close(conn);
  }
}
