/* SPDX-License-Identifier: MIT */
/*
 * The protocol between the supervisor and its workers: the messages a
 * worker sends, the verdict the supervisor answers with, the signals both
 * use, and the plan and record a worker reads. spec/pool.md describes the
 * protocol; docs/design.md why it is built this way.
 *
 * A worker is created with clone(CLONE_VM) where proto/rawsys.h has raw
 * system calls: it shares the supervisor's memory until it execs, so
 * everything it reads (the plan, its psup_child record) must stay unchanged
 * and alive until the supervisor has reaped it, and the worker's code must
 * not touch libc state (errno, malloc, stdio, locks): lib/child/README.md.
 */
#ifndef PSUP_PROTO_H
#define PSUP_PROTO_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "child/proxy.h"
#include "config/config.h"
#include "net/addr.h"
#include "proto/inet.h"
#include "proto/tally.h"

/* Worker -> supervisor messages, one per datagram on a SOCK_SEQPACKET
 * socket shared by all workers. */
enum psup_msg_kind {
    PSUP_MSG_BUSY = 1,      /* took a connection (or a datagram); waits for
                               the verdict */
    PSUP_MSG_RUNNING,       /* took a connection and runs the handler: no
                               verdict needed (the plan's needs_verdict) */
    PSUP_MSG_DENIED,        /* refused by allow/deny and closed (a datagram:
                               dropped); still idle */
    PSUP_MSG_SETUP_FAILED,  /* could not get ready (step, err); exits 125 */
    PSUP_MSG_EXEC_FAILED,   /* execve failed (err); exits 126 or 127 */
    PSUP_MSG_ACCEPT_FAILED, /* accept failed for lack of resources (or a
                               datagram's pipe or reply socket); retries */
    PSUP_MSG_GAVE_UP,       /* no verdict for BUSY seq in time: the client
                               was closed, the worker is idle again */
    PSUP_MSG_READING,       /* took a connection and reads its PROXY header
                               (up to proxy_timeout): busy, not yet a handler */
    PSUP_MSG_PROXY_REFUSED, /* the connection came from outside proxy_from
                               (err EACCES), or its PROXY header was refused
                               (err: spec/proxy.md's reason); closed, idle */
    PSUP_MSG_READY,         /* a prestarted worker's program was exec'd and
                               the prestart library waits for connections */
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
    PSUP_STEP_PRESTART,  /* the prestarted program ran without psup's
                            library, or did not get ready in time */
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

/* Where a datagram's replies go from (spec/udp.md): the address the client
 * sent to, as the source of every reply, in the 16-byte form of
 * psup_ip_key (all zero: let the kernel choose, for a datagram sent to a
 * multicast or broadcast address); the interface, for a link-local IPv6
 * source, else 0; the client's IPv6 scope (sin6_scope_id). */
struct psup_route {
    uint8_t source[16];
    uint32_t ifindex;
    uint32_t scope_id;
};

/* Descriptors a message carries (SCM_RIGHTS), in this order. */
#define PSUP_MSG_FD_LOG 1u   /* the read end of the handler's stderr pipe */
#define PSUP_MSG_FD_REPLY 2u /* the supervisor's end of a datagram handler's
                                reply socket */

struct psup_msg {
    uint32_t kind;
    int32_t pid;
    int32_t err;  /* positive errno for *_FAILED */
    uint32_t step;
    uint32_t listener; /* index in the plan's listeners, for BUSY/DENIED */
    uint32_t seq;      /* BUSY, GAVE_UP: the worker's request number, which
                          the verdict repeats */
    uint32_t fds;      /* PSUP_MSG_FD_*: which descriptors come with it */
    struct psup_peer peer;  /* the client: a PROXY header's source, if any */
    struct psup_peer proxy; /* the connection's own peer when it sent a PROXY
                               header (family 0 otherwise) */
    struct psup_route route; /* a datagram's (BUSY, RUNNING) */
};

/* The supervisor's answer to BUSY, sent with sigqueue(PSUP_SIG_VERDICT) as
 * the signal's 64-bit value: the code in the low byte, flags, the source's
 * connection count (TCPCONNNUM) in bits 16-31, and in the upper 32 bits the
 * seq of the BUSY it answers. A worker that gave up waiting takes other
 * clients; the sequence keeps a late verdict from being applied to them. */
enum psup_verdict {
    PSUP_VERDICT_RUN = 1,   /* exec the handler */
    PSUP_VERDICT_PER_SOURCE, /* over max_per_source: close (with message) */
    PSUP_VERDICT_RATE,       /* over rate: close (with message) */
    PSUP_VERDICT_OVERLOAD,   /* at max_workers with on_overload reject */
    PSUP_VERDICT_CLOSE,      /* shutting down, or the worker is not known */
};
#define PSUP_VERDICT_NO_LOG_PIPE 0x100 /* stderr pipe not received: inherit */

/* How long a worker waits for a verdict before it gives the client up:
 * the supervisor answers in microseconds unless it is stopped. Tests
 * shorten it with PSUP_TEST_VERDICT_TIMEOUT_MS (spec/pool.md). */
#define PSUP_VERDICT_TIMEOUT_MS 60000
/* How long a prestarted worker may take from its spawn to READY: its
 * program's start-up, the dynamic loader and the constructors of its
 * libraries, which take milliseconds, on a machine that may be very busy.
 * Tests shorten it with PSUP_TEST_PRESTART_TIMEOUT_MS. */
#define PSUP_PRESTART_TIMEOUT_MS 10000
#define PSUP_CONNNUM_MAX 0xffffu

_Static_assert(sizeof(void *) == sizeof(uint64_t),
               "the verdict travels in a 64-bit sigval (LP64 platforms)");

static inline uint64_t psup_verdict_encode(enum psup_verdict code, unsigned flags,
                                           unsigned connnum, uint32_t seq)
{
    if (connnum > PSUP_CONNNUM_MAX)
        connnum = PSUP_CONNNUM_MAX;
    return (uint64_t)seq << 32 | (uint64_t)connnum << 16 | flags | (unsigned)code;
}

static inline enum psup_verdict psup_verdict_code(uint64_t v)
{
    return (enum psup_verdict)(v & 0xff);
}

static inline unsigned psup_verdict_connnum(uint64_t v)
{
    return (unsigned)(v >> 16) & PSUP_CONNNUM_MAX;
}

static inline uint32_t psup_verdict_seq(uint64_t v)
{
    return (uint32_t)(v >> 32);
}

/* Signals of the protocol. The verdict is a real-time signal so it carries
 * a value; retire uses SIGURG, whose default action is to ignore, so a late
 * one can never harm a handler (see spec/pool.md). */
#define PSUP_SIG_VERDICT (SIGRTMIN)
#define PSUP_SIG_RETIRE SIGURG

/* Exit statuses of a worker that never ran a handler. */
#define PSUP_WORKER_EXIT_RETIRED 0
#define PSUP_WORKER_EXIT_SETUP 125

/* How a worker closes descriptors (lib/child/fds.c), chosen by the
 * supervisor at start: close_range where the kernel has it with
 * CLOSE_RANGE_CLOEXEC (Linux 5.11), else by listing /proc/self/fd, else by
 * trying every number below RLIMIT_NOFILE's soft limit. */
enum psup_fd_closing {
    PSUP_FDS_CLOSE_RANGE,
    PSUP_FDS_PROC,
    PSUP_FDS_RLIMIT,
};
#define PSUP_CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h */

struct psup_plan_listener {
    int32_t fd;
    uint32_t proto;              /* enum psup_proto */
    int32_t family;              /* of the socket as bound */
    uint16_t port;               /* as bound: UDPLOCALPORT */
    uint16_t unused;
    char text[PSUP_ADDR_STRLEN]; /* as bound, for logs; "unix:PATH" for a unix
                                    socket, whose PATH is UNIXLOCALPATH */
};

struct psup_plan_rlimit {
    int32_t resource;
    uint32_t unused;
    uint64_t cur, max;
};

/* Everything a worker of one service generation reads, built by the
 * supervisor (lib/runtime/plan.c) and never changed afterwards; freed only
 * when no worker of it is left. It is flat: no pointers, every reference is
 * an offset from the plan's first byte (0: none), so the same bytes serve a
 * worker that shares the supervisor's memory and, copied into a sealed
 * memfd, a prestarted one that has exec'd its program (lib/prestart). */
#define PSUP_PLAN_MAGIC UINT64_C(0x6e616c7070757370) /* "psupplan" */
#define PSUP_PLAN_VERSION 3

struct psup_plan {
    uint64_t magic;
    uint32_t version;
    uint32_t size;              /* bytes, this header included */

    /* Waiting for connections. */
    uint32_t listeners, n_listeners; /* struct psup_plan_listener[] */
    uint32_t keep_fds, n_keep_fds;   /* int32_t[], ascending: what an idle
                                        worker keeps open */
    int32_t channel_fd;         /* the workers' end of the message socket */
    int32_t supervisor_pid;
    int32_t verdict_signal;     /* PSUP_SIG_VERDICT, evaluated by the supervisor */
    int32_t verdict_timeout_ms; /* how long a worker waits for a verdict */
    uint32_t fd_closing;        /* enum psup_fd_closing */
    uint32_t n_reset_signals;
    int32_t reset_signals[64];  /* signals whose disposition is not SIG_DFL */
    uint32_t tally_capacity;    /* entries of the tally: bounds every scan */
    int32_t tally_fd;           /* prestart: the tally's memfd, mapped by the
                                   library; -1 otherwise */
    int32_t plan_fd;            /* prestart: the memfd holding a copy of this
                                   plan; -1 otherwise */
    uint64_t tally_size;        /* bytes of that mapping */
    uint8_t needs_verdict;      /* a limit or stderr "log" needs the
                                   supervisor's decision before each handler */
    uint8_t own_session;        /* setsid, not only setpgid: psup has a terminal */
    uint8_t prestart;           /* exec the program before the connection */
    uint8_t stderr_mode;        /* enum psup_stderr_mode */
    uint8_t mode;               /* enum psup_mode */
    uint8_t proxy_protocol;     /* enum psup_proxy_protocol: a PROXY header
                                   before each connection (0: none) */
    uint8_t unused_flags[2];

    /* Admission. */
    uint32_t allow, n_allow;    /* struct psup_cidr[] */
    uint32_t deny, n_deny;
    uint32_t deny_message;      /* strings, or 0 for none */
    uint32_t per_source_message;
    uint32_t rate_message;
    uint32_t overload_message;
    uint32_t per_source_ipv6_prefix;
    uint32_t min_spare;
    uint32_t proxy_from, n_proxy_from; /* struct psup_cidr[]: the balancers */
    int32_t proxy_timeout_ms;   /* for the whole PROXY header */

    /* The handler's process. */
    uint32_t program;           /* string: what is exec'd (a cgi service's
                                   relay, psup-cgi) */
    uint32_t script;            /* string: the program a cgi service's relay
                                   runs, checked with it; 0 otherwise */
    uint32_t env, n_env;        /* uint32_t[] of string offsets: the base
                                   environment, without the connection's
                                   (prestart only; n_env always) */
    uint32_t cwd;               /* string, or 0 to keep psup's */
    int32_t umask;              /* or -1 */
    int32_t nice;
    uint8_t set_nice;
    uint8_t set_ids;
    uint8_t no_new_privileges;
    uint8_t unused;
    uint32_t uid, gid;
    uint32_t groups, n_groups;  /* uint32_t[] (gid_t) */
    uint32_t rlimits, n_rlimits; /* struct psup_plan_rlimit[] */
};

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "the plan stores gids as uint32_t");

static inline const void *psup_plan_at(const struct psup_plan *p, uint32_t off)
{
    return (const char *)p + off;
}

/* A string of the plan, or NULL for offset 0. */
static inline const char *psup_plan_str(const struct psup_plan *p, uint32_t off)
{
    return off ? (const char *)p + off : NULL;
}

static inline const struct psup_plan_listener *psup_plan_listeners(const struct psup_plan *p)
{
    return (const struct psup_plan_listener *)psup_plan_at(p, p->listeners);
}

/* Per-connection variables the worker adds, at most, and their room (a
 * PROXY header's authority and unique id take up to 255 and 128 bytes). */
#define PSUP_ENV_DYNAMIC 16
#define PSUP_ENVBUF_SIZE 2048

/* A datagram service's worker reads each datagram into a buffer this large
 * (the largest UDP payload is 65527 bytes over IPv6, 65507 over IPv4). */
#define PSUP_DGRAM_MAX 65536

/* What the worker admitted, a connection or a datagram, on its way to the
 * handler: its descriptors and environment. */
struct psup_handover {
    int in;             /* fd 0: the connection, or the datagram's pipe */
    int out;            /* fd 1: the connection, or the reply socket */
    int log_pipe;       /* the stderr pipe's write end, or -1 */
    char **envp;        /* the handler's environment (the record's envp) */
};

/* One worker's record as its code sees it: written by whoever starts the
 * worker's code (the supervisor before the clone, or the prestart library
 * after exec); afterwards only the worker writes pid, seq, channel_fd, the
 * handover, envp and envbuf (and dgram's bytes). */
struct psup_child {
    const struct psup_plan *plan;
    struct psup_tally_shared *tally; /* the service's, mapped in this process */
    char *const *argv;     /* the plan's command, as the execve vector */
    char *const *env_base; /* the plan's base environment, as pointers
                              (plan->n_env of them) */
    char *const *exec_env; /* prestart: the environment the program is
                              exec'd with, but for PSUP_PRESTART */
    size_t n_exec_env;
    unsigned long long conn_id;
    pid_t pid;   /* the worker's own, set by the worker */
    bool hold;   /* wait for the supervisor's go (seq 0) before taking
                    connections */
    uint32_t seq; /* the worker's last BUSY; only the worker writes it */
    uint32_t tally_slot; /* its entry in the tally, or PSUP_TALLY_NONE */
    uint8_t *dgram; /* datagram mode: PSUP_DGRAM_MAX bytes, not on the
                       worker's 64 KiB stack; NULL otherwise */
    int channel_fd; /* the channel here when not the plan's channel_fd (a
                       wait-mode server moves it out of the sockets' way);
                       0: the plan's (psup's 0 is never the channel) */
    int epoll_fd;  /* while waiting: the epoll set and the retire signalfd */
    int retire_fd;
    struct psup_handover handover;
    char **envp; /* plan->n_env + PSUP_ENV_DYNAMIC + 1 slots */
    char envbuf[PSUP_ENVBUF_SIZE];
    /* The PROXY header of the connection being taken: too large for the
     * worker's small stack (lib/child/README.md). */
    struct psup_proxy_header proxy;
};

/* The variable that tells the prestart library it runs in a prestarted
 * worker: "PSUP_PRESTART=PLAN_FD:CONN_ID:TALLY_SLOT". */
#define PSUP_PRESTART_VAR "PSUP_PRESTART"

#endif
