/* SPDX-License-Identifier: MIT */
/*
 * Services and their generations: making and freeing them (generation.c).
 * The structs are in runtime.h; the rules of their lifetimes are here.
 */
#ifndef PSUP_GENERATION_H
#define PSUP_GENERATION_H

#include "runtime/runtime.h"

/* A service named by a configuration for the first time, not yet linked
 * into the runtime: made before the commit point, since it can fail.
 * Returns NULL when out of memory. */
struct psup_service *psup_service_new(const char *name);

/* Unlink and free a service: a removed one once its last worker is gone. */
void psup_service_free(struct psup_service *s);

/* Free a removed service if nothing holds it any more: no worker, no reply
 * socket still followed. */
void psup_service_release(struct psup_service *s);

/* The plan of svc for the workers of service s, with one reference (the
 * service's while it is current), over the listeners ls (svc->n_listen of
 * them, in order). Returns NULL when out of memory or descriptors. */
struct psup_generation *psup_generation_new(const struct psup_runtime *rt,
                                            struct psup_config *cfg,
                                            const struct psup_service_config *svc,
                                            struct psup_service *s,
                                            struct psup_listener *const *ls);
void psup_generation_free(struct psup_generation *g);

/* Drop one reference; the last frees the generation. */
void psup_generation_unref(struct psup_generation *g);

/* The pool bounds a service keeps now: its configuration's, or those a
 * control request set (s->scaled); a wait-mode service's are 0, 0 and its
 * instances (it has no pool, and cannot be scaled). s must have a current
 * generation. */
struct psup_pool_limits psup_service_limits(const struct psup_service *s);

#endif
