/* SPDX-License-Identifier: MIT */
/*
 * The prestart library: psup's worker inside a prestarted program
 * (spec/prestart.md). psup execs the program ahead of its connection with
 * this library appended to LD_PRELOAD. Its constructor runs after the C
 * library's and the program's other libraries' constructors and before the
 * program's own and its main. It waits for a connection (or a datagram)
 * with the same child code as psup's workers (lib/child: epoll on the
 * listeners, accept or recvmsg, allow/deny, the verdict or the tally),
 * hands it over (fds 0 and 1, the connection's environment, nothing of
 * psup's left open or mapped but the plan that holds the environment's
 * strings) and returns: main then runs as the connection's handler. At the
 * end it closes the program's hold on the connection as soon as the
 * program is done with it (end_connection).
 *
 * What it uses of the C library, and why that is safe (the rest is system
 * calls through psup_sys(), as in every worker):
 * - environ, a variable: set once, at the handoff, before main. glibc
 *   calls main with __environ as it is after the constructors, so main's
 *   third argument is the connection's environment too (musl passes the
 *   one of the exec: spec/prestart.md).
 * - __cxa_atexit: once, at the handoff. The C library is initialised (its
 *   constructor ran before this one), and the program has run none of its
 *   own code yet.
 * - __libc_single_threaded and fflush(NULL): at the program's exit, after
 *   main, as the C library's own exit does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child/worker.h"
#include "proto/proto.h"
#include "proto/rawsys.h"

extern char **environ;
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/* This worker's record. Static: the connection's variables it writes stay
 * the environment's strings for the life of the process. */
static struct psup_child worker;

/* The connection, once handed over, as fds 0 and 1 hold it (a datagram's
 * handler: its pipe and its reply socket): what end_connection closes. */
static struct {
    bool set[2];
    dev_t dev[2];
    ino_t ino[2];
} connection;

/* ------------------------------------------------------------------------ */
/* The end of the connection. */

/* Let go of the connection on those of fds 0-2 that hold it: /dev/null
 * takes their place, so that the numbers stay taken (a file opened later
 * cannot become "stdout") and whatever still writes there is discarded.
 * Closing, not shutdown: a child of the handler that shares the socket
 * keeps it open and may still write; the client sees the end when the
 * last holder lets go. */
static bool is_connection(const struct stat *st)
{
    for (int i = 0; i < 2; i++)
        if (connection.set[i] && st->st_dev == connection.dev[i] &&
            st->st_ino == connection.ino[i])
            return true;
    return false;
}

static void end_connection(void)
{
    long devnull = -1;

    for (int fd = 0; fd <= 2; fd++) {
        struct stat st;
        if (psup_sys(SYS_fstat, fd, &st) < 0 || !is_connection(&st))
            continue;
        if (devnull < 0)
            devnull = psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || psup_sys(SYS_dup3, devnull, fd, 0) < 0)
            psup_sys(SYS_close, fd);
    }
    if (devnull >= 0)
        psup_sys(SYS_close, devnull);
}

/* Registered at the handoff, before the C library registers the dynamic
 * loader's destructor runner: it runs after every destructor, and just
 * before the C library's final flush of stdio, which it does itself (only
 * single-threaded: fflush takes the streams' locks, which another thread
 * may hold). Then nothing writes any more, and the connection can end
 * before the kernel tears the process down. */
static void at_exit(void *arg)
{
    (void)arg;
    if (!__libc_single_threaded)
        return;
    fflush(NULL);
    end_connection();
}

/* A program that ends with _exit (a shell) runs no exit handler: the same
 * here. Interposed for the program (LD_PRELOAD comes before the C
 * library); the C library's own calls are not, and need not be. */
__attribute__((visibility("default"))) void _exit(int status)
{
    end_connection();
    for (;;)
        psup_sys(SYS_exit_group, status);
}

__attribute__((visibility("default"))) void _Exit(int status)
{
    _exit(status);
}

/* ------------------------------------------------------------------------ */
/* Getting ready. */

static const char *getvar(char **env, const char *name, size_t len)
{
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* A decimal number up to sep (or the end if sep is '\0'); *s moves past it. */
static bool number(const char **s, char sep, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *p = *s;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (~0ULL - 9) / 10)
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (*p != sep)
        return false;
    *s = sep ? p + 1 : p;
    *out = v;
    return true;
}

/* PSUP_PRESTART=PLAN_FD:CONN_ID:TALLY_SLOT */
static bool parse_var(const char *s, int *plan_fd, struct psup_child *c)
{
    unsigned long long fd, conn, slot;

    if (!number(&s, ':', &fd) || !number(&s, ':', &conn) || !number(&s, '\0', &slot) ||
        fd > INT32_MAX || slot > UINT32_MAX)
        return false;
    *plan_fd = (int)fd;
    c->conn_id = conn;
    c->tally_slot = (uint32_t)slot;
    return true;
}

/* The plan, mapped privately and writable: the base environment's strings
 * are in it, and programs write into their environment's strings (bash
 * does). Returns 0 or -errno. */
static long map_plan(struct psup_child *c, int fd)
{
    struct stat st;
    long r = psup_sys(SYS_fstat, fd, &st);

    if (r < 0)
        return r;
    if ((size_t)st.st_size < sizeof(struct psup_plan))
        return -EINVAL;
    long map = psup_sys(SYS_mmap, 0, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (map < 0 && map > -4096)
        return map;
    const struct psup_plan *p = (const void *)map;
    /* psup and this library are one build: a plan of another layout is
     * a broken installation. */
    if (p->magic != PSUP_PLAN_MAGIC || p->version != PSUP_PLAN_VERSION ||
        p->size != (uint64_t)st.st_size)
        return -EPROTO;
    c->plan = p;
    return 0;
}

/* The tally, shared with the supervisor and the service's other workers,
 * and the base environment as pointers into the plan, with room after it
 * for the connection's variables. Returns 0 or -errno. */
static long map_rest(struct psup_child *c)
{
    const struct psup_plan *p = c->plan;
    const uint32_t *env = psup_plan_at(p, p->env);
    size_t slots = 2 * (size_t)p->n_env + PSUP_ENV_DYNAMIC + 1;
    long tally = psup_sys(SYS_mmap, 0, p->tally_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                          p->tally_fd, 0);
    long arrays = psup_sys(SYS_mmap, 0, slots * sizeof(char *), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (tally < 0 && tally > -4096)
        return tally;
    if (arrays < 0 && arrays > -4096)
        return arrays;
    c->tally = (void *)tally;
    /* Fault this worker's entry in now, off the client's path: the first
     * write to the shared page is a page fault, which would otherwise come
     * with the connection's. Only this worker writes its entry's mark (0
     * while no refused client lingers), and the supervisor clears the
     * entry only after reaping it. */
    if (c->tally_slot < p->tally_capacity)
        atomic_store_explicit(&c->tally->entries[c->tally_slot].lingering, 0,
                              memory_order_relaxed);
    if (p->mode == PSUP_MODE_DATAGRAM) {
        /* A datagram service's worker reads each datagram into a buffer
         * (datagram.c): a worker in psup's memory has one of psup's, this
         * one maps its own. Its first page is faulted in now, off the
         * client's path: most datagrams fit in it. */
        long dgram = psup_sys(SYS_mmap, 0, PSUP_DGRAM_MAX, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (dgram < 0 && dgram > -4096)
            return dgram;
        c->dgram = (uint8_t *)dgram;
        c->dgram[0] = 0;
    }
    char **base = (char **)arrays;
    for (size_t i = 0; i < p->n_env; i++)
        base[i] = (char *)p + env[i];
    c->env_base = base;
    c->envp = base + p->n_env;
    return 0;
}

/* fds 0-2 open, as psup keeps its own (a library constructor may have
 * closed one): no descriptor psup's code opens may land there. */
static void keep_stdio_open(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (psup_sys(SYS_fcntl, fd, F_GETFD) == -EBADF)
            psup_sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
}

/* Leave without a handler: what psup's workers do when they cannot get
 * ready. The supervisor counts a failure (spec/pool.md). */
_Noreturn static void give_up(struct psup_child *c, long err)
{
    if (c->plan) {
        struct psup_msg m = {.kind = PSUP_MSG_SETUP_FAILED, .step = PSUP_STEP_PRESTART,
                             .err = (int32_t)-err, .pid = c->pid};
        psup_sys(SYS_sendto, c->plan->channel_fd, &m, sizeof(m), MSG_NOSIGNAL, 0, 0);
    }
    for (;;)
        psup_sys(SYS_exit_group, PSUP_WORKER_EXIT_SETUP);
}

/* ------------------------------------------------------------------------ */

__attribute__((constructor)) static void psup_prestart(void)
{
    struct psup_child *c = &worker;
    const char *var = getvar(environ, PSUP_PRESTART_VAR, sizeof(PSUP_PRESTART_VAR) - 1);
    int plan_fd;
    long r;

    /* Not a prestarted worker (the library named by hand): nothing to do. */
    if (!var)
        return;

    /* 1. While it holds psup's listeners, channel and tally, no process of
     *    the handler's user may attach to it (its exec made it dumpable);
     *    the handoff gives the program back what its exec gave it. */
    long dumpable = psup_sys(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
    psup_sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);

    c->pid = (pid_t)psup_sys(SYS_getpid, 0);
    c->epoll_fd = c->retire_fd = -1;
    c->handover.in = c->handover.out = c->handover.log_pipe = -1;
    if (!parse_var(var, &plan_fd, c))
        give_up(c, -EINVAL);
    if ((r = map_plan(c, plan_fd)) < 0 || (r = map_rest(c)) < 0)
        give_up(c, r);

    /* 2. (psup dying from now on kills this process: the worker set the
     *    parent-death signal and checked its parent before the exec, which
     *    keeps it.) fds 0-2 stay taken while psup's code runs here. */
    keep_stdio_open();

    /* 3. Ready (the supervisor counts it as a spare from now), then wait
     *    and take a connection, as every worker does. */
    psup_child_wait(c);

    /* 4. Hand it over, and end it at the program's exit without waiting
     *    for the kernel to tear the process down (end_connection). */
    char **envp = psup_child_handoff(c);
    for (int fd = 0; fd < 2; fd++) {
        struct stat st;
        if (psup_sys(SYS_fstat, fd, &st) == 0) {
            connection.dev[fd] = st.st_dev;
            connection.ino[fd] = st.st_ino;
            connection.set[fd] = true;
        }
    }
    /* The datagram is in the handler's pipe by now. */
    if (c->dgram)
        psup_sys(SYS_munmap, c->dgram, PSUP_DGRAM_MAX);
    c->dgram = NULL;
    __cxa_atexit(at_exit, NULL, NULL);
    environ = envp;
    if (dumpable == 1)
        psup_sys(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
}
