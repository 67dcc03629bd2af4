/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
 * balancer sends before the client's bytes to say who the client is.
 * spec/proxy.md is the contract; this header is the API.
 *
 * Two layers:
 * - psup_proxy_parse: pure, over a byte buffer. It says either "done" (and
 *   how many bytes the header took), or how long the header is at least,
 *   which is how the reader never reads past it, or why the bytes cannot be
 *   a header it accepts.
 * - psup_proxy_read: reads exactly the header from a connected socket,
 *   within one deadline, with raw system calls only.
 *
 * Both run in a worker, which shares the supervisor's memory until it
 * execs (worker.h): no errno, no heap, no stdio, no locks; memcpy-like pure
 * functions only, system calls through psup_sys().
 */
#ifndef PSUP_PROXY_H
#define PSUP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Versions a service accepts (the `accept` argument): a header of another
 * version is refused with -EPROTONOSUPPORT. */
#define PSUP_PROXY_V1 1u
#define PSUP_PROXY_V2 2u
#define PSUP_PROXY_ANY (PSUP_PROXY_V1 | PSUP_PROXY_V2)

/* Version 1: "PROXY UNKNOWN\r\n" is the shortest line; 107 bytes, CRLF
 * included, the longest the protocol allows. */
#define PSUP_PROXY_V1_MIN 15
#define PSUP_PROXY_V1_MAX 107
/* Version 2: a fixed 16-byte part, then as many bytes as it announces, at
 * most PSUP_PROXY_V2_MAX_BODY here (the protocol allows 65535; real senders
 * send tens to a few hundred). */
#define PSUP_PROXY_V2_FIXED 16
#define PSUP_PROXY_V2_MAX_BODY 2048
/* The longest header psup accepts, either version. */
#define PSUP_PROXY_MAX (PSUP_PROXY_V2_FIXED + PSUP_PROXY_V2_MAX_BODY)

/* Version 2 TLVs psup exposes, and their bounds. */
#define PSUP_PROXY_AUTHORITY_MAX 255
#define PSUP_PROXY_UNIQUE_ID_MAX 128

/* A parsed header. About 2.1 KiB because of raw: a worker must not keep it
 * on its 64 KiB stack (the worker's psup_child record is the place). */
struct psup_proxy_header {
    uint8_t version; /* 1 or 2 as soon as the signature is seen, else 0 */
    /* true for v1 TCP4/TCP6 and v2 PROXY over TCP: src and dst below are
     * the client's and the address it connected to. false for v1 UNKNOWN
     * and v2 LOCAL: the connection's own addresses stay (and src, dst and
     * the ports are zero). */
    bool has_addresses;
    uint16_t length; /* bytes the header took, once complete */
    uint16_t src_port; /* host order */
    uint16_t dst_port;
    uint8_t src_addr[16]; /* IPv6; IPv4 in v4-mapped form (::ffff:a.b.c.d) */
    uint8_t dst_addr[16];
    /* v2 TLVs, as offsets into the header's bytes (raw for psup_proxy_read,
     * the caller's buffer for psup_proxy_parse); length 0: absent (or
     * empty). The authority is the client's host name (TLS SNI), checked
     * to hold no control character or space; the unique id is opaque
     * bytes. */
    uint16_t authority_off;
    uint16_t authority_len;
    uint16_t unique_id_off;
    uint16_t unique_id_len;
    /* psup_proxy_read's buffer: raw[0..length) are the header's bytes
     * (what follows may be bytes it only peeked at, left on the socket).
     * Last, so that the parser can reset the fields above without it. */
    uint8_t raw[PSUP_PROXY_MAX];
};

/*
 * Parse the bytes a connection started with, buf[0..len).
 *
 * Returns:
 *   0        a complete header of an accepted version: out is filled,
 *            out->length <= len is its size; bytes after it are not looked
 *            at;
 *   n > len  incomplete, and the header is at least n bytes long: reading
 *            up to n bytes in total never reads past it (for v1, whose end
 *            is the first LF, n is len + 1 or the shortest line);
 *   -EPROTO          not a PROXY header, or one that breaks the protocol;
 *   -EPROTONOSUPPORT a valid header psup does not take: a version not in
 *                    accept, or a v2 PROXY header without a TCP address
 *                    (family UNSPEC or UNIX, transport UNSPEC or DGRAM);
 *   -EMSGSIZE        longer than allowed: a v1 line without LF in
 *                    PSUP_PROXY_V1_MAX bytes, a v2 body over
 *                    PSUP_PROXY_V2_MAX_BODY.
 * An error is decided by the bytes given only: more bytes never turn it
 * into success. Every field of out but raw is reset first (and all are
 * zero after an error); buf may be out->raw.
 */
int psup_proxy_parse(const uint8_t *buf, size_t len, unsigned accept,
                     struct psup_proxy_header *out);

/*
 * Read the header of a connected stream socket fd (blocking or not) into
 * out->raw and parse it, leaving every byte after it unread for the
 * handler. The whole header must arrive within timeout_ms (> 0) of the
 * call: one deadline, however the bytes trickle in.
 *
 * Returns 0 (out filled as by psup_proxy_parse), a psup_proxy_parse error,
 * or:
 *   -ETIMEDOUT   the header was not complete at the deadline;
 *   -ECONNRESET  the peer closed (or reset) the connection before the end
 *                of the header;
 *   -EINVAL      timeout_ms <= 0;
 *   another -errno of recvfrom or ppoll (EBADF, ENOTSOCK, ENOMEM...).
 * After an error the connection's position is unspecified: close it.
 */
int psup_proxy_read(int fd, unsigned accept, int timeout_ms, struct psup_proxy_header *out);

#endif
