/* SPDX-License-Identifier: MIT */
/*
 * The per-source count table: linear probing with backward-shift deletion,
 * so entries whose count drops to zero are removed and the table never fills
 * with tombstones however many distinct clients come and go.
 */
#include "policy/sources.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct psup_sources_slot {
    struct psup_source src;
    unsigned count; /* 0: empty slot */
};

static size_t hash(const struct psup_source *src)
{
    /* FNV-1a over kind and key. */
    uint64_t h = 1469598103934665603ULL ^ src->kind;

    for (size_t i = 0; i < sizeof(src->key); i++) {
        h ^= src->key[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29));
}

static bool same(const struct psup_source *a, const struct psup_source *b)
{
    return a->kind == b->kind && memcmp(a->key, b->key, sizeof(a->key)) == 0;
}

static struct psup_sources_slot *find(const struct psup_sources *s, const struct psup_source *src)
{
    if (!s->cap)
        return NULL;
    for (size_t i = hash(src) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        struct psup_sources_slot *slot = &s->slots[i];
        if (slot->count == 0)
            return NULL;
        if (same(&slot->src, src))
            return slot;
    }
}

static void insert(struct psup_sources *s, const struct psup_source *src, unsigned count)
{
    size_t i = hash(src) & (s->cap - 1);

    while (s->slots[i].count)
        i = (i + 1) & (s->cap - 1);
    s->slots[i].src = *src;
    s->slots[i].count = count;
    s->used++;
}

static int grow(struct psup_sources *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct psup_sources_slot *old = s->slots;
    size_t old_cap = s->cap;
    struct psup_sources_slot *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return -1;
    s->slots = slots;
    s->cap = cap;
    s->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].count)
            insert(s, &old[i].src, old[i].count);
    free(old);
    return 0;
}

unsigned psup_sources_count(const struct psup_sources *s, const struct psup_source *src)
{
    const struct psup_sources_slot *slot = find(s, src);
    return slot ? slot->count : 0;
}

unsigned psup_sources_add(struct psup_sources *s, const struct psup_source *src)
{
    struct psup_sources_slot *slot = find(s, src);

    if (slot)
        return ++slot->count;
    /* Keep the load factor under 1/2 so probes stay short. */
    if ((s->used + 1) * 2 > s->cap && grow(s) < 0)
        return 0;
    insert(s, src, 1);
    return 1;
}

void psup_sources_remove(struct psup_sources *s, const struct psup_source *src)
{
    struct psup_sources_slot *slot = find(s, src);

    if (!slot || --slot->count > 0)
        return;
    /* Backward-shift deletion: move later entries of the probe run into the
     * hole, so lookups never stop early at it. */
    size_t mask = s->cap - 1;
    size_t hole = (size_t)(slot - s->slots);
    for (size_t j = (hole + 1) & mask; s->slots[j].count; j = (j + 1) & mask) {
        size_t home = hash(&s->slots[j].src) & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole].count = 0;
    s->used--;
}

void psup_sources_free(struct psup_sources *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}
