/* SPDX-License-Identifier: MIT */
/*
 * A list of human-readable problems, each one line, collected by code that
 * can find many problems at once (the configuration loader) so that every
 * one of them is reported, not only the first. No I/O here.
 */
#ifndef PSUP_DIAG_H
#define PSUP_DIAG_H

#include <stddef.h>

struct psup_diag {
    char **items;
    size_t count;
    size_t cap;
};

void psup_diag_init(struct psup_diag *d);

/* Append one message. On allocation failure the message is dropped and a
 * fixed "out of memory" entry is kept, so the list is never silently empty. */
void psup_diag_addf(struct psup_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void psup_diag_free(struct psup_diag *d);

#endif
