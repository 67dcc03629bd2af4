/* SPDX-License-Identifier: MIT */
/*
 * Chunked body decoding, one state per grammar position. Sizes are hex
 * digits immediately followed by ';' or CRLF: whitespace there (allowed as
 * BWS by RFC 9112) is refused, since parsers that disagree about it are how
 * request smuggling starts.
 */
#include "http/http_chunked.h"

#include <string.h>

#include "http/http_request.h"

/* Bounds on what is discarded, so a client cannot keep the relay reading
 * extensions or trailers forever within one "chunk". */
enum {
    MAX_SIZE_DIGITS = 16,
    MAX_EXTENSION = 1024,
    MAX_TRAILERS = 8192,
};

enum state {
    SIZE,        /* hex digits */
    EXTENSION,   /* after ';', up to CR */
    SIZE_LF,     /* CR seen, LF due */
    DATA,
    DATA_CR,
    DATA_LF,
    LINE_START,  /* after the last chunk: a trailer field or the final CRLF */
    TRAILER,     /* a trailer line, up to CR */
    TRAILER_LF,
    FINAL_LF,
    END,
};

void psup_http_chunked_init(struct psup_http_chunked *c, uint64_t max_body)
{
    memset(c, 0, sizeof *c);
    c->state = SIZE;
    c->max_body = max_body;
}

static int error(struct psup_http_chunked *c, int status, const char *why)
{
    c->why = why;
    return status;
}

static int hex_digit(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
}

static int size_byte(struct psup_http_chunked *c, unsigned char ch)
{
    int d = hex_digit(ch);

    if (d >= 0) {
        if (++c->size_digits > MAX_SIZE_DIGITS)
            return error(c, 413, "chunk size too large");
        c->remaining = c->remaining * 16 + (uint64_t)d;
        return PSUP_HTTP_MORE;
    }
    if (c->size_digits == 0)
        return error(c, 400, "chunk size is not hex");
    if (ch == ';')
        c->state = EXTENSION;
    else if (ch == '\r')
        c->state = SIZE_LF;
    else
        return error(c, 400, "invalid character after a chunk size");
    return PSUP_HTTP_MORE;
}

/* An extension is discarded; only its bytes are checked (no controls but
 * HTAB, so no bare CR or LF). */
static int extension_byte(struct psup_http_chunked *c, unsigned char ch)
{
    if (ch == '\r') {
        c->state = SIZE_LF;
        return PSUP_HTTP_MORE;
    }
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
        return error(c, 400, "control character in a chunk extension");
    if (++c->line_len > MAX_EXTENSION)
        return error(c, 400, "chunk extension too long");
    return PSUP_HTTP_MORE;
}

static int size_line_end(struct psup_http_chunked *c, unsigned char ch)
{
    if (ch != '\n')
        return error(c, 400, "chunk size line not ended by CRLF");
    if (c->remaining > c->max_body - c->total)
        return error(c, 413, "chunked body over the body limit");
    c->state = c->remaining ? DATA : LINE_START;
    c->size_digits = 0;
    c->line_len = 0;
    return PSUP_HTTP_MORE;
}

static int trailer_byte(struct psup_http_chunked *c, unsigned char ch)
{
    if (++c->trailer_len > MAX_TRAILERS)
        return error(c, 400, "trailer section too long");
    if (c->state == LINE_START) {
        if (ch == '\r') {
            c->state = FINAL_LF;
            return PSUP_HTTP_MORE;
        }
        if (!psup_http_is_tchar(ch))
            return error(c, 400, "trailer field name is not a token");
        c->state = TRAILER;
        return PSUP_HTTP_MORE;
    }
    if (ch == '\r')
        c->state = TRAILER_LF;
    else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
        return error(c, 400, "control character in a trailer field");
    return PSUP_HTTP_MORE;
}

static int expect_lf(struct psup_http_chunked *c, unsigned char ch, int next)
{
    if (ch != '\n')
        return error(c, 400, "bare CR in a chunked body");
    c->state = next;
    return next == END ? PSUP_HTTP_DONE : PSUP_HTTP_MORE;
}

/* One byte outside chunk data. */
static int framing_byte(struct psup_http_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case SIZE: return size_byte(c, ch);
    case EXTENSION: return extension_byte(c, ch);
    case SIZE_LF: return size_line_end(c, ch);
    case DATA_CR:
        if (ch != '\r')
            return error(c, 400, "chunk data longer than its size");
        c->state = DATA_LF;
        return PSUP_HTTP_MORE;
    case DATA_LF: return expect_lf(c, ch, SIZE);
    case LINE_START:
    case TRAILER: return trailer_byte(c, ch);
    case TRAILER_LF: return expect_lf(c, ch, LINE_START);
    case FINAL_LF: return expect_lf(c, ch, END);
    default: return error(c, 400, "data after the end of a chunked body");
    }
}

int psup_http_chunked_decode(struct psup_http_chunked *c, char *buf, size_t len, size_t *used_out,
                             size_t *out_len)
{
    size_t in = 0, out = 0;
    int rc = PSUP_HTTP_MORE;

    while (in < len && rc == PSUP_HTTP_MORE) {
        if (c->state == DATA) {
            /* The bulk: one memmove a run, never a call per byte. */
            size_t run = len - in;
            if (run > c->remaining)
                run = (size_t)c->remaining;
            memmove(buf + out, buf + in, run);
            in += run;
            out += run;
            c->remaining -= run;
            c->total += run;
            if (c->remaining == 0)
                c->state = DATA_CR;
            continue;
        }
        rc = framing_byte(c, (unsigned char)buf[in++]);
    }
    *used_out = in;
    *out_len = out;
    return rc;
}
