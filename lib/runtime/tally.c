/* SPDX-License-Identifier: MIT */
/*
 * The tally's supervisor side: the shared mapping and the allocation of its
 * entries (tally.h explains the protocol).
 */
#include "proto/tally.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Room for max_workers' upper bound twice over: workers of an old
 * generation still running beside a full new one after a reload. Only the
 * pages of entries in use are ever touched. */
#define TALLY_CAPACITY (2u * 65536u)

int psup_tally_init(struct psup_tally *t)
{
    size_t size = sizeof(struct psup_tally_shared) +
                  (size_t)TALLY_CAPACITY * sizeof(struct psup_tally_entry);

    *t = (struct psup_tally){.fd = -1};
    /* A file rather than anonymous memory, so that a prestarted worker,
     * whose exec dropped the supervisor's mappings, can map it too. Sparse:
     * only the pages of entries in use are ever allocated. */
    int fd = memfd_create("psup-tally", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0)
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (map == MAP_FAILED) {
        int err = errno;
        close(fd);
        return -err;
    }
    t->shared = map;
    t->map_size = size;
    t->fd = fd;
    t->capacity = TALLY_CAPACITY;
    return 0;
}

void psup_tally_free(struct psup_tally *t)
{
    if (t->shared)
        munmap(t->shared, t->map_size);
    if (t->fd >= 0)
        close(t->fd);
    free(t->free_slots);
    *t = (struct psup_tally){.fd = -1};
}

uint32_t psup_tally_claim(struct psup_tally *t)
{
    if (t->n_free)
        return t->free_slots[--t->n_free];
    if (t->used == t->capacity)
        return PSUP_TALLY_NONE;
    /* Room to give it back later, reserved now: release cannot fail. */
    if (t->used == t->free_cap) {
        uint32_t cap = t->free_cap ? 2 * t->free_cap : 64;
        uint32_t *grown = realloc(t->free_slots, cap * sizeof(*grown));
        if (!grown)
            return PSUP_TALLY_NONE;
        t->free_slots = grown;
        t->free_cap = cap;
    }
    atomic_store(&t->shared->used, ++t->used);
    return t->used - 1;
}

void psup_tally_release(struct psup_tally *t, uint32_t slot)
{
    if (slot == PSUP_TALLY_NONE)
        return;
    atomic_store(&t->shared->entries[slot].seq, 0);
    /* A worker killed while it waited for a refused client. */
    atomic_store(&t->shared->entries[slot].lingering, 0);
    t->free_slots[t->n_free++] = slot;
}
