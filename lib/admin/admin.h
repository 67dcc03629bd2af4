/* SPDX-License-Identifier: MIT */
/*
 * What the admin endpoint answers (spec/admin.md): the routes and the
 * documents they render from the runtime's snapshot and the supervisor's
 * state. The sockets are lib/loop/admin.c's; nothing here does I/O on a
 * client, blocks or keeps state between requests.
 *
 * The supervisor owns one struct psup_admin_state and keeps it current;
 * each request is rendered from it at the moment it is complete.
 */
#ifndef PSUP_ADMIN_H
#define PSUP_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "admin/request.h"
#include "base/buf.h"
#include "base/diag.h"
#include "runtime/control.h"
#include "runtime/runtime.h"

/* The result of a reload, as psup_reloads_total{result} names it. */
enum psup_reload_result {
    PSUP_RELOAD_OK,      /* applied */
    PSUP_RELOAD_INVALID, /* the file did not load: the running configuration stays */
    PSUP_RELOAD_FAILED,  /* it loaded but could not be applied (a listener) */
    PSUP_RELOAD_RESULTS,
};

const char *psup_reload_result_name(enum psup_reload_result r);

/* What a reload did, as a control request's answer says it. */
struct psup_admin_reload {
    enum psup_reload_result result;
    const struct psup_diag *problems;       /* PSUP_RELOAD_INVALID: the file's */
    const struct psup_apply_report *report; /* PSUP_RELOAD_OK: what changed */
    const char *reason;                     /* PSUP_RELOAD_FAILED: why */
};

/* What the supervisor does for the control requests (spec/control.md).
 * by is the unix client's credentials (NULL if unknown). Each returns 0,
 * or -ESHUTDOWN once a stop has begun, -ENOENT for a service the current
 * configuration does not name, -EINVAL with why for bounds that disagree. */
struct psup_admin_control {
    /* Reload now; answer is called once it is over, with what it did
     * (valid during the call only). */
    int (*reload)(void *arg, const struct psup_requester *by,
                  void (*answer)(void *ctx, const struct psup_admin_reload *r), void *ctx);
    int (*pause)(void *arg, const char *service, bool pause, const struct psup_requester *by,
                 bool *changed);
    int (*scale)(void *arg, const char *service, const struct psup_scale_request *req,
                 const struct psup_requester *by, struct psup_pool_limits *out, char *why,
                 size_t why_size);
    void *arg;
};

/* The supervisor's side of the endpoint: set by lib/loop/supervisor.c. */
struct psup_admin_state {
    const struct psup_runtime *rt;
    const char *config_path;
    pid_t pid;
    double started;        /* wall clock, seconds since the epoch */
    uint64_t started_ms;   /* the loop's clock at start, for uptime */
    uint64_t now_ms;       /* the loop's clock for this request */
    /* Set while psup still serves but wants no new clients: the
     * shutdown_delay after SIGTERM. /readyz says 503 from then on (once
     * shutdown proper begins, the runtime's accepting says so too). */
    bool draining;
    /* The control requests' actions; NULL: answered 503. */
    const struct psup_admin_control *control;
    /* Reloads by result, and the last one (at 0: none yet). */
    unsigned long long reloads[PSUP_RELOAD_RESULTS];
    double last_reload;    /* wall clock */
    enum psup_reload_result last_reload_result;
    unsigned last_reload_problems;
};

/* An answer: a status, a document and what describes it. */
struct psup_admin_response {
    int status;
    const char *content_type;
    const char *allow;    /* for 405: the methods the path takes */
    bool head_only;       /* HEAD: the same head, no body */
    struct psup_buf body;
};

/* The most a response body may hold; beyond it the answer is 500. */
#define PSUP_ADMIN_MAX_RESPONSE (8u << 20)

void psup_admin_response_init(struct psup_admin_response *resp);
void psup_admin_response_free(struct psup_admin_response *resp);

/* A short text/plain answer ("404 Not Found" and why). */
void psup_admin_error(struct psup_admin_response *resp, int status, const char *why);

/* A route: a path pattern (see psup_admin_path_matches), the method it
 * takes (a GET route takes HEAD too), whether it controls psup rather than
 * reads it, and what renders its answer. A control route is answered on
 * unix: admin listeners only, whose file mode says who may connect; a TCP
 * listener answers it 403 (spec/admin.md). */
struct psup_admin_route {
    const char *path;
    enum psup_admin_method method;
    bool control;
    void (*render)(const struct psup_admin_state *st, const struct psup_admin_request *req,
                   struct psup_admin_response *resp);
};

/* Answer req, which came from a listener of the given kind, from the
 * endpoint's routes (router.c). */
void psup_admin_handle(const struct psup_admin_state *st, const struct psup_admin_request *req,
                       enum psup_admin_kind kind, struct psup_admin_response *resp);

/* The same from any table of routes: the first route whose path and method
 * match renders; a known path with another method is 405 (with Allow), an
 * unknown one 404, a control route from a TCP listener 403. */
void psup_admin_dispatch(const struct psup_admin_route *routes, size_t n,
                         const struct psup_admin_state *st, const struct psup_admin_request *req,
                         enum psup_admin_kind kind, struct psup_admin_response *resp);

/* Whether a route's path pattern matches path: the same string, where a
 * "*" segment of the pattern stands for any one non-empty segment. */
bool psup_admin_path_matches(const char *pattern, const char *path);

/* The response's head (status line and fields, with Connection: close)
 * into out; returns its length, or 0 if it does not fit. */
size_t psup_admin_response_head(const struct psup_admin_response *resp, char *out, size_t size);

#endif
