/* SPDX-License-Identifier: MIT */
/*
 * The log records psup writes about its workers and their connections
 * (spec/logging.md): one function per event, each taking the state it
 * describes. The runtime decides; this only formats and rate-limits.
 */
#ifndef PSUP_REPORT_H
#define PSUP_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/runtime.h"

/* The name of a worker's step (enum psup_step) in records: "exec", "cwd". */
const char *psup_report_step_name(uint32_t step);

/* denied / limited, a few and then one a second per service and reason. */
void psup_report_refusal(struct psup_service *s, enum psup_limit_reason reason, pid_t pid,
                         const struct psup_peer *peer, uint64_t now);
/* A worker gave the client of m up: the verdict did not come in time. */
void psup_report_gave_up(const struct psup_worker *w, const struct psup_msg *m);
void psup_report_accept_failed(struct psup_worker *w, int err, uint64_t now);
void psup_report_stderr_fallback(struct psup_worker *w, uint64_t now);
/* A datagram handler's reply could not be sent, or its reply socket not
 * followed (step "send" or "follow"). */
void psup_report_reply_failed(struct psup_service *s, unsigned long long conn, pid_t pid,
                              const struct psup_peer *peer, int err, const char *step,
                              uint64_t now);

/* Log the kept last line of every burst of those (refusals, accept errors,
 * stderr fallbacks) that is over: nothing left out for a second, or, with
 * all, every one (at exit). */
void psup_report_flush(struct psup_runtime *rt, uint64_t now, bool all);
/* When the next burst will be over (ms), or 0 if none is pending. */
uint64_t psup_report_next_flush(const struct psup_runtime *rt);

/* saturated, or saturation_ended after duration_ms. */
void psup_report_saturation(const struct psup_service *s, bool saturated, uint64_t duration_ms);

/* The first failure of a kind in a streak (exec_failed / worker_failed),
 * the delay changing, and the end of the streak. */
void psup_report_failure(const struct psup_worker *w, int status);
void psup_report_backoff(const struct psup_service *s);
void psup_report_recovered(const struct psup_service *s);
void psup_report_worker_lost(const struct psup_worker *w, int status);

void psup_report_spawn_failed(const struct psup_service *s, int err, uint64_t retry_ms);
void psup_report_spawn_recovered(void);

void psup_report_conn_end(const struct psup_worker *w, int status, uint64_t now);

/* A wait-mode server was started, or was reaped: failure says whether its
 * exit counts as a failure of the service, pending that it left a socket
 * readable (on_demand, spec/wait.md). */
void psup_report_server_started(const struct psup_worker *w);
void psup_report_server_exit(const struct psup_worker *w, int status, uint64_t now,
                             bool failure, bool pending);
void psup_report_timeout(const struct psup_worker *w);

#endif
