/* SPDX-License-Identifier: MIT */
/*
 * psup-cgi [OPTIONS] -- PROGRAM [ARGS...]
 *
 * Serves one HTTP request from the connection on fds 0 and 1 by running
 * PROGRAM as a CGI/1.1 script (RFC 3875). psup execs it as a handler for a
 * `"protocol": "cgi"` service; spec/cgi.md is the contract. The relay reads
 * and checks the request head, buffers the body, runs the script, turns
 * its CGI response into an HTTP/1.1 one and exits with the script's status.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/http_chunked.h"
#include "relay.h"

/* Response fields kept from a script, and local redirects followed. */
enum { MAX_RESPONSE_FIELDS = 128, MAX_LOCAL_REDIRECTS = 5 };

/* Room for reading: the body's reads and the script's output. */
enum { IO_CHUNK = 65536 };

/* Exit statuses of a relay that did not run the script (spec/cgi.md). */
enum {
    EXIT_ANSWERED = 0,   /* a client error answered, or nothing to answer */
    EXIT_INTERNAL = 1,   /* the relay could not do its part: 500 */
    EXIT_USAGE = 2,      /* bad options: 500 */
    EXIT_TERMINATED = 143, /* SIGTERM before the script ran: 503 */
};

/* A read_head result: the client sent nothing and left. */
enum { CLIENT_LEFT = -1 };

static const char usage_text[] =
    "Usage: psup-cgi [OPTIONS] -- PROGRAM [ARGS...]\n"
    "\n"
    "Serve one HTTP/1.x request from the connection on stdin and stdout by\n"
    "running PROGRAM as a CGI/1.1 script. psup runs it for services with\n"
    "\"protocol\": \"cgi\"; see spec/cgi.md.\n"
    "\n"
    "Options (defaults in brackets):\n"
    "  --max-head=BYTES           request line and headers [8192]\n"
    "  --max-fields=N             header field lines [100]\n"
    "  --max-body=BYTES           request body, after chunked decoding [1048576]\n"
    "  --max-response-head=BYTES  the script's CGI header block [32768]\n"
    "  --head-timeout=SECONDS     time to receive the request head [10]\n"
    "  --idle-timeout=SECONDS     longest wait for the client to send body or\n"
    "                             take response bytes [30]\n"
    "  --timeout=SECONDS          the whole request, script included; 0: none [0]\n"
    "  --kill-grace=SECONDS       from SIGTERM to SIGKILL of the script [2]\n"
    "  --server-name=NAME         SERVER_NAME when the request has no Host\n"
    "                             [the local address]\n";

/* ------------------------------------------------------------------------
 * Options: parse_options returns 0, 1 after --help, or -1. */

static int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Seconds with up to three decimals, as milliseconds. */
static int parse_seconds(const char *s, bool zero_ok, int64_t *ms_out)
{
    int64_t ms = 0;
    int decimals = -1;

    for (const char *p = s; *p; p++) {
        if (*p == '.' && decimals < 0 && p != s) {
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || decimals == 3 || ms > 1000000000000LL)
            return -1;
        ms = ms * 10 + (*p - '0');
        if (decimals >= 0)
            decimals++;
    }
    for (int d = decimals < 0 ? 0 : decimals; d < 3; d++)
        ms *= 10;
    if (*s == 0 || (ms == 0 && !zero_ok))
        return -1;
    *ms_out = ms;
    return 0;
}

static int set_option(struct options *o, int id, const char *arg)
{
    uint64_t v = 0;

    switch (id) {
    case 'H': return parse_size(arg, 64, 1 << 20, &v) ? -1 : (o->limits.max_head = v, 0);
    case 'F': return parse_size(arg, 1, 10000, &v) ? -1 : (o->limits.max_fields = v, 0);
    case 'B': return parse_size(arg, 0, INT64_MAX, &o->limits.max_body);
    case 'R': return parse_size(arg, 256, 1 << 20, &v) ? -1 : (o->max_response_head = v, 0);
    case 'h': return parse_seconds(arg, false, &o->head_timeout_ms);
    case 'i': return parse_seconds(arg, false, &o->idle_timeout_ms);
    case 't': return parse_seconds(arg, true, &o->timeout_ms);
    case 'k': return parse_seconds(arg, false, &o->kill_grace_ms);
    case 'n': return *arg ? (o->server_name = arg, 0) : -1;
    default: return -1;
    }
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"max-head", required_argument, NULL, 'H'},
        {"max-fields", required_argument, NULL, 'F'},
        {"max-body", required_argument, NULL, 'B'},
        {"max-response-head", required_argument, NULL, 'R'},
        {"head-timeout", required_argument, NULL, 'h'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'},
        {"kill-grace", required_argument, NULL, 'k'},
        {"server-name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    int id, index = 0;

    *o = (struct options){
        .limits = {.max_head = 8192, .max_fields = 100, .max_body = 1 << 20},
        .max_response_head = 32768,
        .head_timeout_ms = 10000,
        .idle_timeout_ms = 30000,
        .kill_grace_ms = 2000,
    };
    opterr = 0;
    while ((id = getopt_long(argc, argv, "+", longs, &index)) != -1) {
        if (id == 'u') {
            fputs(usage_text, stdout);
            return 1;
        }
        if (id == '?') {
            fprintf(stderr, "psup-cgi: unknown option %s\n%s", argv[optind - 1], usage_text);
            return -1;
        }
        if (set_option(o, id, optarg) < 0) {
            fprintf(stderr, "psup-cgi: invalid value for --%s: %s\n%s", longs[index].name, optarg,
                    usage_text);
            return -1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "psup-cgi: no PROGRAM\n%s", usage_text);
        return -1;
    }
    o->program = argv + optind;
    return 0;
}

/* ------------------------------------------------------------------------
 * The request. */

static int64_t earlier(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Reads until the head is complete; returns 0, a status to answer with,
 * or CLIENT_LEFT. */
static int read_head(struct relay *r)
{
    int64_t deadline = earlier(relay_now_ms() + r->opt.head_timeout_ms, r->deadline_ms);

    for (;;) {
        size_t before = r->len;
        int why = relay_wait(r, CLIENT_IN, deadline, false);
        ssize_t got;
        int rc;

        if (why == WAIT_TIMEOUT)
            return 408;
        if (why == WAIT_TERMINATED)
            return 503;
        got = why < 0 ? why : relay_read(CLIENT_IN, r->buf + r->len, r->cap - r->len);
        if (got <= 0)
            return r->len == 0 || got < 0 ? CLIENT_LEFT : 400;
        r->len += (size_t)got;

        /* Parse again only when a line ended (or on the first bytes, to
         * refuse a non-HTTP client at once): a slow client cannot make the
         * relay parse its head once per byte. */
        if (before > 0 && !memchr(r->buf + before, '\n', (size_t)got) &&
            r->len < r->opt.limits.max_head)
            continue;
        rc = psup_http_request_parse(r->buf, r->len, &r->opt.limits, r->fields, &r->req);
        if (rc != PSUP_HTTP_MORE)
            return rc;
    }
}

/* Appends decoded body bytes to the memfd. */
static int keep_body(struct relay *r, const char *p, size_t n)
{
    r->body_len += n;
    return relay_write_all(r->body_fd, p, n) < 0 ? 500 : 0;
}

/* Waits for and reads the next body bytes into space; 0 on success with
 * *got_out > 0, or a status. */
static int next_body_bytes(struct relay *r, char *space, size_t cap, size_t *got_out)
{
    int64_t deadline = earlier(relay_now_ms() + r->opt.idle_timeout_ms, r->deadline_ms);
    int why = relay_wait(r, CLIENT_IN, deadline, false);
    ssize_t got;

    if (why == WAIT_TIMEOUT)
        return 408;
    if (why == WAIT_TERMINATED)
        return 503;
    got = why < 0 ? why : relay_read(CLIENT_IN, space, cap);
    if (got <= 0)
        return 400; /* the body ended early */
    *got_out = (size_t)got;
    return 0;
}

static int read_length_body(struct relay *r, char *space, size_t cap, size_t have)
{
    uint64_t left = r->req.content_length;

    for (;;) {
        size_t take = have < left ? have : (size_t)left;
        int rc = keep_body(r, space, take);
        if (rc || (left -= take) == 0)
            return rc;
        rc = next_body_bytes(r, space, left < cap ? (size_t)left : cap, &have);
        if (rc)
            return rc;
    }
}

static int read_chunked_body(struct relay *r, char *space, size_t cap, size_t have)
{
    struct psup_http_chunked c;

    psup_http_chunked_init(&c, r->opt.limits.max_body);
    for (;;) {
        size_t used, out;
        int rc = psup_http_chunked_decode(&c, space, have, &used, &out);
        if (rc >= 400)
            return rc;
        if (keep_body(r, space, out))
            return 500;
        if (rc == PSUP_HTTP_DONE)
            return 0;
        rc = next_body_bytes(r, space, cap, &have);
        if (rc)
            return rc;
    }
}

/*
 * The whole body goes into a memfd before the script runs: CONTENT_LENGTH
 * is then known for a chunked body too, the script never starts on a
 * request that will not complete, and no client can deadlock the relay by
 * sending while not reading what the script already wrote.
 */
static int read_body(struct relay *r)
{
    static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *space = r->buf + r->req.head_len;
    size_t have = r->len - r->req.head_len, cap = r->cap - r->req.head_len;

    if (r->req.body == PSUP_HTTP_BODY_NONE)
        return 0;
    if (r->req.expect_continue && have == 0 &&
        !(r->req.body == PSUP_HTTP_BODY_LENGTH && r->req.content_length == 0) &&
        relay_write_all(CLIENT_OUT, continue_line, sizeof continue_line - 1) < 0)
        return CLIENT_LEFT;
    r->body_fd = memfd_create("psup-cgi-body", MFD_CLOEXEC);
    if (r->body_fd < 0) {
        relay_log("memfd_create: %s", strerror(errno));
        return 500;
    }
    if (r->req.body == PSUP_HTTP_BODY_LENGTH)
        return read_length_body(r, space, cap, have);
    return read_chunked_body(r, space, cap, have);
}

/* ------------------------------------------------------------------------
 * The response. */

struct output {
    char *buf;            /* the script's output */
    size_t len, cap;
    char *head;           /* the HTTP response head */
    size_t head_cap;
    struct psup_http_field fields[MAX_RESPONSE_FIELDS];
    struct psup_cgi_response resp;
    enum psup_cgi_framing framing;
};

/* Reads the script's header block; 0, or the status to answer with. */
static int read_script_head(struct relay *r, struct output *o)
{
    o->len = 0;
    for (;;) {
        size_t before = o->len;
        int why = relay_wait(r, r->script_out, r->deadline_ms, false);
        ssize_t got;
        int rc;

        if (why == WAIT_TIMEOUT)
            return 504;
        if (why == WAIT_TERMINATED)
            continue; /* passed on to the script, which may still answer */
        got = why < 0 ? why : relay_read(r->script_out, o->buf + o->len, o->cap - o->len);
        if (got <= 0) {
            o->resp.why = o->len ? "output ended inside the CGI header" : "no output";
            return r->terminated ? 503 : 502;
        }
        o->len += (size_t)got;
        if (!memchr(o->buf + before, '\n', (size_t)got) && o->len < r->opt.max_response_head)
            continue;
        rc = psup_cgi_response_parse(o->buf, o->len, r->opt.max_response_head, o->fields,
                                     MAX_RESPONSE_FIELDS, &o->resp);
        if (rc != PSUP_HTTP_MORE)
            return rc;
    }
}

/* Body bytes as the framing wants them; the head, if given, goes in the
 * same writev (one segment for a small response). */
static int send_body(const struct output *o, const char *head, size_t head_len, const char *p,
                     size_t n)
{
    char size_line[24];
    struct iovec iov[4];
    int k = 0;

    if (head_len)
        iov[k++] = (struct iovec){(void *)head, head_len};
    if (o->framing == PSUP_CGI_FRAME_NONE)
        n = 0;
    if (n && o->framing == PSUP_CGI_FRAME_CHUNKED) {
        int len = snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        iov[k++] = (struct iovec){size_line, (size_t)len};
        iov[k++] = (struct iovec){(void *)p, n};
        iov[k++] = (struct iovec){"\r\n", 2};
    } else if (n) {
        iov[k++] = (struct iovec){(void *)p, n};
    }
    return k ? relay_writev_all(CLIENT_OUT, iov, k) : 0;
}

/* Copies the script's output to the client until it ends: 0, or -1 if
 * the response is cut short (timeout, client gone). */
static int relay_body(struct relay *r, struct output *o)
{
    for (;;) {
        int why = relay_wait(r, r->script_out, r->deadline_ms, false);
        ssize_t got;

        if (why == WAIT_TIMEOUT) {
            relay_log("timeout while the script was sending its body: response cut short");
            return -1;
        }
        if (why == WAIT_TERMINATED)
            continue;
        got = why < 0 ? why : relay_read(r->script_out, o->buf, o->cap);
        if (got < 0)
            return -1;
        if (got == 0)
            return o->framing == PSUP_CGI_FRAME_CHUNKED
                       ? relay_write_all(CLIENT_OUT, "0\r\n\r\n", 5) < 0 ? -1 : 0
                       : 0;
        if (send_body(o, NULL, 0, o->buf, (size_t)got) < 0)
            return -1;
    }
}

static int send_response(struct relay *r, struct output *o)
{
    char date[32];
    size_t n;

    relay_date(date);
    o->framing = psup_cgi_response_framing(&o->resp, &r->req);
    n = psup_cgi_response_head(&o->resp, o->framing, date, r->server, o->head, o->head_cap);
    if (n == 0) {
        relay_send_error(r, 502);
        return -1;
    }
    r->responded = true;
    if (send_body(o, o->head, n, o->buf + o->resp.head_len, o->len - o->resp.head_len) < 0)
        return -1;
    return relay_body(r, o);
}

/* The request a local redirect makes (RFC 3875 6.2.2): GET (HEAD stays
 * HEAD) of the new target, without a body, the same header fields. */
static int redirected(const struct relay *r, struct output *o, char *target_copy,
                      struct psup_http_request *req)
{
    struct psup_http_span t = {target_copy, o->resp.location.len};

    memcpy(target_copy, o->resp.location.p, t.len);
    *req = r->req;
    req->method = req->head ? (struct psup_http_span){"HEAD", 4} : (struct psup_http_span){"GET", 3};
    req->body = PSUP_HTTP_BODY_NONE;
    if (psup_http_target_parse(t, req) != PSUP_HTTP_DONE) {
        o->resp.why = "invalid local redirect";
        return 502;
    }
    return 0;
}

static int fail_script(struct relay *r, struct output *o, int status)
{
    if (status == 504)
        relay_log("timeout before the script's CGI header: 504");
    else if (o->resp.why)
        relay_log("%d: %s", status, o->resp.why);
    relay_send_error(r, status);
    relay_close_client(r, false);
    relay_script_finish(r, status == 504 ? relay_now_ms() : r->deadline_ms);
    return r->script_status;
}

/* Runs the script (again for each local redirect) and answers. */
static int serve(struct relay *r, struct output *o, char *target_copy)
{
    struct psup_http_request req = r->req;

    for (int hops = 0;; hops++) {
        int rc = relay_script_start(r, &req);
        if (rc < 0) {
            relay_log("cannot run %s: %s", r->opt.program[0], strerror(-rc));
            relay_send_error(r, 500);
            relay_close_client(r, false);
            return rc == -ENOENT ? 127 : 126;
        }
        rc = read_script_head(r, o);
        if (rc == 0 && o->resp.kind == PSUP_CGI_LOCAL_REDIRECT) {
            if (hops == MAX_LOCAL_REDIRECTS)
                o->resp.why = "too many local redirects", rc = 502;
            else
                rc = redirected(r, o, target_copy, &req);
            if (rc == 0) {
                relay_script_discard(r);
                continue;
            }
        }
        if (rc)
            return fail_script(r, o, rc);
        rc = send_response(r, o);
        relay_close_client(r, false);
        relay_script_finish(r, rc < 0 && relay_now_ms() >= r->deadline_ms ? relay_now_ms()
                                                                          : r->deadline_ms);
        return r->script_status;
    }
}

/* ------------------------------------------------------------------------
 * Setting up. */

static int setup(struct relay *r, struct output *o, char **target_copy)
{
    struct timeval idle = {r->opt.idle_timeout_ms / 1000, (r->opt.idle_timeout_ms % 1000) * 1000};
    int rc = relay_signals_init(r);

    if (rc < 0)
        return rc;
    snprintf(r->server, sizeof r->server, "psup/%s", PSUP_VERSION);
    r->deadline_ms = r->opt.timeout_ms ? relay_now_ms() + r->opt.timeout_ms : INT64_MAX;
    r->cap = r->opt.limits.max_head + IO_CHUNK;
    r->buf = malloc(r->cap);
    r->fields = calloc(r->opt.limits.max_fields, sizeof *r->fields);
    o->cap = (r->opt.max_response_head > IO_CHUNK ? r->opt.max_response_head : IO_CHUNK);
    o->buf = malloc(o->cap);
    o->head_cap = r->opt.max_response_head + 1024;
    o->head = malloc(o->head_cap);
    *target_copy = malloc(r->opt.max_response_head);
    if (!r->buf || !r->fields || !o->buf || !o->head || !*target_copy)
        return -ENOMEM;

    /* A client that stops reading the response cannot hold the relay:
     * each write gives up after the idle timeout. Not a socket (a test
     * with pipes): nothing to bound. */
    if (setsockopt(CLIENT_OUT, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof idle) < 0 &&
        errno != ENOTSOCK)
        return -errno;
    return 0;
}

/* Answers a request the relay refused itself (the script never ran). */
static int refuse(struct relay *r, int status)
{
    if (status != CLIENT_LEFT)
        relay_send_error(r, status);
    relay_close_client(r, status != CLIENT_LEFT);
    if (status == 503 && r->terminated)
        return EXIT_TERMINATED;
    return status == 500 ? EXIT_INTERNAL : EXIT_ANSWERED;
}

static void release(struct relay *r, struct output *o, char *target_copy)
{
    free(r->buf);
    free(r->fields);
    free(o->buf);
    free(o->head);
    free(target_copy);
    if (r->body_fd >= 0)
        close(r->body_fd);
    if (r->sigfd >= 0)
        close(r->sigfd);
}

static int run(struct relay *r, struct output *o, char **target_copy)
{
    int rc = setup(r, o, target_copy);

    if (rc < 0) {
        relay_log("setup: %s", strerror(-rc));
        relay_send_error(r, 500);
        relay_close_client(r, true);
        return EXIT_INTERNAL;
    }
    rc = read_head(r);
    if (rc == 0)
        rc = read_body(r);
    if (rc != 0)
        return refuse(r, rc);
    return serve(r, o, *target_copy);
}

int main(int argc, char **argv)
{
    static struct output out;
    struct relay r = {.sigfd = -1, .body_fd = -1, .script_out = -1};
    char *target_copy = NULL;
    int status = parse_options(argc, argv, &r.opt);

    if (status > 0)
        return 0;
    if (status < 0) {
        snprintf(r.server, sizeof r.server, "psup/%s", PSUP_VERSION);
        relay_send_error(&r, 500);
        relay_close_client(&r, true);
        return EXIT_USAGE;
    }
    status = run(&r, &out, &target_copy);
    release(&r, &out, target_copy);
    return status;
}
