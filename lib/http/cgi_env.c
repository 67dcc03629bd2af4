/* SPDX-License-Identifier: MIT */
/*
 * A CGI script's environment. Every HTTP_* variable the script sees comes
 * from a request header and every meta-variable from this request: the
 * inherited ones are removed first, so a script can trust their origin.
 */
#include "http/cgi_env.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Names a request defines; an inherited value would pose as the client's. */
static const char *const meta_names[] = {
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "DOCUMENT_ROOT", "GATEWAY_INTERFACE",
    "HTTPS", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING", "REDIRECT_STATUS",
    "REMOTE_HOST", "REMOTE_IDENT", "REMOTE_USER", "REQUEST_METHOD", "REQUEST_SCHEME",
    "REQUEST_URI", "SCRIPT_FILENAME", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "SERVER_SOFTWARE", NULL,
};

struct arena {
    char *p;
    size_t len, cap;
    char **envp;
    size_t n, max;
    bool overflow;
};

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static bool is_meta_name(const char *entry)
{
    size_t n = name_len(entry);

    if (n >= 5 && memcmp(entry, "HTTP_", 5) == 0)
        return true;
    for (const char *const *m = meta_names; *m; m++)
        if (strlen(*m) == n && memcmp(*m, entry, n) == 0)
            return true;
    return false;
}

static const char *inherited_value(char *const *env, const char *name)
{
    size_t n = strlen(name);

    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* Starts an entry; the pieces that follow are appended to it. */
static void begin(struct arena *a)
{
    if (a->n + 1 >= a->max) {
        a->overflow = true;
        return;
    }
    a->envp[a->n++] = a->p + a->len;
}

static void append(struct arena *a, const char *s, size_t n)
{
    if (a->overflow || n >= a->cap - a->len) {
        a->overflow = true;
        return;
    }
    memcpy(a->p + a->len, s, n);
    a->len += n;
}

static void end(struct arena *a)
{
    append(a, "", 1);
}

static void set(struct arena *a, const char *name, const char *value, size_t value_len)
{
    begin(a);
    append(a, name, strlen(name));
    append(a, "=", 1);
    append(a, value, value_len);
    end(a);
}

static void set_str(struct arena *a, const char *name, const char *value)
{
    set(a, name, value, strlen(value));
}

/* The host without its port: "[::1]:80" -> "[::1]", "a.example:80" -> "a.example". */
static struct psup_http_span host_name(struct psup_http_span host, struct psup_http_span *port)
{
    const char *end = host.p + host.len, *colon;

    if (host.len > 0 && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', host.len);
        colon = rb && rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(host.p, ':', host.len);
    }
    *port = colon ? (struct psup_http_span){colon + 1, (size_t)(end - colon - 1)}
                  : (struct psup_http_span){end, 0};
    return (struct psup_http_span){host.p, (size_t)((colon ? colon : end) - host.p)};
}

static void set_server(struct arena *a, const struct psup_cgi_env_input *in)
{
    struct psup_http_span port = {"", 0}, name = {"", 0};
    const char *local_ip = inherited_value(in->inherited, "TCPLOCALIP");
    const char *local_port = inherited_value(in->inherited, "TCPLOCALPORT");

    if (in->req->has_host)
        name = host_name(in->req->host, &port);
    if (name.len > 0) {
        set(a, "SERVER_NAME", name.p, name.len);
    } else if (in->server_name) {
        set_str(a, "SERVER_NAME", in->server_name);
    } else if (local_ip && strchr(local_ip, ':')) {
        begin(a);
        append(a, "SERVER_NAME=[", 13);
        append(a, local_ip, strlen(local_ip));
        append(a, "]", 2); /* with the terminating NUL */
    } else {
        set_str(a, "SERVER_NAME", local_ip ? local_ip : "localhost");
    }

    /* The port the request came in on (RFC 3875 4.1.15); over a unix
     * socket there is none, and the Host's port is what the client used. */
    if (local_port)
        set_str(a, "SERVER_PORT", local_port);
    else if (port.len > 0)
        set(a, "SERVER_PORT", port.p, port.len);
    else
        set_str(a, "SERVER_PORT", "80");
}

static void set_path_info(struct arena *a, const struct psup_http_request *req)
{
    begin(a);
    append(a, "PATH_INFO=", 10);
    if (!a->overflow && req->path.len < a->cap - a->len)
        a->len += psup_http_decode_path(req->path, a->p + a->len);
    else
        a->overflow = true;
    end(a);
}

static void set_decimal(struct arena *a, const char *name, uint64_t v)
{
    char digits[21];
    size_t i = sizeof digits;

    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    set(a, name, digits + i, sizeof digits - i);
}

static const struct psup_http_field *find_field(const struct psup_http_request *req, const char *lower)
{
    for (size_t i = 0; i < req->n_fields; i++)
        if (psup_http_span_is(req->fields[i].name, lower))
            return &req->fields[i];
    return NULL;
}

static void set_request(struct arena *a, const struct psup_cgi_env_input *in)
{
    const struct psup_http_request *req = in->req;

    set_str(a, "GATEWAY_INTERFACE", "CGI/1.1");
    set_str(a, "SERVER_PROTOCOL", req->minor ? "HTTP/1.1" : "HTTP/1.0");
    set_str(a, "SERVER_SOFTWARE", in->software);
    set_server(a, in);
    set(a, "REQUEST_METHOD", req->method.p, req->method.len);
    set(a, "REQUEST_URI", req->target.p, req->target.len);
    set_str(a, "SCRIPT_NAME", "");
    set_path_info(a, req);
    set(a, "QUERY_STRING", req->query.p, req->query.len);
    if (req->body != PSUP_HTTP_BODY_NONE) {
        const struct psup_http_field *type = find_field(req, "content-type");
        set_decimal(a, "CONTENT_LENGTH", in->body_len);
        if (type)
            set(a, "CONTENT_TYPE", type->value.p, type->value.len);
    }
}

/* Headers that become no HTTP_* variable: the body's (CONTENT_*), the
 * framing psup-cgi removed, Proxy (httpoxy: HTTP_PROXY would be taken for
 * a proxy setting), and names with '_' (HTTP_X_A would not tell X-A from
 * X_A, so a client could forge a header a front proxy set). */
static bool skipped(struct psup_http_span name)
{
    return psup_http_span_is(name, "content-length") || psup_http_span_is(name, "content-type") ||
           psup_http_span_is(name, "transfer-encoding") || psup_http_span_is(name, "proxy") ||
           memchr(name.p, '_', name.len) != NULL;
}

static bool same_name(struct psup_http_span a, struct psup_http_span b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return false;
    }
    return true;
}

static bool seen_before(const struct psup_http_request *req, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (same_name(req->fields[j].name, req->fields[i].name))
            return true;
    return false;
}

/* HTTP_NAME=value, every line of the same name joined in order: with ", "
 * as lists are (RFC 9110 5.3), with "; " for Cookie (RFC 6265 5.4). */
static void set_header(struct arena *a, const struct psup_http_request *req, size_t i)
{
    const struct psup_http_field *f = &req->fields[i];
    const char *sep = psup_http_span_is(f->name, "cookie") ? "; " : ", ";

    begin(a);
    append(a, "HTTP_", 5);
    for (size_t k = 0; k < f->name.len && !a->overflow; k++) {
        char c = f->name.p[k];
        c = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        append(a, &c, 1);
    }
    append(a, "=", 1);
    append(a, f->value.p, f->value.len);
    for (size_t j = i + 1; j < req->n_fields; j++)
        if (same_name(req->fields[j].name, f->name)) {
            append(a, sep, 2);
            append(a, req->fields[j].value.p, req->fields[j].value.len);
        }
    end(a);
}

static void set_headers(struct arena *a, const struct psup_http_request *req)
{
    for (size_t i = 0; i < req->n_fields; i++)
        if (!skipped(req->fields[i].name) && !seen_before(req, i))
            set_header(a, req, i);
}

void psup_cgi_env_bounds(const struct psup_cgi_env_input *in, size_t *bytes_out,
                         size_t *entries_out)
{
    size_t bytes = 1024 + strlen(in->software) + 2 * in->req->target.len + in->req->host.len;
    size_t entries = 32 + in->req->n_fields;

    if (in->server_name)
        bytes += strlen(in->server_name);
    for (char *const *e = in->inherited; e && *e; e++) {
        bytes += strlen(*e) + 1;
        entries++;
    }
    for (size_t i = 0; i < in->req->n_fields; i++)
        bytes += in->req->fields[i].name.len + in->req->fields[i].value.len + 16;
    *bytes_out = bytes;
    *entries_out = entries;
}

int psup_cgi_env_build(const struct psup_cgi_env_input *in, char *arena, size_t bytes,
                       char **envp, size_t entries)
{
    struct arena a = {arena, 0, bytes, envp, 0, entries, false};

    for (char *const *e = in->inherited; e && *e; e++)
        if (!is_meta_name(*e)) {
            begin(&a);
            append(&a, *e, strlen(*e) + 1);
        }
    set_request(&a, in);
    set_headers(&a, in->req);
    if (a.overflow || a.n >= a.max)
        return -ENOSPC;
    envp[a.n] = NULL;
    return 0;
}
