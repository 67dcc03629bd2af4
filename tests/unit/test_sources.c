/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/policy/sources.c, the per-source counts behind
 * max_per_source and TCPCONNNUM (spec/pool.md): add returns the new count,
 * remove gives one back and forgets a source at zero, a source that is not
 * there is ignored, an IP and a uid with the same bytes are two sources,
 * and the table grows (and, out of memory, counts nothing rather than
 * something wrong). Many keys are checked against a plain array model,
 * with removals in every order, which exercises the backward-shift
 * deletion across wrapped probe runs.
 *
 * calloc is wrapped (-Wl,--wrap=calloc in tests/CMakeLists.txt) so a test
 * can make the table's growth fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "policy/sources.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static bool calloc_fails;

void *__wrap_calloc(size_t n, size_t size)
{
    return calloc_fails ? NULL : __real_calloc(n, size);
}

static struct psup_source ip(uint32_t n)
{
    struct psup_source src = {.kind = PSUP_SOURCE_IP};

    /* v4-mapped 10.x.y.z, as psup_ip_key writes an IPv4 peer. */
    src.key[10] = src.key[11] = 0xff;
    src.key[12] = 10;
    src.key[13] = (uint8_t)(n >> 16);
    src.key[14] = (uint8_t)(n >> 8);
    src.key[15] = (uint8_t)n;
    return src;
}

static struct psup_source uid(uint32_t n)
{
    struct psup_source src = {.kind = PSUP_SOURCE_UID};

    memcpy(src.key, &n, sizeof(n));
    return src;
}

static void test_sources_count_add_remove(void **state)
{
    struct psup_sources s = {0};
    struct psup_source a = ip(1), b = ip(2);

    (void)state;
    /* An empty table counts nothing and ignores removals. */
    assert_int_equal(psup_sources_count(&s, &a), 0);
    psup_sources_remove(&s, &a);
    assert_int_equal(s.used, 0);

    assert_int_equal(psup_sources_add(&s, &a), 1);
    assert_int_equal(psup_sources_add(&s, &a), 2);
    assert_int_equal(psup_sources_add(&s, &b), 1);
    assert_int_equal(psup_sources_add(&s, &a), 3);
    assert_int_equal(psup_sources_count(&s, &a), 3);
    assert_int_equal(psup_sources_count(&s, &b), 1);
    assert_int_equal(s.used, 2);

    psup_sources_remove(&s, &a);
    assert_int_equal(psup_sources_count(&s, &a), 2);
    assert_int_equal(psup_sources_count(&s, &b), 1);

    /* A source that is not there is ignored, and changes nothing. */
    struct psup_source c = ip(3);
    psup_sources_remove(&s, &c);
    assert_int_equal(psup_sources_count(&s, &a), 2);
    assert_int_equal(psup_sources_count(&s, &b), 1);
    assert_int_equal(psup_sources_count(&s, &c), 0);
    assert_int_equal(s.used, 2);

    psup_sources_free(&s);
    assert_null(s.slots);
    assert_int_equal(s.cap, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(psup_sources_count(&s, &a), 0);
}

static void test_sources_removal_to_zero_forgets(void **state)
{
    struct psup_sources s = {0};
    struct psup_source a = ip(1);

    (void)state;
    assert_int_equal(psup_sources_add(&s, &a), 1);
    assert_int_equal(psup_sources_add(&s, &a), 2);
    psup_sources_remove(&s, &a);
    psup_sources_remove(&s, &a);
    assert_int_equal(psup_sources_count(&s, &a), 0);
    assert_int_equal(s.used, 0);
    /* One removal too many is ignored: the count never wraps. */
    psup_sources_remove(&s, &a);
    assert_int_equal(psup_sources_count(&s, &a), 0);
    assert_int_equal(s.used, 0);
    /* And the source counts from one again. */
    assert_int_equal(psup_sources_add(&s, &a), 1);
    assert_int_equal(s.used, 1);
    psup_sources_free(&s);
}

/* A uid and an address with the same bytes are different sources; so are
 * different addresses and different uids. */
static void test_sources_kinds_are_apart(void **state)
{
    struct psup_sources s = {0};
    struct psup_source by_ip = {.kind = PSUP_SOURCE_IP};
    struct psup_source by_uid = {.kind = PSUP_SOURCE_UID};
    struct psup_source u1000 = uid(1000), u1001 = uid(1001), root = uid(0);

    (void)state;
    memcpy(by_uid.key, by_ip.key, sizeof(by_ip.key));
    assert_int_equal(psup_sources_add(&s, &by_ip), 1);
    assert_int_equal(psup_sources_add(&s, &by_uid), 1);
    assert_int_equal(psup_sources_add(&s, &by_uid), 2);
    assert_int_equal(psup_sources_count(&s, &by_ip), 1);
    assert_int_equal(psup_sources_count(&s, &by_uid), 2);
    assert_int_equal(psup_sources_count(&s, &root), 2); /* uid 0: all zero bytes */
    assert_int_equal(psup_sources_add(&s, &u1000), 1);
    assert_int_equal(psup_sources_add(&s, &u1001), 1);
    assert_int_equal(psup_sources_add(&s, &u1000), 2);
    psup_sources_remove(&s, &by_ip);
    assert_int_equal(psup_sources_count(&s, &by_ip), 0);
    assert_int_equal(psup_sources_count(&s, &by_uid), 2);
    assert_int_equal(psup_sources_count(&s, &u1000), 2);
    assert_int_equal(psup_sources_count(&s, &u1001), 1);
    assert_int_equal(s.used, 3);
    psup_sources_free(&s);
}

/* Many addresses and uids with the same bytes, side by side in one table:
 * however their probe runs meet, none is taken for the other. */
static void test_sources_same_bytes_many_kinds(void **state)
{
    struct psup_sources s = {0};

    (void)state;
    for (uint32_t i = 0; i < 1000; i++) {
        struct psup_source a = uid(i), u = uid(i);
        a.kind = PSUP_SOURCE_IP;
        assert_int_equal(psup_sources_add(&s, &a), 1);
        assert_int_equal(psup_sources_add(&s, &a), 2);
        assert_int_equal(psup_sources_add(&s, &u), 1);
    }
    for (uint32_t i = 0; i < 1000; i++) {
        struct psup_source a = uid(i), u = uid(i);
        a.kind = PSUP_SOURCE_IP;
        assert_int_equal(psup_sources_count(&s, &a), 2);
        assert_int_equal(psup_sources_count(&s, &u), 1);
    }
    assert_int_equal(s.used, 2000);
    psup_sources_free(&s);
}

/* The table starts at 64 slots and doubles before it is half full, keeping
 * every count across the move. */
static void test_sources_growth_keeps_counts(void **state)
{
    struct psup_sources s = {0};

    (void)state;
    for (uint32_t i = 0; i < 32; i++) {
        struct psup_source src = ip(i);
        assert_int_equal(psup_sources_add(&s, &src), 1);
        assert_int_equal(psup_sources_add(&s, &src), 2);
    }
    assert_int_equal(s.cap, 64);
    struct psup_source next = ip(32);
    assert_int_equal(psup_sources_add(&s, &next), 1);
    assert_int_equal(s.cap, 128);
    assert_int_equal(s.used, 33);
    for (uint32_t i = 0; i < 32; i++) {
        struct psup_source src = ip(i);
        assert_int_equal(psup_sources_count(&s, &src), 2);
    }
    assert_int_equal(psup_sources_count(&s, &next), 1);
    psup_sources_free(&s);
}

/* Out of memory, a new source is not counted (add says 0) and the table
 * stays as it was; sources already there still count. */
static void test_sources_out_of_memory_counts_nothing(void **state)
{
    struct psup_sources s = {0};
    struct psup_source first = ip(0);

    (void)state;
    calloc_fails = true;
    assert_int_equal(psup_sources_add(&s, &first), 0);
    assert_int_equal(psup_sources_count(&s, &first), 0);
    assert_int_equal(s.cap, 0);
    calloc_fails = false;

    for (uint32_t i = 0; i < 32; i++) {
        struct psup_source src = ip(i);
        assert_int_equal(psup_sources_add(&s, &src), 1);
    }
    calloc_fails = true;
    struct psup_source more = ip(32);
    assert_int_equal(psup_sources_add(&s, &more), 0);
    assert_int_equal(psup_sources_count(&s, &more), 0);
    assert_int_equal(s.cap, 64);
    assert_int_equal(s.used, 32);
    /* No growth is needed for a source already counted. */
    assert_int_equal(psup_sources_add(&s, &first), 2);
    psup_sources_remove(&s, &more);
    for (uint32_t i = 1; i < 32; i++) {
        struct psup_source src = ip(i);
        assert_int_equal(psup_sources_count(&s, &src), 1);
    }
    calloc_fails = false;
    assert_int_equal(psup_sources_add(&s, &more), 1);
    assert_int_equal(s.cap, 128);
    psup_sources_free(&s);
}

/* ---- many keys against a model ---------------------------------------- */

#define MODEL_KEYS 3000

struct model {
    unsigned count[MODEL_KEYS];
    size_t used;
};

/* Keys of both kinds, mixed: even numbers are addresses, odd ones uids. */
static struct psup_source model_key(size_t i)
{
    return i % 2 ? uid((uint32_t)i) : ip((uint32_t)i);
}

static void check_all(const struct psup_sources *s, const struct model *m, const char *when)
{
    for (size_t i = 0; i < MODEL_KEYS; i++) {
        struct psup_source src = model_key(i);
        unsigned got = psup_sources_count(s, &src);
        if (got != m->count[i])
            fail_msg("%s: key %zu counts %u, want %u", when, i, got, m->count[i]);
    }
    assert_int_equal(s->used, m->used);
    assert_true(s->used * 2 <= s->cap || s->cap == 0);
}

static void model_add(struct psup_sources *s, struct model *m, size_t i)
{
    struct psup_source src = model_key(i);

    if (m->count[i]++ == 0)
        m->used++;
    assert_int_equal(psup_sources_add(s, &src), m->count[i]);
}

static void model_remove(struct psup_sources *s, struct model *m, size_t i)
{
    struct psup_source src = model_key(i);

    if (m->count[i] && --m->count[i] == 0)
        m->used--;
    psup_sources_remove(s, &src);
    assert_int_equal(psup_sources_count(s, &src), m->count[i]);
}

static uint64_t next_random(uint64_t *x)
{
    /* xorshift64: deterministic, so a failure repeats. */
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Thousands of sources added one to five times, then removed front to
 * back, back to front, and in a shuffled order. */
static void test_sources_many_keys_every_order(void **state)
{
    static struct model m;
    (void)state;

    for (int order = 0; order < 3; order++) {
        struct psup_sources s = {0};
        size_t perm[MODEL_KEYS];
        uint64_t x = 88172645463325252ULL + (uint64_t)order;

        memset(&m, 0, sizeof(m));
        for (size_t i = 0; i < MODEL_KEYS; i++) {
            perm[i] = order == 1 ? MODEL_KEYS - 1 - i : i;
            for (size_t k = 0; k <= i % 5; k++)
                model_add(&s, &m, i);
        }
        if (order == 2)
            for (size_t i = MODEL_KEYS - 1; i > 0; i--) {
                size_t j = next_random(&x) % (i + 1);
                size_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        check_all(&s, &m, "after adding");
        for (size_t i = 0; i < MODEL_KEYS; i++) {
            while (m.count[perm[i]])
                model_remove(&s, &m, perm[i]);
            if (i % 500 == 0)
                check_all(&s, &m, "while removing");
        }
        check_all(&s, &m, "after removing all");
        assert_int_equal(s.used, 0);
        psup_sources_free(&s);
    }
}

/* Random adds and removals of many sources, at most 31 at a time so the
 * table stays at 64 slots and dense: over a thousand keys every slot is
 * some key's home, probe runs wrap around the table's end, and deletions
 * shift entries back across the wrap. */
#define CHURN_KEYS 1000
#define CHURN_LIVE 31

static void test_sources_random_churn(void **state)
{
    static struct model m;
    struct psup_sources s = {0};
    size_t live[CHURN_LIVE];
    size_t n_live = 0;
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    (void)state;
    memset(&m, 0, sizeof(m));
    for (unsigned step = 0; step < 200000; step++) {
        bool add = next_random(&x) % 2 || n_live == 0;
        size_t i = add ? next_random(&x) % CHURN_KEYS : live[next_random(&x) % n_live];
        if (add && m.count[i] == 0 && n_live == CHURN_LIVE)
            i = live[next_random(&x) % n_live]; /* a new one would not fit */
        if (add) {
            if (m.count[i] == 0)
                live[n_live++] = i;
            model_add(&s, &m, i);
        } else {
            model_remove(&s, &m, i);
            for (size_t k = 0; m.count[i] == 0 && k < n_live; k++)
                if (live[k] == i)
                    live[k] = live[--n_live];
        }
        if (step % 1000 == 0) {
            for (size_t k = 0; k < CHURN_KEYS; k++) {
                struct psup_source src = model_key(k);
                assert_int_equal(psup_sources_count(&s, &src), m.count[k]);
            }
            assert_int_equal(s.used, m.used);
        }
    }
    assert_int_equal(s.cap, 64);
    check_all(&s, &m, "after churn");
    psup_sources_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources_count_add_remove),
        cmocka_unit_test(test_sources_removal_to_zero_forgets),
        cmocka_unit_test(test_sources_kinds_are_apart),
        cmocka_unit_test(test_sources_same_bytes_many_kinds),
        cmocka_unit_test(test_sources_growth_keeps_counts),
        cmocka_unit_test(test_sources_out_of_memory_counts_nothing),
        cmocka_unit_test(test_sources_many_keys_every_order),
        cmocka_unit_test(test_sources_random_churn),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
