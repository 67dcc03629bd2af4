/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/policy/pool.c against spec/pool.md, "The pool of a
 * service": min_spare <= idle <= max_spare; idle + busy + retiring + stopped
 * <= max_workers (one more with on_overload "reject"); retiring and stopped
 * workers are not spares but still count against the limit. One table row
 * per counts x limits situation, then every small combination checked
 * against the invariants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/pool.h"

struct pool_case {
    const char *what;
    struct psup_pool_counts counts; /* idle, busy, retiring, stopped */
    struct psup_pool_limits limits; /* min_spare, max_spare, max_workers, reject */
    int want;                       /* > 0 start, < 0 retire */
};

static const struct pool_case cases[] = {
    /* Spares within bounds: nothing to do. */
    {"at min_spare", {4, 0, 0, 0}, {4, 16, 256, false}, 0},
    {"between min and max", {10, 3, 0, 0}, {4, 16, 256, false}, 0},
    {"at max_spare", {16, 0, 0, 0}, {4, 16, 256, false}, 0},

    /* Below min_spare: start the difference, at once. */
    {"start: empty pool fills to min_spare", {0, 0, 0, 0}, {4, 16, 256, false}, 4},
    {"start: the smallest pool", {0, 0, 0, 0}, {1, 1, 1, false}, 1},
    {"start: a spare went busy", {3, 1, 0, 0}, {4, 16, 256, false}, 1},
    {"start: all spares went busy", {0, 4, 0, 0}, {4, 16, 256, false}, 4},
    {"start: min_spare the largest allowed", {0, 0, 0, 0}, {65536, 65536, 65536, false}, 65536},

    /* Retiring and stopped workers are not spares... */
    {"retiring are not spares", {0, 0, 4, 0}, {4, 16, 256, false}, 4},
    {"stopped are not spares", {2, 0, 0, 2}, {4, 16, 256, false}, 2},
    /* ...but they count against max_workers. */
    {"retiring count against the limit", {0, 0, 3, 0}, {2, 2, 4, false}, 1},
    {"stopped count against the limit", {0, 1, 0, 2}, {2, 2, 4, false}, 1},
    {"retiring fill the limit", {0, 0, 4, 0}, {2, 2, 4, false}, 0},
    {"stopped fill the limit", {0, 0, 0, 4}, {2, 2, 4, false}, 0},

    /* Near and at max_workers (on_overload "queue"). */
    {"room for fewer than wanted", {0, 254, 0, 0}, {4, 16, 256, false}, 2},
    {"busy at max_workers: none", {0, 256, 0, 0}, {4, 16, 256, false}, 0},
    {"max_workers 1, busy", {0, 1, 0, 0}, {1, 1, 1, false}, 0},
    {"max_workers 2, one busy", {0, 1, 0, 0}, {2, 2, 2, false}, 1},
    {"over the limit (a reload lowered it)", {0, 300, 0, 0}, {4, 16, 256, false}, 0},
    {"over the limit with spares missing", {1, 5, 2, 1}, {4, 4, 4, false}, 0},

    /* on_overload "reject": one spare more, to answer "overloaded". */
    {"reject: busy at max_workers keeps one spare", {0, 256, 0, 0}, {4, 16, 256, true}, 1},
    {"reject: that spare exists", {1, 256, 0, 0}, {4, 16, 256, true}, 0},
    {"reject: max_workers 1", {0, 1, 0, 0}, {1, 1, 1, true}, 1},
    {"reject: one below the limit, two fit", {0, 255, 0, 0}, {4, 16, 256, true}, 2},
    {"reject: a retiring worker takes the extra slot", {0, 256, 1, 0}, {4, 16, 256, true}, 0},
    {"reject: a stopped worker takes the extra slot", {0, 256, 0, 1}, {4, 16, 256, true}, 0},

    /* Above max_spare: retire the surplus. */
    {"retire: one too many", {17, 0, 0, 0}, {4, 16, 256, false}, -1},
    {"retire: a burst ended", {40, 0, 0, 0}, {4, 16, 256, false}, -24},
    {"retire: busy ones are not retired", {3, 10, 0, 0}, {1, 1, 256, false}, -2},
    {"retire: retiring are not retired again", {2, 0, 5, 0}, {1, 1, 256, false}, -1},
    {"retire: stopped are not retired", {2, 0, 0, 5}, {1, 1, 256, false}, -1},
    {"retire: over the limit, only idle surplus", {5, 300, 0, 0}, {1, 2, 256, false}, -3},
    {"retire: reject changes nothing", {17, 0, 0, 0}, {4, 16, 256, true}, -1},

    /* Scarce process slots: the runtime sets min = max = 1. */
    {"scarce: one spare", {0, 10, 0, 0}, {1, 1, 256, false}, 1},
    {"scarce: spares beyond one retire", {4, 10, 0, 0}, {1, 1, 256, false}, -3},
};

static void test_pool_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pool_case *t = &cases[i];
        int got = psup_pool_adjust(&t->counts, &t->limits);
        if (got != t->want)
            fail_msg("%s: idle=%u busy=%u retiring=%u stopped=%u min=%u max=%u workers=%u%s: "
                     "got %d, want %d",
                     t->what, t->counts.idle, t->counts.busy, t->counts.retiring,
                     t->counts.stopped, t->limits.min_spare, t->limits.max_spare,
                     t->limits.max_workers, t->limits.reject_overload ? " reject" : "", got,
                     t->want);
    }
}

/* What spec/pool.md asks of one decision, whatever the situation. */
static void check_invariants(const struct psup_pool_counts *c, const struct psup_pool_limits *l,
                             int n)
{
    unsigned total = c->idle + c->busy + c->retiring + c->stopped;
    unsigned limit = l->max_workers + (l->reject_overload ? 1 : 0);

    if (n > 0) {
        /* Starts only below min_spare, never past it, never past the limit. */
        if (c->idle >= l->min_spare || c->idle + (unsigned)n > l->min_spare ||
            total + (unsigned)n > limit)
            fail_msg("start %d: idle=%u busy=%u retiring=%u stopped=%u min=%u workers=%u%s", n,
                     c->idle, c->busy, c->retiring, c->stopped, l->min_spare, l->max_workers,
                     l->reject_overload ? " reject" : "");
        return;
    }
    if (n < 0) {
        /* Retires only idle workers, exactly down to max_spare. */
        if (c->idle - (unsigned)-n != l->max_spare)
            fail_msg("retire %d: idle=%u max=%u", -n, c->idle, l->max_spare);
        return;
    }
    /* Nothing to do: the spares are in bounds, or the limit forbids more. */
    if (c->idle > l->max_spare || (c->idle < l->min_spare && total < limit))
        fail_msg("idle: idle=%u busy=%u retiring=%u stopped=%u min=%u max=%u workers=%u%s",
                 c->idle, c->busy, c->retiring, c->stopped, l->min_spare, l->max_spare,
                 l->max_workers, l->reject_overload ? " reject" : "");
}

/* Every small situation: counts 0..6 each, limits with 1 <= min <= max <=
 * workers <= 6 (spec/config.md's bounds), both on_overload modes. */
static void test_pool_every_small_situation(void **state)
{
    unsigned checked = 0;

    (void)state;
    for (unsigned min = 1; min <= 6; min++)
        for (unsigned max = min; max <= 6; max++)
            for (unsigned workers = max; workers <= 6; workers++)
                for (int reject = 0; reject <= 1; reject++) {
                    struct psup_pool_limits l = {min, max, workers, reject};
                    for (unsigned i = 0; i <= 6; i++)
                        for (unsigned b = 0; b <= 6; b++)
                            for (unsigned r = 0; r <= 6; r++)
                                for (unsigned s = 0; s <= 6; s++) {
                                    struct psup_pool_counts c = {i, b, r, s};
                                    check_invariants(&c, &l, psup_pool_adjust(&c, &l));
                                    checked++;
                                }
                }
    assert_true(checked > 100000);
}

/* Applying the decisions converges: starting from any situation with no
 * worker busy and nothing leaving, one decision brings the spares within
 * bounds, and a second one has nothing left to do. */
static void test_pool_one_decision_settles(void **state)
{
    (void)state;
    for (unsigned min = 1; min <= 6; min++)
        for (unsigned max = min; max <= 6; max++)
            for (unsigned workers = max; workers <= 6; workers++)
                for (unsigned idle = 0; idle <= workers; idle++) {
                    struct psup_pool_limits l = {min, max, workers, false};
                    struct psup_pool_counts c = {idle, 0, 0, 0};
                    int n = psup_pool_adjust(&c, &l);
                    if (n > 0) {
                        c.idle += (unsigned)n;
                    } else {
                        c.retiring += (unsigned)-n;
                        c.idle -= (unsigned)-n;
                    }
                    assert_true(c.idle >= min && c.idle <= max);
                    assert_int_equal(psup_pool_adjust(&c, &l), 0);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_table),
        cmocka_unit_test(test_pool_every_small_situation),
        cmocka_unit_test(test_pool_one_decision_settles),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
