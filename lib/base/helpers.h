/* SPDX-License-Identifier: MIT */
/*
 * Where psup's helper files are: installed beside the psup binary's
 * directory (PSUP_HELPER_DIR, lib/psup under the prefix by default), and
 * found relative to the running binary, so that a build tree and an
 * installed tree both work; an absolute path chosen at build time wins.
 */
#ifndef PSUP_HELPERS_H
#define PSUP_HELPERS_H

/* The prestart library (spec/prestart.md), as an absolute path, or NULL if
 * psup cannot tell where its own binary is. Computed once. */
const char *psup_prestart_library(void);

#endif
