/* SPDX-License-Identifier: MIT */
/*
 * Watching datagram handlers' reply sockets (runtime/reply.h): the loop
 * says when to read, the runtime reads and sends. Each wake-up sends at
 * most 64 messages or 64 KiB of one socket, so a handler that floods its
 * stdout cannot stall the loop; a handler's replies are followed until
 * every writer is gone, or for one second after the handler was reaped
 * (a process it left behind may hold the socket: what it writes later is
 * refused, EPIPE). spec/udp.md has the contract.
 */
#ifndef PSUP_REPLIES_H
#define PSUP_REPLIES_H

#include <stdbool.h>
#include <uv.h>

#include "base/list.h"
#include "runtime/reply.h"

/* How long replies are still sent after the handler was reaped. */
#define PSUP_REPLY_LINGER_MS 1000

/* Start watching r (every live one is on the list all). Returns false if
 * the loop cannot watch it (r is left to the caller). */
bool psup_replies_watch(uv_loop_t *loop, struct psup_list *all, struct psup_reply *r);

/* r's handler was reaped: send what the socket holds now (one budget),
 * then follow it for PSUP_REPLY_LINGER_MS at most. */
void psup_replies_handler_gone(struct psup_reply *r);

/* At exit: send what each socket holds now (one budget) and close them
 * all; their services may be freed. */
void psup_replies_close_all(struct psup_list *all);

#endif
