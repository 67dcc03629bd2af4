/* SPDX-License-Identifier: MIT */
/*
 * The policy of a wait-mode service (spec/wait.md): when to start its
 * servers, when to watch its sockets for the first connection or datagram,
 * and what a server's exit says about the service. Pure: the runtime
 * (lib/runtime/server.c) gathers the facts and acts on the answers.
 */
#ifndef PSUP_POLICY_WAIT_H
#define PSUP_POLICY_WAIT_H

#include <stdbool.h>

#include "config/config.h"

/* What the service is doing now. */
struct psup_wait_facts {
    enum psup_start start;
    unsigned instances;
    unsigned running;   /* servers of the current configuration, not being
                           stopped */
    unsigned allowance; /* starts the backoff allows now (backoff.h) */
    bool serving;       /* configured, and psup is not shutting down */
    bool demand;        /* a watched socket became readable and no server
                           has been started for it yet */
};

struct psup_wait_action {
    unsigned start; /* servers to start now */
    bool watch;     /* watch the sockets (on_demand, none running) */
};

struct psup_wait_action psup_wait_decide(const struct psup_wait_facts *f);

/* How a server ended. */
struct psup_wait_exit {
    enum psup_start start;
    bool failed_to_start; /* its setup or exec failed */
    bool stopped_by_psup; /* a reload, the shutdown or its timeout */
    bool exit_zero;       /* it exited with status 0 */
    bool left_pending;    /* on_demand: no other server runs, and a socket
                             is still readable: what woke it, or what came
                             after, is still there */
};

enum psup_wait_verdict {
    PSUP_WAIT_STOPPED, /* psup ended it: says nothing about the service */
    PSUP_WAIT_CLEAN,   /* it served and left: a failure streak ends */
    PSUP_WAIT_FAILED,  /* a failure of the service: backoff */
};

enum psup_wait_verdict psup_wait_judge_exit(const struct psup_wait_exit *e);

#endif
