/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/policy/env.c against spec/handler.md, "Environment":
 * psup's environment or, with clear_env, only pass_env; minus the names psup
 * sets per connection, the ones meant for psup itself, other servers'
 * per-connection names and every PSUP_*; minus HOME, USER, LOGNAME with
 * `user`; plus `env` (which wins); plus the user's HOME, USER, LOGNAME unless
 * `env` sets them; plus PSUP_SERVICE. The reserved names are written out
 * here from the spec, not taken from lib/proto/envnames.c, so that the two
 * lists are checked against each other.
 *
 * malloc and calloc are wrapped (tests/CMakeLists.txt) so that a test can
 * make each allocation fail in turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/env.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);

/* The allocation that fails: 1 the first, 0 none. */
static unsigned fail_at;
static unsigned allocations;

static bool allocation_fails(void)
{
    return fail_at && ++allocations == fail_at;
}

void *__wrap_malloc(size_t size)
{
    return allocation_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return allocation_fails() ? NULL : __real_calloc(n, size);
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static size_t list_len(const char *const *l)
{
    size_t n = 0;

    while (l && l[n])
        n++;
    return n;
}

struct env_case {
    const char *what;
    const char *const *environ; /* psup's environment */
    bool clear_env;
    const char *const *pass_env;
    const char *const *env;     /* the service's `env`, in file order */
    const char *user;           /* user_name; NULL without `user` */
    const char *home;           /* user_home */
    const char *const *want;    /* the whole base environment, any order */
};

static const struct env_case cases[] = {
    {"psup's environment is inherited", LIST("A=1", "B=2"), false, NONE, NONE, NULL, NULL,
     LIST("A=1", "B=2", "PSUP_SERVICE=svc")},
    {"no environment at all", NULL, false, NONE, NONE, NULL, NULL, LIST("PSUP_SERVICE=svc")},
    {"empty values and values with = are kept whole", LIST("E=", "Q=a=b=c"), false, NONE, NONE,
     NULL, NULL, LIST("E=", "Q=a=b=c", "PSUP_SERVICE=svc")},
    {"an entry without = is dropped", LIST("NOEQUALS", "A=1"), false, NONE, NONE, NULL, NULL,
     LIST("A=1", "PSUP_SERVICE=svc")},

    {"clear_env keeps nothing", LIST("A=1", "B=2"), true, NONE, NONE, NULL, NULL,
     LIST("PSUP_SERVICE=svc")},
    {"clear_env keeps what pass_env names", LIST("A=1", "B=2", "C=3"), true, LIST("A", "C"),
     NONE, NULL, NULL, LIST("A=1", "C=3", "PSUP_SERVICE=svc")},
    {"pass_env skips a name psup does not have", LIST("A=1"), true, LIST("A", "MISSING"), NONE,
     NULL, NULL, LIST("A=1", "PSUP_SERVICE=svc")},
    {"pass_env names whole names, not prefixes", LIST("PATH=/bin", "PATHX=1", "PAT=2"), true,
     LIST("PATH"), NONE, NULL, NULL, LIST("PATH=/bin", "PSUP_SERVICE=svc")},
    {"pass_env is case-sensitive", LIST("path=/x", "PATH=/bin"), true, LIST("PATH"), NONE, NULL,
     NULL, LIST("PATH=/bin", "PSUP_SERVICE=svc")},

    {"env is added", LIST("A=1"), false, NONE, LIST("X=1", "Y=2"), NULL, NULL,
     LIST("A=1", "X=1", "Y=2", "PSUP_SERVICE=svc")},
    {"env wins over the inherited value", LIST("A=1", "B=2"), false, NONE, LIST("A=9"), NULL,
     NULL, LIST("A=9", "B=2", "PSUP_SERVICE=svc")},
    {"env wins over pass_env", LIST("A=1"), true, LIST("A"), LIST("A=9"), NULL, NULL,
     LIST("A=9", "PSUP_SERVICE=svc")},
    {"env with clear_env", LIST("A=1"), true, NONE, LIST("X="), NULL, NULL,
     LIST("X=", "PSUP_SERVICE=svc")},
    {"env may set a PSUP_ name psup does not use", LIST("PSUP_MODE=inherited"), false, NONE,
     LIST("PSUP_MODE=set"), NULL, NULL, LIST("PSUP_MODE=set", "PSUP_SERVICE=svc")},

    {"without user, HOME USER LOGNAME are inherited", LIST("HOME=/root", "USER=root",
     "LOGNAME=root"), false, NONE, NONE, NULL, NULL,
     LIST("HOME=/root", "USER=root", "LOGNAME=root", "PSUP_SERVICE=svc")},
    {"user replaces HOME USER LOGNAME", LIST("HOME=/root", "USER=root", "LOGNAME=root", "A=1"),
     false, NONE, NONE, "nobody", "/nonexistent",
     LIST("A=1", "HOME=/nonexistent", "USER=nobody", "LOGNAME=nobody", "PSUP_SERVICE=svc")},
    {"user sets them when psup has none", NULL, false, NONE, NONE, "www", "/var/www",
     LIST("HOME=/var/www", "USER=www", "LOGNAME=www", "PSUP_SERVICE=svc")},
    {"user: pass_env cannot bring root's HOME back", LIST("HOME=/root", "USER=root"), true,
     LIST("HOME", "USER"), NONE, "nobody", "/nonexistent",
     LIST("HOME=/nonexistent", "USER=nobody", "LOGNAME=nobody", "PSUP_SERVICE=svc")},
    {"user: env wins over the user's HOME", LIST("HOME=/root"), false, NONE,
     LIST("HOME=/srv"), "nobody", "/nonexistent",
     LIST("HOME=/srv", "USER=nobody", "LOGNAME=nobody", "PSUP_SERVICE=svc")},
    {"user: env wins over USER and LOGNAME", NULL, false, NONE,
     LIST("USER=svc", "LOGNAME=svc"), "nobody", "/nonexistent",
     LIST("USER=svc", "LOGNAME=svc", "HOME=/nonexistent", "PSUP_SERVICE=svc")},
    {"user without a home: HOME is not inherited either", LIST("HOME=/root"), false, NONE,
     NONE, "ghost", NULL, LIST("USER=ghost", "LOGNAME=ghost", "PSUP_SERVICE=svc")},

    {"an inherited PSUP_SERVICE is replaced", LIST("PSUP_SERVICE=other"), false, NONE, NONE,
     NULL, NULL, LIST("PSUP_SERVICE=svc")},
};

static char **build(const struct env_case *c, size_t *n)
{
    struct psup_service_config svc;

    memset(&svc, 0, sizeof(svc));
    svc.name = "svc";
    svc.env = (char **)c->env;
    svc.n_env = list_len(c->env);
    svc.clear_env = c->clear_env;
    svc.pass_env = (char **)c->pass_env;
    svc.n_pass_env = list_len(c->pass_env);
    svc.user_name = (char *)c->user;
    svc.user_home = (char *)c->home;
    return psup_env_base(&svc, (char *const *)c->environ, n);
}

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* The result must hold exactly want: each entry once, no name twice. */
static void check_exactly(const char *what, char **got, size_t n, const char *const *want)
{
    size_t n_want = list_len(want);

    assert_non_null(got);
    assert_null(got[n]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            if (name_len(got[i]) == name_len(got[j]) &&
                memcmp(got[i], got[j], name_len(got[i])) == 0)
                fail_msg("%s: %.*s twice", what, (int)name_len(got[i]), got[i]);
        bool wanted = false;
        for (size_t k = 0; k < n_want && !wanted; k++)
            wanted = strcmp(got[i], want[k]) == 0;
        if (!wanted)
            fail_msg("%s: unexpected %s", what, got[i]);
    }
    if (n != n_want)
        fail_msg("%s: %zu variables, want %zu", what, n, n_want);
}

static void test_env_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        char **got = build(&cases[i], &n);
        check_exactly(cases[i].what, got, n, cases[i].want);
        free(got);
    }
}

/* `env` in file order, after everything inherited (later wins). */
static void test_env_order(void **state)
{
    const struct env_case c = {"order", LIST("A=1"), false, NONE, LIST("Z=1", "M=2", "B=3"),
                               NULL, NULL, NULL};
    size_t n = 0;
    char **got = build(&c, &n);

    (void)state;
    assert_int_equal(n, 5);
    assert_string_equal(got[0], "A=1");
    assert_string_equal(got[1], "Z=1");
    assert_string_equal(got[2], "M=2");
    assert_string_equal(got[3], "B=3");
    assert_string_equal(got[4], "PSUP_SERVICE=svc");
    free(got);
}

/* The names spec/handler.md says never reach a handler from psup's
 * environment, even when pass_env names them. */
static const char *const reserved[] = {
    /* Set by psup for each connection. */
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT", "REMOTE_ADDR",
    "REMOTE_PORT", "TCPCONNNUM", "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
    "UNIXREMOTEPID", "PSUP_SERVICE", "PSUP_CONN_ID",
    /* Never set by psup: an inherited value is removed. */
    "TCPREMOTEHOST", "TCPLOCALHOST", "TCPREMOTEINFO",
    /* Meant for psup itself. */
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
    "LISTEN_FDNAMES",
    /* Every PSUP_*. */
    "PSUP_", "PSUP_X", "PSUP_TEST_VERDICT_TIMEOUT_MS", "PSUP_SPAWN",
};

/* Names close to those, which are the user's and are inherited. */
static const char *const not_reserved[] = {
    "PROTOCOL", "XPROTO", "TCPLOCALIPX", "REMOTE_USER", "PSUP", "PSUPX", "psup_x",
    "proto", "LISTEN_FDS_X", "NOTIFY", "UNIXLOCALPATHS", "TCPREMOTE",
};

/* NAME=value in psup's environment reaches the handler or not, inherited
 * or named in pass_env with clear_env. */
static void check_inheritance(const char *name, bool reaches)
{
    char entry[128];

    snprintf(entry, sizeof(entry), "%s=inherited", name);
    const char *const environ_[] = {entry, "KEEP=1", NULL};
    const char *const pass[] = {name, "KEEP", NULL};
    const char *const kept[] = {entry, "KEEP=1", "PSUP_SERVICE=svc", NULL};
    const char *const removed[] = {"KEEP=1", "PSUP_SERVICE=svc", NULL};
    for (int clear = 0; clear <= 1; clear++) {
        struct env_case c = {name, environ_, clear, clear ? pass : NONE, NONE, NULL, NULL,
                             reaches ? kept : removed};
        size_t n = 0;
        char **got = build(&c, &n);
        check_exactly(name, got, n, c.want);
        free(got);
    }
}

static void test_env_reserved_names_are_never_inherited(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        check_inheritance(reserved[i], false);
}

static void test_env_similar_names_are_inherited(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(not_reserved) / sizeof(not_reserved[0]); i++)
        check_inheritance(not_reserved[i], true);
}

/* The result is one allocation that outlives psup's environment and the
 * configuration's strings (a generation keeps it). */
static void test_env_is_a_copy(void **state)
{
    char a[] = "A=1";
    char x[] = "X=2";
    char *environ_[] = {a, NULL};
    char *env[] = {x};
    struct psup_service_config svc;
    size_t n = 0;

    (void)state;
    memset(&svc, 0, sizeof(svc));
    svc.name = "svc";
    svc.env = env;
    svc.n_env = 1;
    svc.user_name = "nobody";
    svc.user_home = "/nonexistent";
    char **got = psup_env_base(&svc, environ_, &n);
    assert_non_null(got);
    a[2] = '9';
    x[2] = '9';
    svc.user_home = "/elsewhere";
    const char *const want[] = {"A=1", "X=2", "HOME=/nonexistent", "USER=nobody",
                                "LOGNAME=nobody", "PSUP_SERVICE=svc", NULL};
    check_exactly("copy", got, n, want);
    free(got);
}

/* A home directory as long as a path is given whole (it was cut at about
 * 500 bytes once). */
static void test_env_long_home_is_whole(void **state)
{
    char home[4000];
    char want_home[sizeof(home) + 8];
    struct psup_service_config svc;
    size_t n = 0;

    (void)state;
    memset(home, 'h', sizeof(home) - 1);
    home[0] = '/';
    home[sizeof(home) - 1] = '\0';
    snprintf(want_home, sizeof(want_home), "HOME=%s", home);
    memset(&svc, 0, sizeof(svc));
    svc.name = "svc";
    svc.user_name = "nobody";
    svc.user_home = home;
    char **got = psup_env_base(&svc, NULL, &n);
    assert_non_null(got);
    const char *const want[] = {want_home, "USER=nobody", "LOGNAME=nobody",
                                "PSUP_SERVICE=svc", NULL};
    check_exactly("long home", got, n, want);
    free(got);
}

/* Out of memory at any allocation: NULL, and nothing leaks (the sanitized
 * build checks leaks at exit). */
static void test_env_out_of_memory(void **state)
{
    const struct env_case c = {"oom", LIST("A=1"), false, NONE, LIST("X=1"), "nobody", "/",
                               NULL};
    unsigned failed = 0;

    (void)state;
    for (fail_at = 1;; fail_at++) {
        size_t n = 0;
        allocations = 0;
        char **got = build(&c, &n);
        if (got) {
            free(got);
            break;
        }
        failed++;
    }
    fail_at = 0;
    assert_true(failed >= 3); /* every allocation of the build was made to fail */
}

/* A wait-mode server's base environment also has LISTEN_FDS and
 * LISTEN_FDNAMES (spec/wait.md): the service's name for each socket. Only
 * LISTEN_PID is left for the server to add. LISTEN_* inherited from psup's
 * own environment (systemd's, for psup) are still removed. */
static void check_wait_env(const char *name, size_t n_listen, const char *const *want)
{
    struct psup_service_config svc;
    char *environ_[] = {"A=1", "LISTEN_FDS=9", "LISTEN_PID=1", "LISTEN_FDNAMES=x", NULL};
    size_t n = 0;

    memset(&svc, 0, sizeof(svc));
    svc.name = (char *)name;
    svc.mode = PSUP_MODE_WAIT;
    svc.n_listen = n_listen;
    char **got = psup_env_base(&svc, environ_, &n);
    check_exactly(name, got, n, want);
    free(got);
}

static void test_env_wait_mode(void **state)
{
    (void)state;
    check_wait_env("web", 1, LIST("A=1", "PSUP_SERVICE=web", "LISTEN_FDS=1",
                                   "LISTEN_FDNAMES=web"));
    check_wait_env("tftp.v6-x", 3, LIST("A=1", "PSUP_SERVICE=tftp.v6-x", "LISTEN_FDS=3",
                                         "LISTEN_FDNAMES=tftp.v6-x:tftp.v6-x:tftp.v6-x"));
    /* The longest name, many sockets: no fixed buffer cuts the names. */
    char name[65], fds[16], names[16 + 65 * 200];
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(fds, sizeof(fds), "LISTEN_FDS=%d", 200);
    char *p = names + sprintf(names, "LISTEN_FDNAMES=");
    for (int i = 0; i < 200; i++)
        p += sprintf(p, "%s%s", i ? ":" : "", name);
    char service[80];
    snprintf(service, sizeof(service), "PSUP_SERVICE=%s", name);
    check_wait_env(name, 200, LIST("A=1", service, fds, names));

    /* Out of memory at any of its allocations (the names are one more). */
    struct psup_service_config svc;
    unsigned failed = 0;
    memset(&svc, 0, sizeof(svc));
    svc.name = "web";
    svc.mode = PSUP_MODE_WAIT;
    svc.n_listen = 2;
    for (fail_at = 1;; fail_at++) {
        size_t n = 0;
        allocations = 0;
        char **got = psup_env_base(&svc, NULL, &n);
        if (got) {
            free(got);
            break;
        }
        failed++;
    }
    fail_at = 0;
    assert_int_equal(failed, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_table),
        cmocka_unit_test(test_env_order),
        cmocka_unit_test(test_env_reserved_names_are_never_inherited),
        cmocka_unit_test(test_env_similar_names_are_inherited),
        cmocka_unit_test(test_env_is_a_copy),
        cmocka_unit_test(test_env_long_home_is_whole),
        cmocka_unit_test(test_env_out_of_memory),
        cmocka_unit_test(test_env_wait_mode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
