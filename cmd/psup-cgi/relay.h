/* SPDX-License-Identifier: MIT */
/*
 * psup-cgi: the one process between a CGI script and the client's socket
 * (spec/cgi.md). State shared by its three files: main.c (options and the
 * flow of one request), io.c (deadlines, the client's socket, signals),
 * script.c (running, waiting for and stopping the script).
 */
#ifndef PSUP_CGI_RELAY_H
#define PSUP_CGI_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/cgi_response.h"
#include "http/http_request.h"

/* The client's socket, as psup hands it to every handler. */
enum { CLIENT_IN = 0, CLIENT_OUT = 1 };

struct options {
    struct psup_http_limits limits;
    size_t max_response_head;
    int64_t head_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t timeout_ms; /* 0: none */
    int64_t kill_grace_ms;
    const char *server_name;
    char **program; /* PROGRAM ARGS..., NULL-terminated */
};

struct relay {
    struct options opt;
    int sigfd;
    int64_t deadline_ms;  /* of the whole request, or INT64_MAX */
    bool terminated;      /* SIGTERM, SIGINT or SIGHUP arrived */
    bool responded;       /* bytes of a response went out */

    char *buf;            /* the request head, then I/O */
    size_t len, cap;
    struct psup_http_field *fields;
    struct psup_http_request req;
    int body_fd;          /* the decoded body (a memfd), or -1 */
    uint64_t body_len;

    pid_t script;         /* running, or 0; it leads its own process group */
    int script_out;       /* read end of its stdout, or -1 */
    bool script_reaped;
    int script_status;    /* our exit status once reaped: its code or 128+signal */
    char server[40];      /* "psup/VERSION" */
};

/* Wait results besides "ready". */
enum { WAIT_READY = 0, WAIT_TIMEOUT = 1, WAIT_TERMINATED = 2, WAIT_CHILD = 3 };

/* io.c */
int64_t relay_now_ms(void);
int relay_signals_init(struct relay *r);
int relay_wait(struct relay *r, int fd, int64_t deadline_ms, bool child_wakes);
int relay_write_all(int fd, const char *p, size_t n);
int relay_writev_all(int fd, const void *iov, int iovcnt);
void relay_date(char out[32]);
void relay_send_error(struct relay *r, int status);
void relay_close_client(struct relay *r, bool unread_request);
ssize_t relay_read(int fd, void *p, size_t n);
void relay_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* script.c */
int relay_script_start(struct relay *r, const struct psup_http_request *req);
void relay_script_signal(struct relay *r, int sig);
void relay_script_discard(struct relay *r);
void relay_script_finish(struct relay *r, int64_t deadline_ms);

#endif
