/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's sockets on the supervisor's loop (spec/admin.md):
 * its listeners, kept across reloads like services' listeners, and its
 * clients, each bounded in size, time and number so that no client can
 * slow what psup serves. What the endpoint answers is lib/admin's.
 */
#ifndef PSUP_LOOP_ADMIN_H
#define PSUP_LOOP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "admin/admin.h"
#include "config/config.h"

struct psup_admin_server;
struct admin_listener;

/* The listeners of a configuration, found among the open ones or bound
 * anew, before anything is committed. */
struct psup_admin_plan {
    struct admin_listener **next; /* in configuration order */
    bool *fresh;                  /* bound by this plan */
    bool *taken;                  /* the server's listener i is kept */
    size_t n;
};

/* A server answering from st (which the supervisor keeps current), with
 * no listener yet. NULL when out of memory. */
struct psup_admin_server *psup_admin_server_new(uv_loop_t *loop, struct psup_admin_state *st);

/* Find or bind every admin listener of cfg without changing the server.
 * Returns 0, or -errno after logging the address and reason (what was
 * bound is closed again). */
int psup_admin_server_plan(struct psup_admin_server *srv, const struct psup_admin_config *cfg,
                           struct psup_admin_plan *plan);

/* Make a plan the server's: close the listeners it no longer names, take
 * cfg's limits, start accepting on the new ones (logged as
 * admin_listening). */
void psup_admin_server_commit(struct psup_admin_server *srv, const struct psup_admin_config *cfg,
                              struct psup_admin_plan *plan);

/* Drop a plan that is not committed (another part of a reload failed). */
void psup_admin_server_abandon(struct psup_admin_plan *plan);

/* Close every listener and client; their memory is freed by the loop's
 * close callbacks, and the server's by psup_admin_server_free once the
 * loop has run them. */
void psup_admin_server_close(struct psup_admin_server *srv);
void psup_admin_server_free(struct psup_admin_server *srv);

#endif
