/* SPDX-License-Identifier: MIT */
/*
 * The handler's environment, without the per-connection variables that a
 * worker adds (spec/handler.md, "Environment"): psup's own environment or,
 * with clear_env, only the names in pass_env; minus psup's control variables
 * (NOTIFY_SOCKET, LISTEN_*) and every name psup sets itself; plus `env`,
 * HOME/USER/LOGNAME for `user`, and PSUP_SERVICE.
 */
#ifndef PSUP_ENV_H
#define PSUP_ENV_H

#include <stddef.h>

#include "config/config.h"

/* Build the base environment from psup_environ. Returns a NULL-terminated
 * array of "NAME=value" strings in one allocation (free it with free()),
 * with the count in *n, or NULL when out of memory. */
char **psup_env_base(const struct psup_service_config *svc, char *const *psup_environ,
                     size_t *n);

#endif
