/* SPDX-License-Identifier: MIT */
/*
 * What an operator asks of a running psup, one service at a time
 * (spec/control.md): pause a service (its idle workers retire and none
 * starts: new connections wait in the backlog), resume it, and scale its
 * pool until the next reload. The admin endpoint's control requests and
 * tests/unit/test_runtime.c call these; each action is logged.
 */
#ifndef PSUP_CONTROL_H
#define PSUP_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/proto.h"
#include "runtime/runtime.h"

/* Who asked, for the log: a unix admin client's credentials (pid and uid
 * of its peer), or NULL when unknown. */
struct psup_requester {
    pid_t pid;
    uid_t uid;
};

/* New pool bounds; a negative value keeps the service's current one. */
struct psup_scale_request {
    long long min_spare, max_spare, max_workers;
};

/* A service the current configuration names (not one that a reload
 * removed and that only drains), or NULL. */
struct psup_service *psup_runtime_find_service(const struct psup_runtime *rt, const char *name);

/* Pause (pause true) or resume the service name. Returns 0, with *changed
 * false if it already was so; -ENOENT if there is no such service;
 * -ESHUTDOWN once psup is stopping; -EOPNOTSUPP for a pause of a wait-mode
 * service (a resume ends a pause a reload carried into wait mode). */
int psup_runtime_pause(struct psup_runtime *rt, const char *name, bool pause,
                       const struct psup_requester *by, uint64_t now, bool *changed);

/* Set the pool bounds of the service name, checked as the configuration's
 * are (1 to 65536 each, max_spare >= min_spare, max_workers >= max_spare),
 * until the next reload. Returns 0 with *out the bounds now in force;
 * -ENOENT, -ESHUTDOWN as above; -EINVAL with the problem in why (a
 * sentence that names the parameter, as psup_config_load's messages do);
 * -EOPNOTSUPP, with why, for a wait-mode service. */
int psup_runtime_scale(struct psup_runtime *rt, const char *name,
                       const struct psup_scale_request *req, const struct psup_requester *by,
                       uint64_t now, struct psup_pool_limits *out, char *why, size_t why_size);

#endif
