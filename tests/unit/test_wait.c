/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/policy/wait.c against spec/wait.md: when a wait-mode
 * service starts its servers and watches its sockets, and what a server's
 * exit says about the service. One table row per situation, then every
 * small situation checked against the spec's rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/wait.h"

#define FREE UINT32_MAX /* psup_backoff_allowance while starts are free */
#define ON_DEMAND PSUP_START_ON_DEMAND
#define ALWAYS PSUP_START_ALWAYS

struct decide_case {
    const char *what;
    struct psup_wait_facts facts; /* start, instances, running, allowance, serving, demand */
    unsigned start;
    bool watch;
};

static const struct decide_case decide_cases[] = {
    /* on_demand: watch while nothing runs, start everything on demand. */
    {"on_demand: nothing yet, watch", {ON_DEMAND, 1, 0, FREE, true, false}, 0, true},
    {"on_demand: a connection came", {ON_DEMAND, 1, 0, FREE, true, true}, 1, false},
    {"on_demand: all instances at once", {ON_DEMAND, 4, 0, FREE, true, true}, 4, false},
    {"on_demand: running, not watched", {ON_DEMAND, 1, 1, FREE, true, false}, 0, false},
    {"on_demand: one of four left, no more", {ON_DEMAND, 4, 1, FREE, true, false}, 0, false},
    {"on_demand: demand while one runs", {ON_DEMAND, 2, 1, FREE, true, true}, 0, false},
    /* Backoff: one probe once the delay passed, nothing (not even the
     * watch) before. */
    {"on_demand: delayed, not watched", {ON_DEMAND, 1, 0, 0, true, false}, 0, false},
    {"on_demand: delayed with demand waits", {ON_DEMAND, 3, 0, 0, true, true}, 0, false},
    {"on_demand: the delay passed, watch", {ON_DEMAND, 3, 0, 1, true, false}, 0, true},
    {"on_demand: the delay passed, one probe", {ON_DEMAND, 3, 0, 1, true, true}, 1, false},
    /* always: instances at once, replaced when they go. */
    {"always: start all", {ALWAYS, 3, 0, FREE, true, false}, 3, false},
    {"always: replace one", {ALWAYS, 3, 2, FREE, true, false}, 1, false},
    {"always: all running", {ALWAYS, 3, 3, FREE, true, false}, 0, false},
    {"always: more than wanted (a reload lowered it)", {ALWAYS, 1, 3, FREE, true, false}, 0,
     false},
    {"always: demand means nothing", {ALWAYS, 1, 1, FREE, true, true}, 0, false},
    {"always: delayed", {ALWAYS, 3, 0, 0, true, false}, 0, false},
    {"always: one probe", {ALWAYS, 3, 0, 1, true, false}, 1, false},
    /* Shutting down or removed: nothing. */
    {"stopping: on_demand", {ON_DEMAND, 1, 0, FREE, false, true}, 0, false},
    {"stopping: always", {ALWAYS, 2, 0, FREE, false, false}, 0, false},
};

static void test_decide_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
        const struct decide_case *t = &decide_cases[i];
        struct psup_wait_action a = psup_wait_decide(&t->facts);
        if (a.start != t->start || a.watch != t->watch)
            fail_msg("%s: start %u watch %d, want start %u watch %d", t->what, a.start, a.watch,
                     t->start, t->watch);
    }
}

/* spec/wait.md's rules, in every small situation: never more servers than
 * instances, never more starts than the backoff allows, never watching
 * and starting at once, never watching while a server runs or while
 * delayed, and an on_demand service with nothing running always either
 * watches, starts, or waits for its delay. */
static void test_decide_rules(void **state)
{
    static const unsigned allowances[] = {0, 1, 2, FREE};
    unsigned checked = 0;

    (void)state;
    for (int start = ON_DEMAND; start <= ALWAYS; start++)
        for (unsigned inst = 1; inst <= 5; inst++)
            for (unsigned running = 0; running <= 6; running++)
                for (size_t k = 0; k < 4; k++)
                    for (int serving = 0; serving <= 1; serving++)
                        for (int demand = 0; demand <= 1; demand++) {
                            struct psup_wait_facts f = {(enum psup_start)start, inst, running,
                                                        allowances[k], serving, demand};
                            struct psup_wait_action a = psup_wait_decide(&f);
                            assert_true(running + a.start <= inst || a.start == 0);
                            assert_true(a.start <= f.allowance);
                            assert_false(a.start && a.watch);
                            assert_false(a.watch && (running || !f.allowance || !serving));
                            assert_false(a.watch && start == ALWAYS);
                            if (!serving)
                                assert_true(a.start == 0 && !a.watch);
                            if (serving && start == ON_DEMAND && !running && f.allowance)
                                assert_true(a.watch || a.start);
                            if (serving && start == ALWAYS && running < inst && f.allowance)
                                assert_true(a.start > 0);
                            checked++;
                        }
    assert_true(checked > 1000);
}

struct exit_case {
    const char *what;
    struct psup_wait_exit e; /* start, failed_to_start, stopped_by_psup, exit_zero, left_pending */
    enum psup_wait_verdict want;
};

static const struct exit_case exit_cases[] = {
    {"exec failed", {ON_DEMAND, true, false, false, false}, PSUP_WAIT_FAILED},
    {"exec failed, always", {ALWAYS, true, false, false, false}, PSUP_WAIT_FAILED},
    {"exec failed while psup stopped it", {ON_DEMAND, true, true, false, false},
     PSUP_WAIT_FAILED},
    {"stopped by psup, on_demand", {ON_DEMAND, false, true, false, false}, PSUP_WAIT_STOPPED},
    {"stopped by psup, always", {ALWAYS, false, true, true, false}, PSUP_WAIT_STOPPED},
    {"stopped by psup, something pending", {ON_DEMAND, false, true, true, true},
     PSUP_WAIT_STOPPED},
    {"on_demand: served and left", {ON_DEMAND, false, false, true, false}, PSUP_WAIT_CLEAN},
    {"on_demand: left what woke it (looping)", {ON_DEMAND, false, false, true, true},
     PSUP_WAIT_FAILED},
    {"on_demand: crashed", {ON_DEMAND, false, false, false, false}, PSUP_WAIT_FAILED},
    {"always: exit 0 is a failure too", {ALWAYS, false, false, true, false}, PSUP_WAIT_FAILED},
    {"always: crashed", {ALWAYS, false, false, false, false}, PSUP_WAIT_FAILED},
};

static void test_judge_exit(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(exit_cases) / sizeof(exit_cases[0]); i++) {
        const struct exit_case *t = &exit_cases[i];
        enum psup_wait_verdict got = psup_wait_judge_exit(&t->e);
        if (got != t->want)
            fail_msg("%s: got %d, want %d", t->what, (int)got, (int)t->want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_decide_rules),
        cmocka_unit_test(test_judge_exit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
