// SPDX-License-Identifier: MIT
//
// bench-spawnloop: the physical limit of "one process per connection" on
// this machine. J worker processes (default: one per online CPU) each loop
// posix_spawn(HANDLER) + waitpid() for a duration; the total spawns/s is
// the rate no per-connection server running the same handler can exceed.
//
// The handler's stdin is /dev/null and its stdout is /dev/null (default) or
// a pipe that the worker drains to EOF (--pipe, closer to a socket: the
// handler's output is really produced and read).

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct wstat {
  uint64_t spawns;   // handler runs completed with exit status 0
  uint64_t failures; // spawn errors or non-zero exits
  uint64_t bytes;    // drained from the pipe
  uint64_t busy_ns;  // sum of spawn-to-reap times
  int first_err;     // errno of the first posix_spawn failure
  int first_status;  // wait status of the first failed run
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f) {
  fputs("usage: bench-spawnloop [-j JOBS] [-d SECONDS] [--pipe] [--json] HANDLER [ARGS...]\n"
        "  -j, --jobs N       worker processes (default: online CPUs)\n"
        "  -d, --duration S   seconds to run (default 3)\n"
        "  -p, --pipe         handler stdout to a pipe drained by the worker\n"
        "                     (default /dev/null)\n"
        "      --json         one JSON line\n",
        f);
}

static void worker(struct wstat *ws, char **argv, uint64_t t_end, bool use_pipe) {
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) {
    perror("bench-spawnloop: /dev/null");
    _exit(2);
  }
  static char buf[65536];
  while (now_ns() < t_end) {
    int pfd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    if (use_pipe) {
      if (pipe2(pfd, O_CLOEXEC) < 0) {
        perror("bench-spawnloop: pipe2");
        _exit(2);
      }
      posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    } else {
      posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    }
    uint64_t t0 = now_ns();
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (use_pipe)
      close(pfd[1]);
    if (rc != 0) {
      if (!ws->failures)
        ws->first_err = rc;
      ws->failures++;
      if (use_pipe)
        close(pfd[0]);
      continue;
    }
    if (use_pipe) {
      for (;;) {
        ssize_t r = read(pfd[0], buf, sizeof buf);
        if (r > 0)
          ws->bytes += (uint64_t)r;
        else if (r == 0 || errno != EINTR)
          break;
      }
      close(pfd[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
    ws->busy_ns += now_ns() - t0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      ws->spawns++;
    } else {
      if (!ws->failures)
        ws->first_status = st;
      ws->failures++;
    }
  }
  _exit(0);
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      {"jobs", required_argument, 0, 'j'}, {"duration", required_argument, 0, 'd'},
      {"pipe", no_argument, 0, 'p'},       {"json", no_argument, 0, 'J'},
      {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
  };
  long jobs = sysconf(_SC_NPROCESSORS_ONLN);
  double duration = 3;
  bool use_pipe = false, json = false;
  int ch;
  while ((ch = getopt_long(argc, argv, "+j:d:ph", lo, NULL)) != -1) {
    switch (ch) {
    case 'j': jobs = strtol(optarg, NULL, 10); break;
    case 'd': duration = strtod(optarg, NULL); break;
    case 'p': use_pipe = true; break;
    case 'J': json = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc || jobs < 1 || jobs > 1024 || !(duration > 0)) {
    usage(stderr);
    return 2;
  }
  char **hargv = argv + optind;
  if (access(hargv[0], X_OK) != 0) {
    fprintf(stderr, "bench-spawnloop: %s: %s\n", hargv[0], strerror(errno));
    return 2;
  }
  struct wstat *ws = mmap(NULL, (size_t)jobs * sizeof *ws, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (ws == MAP_FAILED) {
    perror("bench-spawnloop: mmap");
    return 2;
  }
  memset(ws, 0, (size_t)jobs * sizeof *ws);
  fflush(NULL);
  uint64_t t0 = now_ns();
  uint64_t t_end = t0 + (uint64_t)(duration * 1e9);
  pid_t *pids = calloc((size_t)jobs, sizeof *pids);
  if (!pids) {
    perror("bench-spawnloop: calloc");
    return 2;
  }
  for (long i = 0; i < jobs; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      perror("bench-spawnloop: fork");
      return 2;
    }
    if (pids[i] == 0)
      worker(&ws[i], hargv, t_end, use_pipe);
  }
  int bad = 0;
  for (long i = 0; i < jobs; i++) {
    int st;
    while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
      ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      bad++;
  }
  double wall = (double)(now_ns() - t0) / 1e9;
  struct wstat tot = {0};
  for (long i = 0; i < jobs; i++) {
    tot.spawns += ws[i].spawns;
    tot.failures += ws[i].failures;
    tot.bytes += ws[i].bytes;
    tot.busy_ns += ws[i].busy_ns;
    if (!tot.first_err)
      tot.first_err = ws[i].first_err;
    if (!tot.first_status)
      tot.first_status = ws[i].first_status;
  }
  double rate = wall > 0 ? (double)tot.spawns / wall : 0;
  uint64_t runs = tot.spawns + tot.failures;
  double mean_us = runs ? (double)tot.busy_ns / 1e3 / (double)runs : 0;
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru); // workers and the handlers they reaped
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  if (json) {
    printf("{\"tool\":\"bench-spawnloop\",\"jobs\":%ld,\"pipe\":%s,\"wall_s\":%.6f,"
           "\"spawns\":%llu,\"failures\":%llu,\"spawns_per_s\":%.2f,\"mean_us\":%.1f,"
           "\"bytes\":%llu,\"cpu_s\":%.6f,\"first_error\":\"%s\",\"first_status\":%d}\n",
           jobs, use_pipe ? "true" : "false", wall, (unsigned long long)tot.spawns,
           (unsigned long long)tot.failures, rate, mean_us, (unsigned long long)tot.bytes,
           cpu, tot.first_err ? strerrorname_np(tot.first_err) : "", tot.first_status);
  } else {
    printf("handler     %s, %ld job(s), stdout to %s\n", hargv[0], jobs,
           use_pipe ? "a pipe" : "/dev/null");
    printf("spawns      %llu ok, %llu failed in %.3f s\n", (unsigned long long)tot.spawns,
           (unsigned long long)tot.failures, wall);
    printf("rate        %.1f spawns/s (mean %.1f us per spawn+wait per job)\n", rate,
           mean_us);
    printf("CPU         %.3f s (workers and handlers)\n", cpu);
    if (tot.first_err)
      printf("first error posix_spawn: %s\n", strerror(tot.first_err));
    if (tot.first_status)
      printf("first bad   wait status 0x%x\n", (unsigned)tot.first_status);
  }
  return (tot.failures || bad || tot.spawns == 0) ? 1 : 0;
}
