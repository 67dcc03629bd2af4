/* SPDX-License-Identifier: MIT */
/*
 * Workers: processes created ahead of time that wait for one connection on
 * their service's listeners, report it to the supervisor, and become the
 * handler with execve. spec/pool.md describes the protocol; this header is
 * the contract between the supervisor and the worker's code.
 *
 * A worker is created with clone(CLONE_VM) where rawsys.h has raw system
 * calls: it shares the supervisor's memory until it execs, so everything it
 * reads (the plan, its psup_child record) must stay unchanged and alive until
 * the supervisor has reaped it, and the worker's code must not touch libc
 * state (errno, malloc, stdio, locks). worker.c is the only file that runs
 * in a worker.
 */
#ifndef PSUP_WORKER_H
#define PSUP_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "access.h"
#include "addr.h"
#include "config.h"
#include "sources.h"
#include "tally.h"

/* Worker -> supervisor messages, one per datagram on a SOCK_SEQPACKET
 * socket shared by all workers. */
enum psup_msg_kind {
    PSUP_MSG_BUSY = 1,      /* took a connection; waits for the verdict */
    PSUP_MSG_RUNNING,       /* took a connection and runs the handler: no
                               verdict needed (the plan's needs_verdict) */
    PSUP_MSG_DENIED,        /* refused by allow/deny and closed; still idle */
    PSUP_MSG_SETUP_FAILED,  /* could not get ready (step, err); exits 125 */
    PSUP_MSG_EXEC_FAILED,   /* execve failed (err); exits 126 or 127 */
    PSUP_MSG_ACCEPT_FAILED, /* accept failed for lack of resources; retries */
};

/* Where a worker failed, for PSUP_MSG_SETUP_FAILED. */
enum psup_step {
    PSUP_STEP_SETUP = 1, /* signals, session, descriptors, epoll */
    PSUP_STEP_PROGRAM,   /* the program is missing or not executable */
    PSUP_STEP_STDERR,    /* opening /dev/null or the log pipe */
    PSUP_STEP_CWD,
    PSUP_STEP_UMASK,
    PSUP_STEP_RLIMIT,
    PSUP_STEP_NICE,
    PSUP_STEP_CREDENTIALS,
    PSUP_STEP_EXEC,
};

/* The client, as the worker saw it. */
struct psup_peer {
    uint16_t family; /* AF_INET6 (IPv4 in v4-mapped form) or AF_UNIX */
    uint16_t port;
    uint8_t addr[16];
    int32_t pid; /* AF_UNIX: SO_PEERCRED */
    uint32_t uid;
    uint32_t gid;
};

/* The source a connection is counted under (max_per_source, TCPCONNNUM):
 * the peer's address grouped by the IPv6 prefix, or its uid. */
static inline void psup_peer_source(const struct psup_peer *peer, unsigned v6_prefix,
                                    struct psup_source *src)
{
    memset(src, 0, sizeof(*src));
    if (peer->family == AF_UNIX) {
        src->kind = PSUP_SOURCE_UID;
        memcpy(src->key, &peer->uid, sizeof(peer->uid));
    } else {
        src->kind = PSUP_SOURCE_IP;
        psup_source_key(peer->addr, v6_prefix, src->key);
    }
}

struct psup_msg {
    uint32_t kind;
    int32_t pid;
    int32_t err;  /* positive errno for *_FAILED */
    uint32_t step;
    uint32_t listener; /* index in the plan's listeners, for BUSY/DENIED */
    struct psup_peer peer;
};

/* The supervisor's answer to BUSY, sent with sigqueue(PSUP_SIG_VERDICT):
 * the code in the low byte, flags, and the source's connection count
 * (TCPCONNNUM) in the upper 16 bits. */
enum psup_verdict {
    PSUP_VERDICT_RUN = 1,   /* exec the handler */
    PSUP_VERDICT_PER_SOURCE, /* over max_per_source: close (with message) */
    PSUP_VERDICT_RATE,       /* over rate: close (with message) */
    PSUP_VERDICT_OVERLOAD,   /* at max_workers with on_overload reject */
    PSUP_VERDICT_CLOSE,      /* shutting down, or the worker is not known */
};
#define PSUP_VERDICT_NO_LOG_PIPE 0x100 /* stderr pipe not received: inherit */

static inline int psup_verdict_encode(enum psup_verdict code, unsigned flags,
                                      unsigned connnum)
{
    if (connnum > 0x7fff)
        connnum = 0x7fff;
    return (int)((unsigned)code | flags | connnum << 16);
}

/* Signals of the protocol. The verdict is a real-time signal so it carries
 * a value; retire uses SIGURG, whose default action is to ignore, so a late
 * one can never harm a handler (see spec/pool.md). */
#define PSUP_SIG_VERDICT (SIGRTMIN)
#define PSUP_SIG_RETIRE SIGURG

/* Exit statuses of a worker that never ran a handler. */
#define PSUP_WORKER_EXIT_RETIRED 0
#define PSUP_WORKER_EXIT_SETUP 125

struct psup_plan_listener {
    int fd;
    enum psup_proto proto;
    const char *unix_path; /* for UNIXLOCALPATH; NULL for TCP */
    char text[PSUP_ADDR_STRLEN]; /* as bound, for logs */
};

/* Everything a worker of one service generation needs, built by the
 * supervisor and never changed afterwards; freed only when no worker of it
 * is left. */
struct psup_plan {
    const struct psup_service_config *svc;
    char *const *env_base; /* the handler's environment without the
                              per-connection variables */
    size_t n_env_base;
    const struct psup_plan_listener *listeners;
    size_t n_listeners;
    int channel_fd;         /* the workers' end of the message socket */
    pid_t supervisor_pid;
    int verdict_signal;     /* PSUP_SIG_VERDICT, evaluated by the supervisor */
    const int *reset_signals; /* signals whose disposition is not SIG_DFL */
    size_t n_reset_signals;
    struct psup_tally_shared *tally; /* the service's (tally.h) */
    bool needs_verdict;     /* a limit or stderr "log" needs the supervisor's
                               decision before each handler runs */
    bool own_session;       /* setsid, not only setpgid: psup has a terminal */
};

/* Per-connection variables the worker adds, at most. */
#define PSUP_ENV_DYNAMIC 12
#define PSUP_ENVBUF_SIZE 1024

/* One worker's record as its code sees it: written by the supervisor before
 * the worker starts; afterwards only the worker writes envp and envbuf. */
struct psup_child {
    const struct psup_plan *plan;
    unsigned long long conn_id;
    pid_t pid;   /* the worker's own, set by the worker */
    bool hold;   /* wait for the supervisor's go before taking connections */
    uint32_t tally_slot; /* its entry in the tally, or PSUP_TALLY_NONE */
    char **envp; /* n_env_base + PSUP_ENV_DYNAMIC + 1 slots */
    char envbuf[PSUP_ENVBUF_SIZE];
};

/* A worker's stack, used until it is reaped. */
struct psup_stack {
    void *base;
    size_t size;
};

/* Map a stack with a guard page below it. Returns 0 or -errno. */
int psup_stack_map(struct psup_stack *stack);
void psup_stack_unmap(struct psup_stack *stack);

/* Check that one more process can be created now (RLIMIT_NPROC): a child
 * that exits at once, created and reaped before returning. Every signal is
 * blocked meanwhile. Returns 0 or -errno (EAGAIN). */
int psup_probe_slot(const struct psup_stack *stack);

/* The worker's code, from clone to execve (worker.c). */
int psup_worker_main(void *child);

/* Start a worker. share_memory selects clone(CLONE_VM) (the default where
 * PSUP_RAW_SYSCALLS is 1) or a copy of the supervisor's memory like fork.
 * Every signal is blocked around the clone so that no handler of the
 * supervisor can run in the new process. Returns the pid or -errno. */
pid_t psup_worker_spawn(struct psup_child *child, const struct psup_stack *stack,
                        bool share_memory);

#endif
