/* SPDX-License-Identifier: MIT */
/*
 * The tally: which source each running handler of a service serves, in
 * memory shared with the workers, so that a worker can count the
 * connections from its client (TCPCONNNUM) by itself, without waiting for
 * the supervisor. Services whose limits need the supervisor's decision
 * (max_per_source, rate, ...) still ask for a verdict; see spec/pool.md.
 *
 * One entry per worker, claimed by the supervisor before the worker starts
 * and cleared when it is reaped. The worker writes its source into the
 * entry, then publishes it by storing its sequence number (its connection
 * id, never reused), then counts the published entries with the same
 * source. All stores and loads of sequence numbers are sequentially
 * consistent: of two workers publishing at once, at least one sees the
 * other, so each count is exact for some order of the two connections.
 * A reader takes an entry's source only if its sequence number is the same
 * before and after reading it (a seqlock), so an entry being cleared and
 * reused is never misread.
 *
 * The entries live in a MAP_SHARED mapping of a memfd, so workers created
 * with a copy of the supervisor's memory (PSUP_SPAWN=fork) share them too,
 * and a prestarted worker maps the same file after its exec. The worker's
 * side is inline here: it is compiled into the child's code, which must not
 * call into instrumented or libc code. The supervisor never reads the
 * shared page to decide anything: a prestarted worker's program could
 * write it before psup's library takes over (spec/prestart.md).
 */
#ifndef PSUP_TALLY_H
#define PSUP_TALLY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/inet.h"

/* Shared between processes, the atomics must be real instructions, not
 * libatomic's process-local locks. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "the tally needs lock-free 32- and 64-bit atomics");

struct psup_tally_entry {
    _Atomic uint64_t seq;    /* 0: nothing published */
    _Atomic uint64_t key[2]; /* the source's 16 key bytes */
    _Atomic uint32_t kind;   /* PSUP_SOURCE_IP or PSUP_SOURCE_UID */
    _Atomic uint32_t lingering; /* waiting for a refused client to close */
};

/* The shared part: what workers read. */
struct psup_tally_shared {
    _Atomic uint32_t used; /* entries ever claimed: the bound of a count */
    uint32_t unused;
    struct psup_tally_entry entries[];
};

/* The supervisor's handle on one service's tally. */
struct psup_tally {
    struct psup_tally_shared *shared;
    size_t map_size;
    int fd;               /* the memfd behind shared: a prestarted worker
                             maps it after its exec */
    uint32_t capacity;
    uint32_t used;        /* entries ever claimed, as the supervisor knows
                             it: the shared count is only ever written */
    uint32_t *free_slots; /* released entries, reused first (LIFO) */
    uint32_t n_free;
    uint32_t free_cap;    /* room in free_slots: at least the entries claimed */
};

#define PSUP_TALLY_NONE UINT32_MAX

/* Supervisor side (tally.c). */
int psup_tally_init(struct psup_tally *t);
void psup_tally_free(struct psup_tally *t);
/* An entry for a new worker, or PSUP_TALLY_NONE if none is left (that
 * worker then asks the supervisor for TCPCONNNUM as a verdict). */
uint32_t psup_tally_claim(struct psup_tally *t);
/* The worker was reaped: its entry is cleared and can be claimed again. */
void psup_tally_release(struct psup_tally *t, uint32_t slot);

/* Worker side: how many entries a scan reads. The count in use is read
 * from the shared page, which a prestarted worker's program could write
 * before psup's library takes over (spec/prestart.md): a scan never goes
 * past the capacity the plan gives. */
static inline uint32_t psup_tally_scan_bound(struct psup_tally_shared *t, uint32_t capacity)
{
    uint32_t used = atomic_load(&t->used);

    return used < capacity ? used : capacity;
}

/* Worker side. Publish src in the entry slot under seq; with count, return
 * how many published entries have the same source, this one included. */
static inline unsigned psup_tally_publish(struct psup_tally_shared *t, uint32_t capacity,
                                          uint32_t slot, uint64_t seq,
                                          const struct psup_source *src, bool count)
{
    struct psup_tally_entry *mine = &t->entries[slot];
    uint64_t key[2];

    memcpy(key, src->key, sizeof(key));
    atomic_store_explicit(&mine->key[0], key[0], memory_order_relaxed);
    atomic_store_explicit(&mine->key[1], key[1], memory_order_relaxed);
    atomic_store_explicit(&mine->kind, src->kind, memory_order_relaxed);
    atomic_store(&mine->seq, seq);
    if (!count)
        return 0;

    unsigned n = 0;
    uint32_t used = psup_tally_scan_bound(t, capacity);
    for (uint32_t i = 0; i < used; i++) {
        struct psup_tally_entry *e = &t->entries[i];
        uint64_t before = atomic_load(&e->seq);
        if (!before)
            continue;
        bool same = atomic_load_explicit(&e->key[0], memory_order_relaxed) == key[0] &&
                    atomic_load_explicit(&e->key[1], memory_order_relaxed) == key[1] &&
                    atomic_load_explicit(&e->kind, memory_order_relaxed) == src->kind;
        atomic_thread_fence(memory_order_acquire);
        if (same && atomic_load_explicit(&e->seq, memory_order_relaxed) == before)
            n++;
    }
    return n;
}

/* Worker side: take back what was published (the connection was closed
 * without a handler). */
static inline void psup_tally_withdraw(struct psup_tally_shared *t, uint32_t slot)
{
    atomic_store(&t->entries[slot].seq, 0);
}

/* Worker side: mark the entry slot as waiting for a refused client to
 * close, if at most max entries are then so marked; returns whether it
 * was. Mark first, count after, both sequentially consistent (as publish):
 * of two workers marking at once at least one sees the other, so the bound
 * holds (both may step back, which only errs on the safe side). */
static inline bool psup_tally_linger_begin(struct psup_tally_shared *t, uint32_t capacity,
                                           uint32_t slot, unsigned max)
{
    if (max == 0)
        return false;
    atomic_store(&t->entries[slot].lingering, 1);
    unsigned n = 0;
    uint32_t used = psup_tally_scan_bound(t, capacity);
    for (uint32_t i = 0; i < used && n <= max; i++)
        n += atomic_load(&t->entries[i].lingering) != 0;
    if (n <= max)
        return true;
    atomic_store(&t->entries[slot].lingering, 0);
    return false;
}

static inline void psup_tally_linger_end(struct psup_tally_shared *t, uint32_t slot)
{
    atomic_store(&t->entries[slot].lingering, 0);
}

#endif
