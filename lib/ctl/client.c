/* SPDX-License-Identifier: MIT */
/*
 * One request to psup's admin endpoint and its answer (client.h). The
 * endpoint answers one request per connection and closes (Connection:
 * close), so the answer is read to EOF and then checked against its
 * Content-Length.
 */
#include "ctl/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int psup_ctl_parse_addr(const char *text, struct psup_addr *out, const char **why)
{
    if (psup_addr_parse(text, out, why) != 0) {
        if (!*why)
            *why = "expected unix:/path, HOST:PORT or [V6]:PORT";
        return -1;
    }
    if (out->proto == PSUP_PROTO_UDP) {
        *why = "the admin endpoint is not on UDP";
        return -1;
    }
    if (out->proto == PSUP_PROTO_TCP && out->any_family) {
        *why = "* is every address, not one to connect to: name one, such as 127.0.0.1:PORT";
        return -1;
    }
    if (out->proto == PSUP_PROTO_TCP && psup_sockaddr_port(&out->u.sa) == 0) {
        *why = "port 0 is not a port to connect to";
        return -1;
    }
    return 0;
}

static long long monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events, or the deadline. Returns 0 or
 * -ETIMEDOUT (or another -errno). */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(const struct psup_addr *addr, long long deadline, int *fd_out)
{
    int fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = 0;
    socklen_t len = sizeof(err);

    if (fd < 0)
        return -errno;
    *fd_out = fd;
    if (connect(fd, &addr->u.sa, addr->len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return -errno;
    int rc = wait_for(fd, POLLOUT, deadline);
    if (rc < 0)
        return rc;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int rc = wait_for(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read to EOF (at most PSUP_CTL_MAX_RESPONSE bytes). */
static int receive_all(int fd, long long deadline, char **out, size_t *len_out)
{
    size_t len = 0, cap = 16384;
    char *buf = malloc(cap + 1);

    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            char *grown = cap >= PSUP_CTL_MAX_RESPONSE ? NULL : realloc(buf, 2 * cap + 1);
            if (!grown) {
                free(buf);
                return cap >= PSUP_CTL_MAX_RESPONSE ? -EFBIG : -ENOMEM;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n > 0) {
            len += (size_t)n;
            continue;
        }
        if (n == 0)
            break;
        int rc = errno == EINTR ? 0 : errno == EAGAIN ? wait_for(fd, POLLIN, deadline) : -errno;
        if (rc < 0) {
            free(buf);
            return rc;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *len_out = len;
    return 0;
}

/* The value of header field name in head (len bytes, lines ending in
 * CRLF), copied into out; false if it is not there. */
static bool header_value(const char *head, size_t len, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *end = head + len;

    for (const char *line = strstr(head, "\r\n"); line && line + 2 < end;) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol || eol > end)
            return false;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            snprintf(out, size, "%.*s", (int)(eol - v), v);
            return true;
        }
        line = eol;
    }
    return false;
}

/* Split raw (an HTTP/1.x answer) into status, Content-Type and body. */
static int parse_response(char *raw, size_t len, struct psup_ctl_response *resp)
{
    char *body = strstr(raw, "\r\n\r\n");
    char field[64];
    int status;

    if (!body || strncmp(raw, "HTTP/1.", 7) != 0 || sscanf(raw + 9, "%3d", &status) != 1 ||
        raw[8] != ' ' || status < 100 || status > 599)
        return -EPROTO;
    size_t head_len = (size_t)(body - raw) + 2;
    body += 4;
    size_t body_len = len - (size_t)(body - raw);
    if (header_value(raw, head_len, "Transfer-Encoding", field, sizeof(field)))
        return -EPROTO; /* the endpoint always sends a length */
    if (header_value(raw, head_len, "Content-Length", field, sizeof(field))) {
        char *end;
        unsigned long long n = strtoull(field, &end, 10);
        if (*end || field[0] < '0' || field[0] > '9' || n > body_len)
            return -EPROTO; /* cut short */
        body_len = (size_t)n;
    }
    if (!header_value(raw, head_len, "Content-Type", resp->content_type,
                      sizeof(resp->content_type)))
        resp->content_type[0] = '\0';
    resp->status = status;
    memmove(raw, body, body_len);
    raw[body_len] = '\0';
    resp->body = raw;
    resp->body_len = body_len;
    return 0;
}

int psup_ctl_request(const struct psup_addr *addr, const char *method, const char *target,
                     int timeout_ms, struct psup_ctl_response *resp, const char **why)
{
    long long deadline = monotonic_ms() + timeout_ms;
    char request[1024];
    char *raw = NULL;
    size_t len = 0;
    int fd = -1;

    memset(resp, 0, sizeof(*resp));
    int n = snprintf(request, sizeof(request),
                     "%s %s HTTP/1.1\r\nHost: psup\r\nUser-Agent: psup-ctl/%s\r\n%s"
                     "Connection: close\r\n\r\n",
                     method, target, PSUP_VERSION,
                     strcmp(method, "POST") == 0 ? "Content-Length: 0\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(request)) {
        *why = "build the request";
        return -ENAMETOOLONG;
    }
    int rc = connect_to(addr, deadline, &fd);
    *why = "connect";
    if (rc == 0) {
        *why = "send";
        rc = send_all(fd, request, (size_t)n, deadline);
    }
    if (rc == 0) {
        *why = "receive";
        rc = receive_all(fd, deadline, &raw, &len);
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 && (rc = parse_response(raw, len, resp)) < 0) {
        *why = "read the answer (it is not the HTTP psup sends)";
        free(raw);
    }
    return rc;
}

void psup_ctl_response_free(struct psup_ctl_response *resp)
{
    free(resp->body);
    resp->body = NULL;
}
