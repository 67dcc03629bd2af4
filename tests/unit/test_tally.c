/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/tally.c and the worker's side in tally.h: entries are
 * claimed densely and reused after release, counts see exactly the
 * published entries of the same source, a withdrawn or released entry is
 * not counted, and a second process (fork) sees and adds to the same
 * entries. The racing of real workers is tested end to end in
 * tests/system/test_tally.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/tally.h"

static struct psup_source ip_source(uint8_t last_byte)
{
    struct psup_source src = {.kind = PSUP_SOURCE_IP};

    src.key[15] = last_byte;
    return src;
}

static void claims_are_dense_and_reused_last_in_first_out(void **state)
{
    struct psup_tally t;
    (void)state;

    assert_int_equal(psup_tally_init(&t), 0);
    assert_int_equal(psup_tally_claim(&t), 0);
    assert_int_equal(psup_tally_claim(&t), 1);
    assert_int_equal(psup_tally_claim(&t), 2);
    psup_tally_release(&t, 1);
    psup_tally_release(&t, 0);
    assert_int_equal(psup_tally_claim(&t), 0);
    assert_int_equal(psup_tally_claim(&t), 1);
    assert_int_equal(psup_tally_claim(&t), 3);
    assert_int_equal(atomic_load(&t.shared->used), 4);
    psup_tally_release(&t, PSUP_TALLY_NONE); /* ignored */
    psup_tally_free(&t);
}

static void a_full_tally_says_none_and_takes_back_what_it_gave(void **state)
{
    struct psup_tally t;
    uint32_t n = 0;
    (void)state;

    assert_int_equal(psup_tally_init(&t), 0);
    while (psup_tally_claim(&t) != PSUP_TALLY_NONE)
        n++;
    assert_int_equal(n, t.capacity);
    assert_true(n >= 2 * 65536); /* max_workers twice over, for reloads */
    psup_tally_release(&t, 12345);
    assert_int_equal(psup_tally_claim(&t), 12345);
    assert_int_equal(psup_tally_claim(&t), PSUP_TALLY_NONE);
    psup_tally_free(&t);
}

static void counts_only_published_entries_of_the_same_source(void **state)
{
    struct psup_tally t;
    struct psup_source a = ip_source(1), b = ip_source(2);
    struct psup_source uid = {.kind = PSUP_SOURCE_UID};
    (void)state;

    memcpy(uid.key, a.key, sizeof(uid.key)); /* same bytes, other kind */
    assert_int_equal(psup_tally_init(&t), 0);
    for (int i = 0; i < 6; i++)
        psup_tally_claim(&t);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 0, 100, &a, true), 1);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 1, 101, &b, true), 1);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 2, 102, &uid, true), 1);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 3, 103, &a, false), 0);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 4, 104, &a, true), 3);
    /* Withdrawn by its worker, released by the supervisor: gone. */
    psup_tally_withdraw(t.shared, 3);
    psup_tally_release(&t, 0);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, 5, 105, &a, true), 2);
    psup_tally_free(&t);
}

static void a_forked_process_shares_the_entries(void **state)
{
    struct psup_tally t;
    struct psup_source a = ip_source(7);
    int status;
    (void)state;

    assert_int_equal(psup_tally_init(&t), 0);
    uint32_t mine = psup_tally_claim(&t), theirs = psup_tally_claim(&t);
    psup_tally_publish(t.shared, t.capacity, mine, 1, &a, false);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(psup_tally_publish(t.shared, t.capacity, theirs, 2, &a, true) == 2 ? 0 : 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* And what the child published is visible here. */
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, mine, 1, &a, true), 2);
    psup_tally_free(&t);
}

/* A prestarted worker has exec'd: it shares nothing with the supervisor but
 * the tally's file, which it maps anew. */
static void a_fresh_mapping_of_the_file_shares_the_entries(void **state)
{
    struct psup_tally t;
    struct psup_source a = ip_source(9);
    (void)state;

    assert_int_equal(psup_tally_init(&t), 0);
    uint32_t mine = psup_tally_claim(&t), theirs = psup_tally_claim(&t);
    struct psup_tally_shared *other = mmap(NULL, t.map_size, PROT_READ | PROT_WRITE,
                                           MAP_SHARED, t.fd, 0);
    assert_true(other != MAP_FAILED);
    psup_tally_publish(t.shared, t.capacity, mine, 1, &a, false);
    assert_int_equal(psup_tally_publish(other, t.capacity, theirs, 2, &a, true), 2);
    assert_int_equal(psup_tally_publish(t.shared, t.capacity, mine, 1, &a, true), 2);
    munmap(other, t.map_size);
    psup_tally_free(&t);
}

/* The shared page may be written by a prestarted program before psup's
 * library runs: the supervisor's claims do not read it, and a worker's
 * scan stops at the capacity. */
static void a_forged_count_in_use_changes_nothing_the_supervisor_does(void **state)
{
    struct psup_tally t;
    struct psup_source a = ip_source(3);
    (void)state;

    assert_int_equal(psup_tally_init(&t), 0);
    assert_int_equal(psup_tally_claim(&t), 0);
    atomic_store(&t.shared->used, UINT32_MAX);
    assert_int_equal(psup_tally_claim(&t), 1);
    assert_int_equal(atomic_load(&t.shared->used), 2);
    atomic_store(&t.shared->used, UINT32_MAX);
    /* Bounded by the capacity given, not by the page: no read past it. */
    assert_int_equal(psup_tally_publish(t.shared, 2, 0, 1, &a, true), 1);
    psup_tally_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claims_are_dense_and_reused_last_in_first_out),
        cmocka_unit_test(a_full_tally_says_none_and_takes_back_what_it_gave),
        cmocka_unit_test(counts_only_published_entries_of_the_same_source),
        cmocka_unit_test(a_forked_process_shares_the_entries),
        cmocka_unit_test(a_fresh_mapping_of_the_file_shares_the_entries),
        cmocka_unit_test(a_forged_count_in_use_changes_nothing_the_supervisor_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
