/* SPDX-License-Identifier: MIT */
/*
 * Building a generation's flat plan (struct psup_plan, proto.h): what its
 * workers read, in memory and, for a prestarted service, in a sealed memfd
 * (spec/prestart.md).
 */
#ifndef PSUP_RUNTIME_PLAN_H
#define PSUP_RUNTIME_PLAN_H

#include "runtime/runtime.h"

struct psup_plan_input {
    const struct psup_runtime *rt;
    const struct psup_service_config *svc;
    struct psup_listener *const *listeners; /* svc->n_listen, in order */
    const struct psup_tally *tally;         /* the service's */
    char *const *env;                       /* the base environment */
    size_t n_env;
    int plan_fd;                            /* prestart: the plan's memfd, or -1 */
};

/* The plan, one malloc'd block; NULL when out of memory. */
struct psup_plan *psup_plan_build(const struct psup_plan_input *in);

/* A memfd for a prestarted service's plan (close-on-exec), or -errno. */
int psup_plan_memfd(void);

/* Write plan into fd and seal it. Returns 0 or -errno. */
int psup_plan_seal(int fd, const struct psup_plan *plan);

#endif
