/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/config.c: every error class with its exact message and
 * JSON path, document order, defaults and derived pool values, PATH lookup,
 * credentials, and the examples in spec/examples (each invalid one with its
 * expected lines in a sibling .errors file).
 *
 * JSON in the tables is written with ' for " to keep it readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"

#define BASE "'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true']"
#define BASE_NAMED "'name': 't', 'listen': ['127.0.0.1:0'], "
#define UNIX_BASE "'name': 't', 'listen': ['unix:/run/t.sock'], 'command': ['/bin/true']"
#define CGI_BASE BASE ", 'protocol': 'cgi'"
#define PROXY_BASE BASE ", 'proxy_protocol': 'v2', 'proxy_from': ['127.0.0.1']"

/* The CGI relay the tests' psup "finds" (main sets it; a test that
 * changes it puts this one back). */
#define TEST_RELAY "/bin/true"

/* ---- helpers ---------------------------------------------------------- */

static char *unquote(const char *s)
{
    char *out = strdup(s);

    assert_non_null(out);
    for (char *p = out; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return out;
}

static struct psup_config *parse_doc(const char *doc, struct psup_diag *d)
{
    char *text = unquote(doc);
    struct psup_config *cfg;

    psup_diag_init(d);
    cfg = psup_config_parse(text, strlen(text), "t.json", d);
    free(text);
    return cfg;
}

/* A document with one service whose members are body. */
static struct psup_config *parse_service(const char *body, struct psup_diag *d)
{
    char *doc = NULL;
    struct psup_config *cfg;

    assert_true(asprintf(&doc, "{'services': [{%s}]}", body) > 0);
    cfg = parse_doc(doc, d);
    free(doc);
    return cfg;
}

static void dump(const struct psup_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        print_message("    got: %s\n", d->items[i]);
}

/* The problems must be exactly want (NULL-terminated), in order. */
static void check_lines(const char *what, const struct psup_diag *d, const char *const *want)
{
    size_t n = 0;

    while (want[n])
        n++;
    for (size_t i = 0; i < n && i < d->count; i++) {
        if (strcmp(d->items[i], want[i]) != 0) {
            dump(d);
            fail_msg("%s: line %zu is \"%s\", expected \"%s\"", what, i + 1, d->items[i], want[i]);
        }
    }
    if (d->count != n) {
        dump(d);
        fail_msg("%s: %zu problems, expected %zu", what, d->count, n);
    }
}

static void expect_doc_errors(const char *doc, const char *const *want)
{
    struct psup_diag d;
    struct psup_config *cfg = parse_doc(doc, &d);

    if (cfg) {
        psup_config_unref(cfg);
        fail_msg("%s: loaded, expected an error", doc);
    }
    check_lines(doc, &d, want);
    psup_diag_free(&d);
}

static void expect_service_error(const char *body, const char *message)
{
    const char *want[] = {message, NULL};
    struct psup_diag d;
    struct psup_config *cfg = parse_service(body, &d);

    if (cfg) {
        psup_config_unref(cfg);
        fail_msg("%s: loaded, expected \"%s\"", body, message);
    }
    check_lines(body, &d, want);
    psup_diag_free(&d);
}

static struct psup_config *must_load(const char *body)
{
    struct psup_diag d;
    struct psup_config *cfg = parse_service(body, &d);

    if (!cfg) {
        dump(&d);
        fail_msg("%s: expected to load", body);
    }
    psup_diag_free(&d);
    return cfg;
}

static unsigned long long proc_number(const char *file, unsigned long long fallback)
{
    unsigned long long v = fallback;
    FILE *fp = fopen(file, "r");

    if (fp) {
        if (fscanf(fp, "%llu", &v) != 1)
            v = fallback;
        fclose(fp);
    }
    return v;
}

/* A scratch directory with executable and non-executable files. */
struct scratch {
    char dir[64];
};

static void scratch_file(const struct scratch *s, const char *name, mode_t mode)
{
    char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\nexit 0\n", fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static void scratch_make(struct scratch *s)
{
    strcpy(s->dir, "/tmp/psup-test-config-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
}

static void scratch_remove(const struct scratch *s)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the top level ------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"", "t.json: empty file, expected a JSON object"},
        {"  \n\t ", "t.json: empty file, expected a JSON object"},
        {"{'services': [1,]}", "t.json: invalid JSON at line 1, column 17"},
        {"{\n  'services': [\n    {'name': 'x',}\n  ]\n}",
         "t.json: invalid JSON at line 3, column 19"},
        {"{'services': [{'name': 'x'}]} x", "t.json: invalid JSON at line 1, column 31"},
        {"{'services': []}\n\n}", "t.json: invalid JSON at line 3, column 1"},
        {"{'a' 1}", "t.json: invalid JSON at line 1, column 6"},
        {"[]", "t.json: the top level must be a JSON object with a \"services\" array"},
        {"'services'", "t.json: the top level must be a JSON object with a \"services\" array"},
        {"null", "t.json: the top level must be a JSON object with a \"services\" array"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *want[] = {cases[i].want, NULL};
        expect_doc_errors(cases[i].doc, want);
    }
}

static void test_text_with_nul_is_not_json(void **state)
{
    static const char text[] = "{\"services\": []}\0junk";
    struct psup_diag d;

    (void)state;
    psup_diag_init(&d);
    assert_null(psup_config_parse(text, sizeof(text) - 1, "t.json", &d));
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0], "t.json: invalid JSON at line 1, column 17");
    psup_diag_free(&d);
}

static void test_top_level_errors(void **state)
{
    static const struct {
        const char *doc, *want[3];
    } cases[] = {
        {"{}", {"services: missing (required)"}},
        {"{'services': []}", {"services: expected a non-empty array of services, got an empty array"}},
        {"{'services': {}}", {"services: expected a non-empty array of services, got an object"}},
        {"{'services': [1]}", {"services[0]: expected an object, got a number"}},
        {"{'service': []}",
         {"service: unknown key; did you mean \"services\"?", "services: missing (required)"}},
        {"{'services': [{" BASE "}], 'services': 1}", {"services: duplicate key"}},
        {"{'services': [{" BASE "}], '$schema': 1}", {"$schema: expected a string, got a number"}},
        {"{'services': [{" BASE "}], 'shutdown_timeout': '7'}",
         {"shutdown_timeout: expected a number of seconds, got a string"}},
        {"{'services': [{" BASE "}], 'shutdown_timeout': -1}",
         {"shutdown_timeout: must be >= 0, got -1"}},
        {"{'services': [{" BASE "}], 'shutdown_timout': 5}",
         {"shutdown_timout: unknown key; did you mean \"shutdown_timeout\"?"}},
        {"{'services': [{" BASE "}], 'kill_grace': 0}", {"kill_grace: must be > 0, got 0"}},
        {"{'services': [{" BASE "}], 'shutdown_delay': -1}",
         {"shutdown_delay: must be >= 0, got -1"}},
        {"{'services': [{" BASE "}], 'shutdown_delay': '5s'}",
         {"shutdown_delay: expected a number of seconds, got a string"}},
        {"{'services': [{" BASE "}], 'kill_grace': 1e12}",
         {"kill_grace: must be at most 31536000, got 1000000000000"}},
        {"{'services': [{" BASE "}], 'log_format': 'xml'}",
         {"log_format: expected \"text\" or \"json\", got \"xml\""}},
        {"{'services': [{" BASE "}], 'log_format': true}",
         {"log_format: expected \"text\" or \"json\", got a boolean"}},
        {"{'services': [{" BASE "}], 'a\\'b': 1}", {"[\"a\\\"b\"]: unknown key"}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_doc_errors(cases[i].doc, cases[i].want);
}

static void test_top_level_values(void **state)
{
    struct psup_diag d;
    struct psup_config *cfg;

    (void)state;
    cfg = parse_doc("{'$schema': './services.schema.json', 'services': [{" BASE "}], "
                    "'shutdown_timeout': 0, 'kill_grace': 0.5, 'log_format': 'json', "
                    "'shutdown_delay': 2.5}",
                    &d);
    assert_non_null(cfg);
    assert_true(cfg->shutdown_timeout == 0);
    assert_true(cfg->shutdown_delay == 2.5);
    assert_true(cfg->kill_grace == 0.5);
    assert_int_equal(cfg->log_format, PSUP_LOG_JSON);
    assert_true(cfg->log_format_set);
    psup_config_unref(cfg);
    psup_diag_free(&d);

    cfg = parse_doc("{'services': [{" BASE "}], 'log_format': 'text'}", &d);
    assert_non_null(cfg);
    assert_int_equal(cfg->log_format, PSUP_LOG_TEXT);
    assert_true(cfg->log_format_set);
    psup_config_unref(cfg);
    psup_diag_free(&d);
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    struct psup_config *cfg = must_load(BASE);
    const struct psup_service_config *s = &cfg->services[0];
    unsigned long long somaxconn = proc_number("/proc/sys/net/core/somaxconn", SOMAXCONN);

    (void)state;
    assert_true(cfg->shutdown_timeout == 7);
    assert_true(cfg->kill_grace == 2);
    assert_true(cfg->shutdown_delay == 0);
    assert_false(s->essential);
    assert_true(s->fatal_after == 0);
    assert_int_equal(cfg->log_format, PSUP_LOG_TEXT);
    assert_false(cfg->log_format_set);
    assert_int_equal(cfg->refs, 1);
    assert_int_equal(cfg->n_services, 1);

    assert_string_equal(s->name, "t");
    assert_int_equal(s->n_listen, 1);
    assert_string_equal(s->listen_text[0], "127.0.0.1:0");
    assert_int_equal(s->listen[0].proto, PSUP_PROTO_TCP);
    assert_string_equal(s->program, "/bin/true");
    assert_int_equal(s->argc, 1);
    assert_string_equal(s->argv[0], "/bin/true");
    assert_null(s->argv[1]);
    assert_false(s->shell);
    assert_int_equal(s->min_spare, 4);
    assert_int_equal(s->max_spare, 16);
    assert_int_equal(s->max_workers, 256);
    assert_int_equal(s->backlog, (int)somaxconn);
    assert_int_equal(s->n_env, 0);
    assert_false(s->clear_env);
    assert_int_equal(s->n_pass_env, 0);
    assert_null(s->cwd);
    assert_int_equal(s->umask, -1);
    assert_false(s->set_nice);
    assert_int_equal(s->n_rlimits, 0);
    assert_false(s->set_ids);
    assert_null(s->user_name);
    assert_null(s->user_home);
    assert_int_equal(s->stderr_mode, PSUP_STDERR_INHERIT);
    assert_int_equal(s->n_allow, 0);
    assert_int_equal(s->n_deny, 0);
    assert_null(s->deny_message);
    assert_int_equal(s->max_per_source, 0);
    assert_int_equal(s->per_source_ipv6_prefix, 128);
    assert_null(s->per_source_message);
    assert_true(s->rate == 0);
    assert_int_equal(s->rate_burst, 1);
    assert_null(s->rate_message);
    assert_int_equal(s->on_overload, PSUP_OVERLOAD_QUEUE);
    assert_null(s->overload_message);
    assert_true(s->timeout == 0);
    assert_int_equal(s->mode, PSUP_MODE_ACCEPT);
    psup_config_unref(cfg);
}

static void test_pool_derivation(void **state)
{
    static const struct {
        const char *pool;
        unsigned min, max, workers;
    } cases[] = {
        {"", 4, 16, 256},
        {", 'pool': {}", 4, 16, 256},
        {", 'pool': {'min_spare': 1}", 1, 16, 256},
        {", 'pool': {'min_spare': 20}", 20, 20, 256},
        {", 'pool': {'max_spare': 2}", 2, 2, 256},
        {", 'pool': {'max_spare': 300}", 4, 300, 300},
        {", 'pool': {'max_workers': 2}", 2, 2, 2},
        {", 'pool': {'max_workers': 10}", 4, 10, 10},
        {", 'pool': {'max_workers': 100}", 4, 16, 100},
        {", 'pool': {'min_spare': 8, 'max_workers': 10}", 8, 10, 10},
        {", 'pool': {'max_spare': 8, 'max_workers': 8}", 4, 8, 8},
        {", 'pool': {'min_spare': 1, 'max_spare': 1, 'max_workers': 1}", 1, 1, 1},
        {", 'pool': {'min_spare': 2, 'max_spare': 3}", 2, 3, 256},
        {", 'pool': {'max_workers': 65536}", 4, 16, 65536},
        {", 'pool': {'min_spare': 1000}", 1000, 1000, 1000},
    };
    char body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "%s%s", BASE, cases[i].pool);

        struct psup_config *cfg = must_load(body);
        const struct psup_service_config *s = &cfg->services[0];
        if (s->min_spare != cases[i].min || s->max_spare != cases[i].max ||
            s->max_workers != cases[i].workers)
            fail_msg("%s: got %u..%u max %u, expected %u..%u max %u", cases[i].pool,
                     s->min_spare, s->max_spare, s->max_workers, cases[i].min, cases[i].max,
                     cases[i].workers);
        psup_config_unref(cfg);
    }
}

/* ---- one service, one error ----------------------------------------------- */

static const struct {
    const char *body, *want;
} service_errors[] = {
    /* unknown and repeated keys */
    {BASE ", 'pol': {}", "services[0].pol: unknown key; did you mean \"pool\"?"},
    {BASE ", 'frobnicate': 1", "services[0].frobnicate: unknown key"},
    {BASE ", 'Timeout': 1", "services[0].Timeout: unknown key; did you mean \"timeout\"?"},
    {BASE ", 'max-per-source': 1",
     "services[0].max-per-source: unknown key; did you mean \"max_per_source\"?"},
    {BASE ", 'name': 'u'", "services[0].name: duplicate key"},
    {BASE ", 'pool': {'mix_spare': 1}",
     "services[0].pool.mix_spare: unknown key; did you mean \"min_spare\"?"},
    {BASE ", 'pool': {'min_spare': 1, 'min_spare': 2}", "services[0].pool.min_spare: duplicate key"},
    {BASE ", 'a b': 1", "services[0][\"a b\"]: unknown key"},

    /* name */
    {"'listen': ['127.0.0.1:0'], 'command': ['/bin/true']", "services[0].name: missing (required)"},
    {"'name': '', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true']",
     "services[0].name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got \"\""},
    {"'name': 'my service', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true']",
     "services[0].name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got \"my service\""},
    {"'name': 'x12345678901234567890123456789012345678901234567890123456789012345', "
     "'listen': ['127.0.0.1:0'], 'command': ['/bin/true']",
     "services[0].name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, got "
     "\"x12345678901234567890123456789012345678901234567890123456789012345\""},
    {"'name': 5, 'listen': ['127.0.0.1:0'], 'command': ['/bin/true']",
     "services[0].name: expected a string, got a number"},

    /* listen */
    {"'name': 't', 'command': ['/bin/true']", "services[0].listen: missing (required)"},
    {"'name': 't', 'listen': [], 'command': ['/bin/true']",
     "services[0].listen: expected a non-empty array of addresses, got an empty array"},
    {"'name': 't', 'listen': '127.0.0.1:7000', 'command': ['/bin/true']",
     "services[0].listen: expected a non-empty array of addresses, got a string"},
    {"'name': 't', 'listen': [7000], 'command': ['/bin/true']",
     "services[0].listen[0]: expected a string, got a number"},
    {"'name': 't', 'listen': ['127.0.0.1:0', 'foo'], 'command': ['/bin/true']",
     "services[0].listen[1]: invalid address \"foo\": expected HOST:PORT, [IPV6]:PORT, *:PORT "
     "or unix:/path"},
    {"'name': 't', 'listen': ['127.0.0.1:99999'], 'command': ['/bin/true']",
     "services[0].listen[0]: invalid address \"127.0.0.1:99999\": port must be a number from 0 "
     "to 65535"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53', '127.0.0.1:53'], 'command': ['/bin/true']",
     "services[0].listen[1]: 127.0.0.1:53 is a stream listener and listen[0] a UDP listener: a "
     "service has stream listeners (TCP, unix) or UDP listeners, not both; make it two "
     "services"},
    {"'name': 't', 'listen': ['unix:@x', 'udp://[::1]:53'], 'command': ['/bin/true']",
     "services[0].listen[1]: udp://[::1]:53 is a UDP listener and listen[0] a stream listener: "
     "a service has stream listeners (TCP, unix) or UDP listeners, not both; make it two "
     "services"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'mode': 'accept', 'command': ['/bin/true']",
     "services[0].listen[0]: udp://127.0.0.1:53 is a UDP listener: mode \"accept\" takes stream "
     "listeners (TCP, unix); UDP listeners take mode \"datagram\""},
    {"'name': 't', 'listen': ['*:53'], 'mode': 'datagram', 'command': ['/bin/true']",
     "services[0].listen[0]: *:53 is a stream listener: mode \"datagram\" takes UDP listeners "
     "(udp://HOST:PORT)"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'mode': 'wat', 'command': ['/bin/true']",
     "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", got \"wat\""},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'mode': 1, 'command': ['/bin/true']",
     "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", got a number"},
    {"'name': 't', 'listen': ['127.0.0.1:53'], 'recv_buffer': 65536, 'command': ['/bin/true']",
     "services[0].recv_buffer: has no effect without a udp:// listener"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'recv_buffer': 100, "
     "'command': ['/bin/true']",
     "services[0].recv_buffer: must be between 4096 and 1073741824, got 100"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'backlog': 10, 'command': ['/bin/true']",
     "services[0].backlog: has no effect without a stream listener (TCP or unix)"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'deny': ['10.0.0.0/8'], "
     "'deny_message': 'no', 'command': ['/bin/true']",
     "services[0].deny_message: has no effect in datagram mode: a refused datagram is dropped "
     "without a reply"},
    {"'name': 't', 'listen': ['udp://127.0.0.1:53'], 'rate_message': 'slow', "
     "'command': ['/bin/true']",
     "services[0].rate_message: has no effect in datagram mode: a refused datagram is dropped "
     "without a reply"},
    {"'name': 't', 'listen': ['udp://*:53', 'udp://127.0.0.1:53'], 'command': ['/bin/true']",
     "services[0].listen[1]: udp://127.0.0.1:53 overlaps services[0].listen[0] (udp://*:53): "
     "the kernel does not bind a wildcard address beside another of its family on the same "
     "port"},
    {"'name': 't', 'listen': ['127.0.0.1:7000', 'localhost:7000'], 'command': ['/bin/true']",
     "services[0].listen[1]: 127.0.0.1:7000 is already used by services[0].listen[0]"},
    {"'name': 't', 'listen': ['unix:/tmp/p.sock', '[::1]:1', 'unix:/tmp/p.sock'], "
     "'command': ['/bin/true']",
     "services[0].listen[2]: unix:/tmp/p.sock is already used by services[0].listen[0]"},

    /* command */
    {"'name': 't', 'listen': ['127.0.0.1:0']", "services[0].command: missing (required)"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': []",
     "services[0].command: expected a non-empty array of strings (argv) or a string (run with "
     "/bin/sh -c), got an empty array"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': 5",
     "services[0].command: expected a non-empty array of strings (argv) or a string (run with "
     "/bin/sh -c), got a number"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ''", "services[0].command: must not be empty"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['']",
     "services[0].command[0]: must not be empty"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true', 1]",
     "services[0].command[1]: expected a string, got a number"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/nonexistent-psup/prog']",
     "services[0].command[0]: /nonexistent-psup/prog does not exist"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/etc']",
     "services[0].command[0]: /etc is not a regular file"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/etc/passwd']",
     "services[0].command[0]: /etc/passwd is not executable (Permission denied)"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['nosuch-psup'], "
     "'env': {'PATH': '/nonexistent-a:/nonexistent-b'}",
     "services[0].command[0]: program \"nosuch-psup\" not found in PATH "
     "(/nonexistent-a:/nonexistent-b)"},
    {"'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['passwd'], 'env': {'PATH': '/etc'}",
     "services[0].command[0]: /etc/passwd is not executable (Permission denied)"},

    /* pool */
    {BASE ", 'pool': 3", "services[0].pool: expected an object, got a number"},
    {BASE ", 'pool': {'min_spare': '4'}",
     "services[0].pool.min_spare: expected a non-negative integer, got a string"},
    {BASE ", 'pool': {'min_spare': 0}", "services[0].pool.min_spare: must be between 1 and 65536, got 0"},
    {BASE ", 'pool': {'min_spare': 2.5}",
     "services[0].pool.min_spare: expected a non-negative integer, got 2.5"},
    {BASE ", 'pool': {'min_spare': -1}",
     "services[0].pool.min_spare: expected a non-negative integer, got -1"},
    {BASE ", 'pool': {'min_spare': 8, 'max_spare': 4}",
     "services[0].pool.max_spare: must be >= min_spare (8)"},
    {BASE ", 'pool': {'max_spare': 3, 'min_spare': 4}",
     "services[0].pool.max_spare: must be >= min_spare (4)"},
    {BASE ", 'pool': {'max_spare': 8, 'max_workers': 4}",
     "services[0].pool.max_workers: must be >= max_spare (8)"},
    {BASE ", 'pool': {'min_spare': 20, 'max_workers': 10}",
     "services[0].pool.max_workers: must be >= min_spare (20)"},
    {BASE ", 'pool': {'max_workers': 70000}",
     "services[0].pool.max_workers: must be between 1 and 65536, got 70000"},

    /* backlog */
    {BASE ", 'backlog': 0", "services[0].backlog: must be between 1 and 1048576, got 0"},
    {BASE ", 'backlog': 1048577", "services[0].backlog: must be between 1 and 1048576, got 1048577"},
    {BASE ", 'backlog': null", "services[0].backlog: expected a non-negative integer, got null"},

    /* env */
    {BASE ", 'env': []",
     "services[0].env: expected an object of NAME: \"value\" pairs, got an empty array"},
    {BASE ", 'env': {'A': 1}", "services[0].env.A: expected a string, got a number"},
    {BASE ", 'env': {'A': '1', 'A': '2'}", "services[0].env.A: duplicate key"},
    {BASE ", 'env': {'1A': 'x'}",
     "services[0].env.1A: not a valid variable name (letters, digits and _, not starting with "
     "a digit)"},
    {BASE ", 'env': {'A B': 'x'}",
     "services[0].env[\"A B\"]: not a valid variable name (letters, digits and _, not starting "
     "with a digit)"},
    {BASE ", 'env': {'NOTIFY_SOCKET': '/run/x'}",
     "services[0].env.NOTIFY_SOCKET: is meant for psup itself and never reaches a handler"},
    {BASE ", 'env': {'LISTEN_FDS': '1'}",
     "services[0].env.LISTEN_FDS: is meant for psup itself and never reaches a handler"},
    {BASE ", 'env': {'': 'x'}",
     "services[0].env[\"\"]: not a valid variable name (letters, digits and _, not starting "
     "with a digit)"},
    {BASE ", 'clear_env': 'yes'", "services[0].clear_env: expected true or false, got a string"},
    {BASE ", 'pass_env': ['HOME']", "services[0].pass_env: has no effect unless clear_env is true"},
    {BASE ", 'clear_env': false, 'pass_env': []",
     "services[0].pass_env: has no effect unless clear_env is true"},
    {BASE ", 'clear_env': true, 'pass_env': 'HOME'",
     "services[0].pass_env: expected an array of variable names, got a string"},
    {BASE ", 'clear_env': true, 'pass_env': ['1X']",
     "services[0].pass_env[0]: \"1X\" is not a valid variable name"},
    {BASE ", 'clear_env': true, 'pass_env': [1]",
     "services[0].pass_env[0]: expected a string, got a number"},

    /* cwd */
    {BASE ", 'cwd': ''", "services[0].cwd: must not be empty"},
    {BASE ", 'cwd': 1", "services[0].cwd: expected a string, got a number"},
    {BASE ", 'cwd': '/nonexistent-psup-dir'", "services[0].cwd: /nonexistent-psup-dir does not exist"},
    {BASE ", 'cwd': '/etc/passwd'", "services[0].cwd: /etc/passwd is not a directory"},

    /* credentials */
    {BASE ", 'user': 'nbody'", "services[0].user: no such user \"nbody\""},
    {BASE ", 'user': '4000000001'",
     "services[0].user: no such user \"4000000001\"; write a numeric uid as a number, without "
     "quotes"},
    {BASE ", 'user': ''", "services[0].user: must not be empty"},
    {BASE ", 'user': true", "services[0].user: expected a user name or a numeric uid, got a boolean"},
    {BASE ", 'user': -1", "services[0].user: expected a non-negative integer, got -1"},
    {BASE ", 'user': 4294967295",
     "services[0].user: must be between 0 and 4294967294, got 4294967295"},
    {BASE ", 'user': 4000000001",
     "services[0].user: uid 4000000001 has no entry in the user database, so it has no primary "
     "group; set group"},
    {BASE ", 'group': 'nogrp'", "services[0].group: no such group \"nogrp\""},
    {BASE ", 'group': []", "services[0].group: expected a group name or a numeric gid, got an "
     "empty array"},
    {BASE ", 'supplementary_groups': false",
     "services[0].supplementary_groups: has no effect without user"},
    {BASE ", 'supplementary_groups': 0",
     "services[0].supplementary_groups: expected true or false, got a number"},

    /* umask, nice, rlimits, stderr */
    {BASE ", 'umask': 22",
     "services[0].umask: expected a string of octal digits such as \"022\", got a number; quote "
     "it: \"22\""},
    {BASE ", 'umask': '089'",
     "services[0].umask: expected 1 to 4 octal digits such as \"022\", got \"089\""},
    {BASE ", 'umask': '00022'",
     "services[0].umask: expected 1 to 4 octal digits such as \"022\", got \"00022\""},
    {BASE ", 'umask': ''", "services[0].umask: expected 1 to 4 octal digits such as \"022\", got \"\""},
    {BASE ", 'umask': '1000'", "services[0].umask: must be at most \"0777\", got \"1000\""},
    {BASE ", 'umask': null",
     "services[0].umask: expected a string, got null"},
    {BASE ", 'nice': 20", "services[0].nice: must be between -20 and 19, got 20"},
    {BASE ", 'nice': -21", "services[0].nice: must be between -20 and 19, got -21"},
    {BASE ", 'nice': '5'", "services[0].nice: expected an integer, got a string"},
    {BASE ", 'rlimits': []", "services[0].rlimits: expected an object, got an empty array"},
    {BASE ", 'rlimits': {'nofle': 1}",
     "services[0].rlimits.nofle: unknown key; did you mean \"nofile\"?"},
    {BASE ", 'rlimits': {'core': [5, 2]}",
     "services[0].rlimits.core: the soft limit (5) is above the hard limit (2)"},
    {BASE ", 'rlimits': {'core': [1]}", "services[0].rlimits.core: expected [soft, hard], got an array of 1"},
    {BASE ", 'rlimits': {'core': 'lots'}",
     "services[0].rlimits.core: expected a non-negative integer or \"unlimited\", got \"lots\""},
    {BASE ", 'rlimits': {'core': -1}",
     "services[0].rlimits.core: expected a non-negative integer or \"unlimited\", got -1"},
    {BASE ", 'rlimits': {'cpu': [1, true]}",
     "services[0].rlimits.cpu[1]: expected a non-negative integer or \"unlimited\", got a boolean"},
    {BASE ", 'rlimits': {'cpu': ['unlimited', 10]}",
     "services[0].rlimits.cpu: the soft limit (unlimited) is above the hard limit (10)"},
    {BASE ", 'stderr': 'file'",
     "services[0].stderr: expected \"inherit\", \"null\" or \"log\", got \"file\""},
    {BASE ", 'stderr': 2",
     "services[0].stderr: expected \"inherit\", \"null\" or \"log\", got a number"},

    /* access and limits */
    {BASE ", 'allow': ['10.0.0.1/33']",
     "services[0].allow[0]: invalid CIDR \"10.0.0.1/33\": the prefix length must be a number "
     "from 0 to 32"},
    {BASE ", 'allow': ['10.0.0.0/8', '192.168.1.1/24']",
     "services[0].allow[1]: invalid CIDR \"192.168.1.1/24\": host bits are set beyond /24; did "
     "you mean 192.168.1.0/24?"},
    {BASE ", 'allow': []",
     "services[0].allow: expected a non-empty array of CIDR strings (omit allow to allow every "
     "client), got an empty array"},
    {BASE ", 'deny': '10.0.0.0/8'",
     "services[0].deny: expected an array of CIDR strings, got a string"},
    {BASE ", 'deny': [7]", "services[0].deny[0]: expected a string, got a number"},
    {BASE ", 'deny_message': 'no'", "services[0].deny_message: has no effect without allow or deny"},
    {BASE ", 'deny': [], 'deny_message': 'no'",
     "services[0].deny_message: has no effect without allow or deny"},
    {BASE ", 'deny': ['::1'], 'deny_message': 1",
     "services[0].deny_message: expected a string, got a number"},
    {BASE ", 'max_per_source': -1",
     "services[0].max_per_source: expected a non-negative integer, got -1"},
    {BASE ", 'max_per_source': 65537",
     "services[0].max_per_source: must be between 0 and 65536, got 65537"},
    {BASE ", 'per_source_ipv6_prefix': 0",
     "services[0].per_source_ipv6_prefix: must be between 1 and 128, got 0"},
    {BASE ", 'per_source_message': 'x'",
     "services[0].per_source_message: has no effect without max_per_source"},
    {BASE ", 'max_per_source': 0, 'per_source_message': 'x'",
     "services[0].per_source_message: has no effect without max_per_source"},
    {BASE ", 'rate': 0", "services[0].rate: must be > 0, got 0"},
    {BASE ", 'rate': '5'", "services[0].rate: expected a number of connections per second, got a string"},
    {BASE ", 'rate': 2000000", "services[0].rate: must be at most 1000000, got 2000000"},
    {BASE ", 'rate_burst': 3", "services[0].rate_burst: has no effect without rate"},
    {BASE ", 'rate': 2, 'rate_burst': 0", "services[0].rate_burst: must be between 1 and 1000000, got 0"},
    {BASE ", 'rate_message': 'slow'", "services[0].rate_message: has no effect without rate"},
    {BASE ", 'on_overload': 'drop'",
     "services[0].on_overload: expected \"queue\" or \"reject\", got \"drop\""},
    {BASE ", 'overload_message': 'busy'",
     "services[0].overload_message: has no effect unless on_overload is \"reject\""},
    {BASE ", 'on_overload': 'queue', 'overload_message': 'busy'",
     "services[0].overload_message: has no effect unless on_overload is \"reject\""},
    {BASE ", 'timeout': -1", "services[0].timeout: must be >= 0, got -1"},
    {BASE ", 'timeout': '30s'", "services[0].timeout: expected a number of seconds, got a string"},
    {BASE ", 'timeout': 1e9", "services[0].timeout: must be at most 31536000, got 1000000000"},

    /* essential services */
    {BASE ", 'essential': 1", "services[0].essential: expected true or false, got a number"},
    {BASE ", 'fatal_after': 10", "services[0].fatal_after: has no effect unless essential is true"},
    {BASE ", 'essential': false, 'fatal_after': 10",
     "services[0].fatal_after: has no effect unless essential is true"},
    {BASE ", 'essential': true, 'fatal_after': 0", "services[0].fatal_after: must be > 0, got 0"},
    {BASE ", 'essential': true, 'fatal_after': '1m'",
     "services[0].fatal_after: expected a number of seconds, got a string"},
    {BASE ", 'essental': true", "services[0].essental: unknown key; did you mean \"essential\"?"},

    /* unix socket files */
    {UNIX_BASE ", 'socket_mode': 660",
     "services[0].socket_mode: expected a string of octal digits such as \"0660\", got a number; "
     "quote it: \"660\""},
    {UNIX_BASE ", 'socket_mode': '0866'",
     "services[0].socket_mode: expected 1 to 4 octal digits such as \"0660\", got \"0866\""},
    {UNIX_BASE ", 'socket_mode': '1777'", "services[0].socket_mode: must be at most \"0777\", got \"1777\""},
    {UNIX_BASE ", 'socket_user': 'nosuchuser'", "services[0].socket_user: no such user \"nosuchuser\""},
    {UNIX_BASE ", 'socket_group': 'nogrp'", "services[0].socket_group: no such group \"nogrp\""},
    {UNIX_BASE ", 'socket_group': true",
     "services[0].socket_group: expected a group name or a numeric gid, got a boolean"},
    {BASE ", 'socket_mode': '0666'",
     "services[0].socket_mode: has no effect without a unix:/path listener"},
    {"'name': 't', 'listen': ['unix:@abstract'], 'command': ['/bin/true'], 'socket_group': 0",
     "services[0].socket_group: has no effect without a unix:/path listener"},

    /* protocol and http */
    {BASE ", 'protocol': 'fastcgi'",
     "services[0].protocol: expected \"raw\" or \"cgi\", got \"fastcgi\""},
    {BASE ", 'http': {}", "services[0].http: has no effect unless protocol is \"cgi\""},
    {BASE ", 'protocol': 'raw', 'http': {'max_body': 1}",
     "services[0].http: has no effect unless protocol is \"cgi\""},
    {CGI_BASE ", 'http': 5", "services[0].http: expected an object, got a number"},
    {CGI_BASE ", 'http': {'max_heads': 100}",
     "services[0].http.max_heads: unknown key; did you mean \"max_head\"?"},
    {CGI_BASE ", 'http': {'max_head': 63}",
     "services[0].http.max_head: must be between 64 and 1048576, got 63"},
    {CGI_BASE ", 'http': {'max_fields': 0}",
     "services[0].http.max_fields: must be between 1 and 10000, got 0"},
    {CGI_BASE ", 'http': {'max_body': -1}",
     "services[0].http.max_body: expected a non-negative integer, got -1"},
    {CGI_BASE ", 'http': {'max_body': 2e12}",
     "services[0].http.max_body: must be between 0 and 1099511627776, got 2000000000000"},
    {CGI_BASE ", 'http': {'max_response_head': 100}",
     "services[0].http.max_response_head: must be between 256 and 1048576, got 100"},
    {CGI_BASE ", 'http': {'head_timeout': 0}", "services[0].http.head_timeout: must be > 0, got 0"},
    {CGI_BASE ", 'http': {'idle_timeout': '5'}",
     "services[0].http.idle_timeout: expected a number of seconds, got a string"},
    {CGI_BASE ", 'http': {'server_name': ''}", "services[0].http.server_name: must not be empty"},
    {CGI_BASE ", 'http': {'server_name': 'a b'}",
     "services[0].http.server_name: expected a host name (1 to 255 printable ASCII characters, "
     "no space), got \"a b\""},

    /* PROXY protocol */
    {BASE ", 'proxy_protocol': 'v3', 'proxy_from': ['127.0.0.1']",
     "services[0].proxy_protocol: expected \"v1\", \"v2\" or \"any\", got \"v3\""},
    {BASE ", 'proxy_protocol': 'any'",
     "services[0].proxy_from: missing (required with proxy_protocol)"},
    {BASE ", 'proxy_from': ['10.0.0.0/8']",
     "services[0].proxy_from: has no effect without proxy_protocol"},
    {BASE ", 'proxy_timeout': 2", "services[0].proxy_timeout: has no effect without proxy_protocol"},
    {BASE ", 'proxy_protocol': 'v1', 'proxy_from': []",
     "services[0].proxy_from: expected a non-empty array of CIDR strings (the addresses of the "
     "load balancers), got an empty array"},
    {BASE ", 'proxy_protocol': 'v1', 'proxy_from': ['10.0.0.1/8']",
     "services[0].proxy_from[0]: invalid CIDR \"10.0.0.1/8\": host bits are set beyond /8; did "
     "you mean 10.0.0.0/8?"},
    {PROXY_BASE ", 'proxy_timeout': 0", "services[0].proxy_timeout: must be > 0, got 0"},
    {PROXY_BASE ", 'proxy_timeout': 4000", "services[0].proxy_timeout: must be at most 3600, got 4000"},
    {"'name': 't', 'listen': ['127.0.0.1:0', 'unix:@p'], 'command': ['/bin/true'], "
     "'proxy_protocol': 'v2', 'proxy_from': ['127.0.0.1']",
     "services[0].proxy_protocol: is for TCP listeners only, and listen[1] is a unix socket"},
};

static void test_service_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(service_errors) / sizeof(service_errors[0]); i++)
        expect_service_error(service_errors[i].body, service_errors[i].want);
}

static void test_reserved_env_names(void **state)
{
    static const char *const names[] = {
        "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPCONNNUM",
        "REMOTE_ADDR", "REMOTE_PORT", "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
        "UNIXREMOTEPID", "PSUP_SERVICE", "PSUP_CONN_ID", "PROXYREMOTEIP", "PROXYREMOTEPORT",
        "PROXYAUTHORITY", "PROXYUNIQUEID",
    };
    char body[256], want[128];

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(body, sizeof(body), "%s, 'env': {'%s': 'x'}", BASE, names[i]);
        snprintf(want, sizeof(want), "services[0].env.%s: is set by psup for each connection",
                 names[i]);
        expect_service_error(body, want);
    }
}

static void test_long_messages(void **state)
{
    char body[1200 + sizeof(BASE)];
    char pad[1026];

    (void)state;
    memset(pad, 'x', 1025);
    pad[1025] = '\0';
    snprintf(body, sizeof(body), "%s, 'deny': ['::1'], 'deny_message': '%s'", BASE, pad);
    expect_service_error(body, "services[0].deny_message: must be at most 1024 bytes, got 1025");

    pad[1024] = '\0';
    snprintf(body, sizeof(body), "%s, 'deny': ['::1'], 'deny_message': '%s'", BASE, pad);
    psup_config_unref(must_load(body));
}

static void test_nofile_above_nr_open(void **state)
{
    unsigned long long nr_open = proc_number("/proc/sys/fs/nr_open", 1048576);
    char want[160];

    (void)state;
    snprintf(want, sizeof(want),
             "services[0].rlimits.nofile: the kernel allows at most %llu open files (fs.nr_open)",
             nr_open);
    expect_service_error(BASE ", 'rlimits': {'nofile': 'unlimited'}", want);
}

/* ---- several services, several problems ------------------------------------ */

static void test_cross_service_errors(void **state)
{
    static const char *const want[] = {
        "services[1].listen[0]: 127.0.0.1:7000 is already used by services[0].listen[0]",
        "services[2].name: duplicate service name \"echo\" (also services[0])",
        "services[2].listen[1]: [::1]:7001 is already used by services[1].listen[1]",
        NULL,
    };

    (void)state;
    expect_doc_errors("{'services': ["
                      "{'name': 'echo', 'listen': ['127.0.0.1:7000'], 'command': ['/bin/true']},"
                      "{'name': 'two', 'listen': ['127.0.0.1:7000', '[::1]:7001'], "
                      " 'command': ['/bin/true']},"
                      "{'name': 'echo', 'listen': ['127.0.0.1:0', '[::1]:7001'], "
                      " 'command': ['/bin/true']}]}",
                      want);
}

static void test_port_zero_and_bad_entries_never_clash(void **state)
{
    static const char *const want[] = {
        "services[0].listen[0]: invalid address \"[::ffff:127.0.0.1]:53\": an IPv4-mapped IPv6 "
        "address cannot be bound; write 127.0.0.1:53",
        "services[0].listen[1]: invalid address \"[::ffff:127.0.0.1]:53\": an IPv4-mapped IPv6 "
        "address cannot be bound; write 127.0.0.1:53",
        NULL,
    };
    struct psup_config *cfg;

    (void)state;
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0', '127.0.0.1:0', '[::1]:0', '*:0'], "
                    "'command': ['/bin/true']");
    assert_int_equal(cfg->services[0].n_listen, 4);
    assert_true(cfg->services[0].listen[3].any_family);
    psup_config_unref(cfg);

    expect_doc_errors("{'services': [{'name': 't', 'listen': ['[::ffff:127.0.0.1]:53', "
                      "'[::ffff:127.0.0.1]:53'], 'command': ['/bin/true']}]}",
                      want);
}

/* UDP listeners: the mode they make by default, the receive buffer, and
 * the ports they share with TCP. */
static void test_udp_services(void **state)
{
    struct psup_config *cfg;

    (void)state;
    cfg = must_load("'name': 't', 'listen': ['udp://127.0.0.1:53', 'udp://[::1]:53', "
                    "'udp://*:54', 'udp://127.0.0.1:0'], 'command': ['/bin/cat']");
    assert_int_equal(cfg->services[0].mode, PSUP_MODE_DATAGRAM);
    assert_int_equal(cfg->services[0].recv_buffer, PSUP_RECV_BUFFER_DEFAULT);
    assert_int_equal(cfg->services[0].listen[0].proto, PSUP_PROTO_UDP);
    assert_true(cfg->services[0].listen[2].any_family);
    psup_config_unref(cfg);

    cfg = must_load("'name': 't', 'listen': ['udp://127.0.0.1:53'], 'mode': 'datagram', "
                    "'recv_buffer': 65536, 'max_per_source': 2, 'rate': 10, "
                    "'on_overload': 'reject', 'allow': ['127.0.0.0/8'], 'command': ['/bin/cat']");
    assert_int_equal(cfg->services[0].mode, PSUP_MODE_DATAGRAM);
    assert_int_equal(cfg->services[0].recv_buffer, 65536);
    psup_config_unref(cfg);

    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:53', 'unix:@x'], 'mode': 'accept', "
                    "'command': ['/bin/cat']");
    assert_int_equal(cfg->services[0].mode, PSUP_MODE_ACCEPT);
    psup_config_unref(cfg);

    /* TCP and UDP ports are apart: the same port, wildcards included. */
    struct psup_diag d;
    cfg = parse_doc("{'services': [{'name': 'a', 'listen': ['*:53', '127.0.0.1:54'], "
                    "'command': ['/bin/cat']}, {'name': 'b', 'listen': ['udp://127.0.0.1:53', "
                    "'udp://*:54'], 'command': ['/bin/cat']}]}", &d);
    if (!cfg)
        dump(&d);
    assert_non_null(cfg);
    assert_int_equal(cfg->services[0].mode, PSUP_MODE_ACCEPT);
    assert_int_equal(cfg->services[1].mode, PSUP_MODE_DATAGRAM);
    psup_config_unref(cfg);
    psup_diag_free(&d);
}

static void test_three_problems_three_lines(void **state)
{
    static const char *const want[] = {
        "services[0].pool.max_spare: must be >= min_spare (4)",
        "services[1].pol: unknown key; did you mean \"pool\"?",
        "log_format: expected \"text\" or \"json\", got \"xml\"",
        NULL,
    };

    (void)state;
    expect_doc_errors("{'services': ["
                      "{" BASE ", 'pool': {'min_spare': 4, 'max_spare': 2}},"
                      "{'name': 'u', 'listen': ['127.0.0.1:0'], 'command': ['/bin/true'], "
                      " 'pol': {}}],"
                      " 'log_format': 'xml'}",
                      want);
}

/* Problems come in the order of the file, whatever order the checks run in;
 * a missing key is reported at the end of its object. */
static void test_document_order(void **state)
{
    static const char *const want[] = {
        "log_format: expected \"text\" or \"json\", got \"xml\"",
        "services[0].timeout: must be >= 0, got -1",
        "services[0].env.PROTO: is set by psup for each connection",
        "services[0].name: expected a string, got a number",
        "services[0].pool.max_workers: must be between 1 and 65536, got 0",
        "services[0].listen[0]: invalid address \"foo\": expected HOST:PORT, [IPV6]:PORT, *:PORT "
        "or unix:/path",
        "services[0].command: missing (required)",
        "services[1]: expected an object, got a string",
        "kill_grace: must be > 0, got -2",
        NULL,
    };

    (void)state;
    expect_doc_errors("{'log_format': 'xml', 'services': [{'timeout': -1, 'env': {'PROTO': 'x'},"
                      " 'name': 5, 'pool': {'max_workers': 0}, 'listen': ['foo']}, 'x'],"
                      " 'kill_grace': -2}",
                      want);
}

/* ---- values that load -------------------------------------------------------- */

static void test_full_service_values(void **state)
{
    struct psup_config *cfg = must_load(
        "'name': 'full-1.x', 'listen': ['127.0.0.1:0', 'unix:/tmp/psup-full.sock'],"
        " 'command': ['/bin/echo', 'a b', 'c'], 'backlog': 64,"
        " 'env': {'B': '2', 'A': '1', 'EMPTY': ''}, 'clear_env': true, 'pass_env': ['HOME', 'TERM'],"
        " 'cwd': '/tmp', 'umask': '027', 'nice': 5,"
        " 'rlimits': {'nofile': [1024, 4096], 'core': 0, 'cpu': 'unlimited'},"
        " 'stderr': 'log', 'allow': ['10.0.0.0/8', '::1'], 'deny': ['10.1.0.0/16'],"
        " 'deny_message': 'go away\\n', 'max_per_source': 3, 'per_source_ipv6_prefix': 64,"
        " 'per_source_message': 'too many', 'rate': 2.5, 'rate_message': 'slow down',"
        " 'on_overload': 'reject', 'overload_message': 'busy', 'timeout': 30");
    const struct psup_service_config *s = &cfg->services[0];

    (void)state;
    assert_string_equal(s->name, "full-1.x");
    assert_int_equal(s->n_listen, 2);
    assert_string_equal(s->listen_text[1], "unix:/tmp/psup-full.sock");
    assert_int_equal(s->listen[1].proto, PSUP_PROTO_UNIX);
    assert_string_equal(s->program, "/bin/echo");
    assert_int_equal(s->argc, 3);
    assert_string_equal(s->argv[1], "a b");
    assert_null(s->argv[3]);
    assert_int_equal(s->backlog, 64);
    assert_int_equal(s->n_env, 3);
    assert_string_equal(s->env[0], "B=2");
    assert_string_equal(s->env[1], "A=1");
    assert_string_equal(s->env[2], "EMPTY=");
    assert_true(s->clear_env);
    assert_int_equal(s->n_pass_env, 2);
    assert_string_equal(s->pass_env[1], "TERM");
    assert_string_equal(s->cwd, "/tmp");
    assert_int_equal(s->umask, 027);
    assert_true(s->set_nice);
    assert_int_equal(s->nice, 5);
    assert_int_equal(s->n_rlimits, 3);
    assert_string_equal(s->rlimits[0].name, "nofile");
    assert_int_equal(s->rlimits[0].resource, RLIMIT_NOFILE);
    assert_int_equal(s->rlimits[0].value.rlim_cur, 1024);
    assert_int_equal(s->rlimits[0].value.rlim_max, 4096);
    assert_int_equal(s->rlimits[1].resource, RLIMIT_CORE);
    assert_int_equal(s->rlimits[1].value.rlim_cur, 0);
    assert_int_equal(s->rlimits[1].value.rlim_max, 0);
    assert_string_equal(s->rlimits[2].name, "cpu");
    assert_true(s->rlimits[2].value.rlim_cur == RLIM_INFINITY);
    assert_true(s->rlimits[2].value.rlim_max == RLIM_INFINITY);
    assert_int_equal(s->stderr_mode, PSUP_STDERR_LOG);
    assert_int_equal(s->n_allow, 2);
    assert_int_equal(s->allow[0].prefix, 104);
    assert_int_equal(s->allow[1].prefix, 128);
    assert_int_equal(s->n_deny, 1);
    assert_string_equal(s->deny_message, "go away\n");
    assert_int_equal(s->max_per_source, 3);
    assert_int_equal(s->per_source_ipv6_prefix, 64);
    assert_string_equal(s->per_source_message, "too many");
    assert_true(s->rate == 2.5);
    assert_int_equal(s->rate_burst, 3);
    assert_string_equal(s->rate_message, "slow down");
    assert_int_equal(s->on_overload, PSUP_OVERLOAD_REJECT);
    assert_string_equal(s->overload_message, "busy");
    assert_true(s->timeout == 30);
    psup_config_unref(cfg);
}

static void test_rate_burst(void **state)
{
    static const struct {
        const char *extra;
        unsigned burst;
    } cases[] = {
        {", 'rate': 0.5", 1}, {", 'rate': 1", 1}, {", 'rate': 3", 3},
        {", 'rate': 3.01", 4}, {", 'rate': 0.5, 'rate_burst': 10", 10},
    };
    char body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "%s%s", BASE, cases[i].extra);

        struct psup_config *cfg = must_load(body);
        if (cfg->services[0].rate_burst != cases[i].burst)
            fail_msg("%s: burst %u, expected %u", cases[i].extra, cfg->services[0].rate_burst,
                     cases[i].burst);
        psup_config_unref(cfg);
    }
}

/* spec/config.md, "mode"; spec/wait.md. */
static void test_mode_defaults(void **state)
{
    struct psup_config *cfg = must_load(BASE);
    const struct psup_service_config *s = &cfg->services[0];

    (void)state;
    assert_int_equal(s->mode, PSUP_MODE_ACCEPT);
    assert_int_equal(s->start, PSUP_START_ON_DEMAND);
    assert_int_equal(s->instances, 1);
    psup_config_unref(cfg);

    cfg = must_load(BASE ", 'mode': 'wait'");
    s = &cfg->services[0];
    assert_int_equal(s->mode, PSUP_MODE_WAIT);
    assert_int_equal(s->start, PSUP_START_ON_DEMAND);
    assert_int_equal(s->instances, 1);
    psup_config_unref(cfg);
}

static void test_mode_wait_settings(void **state)
{
    struct psup_config *cfg = must_load(BASE ", 'mode': 'wait', 'start': 'always', "
                                        "'instances': 3, 'timeout': 60, 'backlog': 8, "
                                        "'stderr': 'log'");
    const struct psup_service_config *s = &cfg->services[0];

    (void)state;
    assert_int_equal(s->mode, PSUP_MODE_WAIT);
    assert_int_equal(s->start, PSUP_START_ALWAYS);
    assert_int_equal(s->instances, 3);
    assert_true(s->timeout == 60);
    assert_int_equal(s->backlog, 8);
    psup_config_unref(cfg);
    cfg = must_load(BASE ", 'mode': 'accept'");
    assert_int_equal(cfg->services[0].mode, PSUP_MODE_ACCEPT);
    psup_config_unref(cfg);
}

static void test_mode_errors(void **state)
{
    (void)state;
    expect_service_error(BASE ", 'mode': 'nowait'",
                         "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", got \"nowait\"");
    expect_service_error(BASE ", 'mode': true",
                         "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", got a boolean");
    expect_service_error(BASE ", 'start': 'always'",
                         "services[0].start: has no effect unless mode is \"wait\"");
    expect_service_error(BASE ", 'mode': 'accept', 'instances': 2",
                         "services[0].instances: has no effect unless mode is \"wait\"");
    expect_service_error(BASE ", 'mode': 'wait', 'start': 'later'",
                         "services[0].start: expected \"on_demand\" or \"always\", got \"later\"");
    expect_service_error(BASE ", 'mode': 'wait', 'instances': 0",
                         "services[0].instances: must be between 1 and 65536, got 0");
    expect_service_error(BASE ", 'mode': 'wait', 'instances': 1.5",
                         "services[0].instances: expected a non-negative integer, got 1.5");
    /* A bad value is one problem, not also one of no effect; a bad mode
     * is not also the reason for its start's. */
    expect_service_error(BASE ", 'instances': 0",
                         "services[0].instances: must be between 1 and 65536, got 0");
    expect_service_error(BASE ", 'mode': 'w', 'start': 'always'",
                         "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", got \"w\"");
}

/* What judges single connections, or speaks on them, cannot apply to a
 * server that accepts them itself: each such key is an error at its own
 * path. */
static void test_mode_wait_rejects_per_connection_keys(void **state)
{
    static const char *const keys[] = {
        "'allow': ['10.0.0.0/8']", "allow",
        "'deny': ['10.0.0.0/8']", "deny",
        "'max_per_source': 2", "max_per_source",
        "'per_source_ipv6_prefix': 64", "per_source_ipv6_prefix",
        "'rate': 5", "rate",
        "'on_overload': 'queue'", "on_overload",
        /* What psup would speak on the connection, whatever the value. */
        "'protocol': 'raw'", "protocol",
        "'protocol': 'cgi'", "protocol",
        "'http': {'max_body': 1}", "http",
        "'proxy_protocol': 'v2'", "proxy_protocol",
        "'proxy_from': ['127.0.0.1']", "proxy_from",
        "'proxy_timeout': 1", "proxy_timeout",
    };
    char body[256], want[256];

    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i += 2) {
        snprintf(body, sizeof(body), BASE ", 'mode': 'wait', %s", keys[i]);
        snprintf(want, sizeof(want), "services[0].%s: does not apply in wait mode: the server "
                 "accepts its connections itself, psup never sees them", keys[i + 1]);
        expect_service_error(body, want);
    }
    expect_service_error(BASE ", 'mode': 'wait', 'pool': {'max_workers': 4}",
                         "services[0].pool: does not apply in wait mode: psup starts "
                         "\"instances\" servers, not a pool of workers");
    /* A server is exec'd before its connections already (spec/prestart.md). */
    expect_service_error(BASE ", 'mode': 'wait', 'prestart': true",
                         "services[0].prestart: does not apply in wait mode: a server is one "
                         "long-running program, exec'd before any connection already");
    /* Each key once, with the keys that need it (a message with its
     * limit) reported once each too, in document order. */
    const char *want2[] = {
        "services[0].rate: does not apply in wait mode: the server accepts its connections "
        "itself, psup never sees them",
        "services[0].rate_message: does not apply in wait mode: the server accepts its "
        "connections itself, psup never sees them",
        NULL,
    };
    struct psup_diag d;
    struct psup_config *cfg = parse_service(BASE ", 'mode': 'wait', 'rate': 1, "
                                            "'rate_message': 'no'", &d);
    assert_null(cfg);
    check_lines("rate and rate_message", &d, want2);
    psup_diag_free(&d);
}

/* What psup speaks on a connection it takes (the CGI relay, a PROXY
 * header) cannot apply where it takes none: in wait mode every such key
 * is an error, whatever its value; in datagram mode "cgi" and the PROXY
 * keys are. Each key is one problem, not also one of the checks that
 * would follow it (a relay, a missing proxy_from). */
#define UDP_BASE "'name': 't', 'listen': ['udp://127.0.0.1:0'], 'command': ['/bin/true']"
#define WAIT_APPLY "does not apply in wait mode: the server accepts its connections itself, " \
                   "psup never sees them"
#define DGRAM_PROXY "does not apply in datagram mode: psup reads PROXY headers on TCP " \
                    "connections only"

static void expect_lines(const char *body, const char *const *want)
{
    struct psup_diag d;
    struct psup_config *cfg = parse_service(body, &d);

    if (cfg) {
        psup_config_unref(cfg);
        fail_msg("%s: loaded, expected \"%s\"", body, want[0]);
    }
    check_lines(body, &d, want);
    psup_diag_free(&d);
}

static void test_protocol_and_proxy_keys_by_mode(void **state)
{
    char body[256];

    (void)state;
    /* Each alone: test_mode_wait_rejects_per_connection_keys. Together,
     * one problem each and nothing more (no relay, no proxy_from check). */
    expect_lines(BASE ", 'mode': 'wait', 'protocol': 'cgi', 'http': {'max_head': 1}, "
                 "'proxy_protocol': 'v1', 'proxy_from': ['127.0.0.1'], 'proxy_timeout': 2",
                 (const char *const[]){
                     "services[0].protocol: " WAIT_APPLY, "services[0].http: " WAIT_APPLY,
                     "services[0].proxy_protocol: " WAIT_APPLY,
                     "services[0].proxy_from: " WAIT_APPLY,
                     "services[0].proxy_timeout: " WAIT_APPLY, NULL});

    /* Datagram mode, by its UDP listener or said outright. */
    static const char *const datagram[] = {UDP_BASE, UDP_BASE ", 'mode': 'datagram'"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "%s, 'protocol': 'cgi', 'http': {'max_body': 10}",
                 datagram[i]);
        expect_service_error(body, "services[0].protocol: \"cgi\" does not apply in datagram "
                             "mode: an HTTP request comes on a connection, not in a datagram");
        snprintf(body, sizeof(body), "%s, 'proxy_protocol': 'v2'", datagram[i]);
        expect_service_error(body, "services[0].proxy_protocol: " DGRAM_PROXY);
        snprintf(body, sizeof(body), "%s, 'proxy_protocol': 'v1', 'proxy_from': ['10.0.0.1/8'], "
                 "'proxy_timeout': 0", datagram[i]);
        expect_lines(body, (const char *const[]){"services[0].proxy_protocol: " DGRAM_PROXY,
                                                 "services[0].proxy_from: " DGRAM_PROXY,
                                                 "services[0].proxy_timeout: " DGRAM_PROXY,
                                                 NULL});
        snprintf(body, sizeof(body), "%s, 'proxy_timeout': 3", datagram[i]);
        expect_service_error(body, "services[0].proxy_timeout: " DGRAM_PROXY);
    }
    /* "raw" is what datagram mode does. */
    struct psup_config *cfg = must_load(UDP_BASE ", 'protocol': 'raw'");
    assert_int_equal(cfg->services[0].protocol, PSUP_PROTOCOL_RAW);
    assert_null(cfg->services[0].relay);
    psup_config_unref(cfg);

    /* A mode that is not one is the only problem: the keys are not judged
     * by the mode its listener would give. */
    expect_service_error(UDP_BASE ", 'mode': 'wat', 'proxy_protocol': 'v2', "
                         "'proxy_from': ['127.0.0.1']",
                         "services[0].mode: expected \"accept\", \"datagram\" or \"wait\", "
                         "got \"wat\"");

    /* What a cgi service execs is the relay, which is not prestarted. */
    expect_service_error(CGI_BASE ", 'prestart': true",
                         "services[0].prestart: does not apply to a \"cgi\" service: psup's "
                         "relay, which it execs, is not prestarted; the script runs for each "
                         "request either way");
    cfg = must_load(CGI_BASE ", 'prestart': false");
    assert_false(cfg->services[0].prestart);
    psup_config_unref(cfg);

    /* Accept mode, said outright, takes both. */
    cfg = must_load(CGI_BASE ", 'mode': 'accept', 'proxy_protocol': 'v2', "
                    "'proxy_from': ['127.0.0.1']");
    assert_int_equal(cfg->services[0].protocol, PSUP_PROTOCOL_CGI);
    assert_non_null(cfg->services[0].relay);
    assert_int_equal(cfg->services[0].proxy_protocol, PSUP_PROXY_PROTOCOL_V2);
    psup_config_unref(cfg);
}

static void test_umask_values(void **state)
{
    static const struct {
        const char *text;
        int value;
    } cases[] = {{"0", 0}, {"7", 07}, {"22", 022}, {"022", 022}, {"0027", 027}, {"777", 0777}};
    char body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "%s, 'umask': '%s'", BASE, cases[i].text);

        struct psup_config *cfg = must_load(body);
        assert_int_equal(cfg->services[0].umask, cases[i].value);
        psup_config_unref(cfg);
    }
}

static void test_socket_file_settings(void **state)
{
    struct psup_config *cfg = must_load(UNIX_BASE);

    (void)state;
    assert_int_equal(cfg->services[0].socket_mode, -1);
    assert_int_equal(cfg->services[0].socket_uid, (uid_t)-1);
    assert_int_equal(cfg->services[0].socket_gid, (gid_t)-1);
    psup_config_unref(cfg);

    cfg = must_load(UNIX_BASE ", 'socket_mode': '660', 'socket_user': 0, 'socket_group': 0");
    assert_int_equal(cfg->services[0].socket_mode, 0660);
    if (geteuid() == 0) {
        assert_int_equal(cfg->services[0].socket_uid, 0);
        assert_int_equal(cfg->services[0].socket_gid, 0);
    }
    psup_config_unref(cfg);
}

static void test_socket_owner_needs_root(void **state)
{
    char want[200];

    (void)state;
    if (geteuid() == 0 || geteuid() == 65534)
        skip();
    snprintf(want, sizeof(want), "services[0].socket_user: psup runs as uid %u and cannot give a "
             "socket file to another user; run psup as root or remove socket_user",
             (unsigned)geteuid());
    expect_service_error(UNIX_BASE ", 'socket_user': 65534", want);
}

static void test_shell_command(void **state)
{
    struct psup_config *cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], "
                                        "'command': 'echo hi | tr a-z A-Z'");
    const struct psup_service_config *s = &cfg->services[0];

    (void)state;
    assert_true(s->shell);
    assert_string_equal(s->program, "/bin/sh");
    assert_int_equal(s->argc, 3);
    assert_string_equal(s->argv[0], "sh");
    assert_string_equal(s->argv[1], "-c");
    assert_string_equal(s->argv[2], "echo hi | tr a-z A-Z");
    assert_null(s->argv[3]);
    psup_config_unref(cfg);

    /* Only the program name must be non-empty; an empty argument is one. */
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['/bin/echo', '', 'x']");
    assert_int_equal(cfg->services[0].argc, 3);
    assert_string_equal(cfg->services[0].argv[1], "");
    psup_config_unref(cfg);
}

static void test_relative_paths(void **state)
{
    struct scratch s;
    char old[PATH_MAX], want[PATH_MAX + 32], body[PATH_MAX + 256], msg[PATH_MAX + 128];
    struct psup_config *cfg;

    (void)state;
    scratch_make(&s);
    snprintf(body, sizeof(body), "%s/sub", s.dir);
    assert_int_equal(mkdir(body, 0755), 0);
    scratch_file(&s, "run.sh", 0755);
    scratch_file(&s, "sub/tool", 0755);
    scratch_file(&s, "plain.txt", 0644);

    /* Against cwd when set: stored absolute, argv[0] as written. */
    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], 'cwd': '%s', "
             "'command': ['./run.sh', 'x']", s.dir);
    cfg = must_load(body);
    snprintf(want, sizeof(want), "%s/run.sh", s.dir);
    assert_string_equal(cfg->services[0].program, want);
    assert_string_equal(cfg->services[0].argv[0], "./run.sh");
    assert_string_equal(cfg->services[0].cwd, s.dir);
    psup_config_unref(cfg);

    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], 'cwd': '%s', "
             "'command': ['sub/tool']", s.dir);
    cfg = must_load(body);
    snprintf(want, sizeof(want), "%s/sub/tool", s.dir);
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], 'cwd': '%s', "
             "'command': ['./plain.txt']", s.dir);
    snprintf(msg, sizeof(msg), "services[0].command[0]: %s/plain.txt is not executable "
             "(Permission denied)", s.dir);
    expect_service_error(body, msg);

    /* Without cwd, against psup's working directory; a relative cwd too. */
    assert_non_null(getcwd(old, sizeof(old)));
    assert_int_equal(chdir(s.dir), 0);
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['sub/tool']");
    snprintf(want, sizeof(want), "%s/sub/tool", s.dir);
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'cwd': 'sub', "
                    "'command': ['./tool']");
    snprintf(want, sizeof(want), "%s/sub", s.dir);
    assert_string_equal(cfg->services[0].cwd, want);
    snprintf(want, sizeof(want), "%s/sub/tool", s.dir);
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    /* An unusable cwd is one problem, not one more for the program too. */
    snprintf(msg, sizeof(msg), "services[0].cwd: %s/nope does not exist", s.dir);
    expect_service_error("'name': 't', 'listen': ['127.0.0.1:0'], 'cwd': 'nope', "
                         "'command': ['./tool']",
                         msg);
    assert_int_equal(chdir(old), 0);
    scratch_remove(&s);
}

/* ---- PATH lookup ---------------------------------------------------------------- */

struct saved_path {
    char *value;
};

static void save_path(struct saved_path *p)
{
    const char *v = getenv("PATH");

    p->value = v ? strdup(v) : NULL;
}

static void restore_path(struct saved_path *p)
{
    if (p->value)
        setenv("PATH", p->value, 1);
    else
        unsetenv("PATH");
    free(p->value);
}

static void test_path_lookup(void **state)
{
    struct saved_path saved;
    struct scratch a, b;
    char path[300], body[600], want[400];
    struct psup_config *cfg;

    (void)state;
    save_path(&saved);
    scratch_make(&a);
    scratch_make(&b);
    scratch_file(&a, "psup-prog", 0644); /* found first, but not executable */
    scratch_file(&b, "psup-prog", 0755);
    scratch_file(&b, "psup-only-b", 0755);

    /* psup's own PATH: the first executable match wins, argv[0] is kept. */
    snprintf(path, sizeof(path), "%s:%s:/usr/bin", a.dir, b.dir);
    setenv("PATH", path, 1);
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['psup-prog', '-x']");
    snprintf(want, sizeof(want), "%s/psup-prog", b.dir);
    assert_string_equal(cfg->services[0].program, want);
    assert_string_equal(cfg->services[0].argv[0], "psup-prog");
    psup_config_unref(cfg);

    /* Only a non-executable match: that file is named. */
    setenv("PATH", a.dir, 1);
    snprintf(want, sizeof(want), "services[0].command[0]: %s/psup-prog is not executable "
             "(Permission denied)", a.dir);
    expect_service_error("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['psup-prog']", want);

    /* env.PATH is the handler's PATH, so it is the one searched. */
    setenv("PATH", "/nonexistent-psup", 1);
    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], "
             "'command': ['psup-only-b'], 'env': {'PATH': '%s'}", b.dir);
    cfg = must_load(body);
    snprintf(want, sizeof(want), "%s/psup-only-b", b.dir);
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    /* clear_env without PATH in pass_env: the default PATH, not psup's. */
    setenv("PATH", b.dir, 1);
    expect_service_error("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['psup-only-b'], "
                         "'clear_env': true",
                         "services[0].command[0]: program \"psup-only-b\" not found in PATH "
                         "(/usr/local/bin:/usr/bin:/bin)");
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['psup-only-b'], "
                    "'clear_env': true, 'pass_env': ['PATH']");
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    /* An empty entry is the handler's working directory. */
    setenv("PATH", ":/nonexistent-psup", 1);
    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], "
             "'command': ['psup-only-b'], 'cwd': '%s'", b.dir);
    cfg = must_load(body);
    assert_string_equal(cfg->services[0].program, want);
    psup_config_unref(cfg);

    /* No PATH at all: the default. */
    unsetenv("PATH");
    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'command': ['true']");
    if (strcmp(cfg->services[0].program, "/usr/local/bin/true") != 0 &&
        strcmp(cfg->services[0].program, "/usr/bin/true") != 0)
        fail_msg("true resolved to %s", cfg->services[0].program);
    psup_config_unref(cfg);

    restore_path(&saved);
    scratch_remove(&a);
    scratch_remove(&b);
}

/* ---- users and groups ------------------------------------------------------------ */

static void test_user_nobody(void **state)
{
    const struct passwd *pw = getpwnam("nobody");
    struct psup_config *cfg;

    (void)state;
    if (geteuid() != 0 || !pw)
        skip();

    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char *home = strdup(pw->pw_dir);

    cfg = must_load(BASE ", 'user': 'nobody'");
    const struct psup_service_config *s = &cfg->services[0];
    assert_true(s->set_ids);
    assert_int_equal(s->uid, uid);
    assert_int_equal(s->gid, gid);
    assert_string_equal(s->user_name, "nobody");
    assert_string_equal(s->user_home, home);
    assert_true(s->n_groups >= 1);

    bool has_primary = false;
    for (size_t i = 0; i < s->n_groups; i++)
        has_primary = has_primary || s->groups[i] == gid;
    assert_true(has_primary);
    psup_config_unref(cfg);

    /* The same by number. */
    cfg = must_load(BASE ", 'user': 65534");
    assert_int_equal(cfg->services[0].uid, 65534);
    assert_string_equal(cfg->services[0].user_name, "nobody");
    psup_config_unref(cfg);
    free(home);
}

static void test_user_and_group(void **state)
{
    const struct group *gr = getgrnam("nogroup");
    struct psup_config *cfg;

    (void)state;
    if (geteuid() != 0 || !gr || !getpwnam("nobody"))
        skip();

    gid_t nogroup = gr->gr_gid;
    cfg = must_load(BASE ", 'user': 'nobody', 'group': 'nogroup', 'supplementary_groups': false");
    assert_true(cfg->services[0].set_ids);
    assert_int_equal(cfg->services[0].gid, nogroup);
    assert_int_equal(cfg->services[0].n_groups, 1);
    assert_int_equal(cfg->services[0].groups[0], nogroup);
    psup_config_unref(cfg);

    /* group alone: psup's uid, that group only. */
    cfg = must_load(BASE ", 'group': 'nogroup'");
    assert_true(cfg->services[0].set_ids);
    assert_int_equal(cfg->services[0].uid, 0);
    assert_int_equal(cfg->services[0].gid, nogroup);
    assert_int_equal(cfg->services[0].n_groups, 1);
    assert_null(cfg->services[0].user_name);
    psup_config_unref(cfg);

    /* A uid without a passwd entry, with a group: no name, no home. */
    cfg = must_load(BASE ", 'user': 4000000001, 'group': 65534");
    assert_true(cfg->services[0].set_ids);
    assert_int_equal(cfg->services[0].uid, 4000000001u);
    assert_int_equal(cfg->services[0].gid, 65534);
    assert_null(cfg->services[0].user_name);
    assert_null(cfg->services[0].user_home);
    assert_int_equal(cfg->services[0].n_groups, 1);
    psup_config_unref(cfg);
}

static void test_unprivileged_switch(void **state)
{
    char want[200];

    (void)state;
    if (geteuid() == 0 || geteuid() == 65534)
        skip();
    snprintf(want, sizeof(want), "services[0].user: psup runs as uid %u and cannot switch to "
             "uid 65534 (\"nobody\"); run psup as root or remove user", (unsigned)geteuid());
    expect_service_error(BASE ", 'user': 'nobody'", want);

    if (getegid() == 65534 || !getgrgid(65534))
        return;
    snprintf(want, sizeof(want), "services[0].group: psup runs as gid %u and cannot switch to "
             "gid 65534 (\"%s\"); run psup as root or remove group", (unsigned)getegid(),
             getgrgid(65534)->gr_name);
    expect_service_error(BASE ", 'group': 65534", want);
}

static void test_unprivileged_same_user(void **state)
{
    const struct passwd *pw = getpwuid(geteuid());
    char body[300];

    (void)state;
    if (geteuid() == 0 || !pw)
        skip();
    snprintf(body, sizeof(body), "%s, 'user': %u, 'supplementary_groups': false", BASE,
             (unsigned)geteuid());

    /* Only the uid and the primary group can be compared without root;
     * psup's own supplementary groups may differ, so accept either. */
    struct psup_diag d;
    struct psup_config *cfg = parse_service(body, &d);
    if (cfg)
        assert_false(cfg->services[0].set_ids);
    psup_config_unref(cfg);
    psup_diag_free(&d);
}

static void test_unprivileged_limits(void **state)
{
    struct rlimit cur;
    char body[300], want[200];

    (void)state;
    if (geteuid() == 0)
        skip();

    /* Lowering a hard limit is always allowed; only core dumps of this
     * test process are affected. */
    assert_int_equal(getrlimit(RLIMIT_CORE, &cur), 0);
    if (cur.rlim_max == RLIM_INFINITY || cur.rlim_max > 1000) {
        cur.rlim_cur = cur.rlim_max = 1000;
        assert_int_equal(setrlimit(RLIMIT_CORE, &cur), 0);
    }
    snprintf(body, sizeof(body), "%s, 'rlimits': {'core': [0, %llu]}", BASE,
             (unsigned long long)cur.rlim_max + 1);
    snprintf(want, sizeof(want), "services[0].rlimits.core: cannot raise the hard limit above "
             "%llu without root", (unsigned long long)cur.rlim_max);
    expect_service_error(body, want);

    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    if (nice_now > -20) {
        snprintf(body, sizeof(body), "%s, 'nice': %d", BASE, nice_now - 1);
        snprintf(want, sizeof(want), "services[0].nice: cannot lower the nice value below %d "
                 "without root", nice_now);
        expect_service_error(body, want);
    }
}

/* ---- suggestions, describe, references, files -------------------------------- */

/* ---- the admin endpoint ----------------------------------------------------- */

static void test_admin_values(void **state)
{
    struct psup_diag d;
    struct psup_config *cfg;

    (void)state;
    cfg = must_load(BASE);
    assert_int_equal(cfg->admin.n_listen, 0); /* no endpoint by default */
    assert_int_equal(cfg->admin.max_clients, 32);
    assert_int_equal(cfg->admin.socket_mode, 0600);
    psup_config_unref(cfg);

    cfg = parse_doc("{'services': [{" BASE "}], 'admin': {'listen': ['127.0.0.1:0', "
                    "'unix:/run/psup/admin.sock', '[::1]:0'], 'max_clients': 4}}",
                    &d);
    assert_non_null(cfg);
    assert_int_equal(cfg->admin.n_listen, 3);
    assert_string_equal(cfg->admin.listen_text[1], "unix:/run/psup/admin.sock");
    assert_int_equal(cfg->admin.listen[1].proto, PSUP_PROTO_UNIX);
    assert_int_equal(cfg->admin.max_clients, 4);
    assert_int_equal(cfg->admin.socket_mode, 0600);
    assert_int_equal(cfg->admin.socket_uid, (uid_t)-1);
    assert_int_equal(cfg->admin.socket_gid, (gid_t)-1);
    psup_config_unref(cfg);
    psup_diag_free(&d);

    cfg = parse_doc("{'services': [{" BASE "}], 'admin': {'listen': ['unix:/run/a.sock'], "
                    "'socket_mode': '0660'}}",
                    &d);
    assert_non_null(cfg);
    assert_int_equal(cfg->admin.socket_mode, 0660);
    psup_config_unref(cfg);
    psup_diag_free(&d);
}

/* --check warns about admin addresses as about a service's. */
static void test_admin_warnings(void **state)
{
    struct psup_diag d;
    struct psup_config *cfg;

    (void)state;
    cfg = parse_doc("{'services': [{" BASE "}], 'admin': {'listen': ['127.0.0.1:0', "
                    "'unix:/nonexistent-psup/admin.sock']}}",
                    &d);
    assert_non_null(cfg);
    psup_diag_free(&d);
    psup_diag_init(&d);
    assert_int_equal(psup_config_warn(cfg, &d), 1);
    assert_string_equal(d.items[0], "admin.listen[1]: the directory /nonexistent-psup does not "
                                    "exist: the socket cannot be created");
    psup_diag_free(&d);
    psup_config_unref(cfg);
}

static void test_admin_errors(void **state)
{
    static const struct {
        const char *doc, *want[3];
    } cases[] = {
        {"{'services': [{" BASE "}], 'admin': ['127.0.0.1:9100']}",
         {"admin: expected an object with a \"listen\" array, got an array"}},
        {"{'services': [{" BASE "}], 'admin': {}}", {"admin.listen: missing (required)"}},
        {"{'services': [{" BASE "}], 'admin': {'lisen': ['127.0.0.1:9100']}}",
         {"admin.lisen: unknown key; did you mean \"listen\"?", "admin.listen: missing (required)"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': []}}",
         {"admin.listen: expected a non-empty array of addresses, got an empty array"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['localhost']}}",
         {"admin.listen[0]: invalid address \"localhost\": expected HOST:PORT, [IPV6]:PORT, "
          "*:PORT or unix:/path"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': [9100]}}",
         {"admin.listen[0]: expected a string, got a number"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['udp://127.0.0.1:9100']}}",
         {"admin.listen[0]: the admin endpoint speaks HTTP: use a TCP or unix: address"}},
        {"{'services': [{'name': 't', 'listen': ['127.0.0.1:7000'], 'command': ['/bin/true']}], "
         "'admin': {'listen': ['localhost:7000']}}",
         {"admin.listen[0]: 127.0.0.1:7000 is already used by services[0].listen[0]"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['unix:/tmp/psup-unit-admin.sock', '127.0.0.1:0', "
         "'unix:/tmp/psup-unit-admin.sock']}}",
         {"admin.listen[2]: unix:/tmp/psup-unit-admin.sock is already used by admin.listen[0]"}},
        {"{'services': [{'name': 't', 'listen': ['127.0.0.1:9100'], 'command': ['/bin/true']}], "
         "'admin': {'listen': ['*:9100']}}",
         {"admin.listen[0]: *:9100 overlaps services[0].listen[0] (127.0.0.1:9100): the kernel "
          "does not bind a wildcard address beside another of its family on the same port"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['127.0.0.1:9100'], 'max_clients': 0}}",
         {"admin.max_clients: must be between 1 and 1024, got 0"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['127.0.0.1:9100'], "
         "'max_clients': 'many'}}",
         {"admin.max_clients: expected a non-negative integer, got a string"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['127.0.0.1:9100', 'unix:@abstract'], "
         "'socket_mode': '0660'}}",
         {"admin.socket_mode: has no effect without a unix:/path listener"}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['unix:/run/a.sock'], "
         "'socket_mode': 660}}",
         {"admin.socket_mode: expected a string of octal digits such as \"0660\", got a number; "
          "quote it: \"660\""}},
        {"{'services': [{" BASE "}], 'admin': {'listen': ['unix:/run/a.sock'], "
         "'socket_group': 'no-such-group-here'}}",
         {"admin.socket_group: no such group \"no-such-group-here\""}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_doc_errors(cases[i].doc, cases[i].want);
}

static void test_suggest(void **state)
{
    static const char *const keys[] = {
        "name", "listen", "command", "pool", "cwd", "user", "supplementary_groups",
        "per_source_ipv6_prefix", "max_per_source", "timeout", "as", NULL,
    };
    static const struct {
        const char *unknown, *want;
    } cases[] = {
        {"pol", "pool"}, {"nam", "name"}, {"Name", "name"}, {"lisen", "listen"},
        {"comand", "command"}, {"commands", "command"}, {"max-per-source", "max_per_source"},
        {"supplementary_group", "supplementary_groups"},
        {"suplementary_grops", "supplementary_groups"},
        {"per_source_ipv6_prefx", "per_source_ipv6_prefix"},
        {"per_source_v6_prefix", "per_source_ipv6_prefix"},
        {"usr", "user"}, {"a", "as"},
        /* Long names allow a third of their length: 4 and 3 edits. */
        {"supplemntary_grp", "supplementary_groups"},
        {"per_src_ipv6_prefix", "per_source_ipv6_prefix"},
        {"cwdxyz", NULL}, /* 3 edits from a short name is too far */
        {"frobnicate", NULL}, {"xy", NULL}, {"", NULL}, {"zzzzzzz", NULL},
        {"ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = psup_config_suggest(cases[i].unknown, keys);
        if ((got == NULL) != (cases[i].want == NULL) ||
            (got && strcmp(got, cases[i].want) != 0))
            fail_msg("\"%s\": suggested %s, expected %s", cases[i].unknown, got ? got : "nothing",
                     cases[i].want ? cases[i].want : "nothing");
    }
}

static void test_describe(void **state)
{
    struct psup_config *cfg;
    char buf[512];

    (void)state;
    cfg = must_load("'name': 'echo', 'listen': ['127.0.0.1:7000', '[::1]:7000'], "
                    "'command': ['/bin/cat']");
    psup_config_describe(&cfg->services[0], buf, sizeof(buf));
    assert_string_equal(buf, "echo: listen 127.0.0.1:7000 [::1]:7000; command /bin/cat; "
                             "pool 4..16, max 256");

    /* A short buffer is cut, never overrun. */
    memset(buf, 'x', sizeof(buf));
    psup_config_describe(&cfg->services[0], buf, 10);
    assert_string_equal(buf, "echo: lis");
    assert_int_equal(buf[10], 'x');
    psup_config_unref(cfg);

    cfg = must_load("'name': 'sh', 'listen': ['unix:/tmp/psup-d.sock'], 'command': 'date -u',"
                    " 'pool': {'max_workers': 8}, 'timeout': 30, 'rate': 2.5,"
                    " 'max_per_source': 2, 'deny': ['10.0.0.0/8'], 'prestart': true");
    psup_config_describe(&cfg->services[0], buf, sizeof(buf));
    assert_string_equal(buf, "sh: listen unix:/tmp/psup-d.sock; command /bin/sh -c \"date -u\"; "
                             "pool 4..8, max 8; 0 allow, 1 deny rules; max 2 per source; "
                             "rate 2.5/s; timeout 30s; prestart");
    psup_config_unref(cfg);

    cfg = must_load("'name': 'u', 'listen': ['udp://*:5353'], 'command': ['/bin/cat']");
    psup_config_describe(&cfg->services[0], buf, sizeof(buf));
    assert_string_equal(buf, "u: listen udp://*:5353; command /bin/cat; pool 4..16, max 256; "
                             "a handler per datagram");
    psup_config_unref(cfg);

    cfg = must_load(BASE ", 'essential': true");
    psup_config_describe(&cfg->services[0], buf, sizeof(buf));
    assert_non_null(strstr(buf, "; essential, fatal after 30s"));
    psup_config_unref(cfg);
}

/* essential alone waits the default 30 s; fatal_after says otherwise. */
static void test_essential_values(void **state)
{
    struct psup_config *cfg = must_load(BASE ", 'essential': true");

    (void)state;
    assert_true(cfg->services[0].essential);
    assert_true(cfg->services[0].fatal_after == 30);
    psup_config_unref(cfg);
    cfg = must_load(BASE ", 'essential': true, 'fatal_after': 2.5");
    assert_true(cfg->services[0].fatal_after == 2.5);
    psup_config_unref(cfg);
}

static void test_describe_user(void **state)
{
    struct psup_config *cfg;
    char buf[512];

    (void)state;
    if (geteuid() != 0 || !getpwnam("nobody"))
        skip();
    cfg = must_load("'name': 'e', 'listen': ['127.0.0.1:7000'], 'command': ['/bin/cat', '-u'],"
                    " 'user': 'nobody'");
    psup_config_describe(&cfg->services[0], buf, sizeof(buf));
    assert_string_equal(buf, "e: listen 127.0.0.1:7000; command /bin/cat -u; pool 4..16, max 256; "
                             "user nobody");
    psup_config_unref(cfg);
}

static void test_references(void **state)
{
    struct psup_config *cfg = must_load(BASE);

    (void)state;
    assert_ptr_equal(psup_config_ref(cfg), cfg);
    assert_int_equal(cfg->refs, 2);
    psup_config_unref(cfg);
    assert_int_equal(cfg->refs, 1);
    psup_config_unref(cfg); /* freed: the sanitizer build checks the rest */
    psup_config_unref(NULL);
}

static void test_load_files(void **state)
{
    struct scratch s;
    char path[PATH_MAX], want[PATH_MAX + 64];
    struct psup_diag d;
    struct psup_config *cfg;
    FILE *fp;

    (void)state;
    psup_diag_init(&d);
    assert_null(psup_config_load("/nonexistent-psup/services.json", &d));
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0],
                        "cannot read /nonexistent-psup/services.json: No such file or directory");
    psup_diag_free(&d);

    assert_null(psup_config_load("/", &d));
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0], "cannot read /: Is a directory");
    psup_diag_free(&d);

    scratch_make(&s);
    snprintf(path, sizeof(path), "%s/ok.json", s.dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"services\": [{\"name\": \"t\", \"listen\": [\"127.0.0.1:0\"], "
          "\"command\": [\"/bin/true\"]}]}\n", fp);
    fclose(fp);
    cfg = psup_config_load(path, &d);
    assert_non_null(cfg);
    assert_int_equal(d.count, 0);
    psup_config_unref(cfg);

    /* The origin of a file's own problems is its path. */
    snprintf(path, sizeof(path), "%s/empty.json", s.dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(psup_config_load(path, &d));
    snprintf(want, sizeof(want), "%s: empty file, expected a JSON object", path);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0], want);
    psup_diag_free(&d);
    scratch_remove(&s);
}

/* ---- issue 9: hardening ----------------------------------------------------------- */

/* The loader must be linear: a file of 10 times more keys, services or
 * addresses must cost about 10 times more, not 100 (an "env" of 100000
 * keys once took 30 s, during which a reload blocked the supervisor).
 * Measured in CPU time, the best of three, against a factor of 25: a
 * linear loader gives 8 to 13 here (sanitizers on), the quadratic one
 * gave 50 to 100, and a busy machine does not make the process's own CPU
 * time grow by a factor of 2. */
typedef int (*make_item)(char *buf, size_t size, size_t i);

struct doc_shape {
    const char *head;
    make_item item; /* the i-th element, joined with ", " */
    const char *tail;
};

static int env_key(char *buf, size_t size, size_t i)
{
    return snprintf(buf, size, "\"K%zu\": \"v\"", i);
}

static int listen_addr(char *buf, size_t size, size_t i)
{
    return snprintf(buf, size, "\"unix:@t%zu\"", i);
}

static int minimal_service(char *buf, size_t size, size_t i)
{
    return snprintf(buf, size, "{\"name\": \"s%zu\", \"listen\": [\"unix:@s%zu\"], "
                    "\"command\": \"x\"}", i, i);
}

static const struct doc_shape env_keys = {
    "{\"services\": [{\"name\": \"t\", \"listen\": [\"127.0.0.1:0\"], \"command\": "
    "[\"/bin/true\"], \"env\": {", env_key, "}}]}"};
static const struct doc_shape listen_addrs = {
    "{\"services\": [{\"name\": \"t\", \"command\": [\"/bin/true\"], \"listen\": [",
    listen_addr, "]}]}"};
static const struct doc_shape services = {"{\"services\": [", minimal_service, "]}"};

/* head, n items, tail. */
static char *make_doc(const struct doc_shape *shape, size_t n)
{
    size_t size = 128 + 96 * n, len;
    char *doc = malloc(size);

    assert_non_null(doc);
    len = (size_t)snprintf(doc, size, "%s", shape->head);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(doc + len, size - len, "%s", i ? ", " : "");
        len += (size_t)shape->item(doc + len, size - len, i);
    }
    snprintf(doc + len, size - len, "%s", shape->tail);
    return doc;
}

static double cpu_seconds(void)
{
    struct timespec ts;

    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The best of three loads of a document of n items, in CPU seconds. */
static double load_cost(const struct doc_shape *shape, size_t n)
{
    char *doc = make_doc(shape, n);
    double best = 1e9;

    for (int round = 0; round < 3; round++) {
        struct psup_diag d;
        double t0 = cpu_seconds();

        psup_diag_init(&d);
        struct psup_config *cfg = psup_config_parse(doc, strlen(doc), "t.json", &d);
        double t = cpu_seconds() - t0;
        if (!cfg) {
            dump(&d);
            fail_msg("the generated file of %zu entries did not load", n);
        }
        psup_config_unref(cfg);
        psup_diag_free(&d);
        best = t < best ? t : best;
    }
    free(doc);
    return best;
}

static void test_load_time_grows_linearly(void **state)
{
    static const struct {
        const char *what;
        const struct doc_shape *shape;
        size_t n;
    } cases[] = {
        {"env keys", &env_keys, 5000},
        {"listen addresses", &listen_addrs, 5000},
        {"services", &services, 2000},
    };
    bool linear = true;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double small = load_cost(cases[i].shape, cases[i].n);
        double large = load_cost(cases[i].shape, 10 * cases[i].n);
        print_message("    %zu %s: %.4f s, %zu: %.4f s (x%.1f)\n", cases[i].n, cases[i].what,
                      small, 10 * cases[i].n, large, large / small);
        linear = linear && large < 25 * small;
    }
    if (!linear)
        fail_msg("10 times more cost more than 25 times more: the loader is not linear");
}

/* RFC 8259 and UTF-8, as spec/config.md promises: cJSON alone accepts raw
 * control characters and invalid UTF-8 in strings, cuts a string at
 * \u0000, and skips any byte up to 0x20 as white space. */
static void test_strings_are_checked(void **state)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"{'services': [{" BASE ", 'deny': ['10.0.0.0/8\\u0000junk']}]}",
         "services[0].deny[0]: contains \\u0000, which would cut the string short"},
        {"{'services': [{" BASE ", 'user': 'root\\u0000x'}]}",
         "services[0].user: contains \\u0000, which would cut the string short"},
        {"{'services': [{" BASE ", 'cwd': '/tmp\\u0000/x'}]}",
         "services[0].cwd: contains \\u0000, which would cut the string short"},
        {"{'services': [{" BASE ", 'env': {'A\\u0000B': 'x'}}]}",
         "services[0].env[\"A\\u0000B\"]: contains \\u0000, which would cut the key short"},
        {"{'services': [{" BASE ", 'env': {'A': 'x\x1b[31m'}}]}",
         "services[0].env.A: unescaped control character U+001B at line 1, column 97 "
         "(write \\u001b)"},
        {"{'services': [{" BASE ", 'env': {'A\tB': 'x'}}]}",
         "services[0].env[\"A\\tB\"]: unescaped control character U+0009 in the key at line 1, "
         "column 92 (write \\u0009)"},
        {"{'services': [{" BASE ",\n 'deny_message': 'a\xff'}]}",
         "services[0].deny_message: invalid UTF-8 (byte 0xFF) at line 2, column 20"},
        {"{'services': [{" BASE ", 'env': {'\xc3\x28': 'x'}}]}",
         "services[0].env[\"\\xc3(\"]: invalid UTF-8 in the key (byte 0xC3) at line 1, column 91"},
        {"{'services': [{" BASE ", 'env': {'A': '\xed\xa0\x80'}}]}", /* a surrogate */
         "services[0].env.A: invalid UTF-8 (byte 0xED) at line 1, column 96"},
        {"{'services': [{" BASE ", 'env': {'A': '\xc0\xaf'}}]}", /* overlong '/' */
         "services[0].env.A: invalid UTF-8 (byte 0xC0) at line 1, column 96"},
        {"{'services': [\x0b{" BASE "}]}", "t.json: invalid JSON at line 1, column 15"},
        {"{'services': [{" BASE ", 'backlog': 01}]}", "t.json: invalid JSON at line 1, column 94"},
        {"{'services': [{" BASE ", 'timeout': 1.}]}", "t.json: invalid JSON at line 1, column 95"},
        {"{'services': [{" BASE ", 'timeout': -01}]}", "t.json: invalid JSON at line 1, column 95"},
        /* A syntax error is the only problem, as for cJSON's own. */
        {"{'services': [{" BASE ", 'user': 'a\x01', 'timeout': 1.e5}]}",
         "t.json: invalid JSON at line 1, column 109"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *want[] = {cases[i].want, NULL};
        expect_doc_errors(cases[i].doc, want);
    }

    /* Every string with a problem is named, in document order. */
    static const char *const several[] = {
        "services[0].name: contains \\u0000, which would cut the string short",
        "services[0].command[1]: invalid UTF-8 (byte 0x80) at line 1, column 88",
        "$schema: unescaped control character U+0007 at line 1, column 108 (write \\u0007)",
        NULL,
    };
    expect_doc_errors("{'services': [{'name': 'a\\u0000', 'listen': ['127.0.0.1:0'], "
                      "'command': ['/bin/true', '\x80']}], '$schema': 'x\x07'}",
                      several);

    /* Escaped, all of them are fine where a string may hold them. */
    struct psup_config *cfg = must_load(BASE ", 'deny': ['::1'], 'deny_message': "
                                        "'no\\r\\n\\u001b\\u00e9\\ud83d\\ude00'");
    assert_string_equal(cfg->services[0].deny_message, "no\r\n\x1b\xc3\xa9\xf0\x9f\x98\x80");
    psup_config_unref(cfg);
    cfg = must_load(BASE ", 'timeout': 0.5e1, 'backlog': 10, 'nice': -0");
    assert_true(cfg->services[0].timeout == 5.0);
    psup_config_unref(cfg);
}

/* A value is quoted with escapes in a message: no control character or
 * quote of the file reaches a terminal or breaks the message's quoting. */
static void test_values_in_messages_are_escaped(void **state)
{
    char body[600], longname[400];

    (void)state;
    expect_service_error("'name': 'a\\u001b[31mb', 'listen': ['127.0.0.1:0'], "
                         "'command': ['/bin/true']",
                         "services[0].name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, "
                         "got \"a\\u001b[31mb\"");
    expect_service_error(BASE ", 'user': 'x\\\"y\\n'",
                         "services[0].user: no such user \"x\\\"y\\n\"");
    expect_service_error(BASE ", 'cwd': '/nonexistent\\tdir'",
                         "services[0].cwd: /nonexistent\\tdir does not exist");

    /* A long value is cut, and says so. */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(body, sizeof(body), BASE ", 'umask': '%s'", longname);
    struct psup_diag d;
    assert_null(parse_service(body, &d));
    assert_int_equal(d.count, 1);
    const char *got = strstr(d.items[0], "got \"");
    assert_non_null(got);
    assert_int_equal(strlen(got), strlen("got ") + 256 - 1);
    assert_string_equal(got + strlen(got) - 6, "xx\"...");
    psup_diag_free(&d);
}

static void test_unbindable_addresses(void **state)
{
    static const struct {
        const char *addr, *want;
    } cases[] = {
        {"unix:/", "invalid address \"unix:/\": the path names a directory, not a socket file"},
        {"unix:/tmp/", "invalid address \"unix:/tmp/\": the path names a directory, not a socket "
                       "file"},
        {"unix:.", "invalid address \"unix:.\": the path names a directory, not a socket file"},
        {"unix:/tmp/..", "invalid address \"unix:/tmp/..\": the path names a directory, not a "
                         "socket file"},
        {"unix:@", "invalid address \"unix:@\": the abstract socket name after @ is empty"},
        {"unix:/tmp", "unix:/tmp exists and is a directory, not a socket; psup removes only a "
                      "stale socket"},
        {"unix:/etc/passwd", "unix:/etc/passwd exists and is a regular file, not a socket; psup "
                             "removes only a stale socket"},
        {"[::ffff:127.0.0.1]:7000", "invalid address \"[::ffff:127.0.0.1]:7000\": an IPv4-mapped "
                                    "IPv6 address cannot be bound; write 127.0.0.1:7000"},
    };
    char body[256], want[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "'name': 't', 'listen': ['%s'], 'command': ['/bin/true']",
                 cases[i].addr);
        snprintf(want, sizeof(want), "services[0].listen[0]: %s", cases[i].want);
        expect_service_error(body, want);
    }
    psup_config_unref(must_load("'name': 't', 'listen': ['unix:@a', 'unix:/tmp/psup-a/x.sock',"
                                " 'unix:.x', 'unix:..x', '[::1]:7000', '[::]:7001'], "
                                "'command': ['/bin/true']"));
}

/* The kernel does not bind a wildcard beside another address of its
 * family on the same port: certain from the file alone, so an error. */
static void test_overlapping_addresses(void **state)
{
    static const struct {
        const char *a, *b;
        bool overlap;
    } cases[] = {
        {"*:7000", "127.0.0.1:7000", true},
        {"127.0.0.1:7000", "*:7000", true},
        {"*:7000", "[::1]:7000", true},
        {"0.0.0.0:7000", "127.0.0.1:7000", true},
        {"[::]:7000", "[::1]:7000", true},
        {"0.0.0.0:7000", "*:7000", true},
        {"[::]:7000", "127.0.0.1:7000", false},
        {"[::]:7000", "0.0.0.0:7000", false},
        {"[::1]:7000", "127.0.0.1:7000", false},
        {"127.0.0.1:7000", "127.0.0.2:7000", false},
        {"*:7000", "127.0.0.1:7001", false},
        {"*:0", "127.0.0.1:0", false},
    };
    char doc[512], want[600];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(doc, sizeof(doc), "{'services': [{'name': 'a', 'listen': ['%s'], 'command': "
                 "['/bin/true']}, {'name': 'b', 'listen': ['unix:@x', '%s'], 'command': "
                 "['/bin/true']}]}", cases[i].a, cases[i].b);
        if (!cases[i].overlap) {
            struct psup_diag d;
            struct psup_config *cfg = parse_doc(doc, &d);
            if (!cfg) {
                dump(&d);
                fail_msg("%s beside %s: expected to load", cases[i].a, cases[i].b);
            }
            psup_config_unref(cfg);
            psup_diag_free(&d);
            continue;
        }

        struct psup_addr a, b;
        const char *why;
        char ta[PSUP_ADDR_STRLEN], tb[PSUP_ADDR_STRLEN];
        assert_int_equal(psup_addr_parse(cases[i].a, &a, &why), 0);
        assert_int_equal(psup_addr_parse(cases[i].b, &b, &why), 0);
        psup_addr_format(&a, ta, sizeof(ta));
        psup_addr_format(&b, tb, sizeof(tb));
        snprintf(want, sizeof(want), "services[1].listen[1]: %s overlaps services[0].listen[0] "
                 "(%s): the kernel does not bind a wildcard address beside another of its "
                 "family on the same port", tb, ta);
        const char *lines[] = {want, NULL};
        expect_doc_errors(doc, lines);
    }

    /* The first of several is named; a problem is reported once. */
    static const char *const want3[] = {
        "services[0].listen[2]: *:7000 overlaps services[0].listen[0] (127.0.0.1:7000): the "
        "kernel does not bind a wildcard address beside another of its family on the same port",
        "services[0].listen[3]: 127.0.0.1:7000 is already used by services[0].listen[0]",
        NULL,
    };
    expect_doc_errors("{'services': [{'name': 'a', 'listen': ['127.0.0.1:7000', "
                      "'[::1]:7000', '*:7000', 'localhost:7000', '*:7001'], "
                      "'command': ['/bin/true']}]}",
                      want3);
}

static void alarm_fails(int sig)
{
    (void)sig;
    fail_msg("psup_config_load blocked");
}

/* Loading path fails with exactly one problem, want. */
static void expect_load_problem(const char *path, const char *want)
{
    struct psup_diag d;

    psup_diag_init(&d);
    assert_null(psup_config_load(path, &d));
    assert_int_equal(d.count, 1);
    assert_string_equal(d.items[0], want);
    psup_diag_free(&d);
}

static void test_load_refuses_what_is_not_a_regular_file(void **state)
{
    struct scratch s;
    char path[PATH_MAX], want[PATH_MAX + 128];
    struct psup_diag d;
    FILE *fp;

    (void)state;
    scratch_make(&s);
    snprintf(path, sizeof(path), "%s/fifo.json", s.dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    /* open() of a FIFO without a writer would wait for ever. */
    signal(SIGALRM, alarm_fails);
    alarm(10);
    snprintf(want, sizeof(want), "cannot read %s: not a regular file (a FIFO)", path);
    expect_load_problem(path, want);
    alarm(0);
    expect_load_problem("/dev/null", "cannot read /dev/null: not a regular file (a character "
                                     "device)");

    /* At most 1 MiB: one more byte is too much. */
    snprintf(path, sizeof(path), "%s/big.json", s.dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"services\": [{\"name\": \"t\", \"listen\": [\"127.0.0.1:0\"], "
          "\"command\": [\"/bin/true\"]}]}", fp);
    for (long n = ftell(fp); n < (1L << 20); n++)
        fputc(' ', fp);
    fclose(fp);
    psup_diag_init(&d);
    struct psup_config *cfg = psup_config_load(path, &d);
    assert_non_null(cfg);
    psup_config_unref(cfg);
    psup_diag_free(&d);
    fp = fopen(path, "a");
    assert_non_null(fp);
    fputc('\n', fp);
    fclose(fp);
    snprintf(want, sizeof(want), "cannot read %s: larger than 1048576 bytes (1 MiB), the most "
             "psup reads", path);
    expect_load_problem(path, want);
    scratch_remove(&s);
}

/* A reload keeps a service's workers only if nothing resolved at load
 * changed either: here a new program earlier on PATH. */
static void test_same_service_compares_what_was_resolved(void **state)
{
    struct scratch a, b;
    char body[600];
    struct psup_config *one, *two, *three;

    (void)state;
    scratch_make(&a);
    scratch_make(&b);
    scratch_file(&b, "psup-prog", 0755);
    snprintf(body, sizeof(body), "'name': 't', 'listen': ['127.0.0.1:0'], "
             "'command': ['psup-prog'], 'env': {'PATH': '%s:%s'}", a.dir, b.dir);
    one = must_load(body);
    two = must_load(body);
    assert_true(psup_config_service_same(&one->services[0], &two->services[0]));
    scratch_file(&a, "psup-prog", 0755);
    three = must_load(body);
    assert_string_equal(one->services[0].canonical, three->services[0].canonical);
    assert_false(psup_config_service_same(&one->services[0], &three->services[0]));
    psup_config_unref(one);
    psup_config_unref(two);
    psup_config_unref(three);
    scratch_remove(&a);
    scratch_remove(&b);
}

static void expect_argv(char *const *argv, size_t argc, const char *const *want)
{
    size_t n = 0;

    while (want[n])
        n++;
    for (size_t i = 0; i < argc; i++)
        print_message("    argv[%zu] = %s\n", i, argv[i]);
    assert_int_equal(argc, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[n]);
}

/* The relay's argv is built at load, whole: the http keys as the relay's
 * options of the same names, the timeout and kill_grace in milliseconds,
 * then the command with its program as resolved. */
static void test_cgi_relay_argv(void **state)
{
    static const char *const full[] = {
        "psup-cgi", "--max-head=4096", "--max-fields=20", "--max-body=0",
        "--max-response-head=512", "--head-timeout=0.250", "--idle-timeout=0.001",
        "--server-name=app.example", "--timeout=2.500", "--kill-grace=0.500", "--",
        "/bin/echo", "a b", "", NULL,
    };
    static const char *const minimal[] = {
        "psup-cgi", "--kill-grace=2.000", "--", "/bin/sh", "-c", "echo hi", NULL,
    };
    struct psup_diag d;
    (void)state;
    struct psup_config *cfg = parse_doc(
        "{'kill_grace': 0.5, 'services': [{'name': 't', 'listen': ['127.0.0.1:0'], "
        "'protocol': 'cgi', 'command': ['echo', 'a b', ''], 'env': {'PATH': '/bin'}, "
        "'timeout': 2.5, 'http': {'max_head': 4096, 'max_fields': 20, 'max_body': 0, "
        "'max_response_head': 512, 'head_timeout': 0.25, 'idle_timeout': 0.0001, "
        "'server_name': 'app.example'}}]}", &d);

    if (!cfg)
        dump(&d);
    assert_non_null(cfg);
    const struct psup_service_config *s = &cfg->services[0];
    assert_int_equal(s->protocol, PSUP_PROTOCOL_CGI);
    assert_string_equal(s->relay, TEST_RELAY);
    assert_string_equal(s->program, "/bin/echo");
    expect_argv(s->relay_argv, s->relay_argc, full);
    psup_config_unref(cfg);
    psup_diag_free(&d);

    cfg = must_load("'name': 't', 'listen': ['127.0.0.1:0'], 'protocol': 'cgi', "
                    "'command': 'echo hi'");
    s = &cfg->services[0];
    expect_argv(s->relay_argv, s->relay_argc, minimal);
    psup_config_unref(cfg);

    cfg = must_load(BASE ", 'protocol': 'raw'");
    assert_int_equal(cfg->services[0].protocol, PSUP_PROTOCOL_RAW);
    assert_null(cfg->services[0].relay);
    assert_null(cfg->services[0].relay_argv);
    psup_config_unref(cfg);
}

/* psup-cgi is part of psup: without it a cgi service cannot run. */
static void test_cgi_relay_must_be_there(void **state)
{
    struct scratch sc;
    char path[PATH_MAX], want[PATH_MAX + 100];

    (void)state;
    psup_config_set_cgi_relay("/nonexistent-psup/lib/psup/psup-cgi");
    expect_service_error(CGI_BASE, "services[0].protocol: \"cgi\" needs psup's CGI relay, and "
                         "/nonexistent-psup/lib/psup/psup-cgi does not exist");
    scratch_make(&sc);
    scratch_file(&sc, "psup-cgi", 0644);
    snprintf(path, sizeof(path), "%s/psup-cgi", sc.dir);
    psup_config_set_cgi_relay(path);
    snprintf(want, sizeof(want), "services[0].protocol: \"cgi\" needs psup's CGI relay, and %s "
             "is not executable (Permission denied)", path);
    expect_service_error(CGI_BASE, want);
    scratch_remove(&sc);
    psup_config_set_cgi_relay(NULL);
    expect_service_error(CGI_BASE, "services[0].protocol: \"cgi\" needs psup's CGI relay, "
                         "psup-cgi, which psup finds beside its own binary, and psup could not "
                         "read its own path (/proc/self/exe)");
    /* A raw service does not need it. */
    psup_config_unref(must_load(BASE));
    psup_config_set_cgi_relay(TEST_RELAY);
}

/* A change of kill_grace changes a cgi service (its relay's argv), not a
 * raw one: a reload gives the cgi service new workers. */
static void test_same_cgi_service_compares_the_relay_argv(void **state)
{
    struct psup_diag d;
    (void)state;
    const char *doc[] = {
        "{'kill_grace': 1, 'services': [{" CGI_BASE "}, {'name': 'r', 'listen': ['127.0.0.1:0'], "
        "'command': ['/bin/true']}]}",
        "{'kill_grace': 3, 'services': [{" CGI_BASE "}, {'name': 'r', 'listen': ['127.0.0.1:0'], "
        "'command': ['/bin/true']}]}",
    };
    struct psup_config *one = parse_doc(doc[0], &d), *two;

    psup_diag_free(&d);
    two = parse_doc(doc[1], &d);
    psup_diag_free(&d);
    assert_non_null(one);
    assert_non_null(two);
    assert_string_equal(one->services[0].canonical, two->services[0].canonical);
    assert_false(psup_config_service_same(&one->services[0], &two->services[0]));
    assert_true(psup_config_service_same(&one->services[1], &two->services[1]));
    psup_config_unref(one);
    one = parse_doc(doc[1], &d);
    psup_diag_free(&d);
    assert_true(psup_config_service_same(&one->services[0], &two->services[0]));
    psup_config_unref(one);
    psup_config_unref(two);
}

static void test_proxy_settings(void **state)
{
    (void)state;
    struct psup_config *cfg = must_load(BASE);
    assert_int_equal(cfg->services[0].proxy_protocol, PSUP_PROXY_PROTOCOL_NONE);
    psup_config_unref(cfg);

    cfg = must_load(BASE ", 'proxy_protocol': 'any', 'proxy_from': ['10.0.0.0/8', '::1']");
    const struct psup_service_config *s = &cfg->services[0];
    assert_int_equal(s->proxy_protocol, PSUP_PROXY_PROTOCOL_ANY);
    assert_int_equal(s->n_proxy_from, 2);
    assert_int_equal(s->proxy_from[0].prefix, 96 + 8);
    assert_int_equal(s->proxy_timeout_ms, 5000);
    psup_config_unref(cfg);

    cfg = must_load(BASE ", 'proxy_protocol': 'v1', 'proxy_from': ['127.0.0.1'], "
                    "'proxy_timeout': 0.0001");
    assert_int_equal(cfg->services[0].proxy_protocol, PSUP_PROXY_PROTOCOL_V1);
    assert_int_equal(cfg->services[0].proxy_timeout_ms, 1);
    psup_config_unref(cfg);

    cfg = must_load(PROXY_BASE ", 'proxy_timeout': 2.5");
    assert_int_equal(cfg->services[0].proxy_protocol, PSUP_PROXY_PROTOCOL_V2);
    assert_int_equal(cfg->services[0].proxy_timeout_ms, 2500);
    psup_config_unref(cfg);
}

/* ---- prestart (spec/prestart.md) ---------------------------------------- */

/* glibc's dynamic loader: what psup's own binary names. */
#if defined(__aarch64__)
#define GLIBC_LOADER "/lib/ld-linux-aarch64.so.1"
#else
#define GLIBC_LOADER "/lib64/ld-linux-x86-64.so.2"
#endif

/* Go's build ID note: name "Go", type 4, a 4-byte description. */
static const unsigned char go_note_bytes[] = {3, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0,
                                              'G', 'o', 0, 0, 'a', 'b', 'c', 'd'};

/* An ELF file of class cls with one program header: PT_INTERP naming
 * interp, or a PT_LOAD when interp is NULL (a static program); with go, a
 * second one, a PT_NOTE holding Go's build ID note. */
static void elf_file_go(const struct scratch *s, const char *name, unsigned char cls,
                        const char *interp, mode_t mode, bool go)
{
    char path[PATH_MAX];
    Elf64_Ehdr h = {.e_type = ET_DYN, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                    .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
                    .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = go ? 2 : 1};
    Elf64_Phdr ph = {.p_type = interp ? PT_INTERP : PT_LOAD,
                     .p_offset = sizeof(h) + 2 * sizeof(ph) + sizeof(go_note_bytes),
                     .p_filesz = interp ? strlen(interp) + 1 : 0};
    Elf64_Phdr note = {.p_type = PT_NOTE, .p_offset = sizeof(h) + 2 * sizeof(ph),
                       .p_filesz = sizeof(go_note_bytes)};

    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = cls;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
#if defined(__aarch64__)
    h.e_machine = EM_AARCH64;
#endif
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fwrite(&h, sizeof(h), 1, fp);
    fwrite(&ph, sizeof(ph), 1, fp);
    fwrite(&note, sizeof(note), 1, fp); /* past e_phnum without go */
    fwrite(go_note_bytes, sizeof(go_note_bytes), 1, fp);
    if (interp)
        fwrite(interp, strlen(interp) + 1, 1, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static void elf_file(const struct scratch *s, const char *name, unsigned char cls,
                     const char *interp, mode_t mode)
{
    elf_file_go(s, name, cls, interp, mode, false);
}

static void text_file(const struct scratch *s, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, 0755), 0);
}

/* prestart on dir/name: the error at services[0].prestart, or NULL to load. */
static void expect_prestart(const struct scratch *s, const char *name, const char *error)
{
    /* Room for the longest error a test builds (a path and a sentence). */
    char body[600], want[PATH_MAX + 400];

    snprintf(body, sizeof(body), BASE_NAMED "'command': ['%s/%s'], 'prestart': true", s->dir, name);
    if (!error) {
        psup_config_unref(must_load(body));
        return;
    }
    snprintf(want, sizeof(want), "services[0].prestart: %s", error);
    expect_service_error(body, want);
}

#define SECURE ": the dynamic loader runs it in secure-execution mode and ignores psup's " \
               "library (LD_PRELOAD)"

/* What the dynamic loader cannot reach is refused at load, with why. */
static void test_prestart_refuses_what_the_library_cannot_reach(void **state)
{
    struct scratch s;
    char text[PATH_MAX + 300];

    (void)state;
    scratch_make(&s);
    elf_file(&s, "static", ELFCLASS64, NULL, 0755);
    snprintf(text, sizeof(text), "%s/static is statically linked: no dynamic loader runs in it "
             "to load psup's library (LD_PRELOAD)", s.dir);
    expect_prestart(&s, "static", text);
    /* A script whose interpreter is static, directly or through another. */
    char script[PATH_MAX + 16];
    snprintf(script, sizeof(script), "#!%s/static -x\n", s.dir);
    text_file(&s, "script", script);
    expect_prestart(&s, "script", text);
    snprintf(script, sizeof(script), "#! %s/script\n", s.dir);
    text_file(&s, "script2", script);
    expect_prestart(&s, "script2", text);

    elf_file(&s, "wide", ELFCLASS32, "/lib/ld-linux.so.2", 0755);
    snprintf(text, sizeof(text), "%s/wide is built for another machine or word size than psup: "
             "psup's library cannot be loaded into it", s.dir);
    expect_prestart(&s, "wide", text);
    elf_file(&s, "musl", ELFCLASS64, "/lib/ld-musl-x86_64.so.1", 0755);
    snprintf(text, sizeof(text), "%s/musl is run by the dynamic loader /lib/ld-musl-x86_64.so.1, "
             "not psup's: psup's library is built for psup's C library", s.dir);
    expect_prestart(&s, "musl", text);
    elf_file(&s, "setuid", ELFCLASS64, NULL, 04755);
    snprintf(text, sizeof(text), "%s/setuid is set-user-ID" SECURE, s.dir);
    expect_prestart(&s, "setuid", text);
    elf_file(&s, "setgid", ELFCLASS64, NULL, 02755);
    snprintf(text, sizeof(text), "%s/setgid is set-group-ID" SECURE, s.dir);
    expect_prestart(&s, "setgid", text);
    /* A script run by a set-ID interpreter: the loader ignores LD_PRELOAD
     * for the interpreter, so for the script too. */
    snprintf(script, sizeof(script), "#!%s/setgid\n", s.dir);
    text_file(&s, "setgid-script", script);
    expect_prestart(&s, "setgid-script", text);
    /* Go: for psup's loader, but it reads the environment of its start. */
    elf_file_go(&s, "go", ELFCLASS64, GLIBC_LOADER, 0755, true);
    snprintf(text, sizeof(text), "%s/go is a Go program: Go reads its environment where the "
             "process started, not from the C library, and would never see the connection's",
             s.dir);
    expect_prestart(&s, "go", text);
    elf_file_go(&s, "not-go", ELFCLASS64, GLIBC_LOADER, 0755, false);
    expect_prestart(&s, "not-go", NULL);
    text_file(&s, "data", "just text\n");
    snprintf(text, sizeof(text), "%s/data is neither an ELF program nor a script: psup cannot "
             "tell that its library would be loaded", s.dir);
    expect_prestart(&s, "data", text);
    text_file(&s, "relative", "#!sh\n");
    snprintf(text, sizeof(text), "the interpreter of %s/relative, \"sh\", is not an absolute path",
             s.dir);
    expect_prestart(&s, "relative", text);
    scratch_remove(&s);
}

static void test_prestart_accepts_dynamic_programs_and_scripts(void **state)
{
    struct scratch s;

    (void)state;
    scratch_make(&s);
    text_file(&s, "sh-script", "#!/bin/sh\necho\n");
    expect_prestart(&s, "sh-script", NULL);
    text_file(&s, "env-script", "#! /usr/bin/env sh\necho\n");
    expect_prestart(&s, "env-script", NULL);
    psup_config_unref(must_load(BASE_NAMED "'command': 'echo hi', 'prestart': true"));
    psup_config_unref(must_load(BASE_NAMED "'command': ['cat'], 'prestart': false"));
    scratch_remove(&s);
}

/* A prestarted program runs the file that was there at its exec: a new
 * file under the same name makes the service changed on reload. */
static void test_prestart_program_replaced_on_disk_is_a_change(void **state)
{
    struct scratch s;
    char body[600], from[PATH_MAX], to[PATH_MAX];
    struct psup_config *one, *two, *three;

    (void)state;
    scratch_make(&s);
    text_file(&s, "prog", "#!/bin/sh\necho\n");
    snprintf(body, sizeof(body), BASE_NAMED "'command': ['%s/prog'], 'prestart': true", s.dir);
    /* The script is read per connection; what is exec'd is /bin/sh. */
    one = must_load(body);
    text_file(&s, "prog", "#!/bin/sh\necho changed\n");
    two = must_load(body);
    assert_true(psup_config_service_same(&one->services[0], &two->services[0]));
    /* Now the program itself is replaced: a copy of /bin/sh. */
    snprintf(body, sizeof(body), BASE_NAMED "'command': ['%s/sh'], 'prestart': true", s.dir);
    snprintf(from, sizeof(from), "cp /bin/sh '%s/sh'", s.dir);
    assert_int_equal(system(from), 0);
    psup_config_unref(one);
    psup_config_unref(two);
    one = must_load(body);
    two = must_load(body);
    assert_true(psup_config_service_same(&one->services[0], &two->services[0]));
    snprintf(to, sizeof(to), "cp /bin/sh '%s/sh.new' && mv '%s/sh.new' '%s/sh'", s.dir, s.dir,
             s.dir);
    assert_int_equal(system(to), 0);
    three = must_load(body);
    assert_false(psup_config_service_same(&one->services[0], &three->services[0]));
    psup_config_unref(one);
    psup_config_unref(two);
    psup_config_unref(three);
    scratch_remove(&s);
}

/* A broken file is reported from its first 100 problems: checking the rest
 * could cost a slow failed look-up for each of thousands of services. */
static void test_stops_after_100_problems(void **state)
{
    char *doc = malloc(64 + 40 * 150), want[64];
    size_t len = 0;
    struct psup_diag d;

    (void)state;
    assert_non_null(doc);
    len += (size_t)sprintf(doc + len, "{\"services\": [");
    for (int i = 0; i < 150; i++)
        len += (size_t)sprintf(doc + len, "%s{\"name\": \"s%d\"}", i ? ", " : "", i);
    sprintf(doc + len, "]}");
    psup_diag_init(&d);
    assert_null(psup_config_parse(doc, strlen(doc), "t.json", &d));
    assert_int_equal(d.count, 101);
    assert_string_equal(d.items[0], "services[0].listen: missing (required)");
    snprintf(want, sizeof(want), "services[49].command: missing (required)");
    assert_string_equal(d.items[99], want);
    assert_string_equal(d.items[100], "t.json: more problems not checked: psup stops after 100");
    psup_diag_free(&d);
    free(doc);
}

/* Whether this process has a capability in its effective set. */
static bool cfg_has_capability(int cap)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long caps = 0;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(fp);
    return caps >> cap & 1;
}

static void test_warnings(void **state)
{
    struct psup_config *cfg;
    struct psup_diag d;

    (void)state;
    cfg = must_load("'name': 't', 'listen': ['unix:/nonexistent-psup/x.sock', 'unix:@x', "
                    "'unix:/tmp/psup-x.sock', 'unix:/etc/passwd/x.sock'], 'command': ['/bin/true']");
    psup_diag_init(&d);
    assert_int_equal(psup_config_warn(cfg, &d), 2);
    assert_int_equal(d.count, 2);
    assert_string_equal(d.items[0], "services[0].listen[0]: the directory /nonexistent-psup "
                                    "does not exist: the socket cannot be created");
    assert_string_equal(d.items[1], "services[0].listen[3]: /etc/passwd is not a directory: the "
                                    "socket cannot be created");
    psup_diag_free(&d);
    psup_config_unref(cfg);

    /* A receive buffer above net.core.rmem_max: said once per service,
     * unless psup may force it (CAP_NET_ADMIN, which root has). */
    unsigned long long rmem_max = proc_number("/proc/sys/net/core/rmem_max", 212992);
    bool net_admin = cfg_has_capability(12 /* CAP_NET_ADMIN */);
    cfg = must_load("'name': 't', 'listen': ['udp://127.0.0.1:0', 'udp://[::1]:0'], "
                    "'recv_buffer': 1073741824, 'command': ['/bin/true']");
    psup_diag_init(&d);
    assert_int_equal(psup_config_warn(cfg, &d), net_admin ? 0 : 1);
    if (!net_admin) {
        char want[300];
        snprintf(want, sizeof(want), "services[0].listen[0]: recv_buffer 1073741824 is above "
                 "net.core.rmem_max (%llu) and psup lacks CAP_NET_ADMIN: the kernel will give "
                 "%llu bytes (raise the sysctl, or run psup as root)", rmem_max, rmem_max);
        assert_string_equal(d.items[0], want);
    }
    psup_diag_free(&d);
    psup_config_unref(cfg);
}

/* ---- spec/examples ------------------------------------------------------------------ */

/* The source tree: PSUP_SOURCE_DIR, else three levels above this file. */
static void examples_dir(char *out, size_t size)
{
    const char *env = getenv("PSUP_SOURCE_DIR");

    if (env) {
        snprintf(out, size, "%s/spec/examples", env);
        return;
    }
    snprintf(out, size, "%s", __FILE__);
    char *cut = strstr(out, "tests/unit/test_config.c");
    assert_non_null(cut);
    snprintf(cut, size - (size_t)(cut - out), "spec/examples");
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;

    if (!fp)
        return NULL;
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Lines of an .errors file, NULL-terminated; blank lines are ignored. */
static char **split_lines(char *text)
{
    size_t n = 0;
    char **lines = calloc(strlen(text) + 2, sizeof(char *));

    assert_non_null(lines);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        lines[n++] = line;
    return lines;
}

static void check_example(const char *dir, const char *name, unsigned *n_valid,
                          unsigned *n_invalid)
{
    char path[PATH_MAX], errors_path[PATH_MAX];
    size_t len, elen;
    struct psup_diag d;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(errors_path, sizeof(errors_path), "%.*s.errors", (int)(strlen(path) - 5),
                 path) >= (int)sizeof(errors_path))
        fail_msg("%s: path too long", name);

    char *text = read_all(path, &len);
    char *errors = read_all(errors_path, &elen);
    assert_non_null(text);
    psup_diag_init(&d);

    struct psup_config *cfg = psup_config_parse(text, len, name, &d);
    if (errors) {
        char **want = split_lines(errors);
        if (cfg)
            fail_msg("%s: loaded, expected the problems in its .errors file", name);
        check_lines(name, &d, (const char *const *)want);
        free(want);
        (*n_invalid)++;
    } else if (!cfg && geteuid() != 0 && d.count == 1 && strstr(d.items[0], "run psup as root")) {
        print_message("    %s: needs root, not checked\n", name);
    } else {
        if (!cfg) {
            dump(&d);
            fail_msg("%s: expected a valid configuration", name);
        }
        (*n_valid)++;
    }
    psup_config_unref(cfg);
    psup_diag_free(&d);
    free(text);
    free(errors);
}

static void test_spec_examples(void **state)
{
    char dir[PATH_MAX];
    unsigned n_valid = 0, n_invalid = 0;
    struct dirent *e;
    DIR *dp;

    (void)state;
    examples_dir(dir, sizeof(dir));
    dp = opendir(dir);
    if (!dp)
        fail_msg("cannot open %s", dir);
    while ((e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0)
            check_example(dir, e->d_name, &n_valid, &n_invalid);
    }
    closedir(dp);

    /* The set must not silently shrink to nothing. */
    assert_true(n_valid >= 2);
    assert_true(n_invalid >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_text_with_nul_is_not_json),
        cmocka_unit_test(test_top_level_errors),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_essential_values),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_pool_derivation),
        cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_reserved_env_names),
        cmocka_unit_test(test_long_messages),
        cmocka_unit_test(test_nofile_above_nr_open),
        cmocka_unit_test(test_cross_service_errors),
        cmocka_unit_test(test_port_zero_and_bad_entries_never_clash),
        cmocka_unit_test(test_udp_services),
        cmocka_unit_test(test_three_problems_three_lines),
        cmocka_unit_test(test_document_order),
        cmocka_unit_test(test_full_service_values),
        cmocka_unit_test(test_rate_burst),
        cmocka_unit_test(test_mode_defaults),
        cmocka_unit_test(test_mode_wait_settings),
        cmocka_unit_test(test_mode_errors),
        cmocka_unit_test(test_mode_wait_rejects_per_connection_keys),
        cmocka_unit_test(test_protocol_and_proxy_keys_by_mode),
        cmocka_unit_test(test_umask_values),
        cmocka_unit_test(test_socket_file_settings),
        cmocka_unit_test(test_socket_owner_needs_root),
        cmocka_unit_test(test_shell_command),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_path_lookup),
        cmocka_unit_test(test_user_nobody),
        cmocka_unit_test(test_user_and_group),
        cmocka_unit_test(test_unprivileged_switch),
        cmocka_unit_test(test_unprivileged_same_user),
        cmocka_unit_test(test_unprivileged_limits),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_describe_user),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_load_time_grows_linearly),
        cmocka_unit_test(test_strings_are_checked),
        cmocka_unit_test(test_values_in_messages_are_escaped),
        cmocka_unit_test(test_unbindable_addresses),
        cmocka_unit_test(test_overlapping_addresses),
        cmocka_unit_test(test_load_refuses_what_is_not_a_regular_file),
        cmocka_unit_test(test_same_service_compares_what_was_resolved),
        cmocka_unit_test(test_prestart_refuses_what_the_library_cannot_reach),
        cmocka_unit_test(test_prestart_accepts_dynamic_programs_and_scripts),
        cmocka_unit_test(test_prestart_program_replaced_on_disk_is_a_change),
        cmocka_unit_test(test_stops_after_100_problems),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_admin_values),
        cmocka_unit_test(test_admin_errors),
        cmocka_unit_test(test_admin_warnings),
        cmocka_unit_test(test_cgi_relay_argv),
        cmocka_unit_test(test_cgi_relay_must_be_there),
        cmocka_unit_test(test_same_cgi_service_compares_the_relay_argv),
        cmocka_unit_test(test_proxy_settings),
    };

    psup_config_set_cgi_relay(TEST_RELAY);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
