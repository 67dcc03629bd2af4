/* SPDX-License-Identifier: MIT */
/*
 * The loop's side of datagram replies (replies.h): a uv_poll per reply
 * socket, and a timer that ends the following of a socket a second after
 * its handler was reaped. The reading and sending is the runtime's
 * (runtime/reply.c).
 */
#include "loop/replies.h"

#include <stdlib.h>

/* Per wake-up and socket: a handler that writes without pause still lets
 * the loop serve everything else between two budgets. */
#define REPLY_BUDGET_BYTES (64 * 1024)
#define REPLY_BUDGET_MESSAGES 64

struct reply_watch {
    uv_poll_t poll;
    uv_timer_t linger;
    struct psup_list link;
    struct psup_reply *reply;
    unsigned open_handles; /* freed when both are closed */
    bool ending;
};

static uint64_t now_of(const struct reply_watch *w)
{
    return uv_now(w->poll.loop);
}

static void handle_closed(uv_handle_t *h)
{
    struct reply_watch *w = h->data;

    if (--w->open_handles == 0)
        free(w);
}

static void finish(struct reply_watch *w)
{
    if (w->ending)
        return;
    w->ending = true;
    psup_list_remove(&w->link);
    uv_poll_stop(&w->poll);
    uv_timer_stop(&w->linger);
    uv_close((uv_handle_t *)&w->poll, handle_closed);
    uv_close((uv_handle_t *)&w->linger, handle_closed);
    /* The poll is stopped: the descriptor can go. */
    psup_reply_free(w->reply);
    w->reply = NULL;
}

static enum psup_reply_state pump(struct reply_watch *w)
{
    return psup_reply_pump(w->reply, REPLY_BUDGET_BYTES, REPLY_BUDGET_MESSAGES, now_of(w));
}

static void readable_cb(uv_poll_t *h, int status, int events)
{
    struct reply_watch *w = h->data;

    (void)events;
    if (status < 0 || pump(w) == PSUP_REPLY_END)
        finish(w);
}

static void linger_cb(uv_timer_t *t)
{
    struct reply_watch *w = t->data;

    /* What a process the handler left behind wrote meanwhile, one budget;
     * then the socket is closed and its writes fail. */
    pump(w);
    finish(w);
}

bool psup_replies_watch(uv_loop_t *loop, struct psup_list *all, struct psup_reply *r)
{
    struct reply_watch *w = calloc(1, sizeof(*w));

    if (!w || uv_poll_init(loop, &w->poll, r->fd) < 0) {
        free(w);
        return false;
    }
    uv_timer_init(loop, &w->linger);
    w->open_handles = 2;
    w->poll.data = w->linger.data = w;
    w->reply = r;
    r->watch = w;
    psup_list_append(all, &w->link);
    uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, readable_cb);
    return true;
}

void psup_replies_handler_gone(struct psup_reply *r)
{
    struct reply_watch *w = r->watch;

    /* What the handler wrote before it exited is sent before its conn_end
     * (which counts it), at most one budget: a process it left behind may
     * keep the socket full. */
    enum psup_reply_state st = pump(w);

    psup_reply_detach(r);
    if (st == PSUP_REPLY_END)
        finish(w);
    else
        uv_timer_start(&w->linger, linger_cb, PSUP_REPLY_LINGER_MS, 0);
}

void psup_replies_close_all(struct psup_list *all)
{
    while (!psup_list_empty(all)) {
        struct reply_watch *w = PSUP_CONTAINER(all->next, struct reply_watch, link);
        pump(w);
        finish(w);
    }
}
