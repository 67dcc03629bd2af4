/* SPDX-License-Identifier: MIT */
/* The error list used by the configuration loader: append-only, owned strings. */
#include "base/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void psup_diag_init(struct psup_diag *d)
{
    memset(d, 0, sizeof(*d));
}

static void push(struct psup_diag *d, char *msg)
{
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **items = realloc(d->items, cap * sizeof(*items));
        if (!items) {
            free(msg);
            return;
        }
        d->items = items;
        d->cap = cap;
    }
    d->items[d->count++] = msg;
}

void psup_diag_addf(struct psup_diag *d, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg = strdup("out of memory while reporting an error");
        if (!msg)
            return;
    }
    push(d, msg);
}

void psup_diag_free(struct psup_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->items[i]);
    free(d->items);
    memset(d, 0, sizeof(*d));
}
