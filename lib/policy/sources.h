/* SPDX-License-Identifier: MIT */
/*
 * Concurrent connections per source, for max_per_source and TCPCONNNUM.
 * A source is an IP address (IPv6 grouped by a prefix, see
 * psup_source_key) or, on unix sockets, the peer's uid. The supervisor
 * counts a connection from its verdict until its handler is reaped.
 * Pure data structure: an open-addressing hash table that only the
 * supervisor touches.
 */
#ifndef PSUP_SOURCES_H
#define PSUP_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "proto/inet.h"

struct psup_sources {
    struct psup_sources_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t used; /* slots with a non-zero count */
};

unsigned psup_sources_count(const struct psup_sources *s, const struct psup_source *src);

/* Add one; returns the new count, or 0 if memory ran out (not counted). */
unsigned psup_sources_add(struct psup_sources *s, const struct psup_source *src);

/* Remove one (a source that is not there is ignored). */
void psup_sources_remove(struct psup_sources *s, const struct psup_source *src);

void psup_sources_free(struct psup_sources *s);

#endif
