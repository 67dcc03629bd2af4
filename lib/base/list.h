/* SPDX-License-Identifier: MIT */
/* An intrusive doubly linked list (circular, with a head node). */
#ifndef PSUP_LIST_H
#define PSUP_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct psup_list {
    struct psup_list *prev;
    struct psup_list *next;
};

#define PSUP_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void psup_list_init(struct psup_list *head)
{
    head->prev = head->next = head;
}

static inline bool psup_list_empty(const struct psup_list *head)
{
    return head->next == head;
}

static inline void psup_list_insert_after(struct psup_list *pos, struct psup_list *node)
{
    node->prev = pos;
    node->next = pos->next;
    pos->next->prev = node;
    pos->next = node;
}

static inline void psup_list_append(struct psup_list *head, struct psup_list *node)
{
    psup_list_insert_after(head->prev, node);
}

/* Unlink a node; unlinking twice is harmless. */
static inline void psup_list_remove(struct psup_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

#define psup_list_foreach_safe(pos, tmp, head)                                 \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);          \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
