/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for what the admin endpoint renders (lib/admin): /metrics,
 * /status and /readyz from a runtime run without processes (its seam,
 * struct psup_runtime_ops, gives fake pids), after connections that end in
 * each way, a refusal, a pause, failures that back off, and a shutdown.
 * The exact numbers are checked: the counts, the histogram's buckets, the
 * readiness reasons. /status is read back with cJSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "base/durations.h"
#include "base/log.h"
#include "config/config.h"
#include "runtime/runtime.h"

#define FIRST_PID 6000000 /* no real process has it */
#define T0 1000000

/* The workers the fake has started, by service name. */
struct fake_workers {
    pid_t pid[64];
    char service[64][72];
    size_t n;
    pid_t next;
};

static int no_stack(void *arg, struct psup_stack *stack)
{
    (void)arg;
    memset(stack, 0, sizeof(*stack));
    return 0;
}

static void no_unmap(void *arg, struct psup_stack *stack)
{
    (void)arg;
    (void)stack;
}

static pid_t start_worker(void *arg, struct psup_child *child, const struct psup_stack *stack)
{
    struct fake_workers *f = arg;

    (void)stack;
    assert_true(f->n < 64);
    f->pid[f->n] = f->next++;
    /* The plan names no service; the environment does. */
    const char *name = "?";
    for (size_t i = 0; i < child->plan->n_env; i++)
        if (strncmp(child->env_base[i], "PSUP_SERVICE=", 13) == 0)
            name = child->env_base[i] + 13;
    snprintf(f->service[f->n], sizeof(f->service[0]), "%s", name);
    return f->pid[f->n++];
}

static int no_signal(void *arg, pid_t pid, int sig)
{
    (void)arg, (void)pid, (void)sig;
    return 0;
}

static int no_verdict(void *arg, pid_t pid, uint64_t value)
{
    (void)arg, (void)pid, (void)value;
    return 0;
}

static int slot_free(void *arg, const struct psup_stack *stack)
{
    (void)arg, (void)stack;
    return 0;
}

static int nothing_waits(void *arg, int fd)
{
    (void)arg, (void)fd;
    return 0;
}

struct fixture {
    struct psup_runtime rt;
    struct fake_workers fake;
    struct psup_admin_state st;
    int log_fd;
    uint64_t now;
};

static int setup(void **state)
{
    struct fixture *t = calloc(1, sizeof(*t));
    const char *doc = "{\"services\": ["
                      "{\"name\": \"a\", \"listen\": [\"127.0.0.1:0\"], \"command\": [\"/bin/true\"],"
                      " \"pool\": {\"min_spare\": 1, \"max_spare\": 1, \"max_workers\": 4}},"
                      "{\"name\": \"b\", \"listen\": [\"127.0.0.1:0\"], \"command\": [\"/bin/true\"],"
                      " \"pool\": {\"min_spare\": 1, \"max_spare\": 2, \"max_workers\": 3}}]}";
    struct psup_diag d;
    struct psup_apply_report rep;

    assert_non_null(t);
    assert_int_equal(psup_runtime_init(&t->rt, -1, true), 0);
    t->fake.next = FIRST_PID;
    t->rt.ops = (struct psup_runtime_ops){.stack_map = no_stack,
                                          .stack_unmap = no_unmap,
                                          .spawn = start_worker,
                                          .signal = no_signal,
                                          .verdict = no_verdict,
                                          .probe = slot_free,
                                          .readable = nothing_waits,
                                          .arg = &t->fake};
    t->rt.nproc_limit = 0;
    t->log_fd = memfd_create("log", MFD_CLOEXEC);
    assert_true(t->log_fd >= 0);
    psup_log_setup(t->log_fd, PSUP_LOG_TEXT, PSUP_LOG_INFO);
    t->now = T0;
    psup_diag_init(&d);
    struct psup_config *cfg = psup_config_parse(doc, strlen(doc), "t.json", &d);
    assert_non_null(cfg);
    psup_diag_free(&d);
    assert_int_equal(psup_runtime_apply(&t->rt, cfg, t->now, &rep), 0);
    psup_config_unref(cfg);
    psup_runtime_maintain(&t->rt, t->now);
    t->st = (struct psup_admin_state){.rt = &t->rt, .config_path = "t.json", .pid = 42,
                                      .started = 1700000000.0, .started_ms = T0, .now_ms = T0};
    *state = t;
    return 0;
}

static bool is_worker(const struct fixture *t, pid_t pid)
{
    for (const struct psup_list *p = t->rt.services.next; p != &t->rt.services; p = p->next) {
        const struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        for (const struct psup_list *q = s->workers.next; q != &s->workers; q = q->next)
            if (PSUP_CONTAINER(q, struct psup_worker, link)->pid == pid)
                return true;
    }
    return false;
}

static int teardown(void **state)
{
    struct fixture *t = *state;

    for (size_t i = 0; i < t->fake.n; i++)
        if (is_worker(t, t->fake.pid[i]))
            psup_runtime_on_exit(&t->rt, t->fake.pid[i], 0, t->now);
    psup_runtime_free(&t->rt);
    psup_log_setup(2, PSUP_LOG_TEXT, PSUP_LOG_INFO);
    close(t->log_fd);
    free(t);
    return 0;
}

static struct psup_service *service(struct fixture *t, const char *name)
{
    for (struct psup_list *p = t->rt.services.next; p != &t->rt.services; p = p->next) {
        struct psup_service *s = PSUP_CONTAINER(p, struct psup_service, link);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    fail_msg("no service %s", name);
    return NULL;
}

/* The newest live worker of a service. */
static pid_t idle_worker(struct fixture *t, const char *name)
{
    for (size_t i = t->fake.n; i-- > 0;)
        if (strcmp(t->fake.service[i], name) == 0 && is_worker(t, t->fake.pid[i]))
            return t->fake.pid[i];
    fail_msg("no worker of %s", name);
    return 0;
}

static void message(struct fixture *t, pid_t pid, enum psup_msg_kind kind)
{
    struct psup_msg m = {.kind = kind, .pid = pid, .peer = {.family = AF_INET6, .port = 1}};

    m.peer.addr[10] = m.peer.addr[11] = 0xff;
    m.peer.addr[12] = 127;
    m.peer.addr[15] = 1;
    psup_runtime_on_message(&t->rt, &m, &(struct psup_passed_fds){-1, -1}, t->now);
}

/* A connection to service name whose handler runs ms and ends with status. */
static void connection(struct fixture *t, const char *name, uint64_t ms, int status)
{
    pid_t pid = idle_worker(t, name);

    message(t, pid, PSUP_MSG_RUNNING);
    t->now += ms;
    assert_true(psup_runtime_on_exit(&t->rt, pid, status, t->now));
    psup_runtime_maintain(&t->rt, t->now);
}

/* The body of GET path (status in *status). */
static char *get(struct fixture *t, const char *path, int *status)
{
    char text[256];
    struct psup_admin_request req;
    struct psup_admin_response resp;

    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
    assert_int_equal(psup_admin_request_parse(text, strlen(text), &req), PSUP_HTTP_DONE);
    psup_admin_response_init(&resp);
    t->st.now_ms = t->now;
    psup_admin_handle(&t->st, &req, PSUP_ADMIN_TCP, &resp);
    *status = resp.status;
    char *body = strndup(resp.body.data ? resp.body.data : "", resp.body.len);
    assert_non_null(body);
    psup_admin_response_free(&resp);
    return body;
}

#define expect_line(text, line) expect_line_(text, line, __LINE__)
static void expect_line_(const char *text, const char *line, int at)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("line %d: no line \"%s\" in:\n%s", at, line, text);
}

static char *metrics(struct fixture *t)
{
    int status;
    char *text = get(t, "/metrics", &status);

    assert_int_equal(status, 200);
    return text;
}

/* ------------------------------------------------------------------------ */

static void test_connections_are_counted_by_outcome(void **state)
{
    struct fixture *t = *state;

    connection(t, "a", 7, W_EXITCODE(0, 0));
    connection(t, "a", 30, W_EXITCODE(2, 0));
    connection(t, "a", 0, SIGKILL);
    connection(t, "b", 2000, W_EXITCODE(0, 0));
    message(t, idle_worker(t, "b"), PSUP_MSG_DENIED);
    /* A PROXY header that did not come in time (spec/proxy.md). */
    struct psup_msg late = {.kind = PSUP_MSG_PROXY_REFUSED, .pid = idle_worker(t, "b"),
                            .err = ETIMEDOUT};
    psup_runtime_on_message(&t->rt, &late, &(struct psup_passed_fds){-1, -1}, t->now);
    char *m = metrics(t);
    expect_line(m, "psup_connections_total{service=\"a\",outcome=\"ok\"} 1");
    expect_line(m, "psup_connections_total{service=\"a\",outcome=\"error\"} 1");
    expect_line(m, "psup_connections_total{service=\"a\",outcome=\"signal\"} 1");
    expect_line(m, "psup_connections_total{service=\"a\",outcome=\"timeout\"} 0");
    expect_line(m, "psup_connections_total{service=\"a\",outcome=\"exec_failed\"} 0");
    expect_line(m, "psup_connections_total{service=\"b\",outcome=\"ok\"} 1");
    expect_line(m, "psup_refused_total{service=\"b\",reason=\"denied\"} 1");
    expect_line(m, "psup_refused_total{service=\"a\",reason=\"denied\"} 0");
    expect_line(m, "psup_refused_total{service=\"b\",reason=\"proxy\"} 1");
    expect_line(m, "psup_refused_total{service=\"a\",reason=\"proxy\"} 0");
    /* 0 ms, 7 ms and 30 ms: cumulative buckets. */
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"0.005\"} 1");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"0.01\"} 2");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"0.025\"} 2");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"0.05\"} 3");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"1800\"} 3");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"a\",le=\"+Inf\"} 3");
    expect_line(m, "psup_handler_duration_seconds_sum{service=\"a\"} 0.037");
    expect_line(m, "psup_handler_duration_seconds_count{service=\"a\"} 3");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"b\",le=\"1\"} 0");
    expect_line(m, "psup_handler_duration_seconds_bucket{service=\"b\",le=\"2.5\"} 1");
    expect_line(m, "psup_workers_max{service=\"b\"} 3");
    expect_line(m, "psup_build_info{version=\"" PSUP_VERSION "\"} 1");
    expect_line(m, "psup_reloads_total{result=\"ok\"} 0");
    free(m);
}

/* Every sample follows its family's # HELP and # TYPE, each given once. */
static void test_every_family_is_typed_once(void **state)
{
    struct fixture *t = *state;
    char *m = metrics(t), *save = NULL;
    char typed[64][64];
    size_t n_typed = 0;

    assert_int_equal(m[strlen(m) - 1], '\n');
    for (char *line = strtok_r(m, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        if (sscanf(line, "# TYPE %63s", name) == 1) {
            for (size_t i = 0; i < n_typed; i++)
                if (strcmp(typed[i], name) == 0)
                    fail_msg("TYPE %s twice", name);
            assert_true(n_typed < 64);
            snprintf(typed[n_typed++], sizeof(typed[0]), "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;
        size_t len = strcspn(line, "{ ");
        bool found = false;
        for (size_t i = 0; i < n_typed && !found; i++) {
            size_t tl = strlen(typed[i]);
            found = len >= tl && strncmp(line, typed[i], tl) == 0 &&
                    (len == tl || strncmp(line + tl, "_bucket", len - tl) == 0 ||
                     strncmp(line + tl, "_sum", len - tl) == 0 ||
                     strncmp(line + tl, "_count", len - tl) == 0);
        }
        if (!found)
            fail_msg("sample before its TYPE: %s", line);
    }
    free(m);
}

static void test_status_document(void **state)
{
    struct fixture *t = *state;
    int status;

    connection(t, "a", 5, W_EXITCODE(0, 0));
    t->st.reloads[PSUP_RELOAD_INVALID] = 1;
    t->st.last_reload = 1700000100.5;
    t->st.last_reload_result = PSUP_RELOAD_INVALID;
    t->st.last_reload_problems = 2;
    t->now += 1500;
    char *body = get(t, "/status", &status);
    assert_int_equal(status, 200);
    cJSON *doc = cJSON_Parse(body);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "version")->valuestring, PSUP_VERSION);
    assert_int_equal(cJSON_GetObjectItem(doc, "pid")->valueint, 42);
    assert_string_equal(cJSON_GetObjectItem(doc, "config")->valuestring, "t.json");
    assert_string_equal(cJSON_GetObjectItem(doc, "started")->valuestring, "2023-11-14T22:13:20.000Z");
    assert_true(cJSON_GetObjectItem(doc, "uptime")->valuedouble == 1.505);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "ready")));
    cJSON *last = cJSON_GetObjectItem(doc, "last_reload");
    assert_string_equal(cJSON_GetObjectItem(last, "result")->valuestring, "invalid");
    assert_int_equal(cJSON_GetObjectItem(last, "problems")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(last, "time")->valuestring, "2023-11-14T22:15:00.500Z");
    cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "services"), 0);
    assert_string_equal(cJSON_GetObjectItem(a, "name")->valuestring, "a");
    assert_string_equal(cJSON_GetObjectItem(a, "mode")->valuestring, "accept");
    assert_string_equal(cJSON_GetObjectItem(a, "state")->valuestring, "serving");
    const char *listener = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "listeners"), 0)->valuestring;
    assert_true(strncmp(listener, "127.0.0.1:", 10) == 0 && strcmp(listener, "127.0.0.1:0") != 0);
    cJSON *pool = cJSON_GetObjectItem(a, "pool");
    assert_int_equal(cJSON_GetObjectItem(pool, "idle")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(pool, "busy")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(pool, "max_workers")->valueint, 4);
    cJSON *counters = cJSON_GetObjectItem(a, "counters");
    assert_int_equal(cJSON_GetObjectItem(counters, "accepted")->valueint, 1);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(counters, "connections"), "ok")->valueint, 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "last_error")));
    cJSON_Delete(doc);
    free(body);
}

static void test_readiness_reasons(void **state)
{
    struct fixture *t = *state;
    int status;
    char *body;

    body = get(t, "/readyz", &status);
    assert_int_equal(status, 200);
    assert_string_equal(body, "ok\n");
    free(body);
    body = get(t, "/livez", &status);
    assert_int_equal(status, 200);
    free(body);

    service(t, "b")->paused = true;
    body = get(t, "/readyz", &status);
    assert_int_equal(status, 503);
    assert_string_equal(body, "service b is paused\n");
    free(body);
    body = get(t, "/readyz?verbose", &status);
    assert_int_equal(status, 503);
    assert_string_equal(body, "[+] psup: running\n[+] service a: serving\n[-] service b: paused\n"
                              "not ready\n");
    free(body);
    service(t, "b")->paused = false;

    t->st.draining = true;
    body = get(t, "/readyz", &status);
    assert_int_equal(status, 503);
    assert_string_equal(body, "psup is draining before it shuts down\n");
    free(body);
    t->st.draining = false;

    psup_runtime_stop_accepting(&t->rt, 0);
    body = get(t, "/readyz", &status);
    assert_int_equal(status, 503);
    assert_string_equal(body, "psup is shutting down\n");
    free(body);
    body = get(t, "/livez", &status);
    assert_int_equal(status, 200); /* alive while it drains */
    free(body);
}

/* Workers that die before taking a connection: after the free retries the
 * service backs off, and readiness, /metrics and /status say so. */
static void test_backoff_is_not_ready(void **state)
{
    struct fixture *t = *state;
    int status;
    char *body;

    for (int i = 0; i < PSUP_BACKOFF_FREE + 1; i++) {
        pid_t pid = idle_worker(t, "a");
        t->now += 10;
        assert_true(psup_runtime_on_exit(&t->rt, pid, W_EXITCODE(1, 0), t->now));
        psup_runtime_maintain(&t->rt, t->now);
    }
    body = get(t, "/readyz", &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "service a is backing off (3 failures, next start in "));
    free(body);
    char *m = metrics(t);
    expect_line(m, "psup_worker_failures_total{service=\"a\"} 3");
    expect_line(m, "psup_backoff_seconds{service=\"a\"} 0.100");
    expect_line(m, "psup_ready 0");
    free(m);
    body = get(t, "/status", &status);
    cJSON *doc = cJSON_Parse(body);
    cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "services"), 0);
    assert_string_equal(cJSON_GetObjectItem(a, "state")->valuestring, "backoff");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "backoff"), "active")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(doc, "ready")));
    cJSON_Delete(doc);
    free(body);
}

static void test_page_is_served(void **state)
{
    struct fixture *t = *state;
    int status;
    char *body = get(t, "/", &status);

    assert_int_equal(status, 200);
    assert_true(strncmp(body, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(body, "fetch(\"status\""));
    free(body);
}

/* ------------------------------------------------------------------------ */
/* The pieces: the JSON writer, the buffer's ceiling, the histogram. */

static void test_json_writer(void **state)
{
    struct psup_buf b;
    struct psup_json j;

    (void)state;
    psup_buf_init(&b, 4096);
    psup_json_init(&j, &b);
    psup_json_object(&j, NULL);
    psup_json_string(&j, "s", "a\"b\\c\nd\x01\xff");
    psup_json_array(&j, "list");
    psup_json_uint(&j, NULL, 1);
    psup_json_int(&j, NULL, -2);
    psup_json_object(&j, NULL);
    psup_json_end_object(&j);
    psup_json_end_array(&j);
    psup_json_bool(&j, "t", true);
    psup_json_null(&j, "n");
    psup_json_secs(&j, "secs", 1.5);
    psup_json_end_object(&j);
    assert_false(b.failed);
    assert_string_equal(b.data, "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\\ufffd\",\"list\":[1,-2,{}],"
                                "\"t\":true,\"n\":null,\"secs\":1.500}");
    cJSON *doc = cJSON_Parse(b.data);
    assert_non_null(doc);
    cJSON_Delete(doc);
    psup_buf_free(&b);
}

static void test_buffer_ceiling(void **state)
{
    struct psup_buf b;

    (void)state;
    psup_buf_init(&b, 10);
    psup_buf_puts(&b, "0123456789");
    assert_false(b.failed);
    assert_int_equal(b.len, 10);
    psup_buf_printf(&b, "%d", 1);
    assert_true(b.failed);
    assert_int_equal(b.len, 10); /* nothing of what did not fit */
    psup_buf_puts(&b, "");
    assert_int_equal(b.len, 10);
    psup_buf_free(&b);
    psup_buf_init(&b, 1 << 20);
    psup_buf_printf(&b, "%0600d", 7); /* longer than the formatter's first try */
    assert_int_equal(b.len, 600);
    assert_int_equal(b.data[599], '7');
    psup_buf_free(&b);
}

static void test_duration_buckets(void **state)
{
    struct psup_durations d;

    (void)state;
    memset(&d, 0, sizeof(d));
    psup_durations_add(&d, 0);
    psup_durations_add(&d, 5);        /* on the first bound: in it */
    psup_durations_add(&d, 6);
    psup_durations_add(&d, 1800000);  /* the last bound */
    psup_durations_add(&d, 1800001);  /* beyond every bound */
    assert_int_equal(psup_durations_at_most(&d, 0), 2);
    assert_int_equal(psup_durations_at_most(&d, 1), 3);
    assert_int_equal(psup_durations_at_most(&d, PSUP_DURATION_BUCKETS - 1), 4);
    assert_int_equal(psup_durations_at_most(&d, PSUP_DURATION_BUCKETS), 5);
    assert_int_equal(d.count, 5);
    assert_int_equal(d.sum_ms, 3600012);
    for (size_t i = 1; i < PSUP_DURATION_BUCKETS; i++)
        assert_true(psup_duration_bounds_ms[i] > psup_duration_bounds_ms[i - 1]);
}

/* ---- control routes (spec/control.md) ------------------------------------- */

/* The supervisor's side, faked: records what the routes ask for. */
struct fake_control {
    int rc;                         /* what each action returns */
    unsigned calls;
    char service[72];
    bool pause;
    bool had_by;
    struct psup_requester by;
    struct psup_scale_request scale;
    struct psup_admin_reload reload; /* what a reload did */
};

static void note_call(struct fake_control *f, const char *service,
                      const struct psup_requester *by)
{
    f->calls++;
    snprintf(f->service, sizeof(f->service), "%s", service ? service : "");
    f->had_by = by != NULL;
    if (by)
        f->by = *by;
}

static int fake_reload(void *arg, const struct psup_requester *by,
                       void (*answer)(void *ctx, const struct psup_admin_reload *r), void *ctx)
{
    struct fake_control *f = arg;

    note_call(f, NULL, by);
    if (f->rc == 0)
        answer(ctx, &f->reload);
    return f->rc;
}

static int fake_pause(void *arg, const char *service, bool pause,
                      const struct psup_requester *by, bool *changed)
{
    struct fake_control *f = arg;

    note_call(f, service, by);
    f->pause = pause;
    *changed = true;
    return f->rc;
}

static int fake_scale(void *arg, const char *service, const struct psup_scale_request *req,
                      const struct psup_requester *by, struct psup_pool_limits *out, char *why,
                      size_t why_size)
{
    struct fake_control *f = arg;

    note_call(f, service, by);
    f->scale = *req;
    *out = (struct psup_pool_limits){2, 4, 8, false};
    if (f->rc == -EINVAL)
        snprintf(why, why_size, "max_spare: must be >= min_spare (4), got 2");
    if (f->rc == -EOPNOTSUPP)
        snprintf(why, why_size, "service \"%s\" is in wait mode: it cannot", service);
    return f->rc;
}

/* POST target from a unix client whose credentials are pid 77, uid 1000
 * (tcp: from a TCP one); the answer's body, and its status. */
static char *post(struct fixture *t, const char *target, bool tcp, int *status)
{
    char text[512];
    struct psup_admin_request req;
    struct psup_admin_response resp;

    snprintf(text, sizeof(text), "POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
             target);
    assert_int_equal(psup_admin_request_parse(text, strlen(text), &req), PSUP_HTTP_DONE);
    req.has_peer = !tcp;
    req.peer_pid = 77;
    req.peer_uid = 1000;
    psup_admin_response_init(&resp);
    psup_admin_handle(&t->st, &req, tcp ? PSUP_ADMIN_TCP : PSUP_ADMIN_UNIX, &resp);
    *status = resp.status;
    char *body = strndup(resp.body.data ? resp.body.data : "", resp.body.len);
    assert_non_null(body);
    psup_admin_response_free(&resp);
    return body;
}

#define expect_post(t, target, tcp, want_status, want_body)                                   \
    do {                                                                                      \
        int status_;                                                                          \
        char *body_ = post(t, target, tcp, &status_);                                         \
        assert_string_equal(body_, want_body);                                                \
        assert_int_equal(status_, want_status);                                               \
        free(body_);                                                                          \
    } while (0)

static void test_control_routes(void **state)
{
    struct fixture *t = *state;
    struct fake_control f = {0};
    const struct psup_admin_control control = {fake_reload, fake_pause, fake_scale, &f};

    /* Without the supervisor's side: not available. */
    expect_post(t, "/pause?service=a", false, 503, "{\"error\":\"control is not available\"}\n");
    t->st.control = &control;
    /* Never from TCP: the action is not even asked for. */
    expect_post(t, "/pause?service=a", true, 403,
                "403 Forbidden\ncontrol requests are taken on unix: admin listeners only\n");
    assert_int_equal(f.calls, 0);

    expect_post(t, "/pause?service=a", false, 200,
                "{\"service\":\"a\",\"paused\":true,\"changed\":true}\n");
    assert_string_equal(f.service, "a");
    assert_true(f.pause && f.had_by);
    assert_int_equal(f.by.pid, 77);
    assert_int_equal(f.by.uid, 1000);
    expect_post(t, "/resume?service=a", false, 200,
                "{\"service\":\"a\",\"paused\":false,\"changed\":true}\n");
    assert_false(f.pause);

    expect_post(t, "/scale?max_workers=8&service=b", false, 200,
                "{\"service\":\"b\",\"pool\":{\"min_spare\":2,\"max_spare\":4,"
                "\"max_workers\":8},\"until\":\"reload\"}\n");
    assert_true(f.scale.min_spare == -1 && f.scale.max_spare == -1 && f.scale.max_workers == 8);

    f.rc = -EINVAL;
    expect_post(t, "/scale?service=b&max_spare=2", false, 400,
                "{\"error\":\"max_spare: must be >= min_spare (4), got 2\"}\n");
    /* A wait-mode service (spec/control.md): 409, with the reason. */
    f.rc = -EOPNOTSUPP;
    expect_post(t, "/pause?service=w", false, 409,
                "{\"error\":\"service \\\"w\\\" is in wait mode: its servers accept "
                "connections themselves, psup cannot pause it\"}\n");
    expect_post(t, "/scale?service=w&max_spare=2", false, 409,
                "{\"error\":\"service \\\"w\\\" is in wait mode: it cannot\"}\n");
    f.rc = -ENOENT;
    expect_post(t, "/pause?service=zz", false, 404, "{\"error\":\"no service named \\\"zz\\\"\"}\n");
    f.rc = -ESHUTDOWN;
    expect_post(t, "/reload", false, 409, "{\"error\":\"psup is shutting down\"}\n");
    unsigned calls = f.calls;
    expect_post(t, "/pause?service=a&x=1", false, 400, "{\"error\":\"unknown parameter \\\"x\\\"\"}\n");
    assert_int_equal(f.calls, calls); /* refused before asking */
    t->st.control = NULL;
}

static void test_reload_answers(void **state)
{
    struct fixture *t = *state;
    struct fake_control f = {0};
    const struct psup_admin_control control = {fake_reload, fake_pause, fake_scale, &f};
    struct psup_apply_report rep = {.added = "x,y", .changed = "a", .unchanged = 1,
                                    .listeners_opened = 2};
    struct psup_diag problems;

    t->st.control = &control;
    f.reload = (struct psup_admin_reload){PSUP_RELOAD_OK, NULL, &rep, NULL};
    expect_post(t, "/reload", false, 200,
                "{\"result\":\"ok\",\"config\":\"t.json\",\"added\":[\"x\",\"y\"],"
                "\"removed\":[],\"changed\":[\"a\"],\"unchanged\":1,\"listeners_opened\":2,"
                "\"listeners_closed\":0}\n");
    assert_true(f.had_by);

    psup_diag_init(&problems);
    psup_diag_addf(&problems, "services[0].name: missing (required)");
    psup_diag_addf(&problems, "services[1]: expected an object, got a number");
    f.reload = (struct psup_admin_reload){PSUP_RELOAD_INVALID, &problems, NULL, NULL};
    expect_post(t, "/reload", false, 422,
                "{\"result\":\"invalid\",\"config\":\"t.json\",\"problems\":["
                "\"services[0].name: missing (required)\","
                "\"services[1]: expected an object, got a number\"]}\n");
    psup_diag_free(&problems);

    f.reload = (struct psup_admin_reload){PSUP_RELOAD_FAILED, NULL, NULL,
                                          "a listener could not be bound"};
    expect_post(t, "/reload", false, 409,
                "{\"result\":\"failed\",\"config\":\"t.json\","
                "\"error\":\"a listener could not be bound\"}\n");
    t->st.control = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connections_are_counted_by_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_family_is_typed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readiness_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_is_not_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_is_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_answers, setup, teardown),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_buffer_ceiling),
        cmocka_unit_test(test_duration_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
