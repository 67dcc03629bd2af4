/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/policy/rate.c against spec/config.md, `rate` and
 * `rate_burst`: a token bucket of rate_burst tokens refilled at rate per
 * second, full at first; no rate means unlimited. Each table is a sequence
 * of takes at injected times. Rates whose per-millisecond refill is exact
 * in binary (125/s: 0.125 a millisecond) keep the boundaries exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/rate.h"

struct take {
    uint64_t now;
    bool want;
};

struct bucket_case {
    const char *what;
    double rate;
    unsigned burst;
    const struct take *takes;
    size_t n;
};

#define CASE(what, rate, burst, ...)                                                     \
    {                                                                                    \
        what, rate, burst, (const struct take[]){__VA_ARGS__},                           \
            sizeof((const struct take[]){__VA_ARGS__}) / sizeof(struct take)             \
    }

static const struct bucket_case cases[] = {
    CASE("no rate is unlimited", 0, 0,
         {1000, true}, {1000, true}, {1000, true}, {1000, true}, {1000, true}),
    CASE("a negative rate is unlimited too", -1, 1, {1000, true}, {1000, true}, {1000, true}),
    CASE("the bucket starts full: burst at once, then refused", 1, 3,
         {1000, true}, {1000, true}, {1000, true}, {1000, false}, {1000, false}),
    CASE("burst 1 allows one at a time", 1, 1, {1000, true}, {1000, false}, {1500, false},
         {2000, true}, {2000, false}),
    CASE("refill: 125/s is one token every 8 ms", 125, 1,
         {1000, true}, {1007, false}, {1008, true}, {1015, false}, {1016, true}),
    CASE("refused takes do not waste the time spent", 125, 1,
         {1000, true}, {1001, false}, {1002, false}, {1003, false}, {1004, false},
         {1005, false}, {1006, false}, {1007, false}, {1008, true}),
    CASE("0.5/s is one connection every two seconds", 0.5, 1,
         {10000, true}, {11000, false}, {12000, true}, {13000, false}, {14000, true}),
    CASE("a quiet period saves up to the burst, no more", 125, 3,
         {1000, true}, {1000, true}, {1000, true}, {1000, false},
         {3601000, true}, {3601000, true}, {3601000, true}, {3601000, false}),
    CASE("a partial refill is kept", 125, 4,
         {1000, true}, {1000, true}, {1000, true}, {1000, true},
         {1016, true}, {1016, true}, {1016, false}, {1020, false}, {1024, true}),
    CASE("the log limiter: five at once, then one a second", 1.0, 5,
         {1000, true}, {1000, true}, {1000, true}, {1000, true}, {1000, true},
         {1000, false}, {1500, false}, {2000, true}, {2000, false}, {3000, true}),
    CASE("the largest rate and burst", 1000000, 1000000, {1000, true}, {1000, true}),
    /* psup's clock is monotonic; should one ever go back, it adds nothing. */
    CASE("a clock going backwards adds no token", 125, 1,
         {10000, true}, {9000, false}, {5000, false}, {1, false}),
    CASE("a bucket first used at time 0 starts full", 125, 2,
         {0, true}, {0, true}, {0, false}),
};

static void test_rate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bucket_case *c = &cases[i];
        struct psup_rate r = {0};
        for (size_t j = 0; j < c->n; j++) {
            bool got = psup_rate_take(&r, c->rate, c->burst, c->takes[j].now);
            if (got != c->takes[j].want)
                fail_msg("%s: take %zu at %llu ms: got %s (%.3f tokens left)", c->what, j + 1,
                         (unsigned long long)c->takes[j].now, got ? "yes" : "no", r.tokens);
        }
    }
}

/* Over a long run the bucket admits rate per second plus the burst, however
 * often it is asked. */
static void test_rate_long_run(void **state)
{
    struct psup_rate r = {0};
    unsigned admitted = 0;

    (void)state;
    for (uint64_t now = 1000; now <= 11000; now++)
        for (int k = 0; k < 3; k++)
            admitted += psup_rate_take(&r, 125, 10, now);
    /* 10 at once, then 125 a second for 10 s. */
    assert_int_equal(admitted, 10 + 1250);
}

/* Unlimited leaves the bucket untouched, so a reload that sets a rate
 * starts from a full bucket. */
static void test_rate_unlimited_leaves_the_bucket_alone(void **state)
{
    struct psup_rate r = {0};

    (void)state;
    for (int i = 0; i < 100; i++)
        assert_true(psup_rate_take(&r, 0, 3, 1000 + (uint64_t)i));
    assert_int_equal(r.last, 0);
    assert_true(psup_rate_take(&r, 1, 3, 2000));
    assert_true(psup_rate_take(&r, 1, 3, 2000));
    assert_true(psup_rate_take(&r, 1, 3, 2000));
    assert_false(psup_rate_take(&r, 1, 3, 2000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_table),
        cmocka_unit_test(test_rate_long_run),
        cmocka_unit_test(test_rate_unlimited_leaves_the_bucket_alone),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
