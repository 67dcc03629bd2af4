/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer with a ceiling, for text built in the supervisor
 * (the admin endpoint's responses). An append that would pass the ceiling,
 * or that finds no memory, sets failed and appends nothing more: the caller
 * checks once at the end instead of after every append.
 */
#ifndef PSUP_BUF_H
#define PSUP_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct psup_buf {
    char *data;
    size_t len, cap;
    size_t max;  /* the ceiling on len */
    bool failed; /* an append did not fit or found no memory */
};

void psup_buf_init(struct psup_buf *b, size_t max);
void psup_buf_free(struct psup_buf *b);

void psup_buf_put(struct psup_buf *b, const char *s, size_t n);
void psup_buf_puts(struct psup_buf *b, const char *s);
void psup_buf_printf(struct psup_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s (n bytes, any bytes) as the inside of a JSON string: the escapes of
 * psup's JSON log records (base/log.h): invalid UTF-8 as U+FFFD. */
void psup_buf_put_json(struct psup_buf *b, const char *s, size_t n);

#endif
