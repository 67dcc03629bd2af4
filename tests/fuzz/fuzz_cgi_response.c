/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the CGI response parser and the HTTP head written for
 * what it accepts. The invariant that matters: whatever a script prints,
 * the head psup-cgi sends is well-formed HTTP, so a line break (CR or LF)
 * appears only as CRLF at a line's end and a line is never empty before
 * the last one (no response splitting).
 *
 * fuzz-sources: lib/http/cgi_response.c lib/http/http_request.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cgi_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_head(const char *head, size_t n)
{
    size_t line_start = 0;

    if (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0 || memcmp(head, "HTTP/1.1 ", 9) != 0)
        abort();
    for (size_t i = 0; i < n - 2; i++) {
        if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))
            abort(); /* bare LF */
        if (head[i] == '\r' && head[i + 1] != '\n')
            abort(); /* bare CR */
        if (head[i] == '\n') {
            if (i + 1 == line_start + 2 && i + 1 < n - 2)
                abort(); /* an empty line inside the head */
            line_start = i + 1;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct psup_http_field fields[8];
    struct psup_cgi_response resp;
    struct psup_http_request req;
    char *buf = malloc(size ? size : 1), head[2048];

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = psup_cgi_response_parse(buf, size, 1024, fields, 8, &resp);
    if (rc != PSUP_HTTP_DONE && rc != PSUP_HTTP_MORE && (rc != 502 || !resp.why))
        abort();
    if (rc == PSUP_HTTP_DONE) {
        if (resp.head_len > size || resp.status < 200 || resp.status > 599)
            abort();
        memset(&req, 0, sizeof req);
        req.minor = size & 1;
        req.head = (size & 2) != 0;
        size_t n = psup_cgi_response_head(&resp, psup_cgi_response_framing(&resp, &req),
                                          "Thu, 01 Jan 1970 00:00:00 GMT", "psup/fuzz", head,
                                          sizeof head);
        if (n == 0)
            abort(); /* 1024 bytes of input always fit in 2048 of output */
        check_head(head, n);
    }
    free(buf);
    return 0;
}
