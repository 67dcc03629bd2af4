/* SPDX-License-Identifier: MIT */
/*
 * The growable buffer (buf.h). It doubles up to its ceiling, so building a
 * response of N bytes costs O(N) copies in all.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void psup_buf_init(struct psup_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void psup_buf_free(struct psup_buf *b)
{
    free(b->data);
    psup_buf_init(b, b->max);
}

/* Room for n more bytes and a terminating NUL. */
static bool reserve(struct psup_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->max - b->len) {
        b->failed = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void psup_buf_put(struct psup_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void psup_buf_puts(struct psup_buf *b, const char *s)
{
    psup_buf_put(b, s, strlen(s));
}

void psup_buf_printf(struct psup_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        psup_buf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static bool put_sink(void *arg, const char *s, size_t n, bool divisible)
{
    struct psup_buf *b = arg;

    (void)divisible; /* a buffer that is full has failed as a whole */
    psup_buf_put(b, s, n);
    return !b->failed;
}

void psup_buf_put_json(struct psup_buf *b, const char *s, size_t n)
{
    psup_log_escape(s, n, true, put_sink, b);
}
