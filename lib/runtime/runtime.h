/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's model of what runs: services, their generations (one per
 * configuration that defined them), their workers, and the listeners. It
 * starts, retires and signals workers, answers their messages, accounts for
 * their exits and logs per-connection events, but owns no event loop: the
 * supervisor (supervisor.c) feeds it messages, exits and the time.
 *
 * spec/pool.md is the reference for the states and transitions.
 */
#ifndef PSUP_RUNTIME_H
#define PSUP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/backoff.h"
#include "base/durations.h"
#include "policy/pool.h"
#include "config/config.h"
#include "base/list.h"
#include "net/listen.h"
#include "policy/rate.h"
#include "policy/sources.h"
#include "spawn/spawn.h"

enum psup_worker_state {
    PSUP_WORKER_IDLE,        /* waiting for a connection */
    PSUP_WORKER_RETIRING,    /* idle, asked to leave with the retire signal */
    PSUP_WORKER_STOPPED,     /* idle, stopped by a signal (SIGSTOP) */
    PSUP_WORKER_READING,     /* took a connection and reads its PROXY header:
                                counted busy, but no handler yet */
    PSUP_WORKER_BUSY,        /* took a connection; runs (or becomes) the handler */
    PSUP_WORKER_TERMINATING, /* busy; its group was sent SIGTERM */
    PSUP_WORKER_KILLING,     /* busy; its group was sent SIGKILL */
};

struct psup_runtime;
struct psup_service;

/* One generation of a service: the plan its workers read, kept alive by
 * them. A reload that changes a service makes a new generation; the old one
 * lives on while its handlers finish. */
struct psup_generation {
    struct psup_plan *plan;     /* flat (proto.h, runtime/plan.c) */
    const struct psup_service_config *svc;
    struct psup_service *service;
    struct psup_config *config; /* holds svc */
    char **env_base;            /* the plan's base environment, as pointers */
    char **exec_env;            /* prestart: the program's at its exec */
    size_t n_exec_env;
    int plan_fd;                /* prestart: the plan's sealed memfd, or -1 */
    uint64_t timeout_ms;        /* how long a handler may run before psup
                                   stops it, 0: no limit (generation.c) */
    unsigned refs;              /* workers, plus one while current */
};

/* How a connection's handler ended, as its conn_end record says it
 * (spec/admin.md, psup_connections_total). */
enum psup_outcome {
    PSUP_OUTCOME_OK,          /* exit status 0 */
    PSUP_OUTCOME_ERROR,       /* another exit status */
    PSUP_OUTCOME_SIGNAL,      /* killed by a signal, not for its timeout */
    PSUP_OUTCOME_TIMEOUT,     /* stopped for running past timeout */
    PSUP_OUTCOME_EXEC_FAILED, /* the handler could not be executed */
    PSUP_OUTCOMES,
};

/* What psup counts per service (reported at shutdown, and by the admin
 * endpoint). */
struct psup_counters {
    unsigned long long accepted;   /* connections whose handler ran (exec
                                      failures count under failed) */
    unsigned long long denied;     /* refused by allow/deny */
    unsigned long long per_source; /* refused by max_per_source */
    unsigned long long rate;       /* refused by rate */
    unsigned long long overload;   /* refused at max_workers (on_overload reject) */
    unsigned long long failed;     /* worker failures (setup or exec) */
    unsigned long long timed_out;  /* handlers stopped by timeout */
    unsigned long long ended[PSUP_OUTCOMES]; /* handlers reaped, by outcome */
    struct psup_durations durations;         /* how long each of those ran */
    unsigned long long replies;    /* datagram mode: replies sent to clients */
    unsigned long long replies_failed; /* replies that could not be sent */
    unsigned long long proxy_refused; /* outside proxy_from, or no valid PROXY
                                         header in time */
};

/* What a log limiter counts, per service. */
enum psup_limit_reason {
    PSUP_LIMIT_DENIED,
    PSUP_LIMIT_PER_SOURCE,
    PSUP_LIMIT_RATE,
    PSUP_LIMIT_OVERLOAD,
    PSUP_LIMIT_ACCEPT,
    PSUP_LIMIT_STDERR,
    PSUP_LIMIT_REPLY,
    PSUP_LIMIT_PROXY,
    PSUP_LIMIT_COUNT,
};

/* What a rate-limited line is about (report.c). */
struct psup_limited_event {
    pid_t pid;
    unsigned long long conn;
    int err;
    struct psup_peer peer;
    const char *step;   /* reply_failed: what failed */
    struct psup_peer proxy; /* family 0: no PROXY header */
};

/* Per-reason log limiter: a few lines, then one a second with a count.
 * The last line left out is kept: when no other was left out for a second
 * (or at exit) it is logged, carrying the count of the others. */
struct psup_log_limit {
    struct psup_rate bucket; /* 5 at once, then 1 a second */
    unsigned long long suppressed;
    uint64_t last_suppressed;        /* ms */
    struct psup_limited_event last;
};

struct psup_service {
    char name[72];
    struct psup_list link;           /* runtime->services */
    struct psup_generation *current; /* NULL once removed: draining */
    struct psup_list workers;        /* every live worker, all generations */
    unsigned idle, busy, retiring, stopped;
    unsigned replying;               /* reply sockets still followed (they
                                        may outlive their worker) */
    struct psup_backoff backoff;
    struct psup_sources sources;     /* survives reloads */
    struct psup_tally tally;         /* shared with its workers: TCPCONNNUM */
    struct psup_rate rate;
    struct psup_counters counters;
    struct psup_log_limit limits[PSUP_LIMIT_COUNT];
    bool saturated;
    bool paused;                     /* takes no new connections on purpose
                                        (control: pause; spec/control.md):
                                        not ready (/readyz); survives reloads */
    bool scaled;                     /* scale holds the pool bounds (control:
                                        scale), until the next reload */
    struct psup_pool_limits scale;
    bool listening;                  /* shutdown: its listeners' backlogs are
                                        still being served */
    uint64_t failing_since;          /* ms: starts delayed since (0: not) */
    bool seen;                       /* apply: named by the new configuration */
    uint64_t saturated_since;
    uint64_t below_limit_since;      /* saturated, but a slot is free since */
    int last_error;                  /* the last failure's errno and step */
    uint32_t last_step;
    uint32_t logged_steps;           /* steps already logged in this streak */
    /* Wait mode (spec/wait.md, server.c): the generation whose sockets the
     * loop watches for the first connection or datagram (a reference), and
     * whether one came and no server was started for it yet. */
    struct psup_generation *watched;
    bool demand;
};

struct psup_errlog;
struct psup_reply;

struct psup_worker {
    pid_t pid;
    enum psup_worker_state state;
    struct psup_service *service;
    struct psup_generation *gen;
    struct psup_list link;       /* service->workers */
    struct psup_list timer_link; /* runtime->timed while a deadline is set */
    struct psup_worker *hash_next;
    uint64_t started;            /* ms */
    uint64_t busy_since;
    uint64_t deadline;           /* timeout, or SIGKILL after SIGTERM */
    struct psup_peer peer;
    struct psup_peer proxy;      /* the balancer, for a PROXY header (family 0:
                                    none) */
    struct psup_route route;     /* a datagram's: where replies go from */
    uint32_t listener;
    uint32_t seq;                /* of the BUSY being answered */
    struct psup_source source;
    bool counted;                /* holds a per-source count */
    bool exited;                 /* taken by waitpid, exit not handled yet */
    bool exec_failed;
    bool timed_out;
    bool signalled;              /* psup sent it TERM or KILL */
    bool ready;                  /* may take connections: a prestarted
                                    worker once its library said READY */
    int error;                   /* from SETUP_FAILED / EXEC_FAILED */
    uint32_t step;
    struct psup_errlog *errlog;  /* stderr capture ("log" mode) */
    struct psup_reply *reply;    /* datagram mode: the handler's replies */
    unsigned long long replies;  /* sent so far (conn_end) */
    struct psup_stack stack;
    struct psup_child child;
    char *envp[];                /* the worker fills it before execve */
};

/* Hooks into the supervisor's event loop. */
struct psup_runtime_hooks {
    /* A handler's stderr pipe arrived: follow it, storing the capture in
     * *slot (cleared when it ends). Returns false if it cannot. */
    bool (*stderr_pipe)(void *arg, int fd, const char *service, unsigned long long conn,
                        pid_t pid, struct psup_errlog **slot);
    /* The worker is gone: read what is left and stop following its pid. */
    void (*stderr_done)(void *arg, struct psup_errlog *log);
    /* A datagram handler's reply socket (runtime/reply.h): watch it, and
     * pump it when readable. Returns false if it cannot. */
    bool (*reply_socket)(void *arg, struct psup_reply *r);
    /* Its handler was reaped (or gave the datagram up): send what the
     * socket holds now, detach it from the worker (psup_reply_detach),
     * and follow it a little longer at most. */
    void (*reply_done)(void *arg, struct psup_reply *r);
    /* Watch fd (a wait-mode service's listening socket) for readiness, or
     * stop watching it: the loop then calls psup_runtime_on_ready. Returns
     * 0 or -errno. */
    int (*watch)(void *arg, int fd, bool on);
    void *arg;
};

/* How the runtime acts on processes: creating workers (and their stacks),
 * signalling them, answering them with a verdict, probing for a free
 * process slot. psup_runtime_init sets the real system calls (arg is the
 * runtime); tests/unit/test_runtime.c sets fakes, so that spec/pool.md's
 * transitions are tested without processes. Each returns 0 or -errno, spawn
 * the new pid or -errno. */
struct psup_runtime_ops {
    int (*stack_map)(void *arg, struct psup_stack *stack);
    void (*stack_unmap)(void *arg, struct psup_stack *stack);
    /* Start a worker that runs child on stack (psup_worker_spawn). */
    pid_t (*spawn)(void *arg, struct psup_child *child, const struct psup_stack *stack);
    /* kill(2): pid, or -pid for its process group. */
    int (*signal)(void *arg, pid_t pid, int sig);
    /* The verdict signal carrying value (sigqueue). */
    int (*verdict)(void *arg, pid_t pid, uint64_t value);
    /* Whether one more process can be created now (psup_probe_slot). */
    int (*probe)(void *arg, const struct psup_stack *stack);
    /* Whether a listening socket has something waiting (a connection, a
     * datagram) now: 1, 0, or -errno (poll with no wait). */
    int (*readable)(void *arg, int fd);
    void *arg;
};

struct psup_runtime {
    struct psup_list services;
    struct psup_worker **table; /* pid hash, chained */
    size_t table_size;
    size_t live;                /* workers in the table */
    struct psup_listener **listeners;
    size_t n_listeners;
    struct psup_list timed;     /* workers with a deadline, earliest first */
    int channel_fd;             /* the workers' end */
    pid_t self;
    uid_t uid;
    int verdict_signal;
    int verdict_timeout_ms;     /* PSUP_VERDICT_TIMEOUT_MS, or the test knob */
    int prestart_timeout_ms;    /* PSUP_PRESTART_TIMEOUT_MS, or the test knob */
    enum psup_fd_closing fd_closing; /* what the kernel allows (lib/child/fds.c) */
    int reset_signals[64];
    size_t n_reset_signals;
    const char *prestart_library; /* psup's preload library, NULL if none */
    bool share_memory;
    bool handler_sessions;           /* psup has a controlling terminal */
    bool accepting;             /* false once shutdown began */
    bool closing;               /* handlers are being stopped: refuse new ones */
    unsigned long long next_conn_id;
    struct psup_stack stack_cache[32];
    size_t n_stack_cache;
    uint64_t spawn_blocked_until; /* no worker may be started before */
    uint64_t spawn_delay;       /* after clone failed (EAGAIN, ENOMEM) */
    uint64_t spawn_last_failure;
    bool spawn_failing;         /* processes are scarce (runtime.c) */
    unsigned long nproc_limit;  /* RLIMIT_NPROC, 0 for none */
    struct psup_config *config; /* the current configuration */
    struct psup_runtime_hooks hooks;
    struct psup_runtime_ops ops;
};

/* Results of applying a configuration, for the reload log line. */
struct psup_apply_report {
    char added[256], removed[256], changed[256];
    unsigned unchanged;
    unsigned listeners_opened, listeners_closed;
};

int psup_runtime_init(struct psup_runtime *rt, int channel_fd, bool share_memory);
void psup_runtime_free(struct psup_runtime *rt);

/* Apply a configuration: bind new listeners, create or update services,
 * retire what went away. On error (a listener that cannot be bound) nothing
 * changes, and -errno is returned after logging the address and reason.
 * Takes its own reference to cfg. */
int psup_runtime_apply(struct psup_runtime *rt, struct psup_config *cfg, uint64_t now,
                       struct psup_apply_report *report);

/* Make gen (NULL for a removed service) the service's current generation,
 * taking over the caller's reference: start the new workers first, then
 * retire the old idle ones. */
void psup_runtime_switch_generation(struct psup_runtime *rt, struct psup_service *s,
                                    struct psup_generation *gen, uint64_t now);

/* End a failure streak now (a reload), logging the recovery if starts were
 * being delayed. */
void psup_runtime_end_backoff(struct psup_service *s, uint64_t now);

/* Log one line per bound listener (event=listening). */
void psup_runtime_log_listeners(const struct psup_runtime *rt);

/* Descriptors that came with a message, -1 where none (the runtime owns
 * them): the read end of a handler's stderr pipe, the supervisor's end of
 * a datagram handler's reply socket. */
struct psup_passed_fds {
    int log;
    int reply;
};

/* A message from a worker, with what it passed. */
void psup_runtime_on_message(struct psup_runtime *rt, const struct psup_msg *m,
                             const struct psup_passed_fds *fds, uint64_t now);

/* waitpid took pid, exited or killed; psup_runtime_on_exit follows once
 * every message it sent before exiting has been read. Until then it is
 * counted as running nowhere: not against max_per_source, not in the
 * tally (TCPCONNNUM). */
void psup_runtime_note_exit(struct psup_runtime *rt, pid_t pid);

/* waitpid reported pid: exited or killed (status), or stopped/continued.
 * Returns false for a pid that is not a worker (a reaped orphan). */
bool psup_runtime_on_exit(struct psup_runtime *rt, pid_t pid, int status, uint64_t now);
void psup_runtime_on_stop(struct psup_runtime *rt, pid_t pid, bool stopped);

/* A socket the loop watched for a wait-mode service is readable: start its
 * servers (spec/wait.md). */
void psup_runtime_on_ready(struct psup_runtime *rt, int fd, uint64_t now);

/* Start and retire workers to bring every pool within its bounds, and
 * start or watch for every wait-mode service's servers. */
void psup_runtime_maintain(struct psup_runtime *rt, uint64_t now);

/* Enforce timeouts and TERM -> KILL escalations due by now. */
void psup_runtime_expire(struct psup_runtime *rt, uint64_t now);

/* The earliest time after now that maintain or expire has work, or 0. */
uint64_t psup_runtime_next_deadline(const struct psup_runtime *rt, uint64_t now);

/* Shutdown: take no new connection (psup_listener_refuse_new), but serve
 * those already in the listeners' backlogs: a service keeps its workers
 * until its backlogs are empty, then its listeners close and its idle
 * workers retire (docs/design.md, "The backlog at shutdown"). A paused
 * service's listeners close at once, and so do a wait-mode service's (its
 * servers own the sockets and their queues), whose servers get SIGTERM. */
void psup_runtime_stop_accepting(struct psup_runtime *rt, uint64_t now);
/* During the stop: close the listeners of every service whose backlogs are
 * empty. Returns whether some listener is still open (look again soon). */
bool psup_runtime_drain_backlogs(struct psup_runtime *rt, uint64_t now);
/* SIGTERM every handler's group (KILL follows after kill_grace); SIGKILL
 * every worker still idle. */
void psup_runtime_terminate_all(struct psup_runtime *rt, uint64_t now);
/* SIGKILL every worker's group at once. */
void psup_runtime_kill_all(struct psup_runtime *rt);
/* An essential service that has been failing (its starts delayed) for its
 * fatal_after seconds by now, or NULL (spec/signals.md, exit status 4). */
const struct psup_service *psup_runtime_fatal_service(const struct psup_runtime *rt,
                                                      uint64_t now);

/* Log the state of every pool (event=status, on SIGUSR1). */
void psup_runtime_log_status(const struct psup_runtime *rt);
/* Log the counters of every service (event=summary). */
void psup_runtime_log_summary(const struct psup_runtime *rt);

#endif
