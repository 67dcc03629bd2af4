/* SPDX-License-Identifier: MIT */
/*
 * The names in a handler's environment that belong to psup (envnames.c).
 * name is len bytes, not necessarily NUL-terminated there.
 */
#ifndef PSUP_ENVNAMES_H
#define PSUP_ENVNAMES_H

#include <stdbool.h>
#include <stddef.h>

/* A variable psup sets for each connection (or PSUP_SERVICE). */
bool psup_env_set_by_psup(const char *name, size_t len);

/* A variable meant for psup itself (NOTIFY_SOCKET, LISTEN_*). */
bool psup_env_for_psup(const char *name, size_t len);

/* Never inherited by a handler: the two above, other servers'
 * per-connection variables, and every PSUP_ name. */
bool psup_env_is_reserved(const char *name, size_t len);

#endif
