/* SPDX-License-Identifier: MIT */
/*
 * Decoder of a chunked request body (RFC 9112 7.1), fed whatever arrived
 * and decoding in place. Strict like the head parser: hex sizes only, CRLF
 * only, extensions and trailer fields checked and discarded. Pure.
 */
#ifndef PSUP_HTTP_CHUNKED_H
#define PSUP_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

struct psup_http_chunked {
    int state;
    uint64_t remaining; /* bytes left in the current chunk */
    uint64_t total;     /* decoded so far */
    uint64_t max_body;
    size_t size_digits;
    size_t line_len;    /* of a chunk-size line past its digits, or a trailer line */
    size_t trailer_len; /* every trailer byte so far */
    const char *why;    /* for an error: what was wrong */
};

void psup_http_chunked_init(struct psup_http_chunked *c, uint64_t max_body);

/*
 * Decodes buf[0..len): the content found is moved to the front of buf,
 * *out_len bytes; *used_out tells how much input was consumed (all of it
 * unless the body ended). Returns PSUP_HTTP_DONE once the last chunk and
 * the trailer section have ended, PSUP_HTTP_MORE, 400 for a syntax error
 * or 413 past max_body (c->why set). Once it returned a status or DONE,
 * it must not be called again.
 */
int psup_http_chunked_decode(struct psup_http_chunked *c, char *buf, size_t len, size_t *used_out,
                             size_t *out_len);

#endif
