/* SPDX-License-Identifier: MIT */
/*
 * A small hash table for the loader's uniqueness checks (repeated keys,
 * service names, listen addresses), so that a file of n entries costs O(n)
 * and not the O(n^2) of comparing each entry with every earlier one: an
 * "env" of 100000 keys once took 30 s, and a reload blocks the supervisor.
 * Open addressing with linear probing; the table only grows. Entries point
 * into the caller's data, which must outlive the table.
 */
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16

uint64_t cfg_hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

void cfg_table_init(struct cfg_table *t, bool (*same)(const void *a, const void *b))
{
    memset(t, 0, sizeof(*t));
    t->same = same;
}

void cfg_table_free(struct cfg_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
}

/* The slot for an entry like e: the equal one, or the empty one to use. */
static struct cfg_entry *probe(const struct cfg_table *t, const struct cfg_entry *e)
{
    for (size_t i = (size_t)e->hash & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        struct cfg_entry *s = &t->slots[i];
        if (!s->used)
            return s;
        if (s->hash == e->hash && (!t->same || t->same(s->key, e->key)))
            return s;
    }
}

/* Double the table (at most half full, so probes stay short). */
static bool grow(struct cfg_table *t)
{
    size_t cap = t->cap ? 2 * t->cap : MIN_CAP;
    struct cfg_entry *old = t->slots;
    size_t old_cap = t->cap;

    if (!(t->slots = calloc(cap, sizeof(*t->slots)))) {
        t->slots = old;
        return false;
    }
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].used)
            *probe(t, &old[i]) = old[i];
    }
    free(old);
    return true;
}

const struct cfg_entry *cfg_table_find(const struct cfg_table *t, const struct cfg_entry *e)
{
    if (t->cap == 0)
        return NULL;

    const struct cfg_entry *s = probe(t, e);
    return s->used ? s : NULL;
}

const struct cfg_entry *cfg_table_add(struct ctx *c, struct cfg_table *t, const struct cfg_entry *e)
{
    if (2 * (t->n + 1) > t->cap && !grow(t)) {
        c->oom = true;
        return NULL;
    }

    struct cfg_entry *s = probe(t, e);
    if (s->used)
        return s;
    *s = *e;
    s->used = true;
    t->n++;
    return NULL;
}

/* ---- the names of an object's members ---------------------------------- */

static bool same_name(const void *a, const void *b)
{
    return strcmp(a, b) == 0;
}

void cfg_names_init(struct cfg_names *s)
{
    memset(s, 0, sizeof(*s));
    cfg_table_init(&s->big, same_name);
}

/* Up to a handful of names are compared one by one: most objects have a
 * few members, and a table for each would cost more than it saves. */
bool cfg_names_add(struct ctx *c, struct cfg_names *s, const char *name)
{
    if (s->n_small < CFG_NAMES_SMALL) {
        for (size_t i = 0; i < s->n_small; i++) {
            if (strcmp(s->small[i], name) == 0)
                return true;
        }
        s->small[s->n_small++] = name;
        return false;
    }
    if (s->big.cap == 0) {
        for (size_t i = 0; i < s->n_small; i++) {
            struct cfg_entry e = {.hash = cfg_hash_bytes(s->small[i], strlen(s->small[i])),
                                  .key = s->small[i]};
            cfg_table_add(c, &s->big, &e);
        }
    }

    struct cfg_entry e = {.hash = cfg_hash_bytes(name, strlen(name)), .key = name};
    return cfg_table_add(c, &s->big, &e) != NULL;
}

void cfg_names_free(struct cfg_names *s)
{
    cfg_table_free(&s->big);
}
