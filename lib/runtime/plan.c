/* SPDX-License-Identifier: MIT */
/*
 * A generation's plan: everything its workers read, laid out flat (no
 * pointers, offsets from the plan's first byte; proto.h), so that the same
 * bytes serve a worker that shares the supervisor's memory and a
 * prestarted one, which maps a sealed memfd copy after its exec
 * (spec/prestart.md). Built once per generation, never changed.
 */
#include "runtime/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A growing buffer; offsets stay valid when it moves. */
struct writer {
    char *buf;
    size_t used, cap;
    bool failed;
};

/* len bytes of data (zeros if NULL) at the next offset aligned to align;
 * returns that offset (0 once out of memory or past 4 GiB). */
static uint32_t put(struct writer *w, const void *data, size_t len, size_t align)
{
    size_t off = (w->used + align - 1) & ~(align - 1);

    if (w->failed || off + len > UINT32_MAX) {
        w->failed = true;
        return 0;
    }
    if (off + len > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < off + len)
            cap *= 2;
        char *grown = realloc(w->buf, cap);
        if (!grown) {
            w->failed = true;
            return 0;
        }
        w->buf = grown;
        w->cap = cap;
    }
    memset(w->buf + w->used, 0, off - w->used);
    if (data)
        memcpy(w->buf + off, data, len);
    else
        memset(w->buf + off, 0, len);
    w->used = off + len;
    return (uint32_t)off;
}

static uint32_t put_str(struct writer *w, const char *s)
{
    return s ? put(w, s, strlen(s) + 1, 1) : 0;
}

/* n strings: an array of their offsets, then the strings. */
static uint32_t put_strs(struct writer *w, char *const *v, size_t n)
{
    uint32_t arr = put(w, NULL, n * sizeof(uint32_t), sizeof(uint32_t));

    for (size_t i = 0; i < n && !w->failed; i++) {
        uint32_t off = put_str(w, v[i]);
        if (!w->failed)
            memcpy(w->buf + arr + i * sizeof(uint32_t), &off, sizeof(off));
    }
    return arr;
}

static int compare_ints(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

    return (x > y) - (x < y);
}

/* What a worker keeps open, sorted once here so that the worker (which
 * has no heap and a small stack) closes the gaps in one pass, whatever the
 * number of listeners: the channel and the listeners, and for a prestarted
 * worker the plan's and the tally's files its library maps. */
static void put_keep_fds(struct writer *w, struct psup_plan *h)
{
    const struct psup_plan_listener *ls = (const void *)(w->buf + h->listeners);
    int32_t *fds = malloc((h->n_listeners + 3) * sizeof(*fds));
    size_t n = 0;

    if (!fds) {
        w->failed = true;
        return;
    }
    fds[n++] = h->channel_fd;
    for (size_t i = 0; i < h->n_listeners; i++)
        fds[n++] = ls[i].fd;
    if (h->prestart) {
        fds[n++] = h->tally_fd;
        fds[n++] = h->plan_fd;
    }
    qsort(fds, n, sizeof(fds[0]), compare_ints);
    h->keep_fds = put(w, fds, n * sizeof(fds[0]), sizeof(fds[0]));
    h->n_keep_fds = (uint32_t)n;
    free(fds);
}

static void put_listeners(struct writer *w, struct psup_plan *h,
                          const struct psup_service_config *svc,
                          struct psup_listener *const *ls)
{
    h->listeners = put(w, NULL, svc->n_listen * sizeof(struct psup_plan_listener), 8);
    h->n_listeners = (uint32_t)svc->n_listen;
    for (size_t j = 0; j < svc->n_listen && !w->failed; j++) {
        struct psup_plan_listener *pl = (void *)(w->buf + h->listeners + j * sizeof(*pl));
        pl->fd = ls[j]->fd;
        pl->proto = svc->listen[j].proto;
        pl->family = ls[j]->family;
        pl->port = ls[j]->port;
        memcpy(pl->text, ls[j]->bound, sizeof(pl->text));
        pl->text[sizeof(pl->text) - 1] = '\0';
    }
    if (!w->failed)
        put_keep_fds(w, h);
}

static void put_process(struct writer *w, struct psup_plan *h,
                        const struct psup_service_config *svc)
{
    /* A cgi service execs the relay, which runs the command (spec/cgi.md):
     * the worker checks both before it takes a connection. */
    h->program = put_str(w, svc->relay ? svc->relay : svc->program);
    h->script = svc->relay ? put_str(w, svc->program) : 0;
    h->cwd = put_str(w, svc->cwd);
    h->umask = svc->umask;
    h->nice = svc->nice;
    h->set_nice = svc->set_nice;
    h->set_ids = svc->set_ids;
    h->no_new_privileges = svc->no_new_privileges;
    h->uid = svc->uid;
    h->gid = svc->gid;
    h->groups = put(w, svc->groups, svc->n_groups * sizeof(gid_t), sizeof(gid_t));
    h->n_groups = (uint32_t)svc->n_groups;
    h->rlimits = put(w, NULL, svc->n_rlimits * sizeof(struct psup_plan_rlimit), 8);
    h->n_rlimits = (uint32_t)svc->n_rlimits;
    for (size_t i = 0; i < svc->n_rlimits && !w->failed; i++) {
        struct psup_plan_rlimit r = {.resource = svc->rlimits[i].resource,
                                     .cur = svc->rlimits[i].value.rlim_cur,
                                     .max = svc->rlimits[i].value.rlim_max};
        memcpy(w->buf + h->rlimits + i * sizeof(r), &r, sizeof(r));
    }
}

static void put_admission(struct writer *w, struct psup_plan *h,
                          const struct psup_service_config *svc)
{
    h->allow = put(w, svc->allow, svc->n_allow * sizeof(struct psup_cidr), 8);
    h->n_allow = (uint32_t)svc->n_allow;
    h->deny = put(w, svc->deny, svc->n_deny * sizeof(struct psup_cidr), 8);
    h->n_deny = (uint32_t)svc->n_deny;
    h->deny_message = put_str(w, svc->deny_message);
    h->per_source_message = put_str(w, svc->per_source_message);
    h->rate_message = put_str(w, svc->rate_message);
    h->overload_message = put_str(w, svc->overload_message);
    h->per_source_ipv6_prefix = svc->per_source_ipv6_prefix;
    h->min_spare = svc->min_spare;
    /* The PROXY header the worker reads before admission (spec/proxy.md). */
    h->proxy_protocol = (uint8_t)svc->proxy_protocol;
    h->proxy_from = put(w, svc->proxy_from, svc->n_proxy_from * sizeof(struct psup_cidr), 8);
    h->n_proxy_from = (uint32_t)svc->n_proxy_from;
    h->proxy_timeout_ms = svc->proxy_timeout_ms;
}

static void put_runtime(struct psup_plan *h, const struct psup_runtime *rt,
                        const struct psup_tally *tally)
{
    h->channel_fd = rt->channel_fd;
    h->supervisor_pid = rt->self;
    h->verdict_signal = rt->verdict_signal;
    h->verdict_timeout_ms = rt->verdict_timeout_ms;
    h->fd_closing = rt->fd_closing;
    h->n_reset_signals = (uint32_t)rt->n_reset_signals;
    memcpy(h->reset_signals, rt->reset_signals, rt->n_reset_signals * sizeof(int));
    h->own_session = rt->handler_sessions;
    h->tally_capacity = tally->capacity;
    h->tally_size = tally->map_size;
}

struct psup_plan *psup_plan_build(const struct psup_plan_input *in)
{
    const struct psup_service_config *svc = in->svc;
    struct writer w = {0};
    struct psup_plan h = {.magic = PSUP_PLAN_MAGIC, .version = PSUP_PLAN_VERSION,
                          .tally_fd = -1, .plan_fd = in->plan_fd};

    _Static_assert(sizeof(h.reset_signals) / sizeof(h.reset_signals[0]) >=
                   sizeof(in->rt->reset_signals) / sizeof(in->rt->reset_signals[0]),
                   "the plan holds every signal to reset");
    put(&w, NULL, sizeof(h), 8);
    put_runtime(&h, in->rt, in->tally);
    h.prestart = svc->prestart;
    if (h.prestart)
        h.tally_fd = in->tally->fd;
    h.stderr_mode = (uint8_t)svc->stderr_mode;
    h.mode = (uint8_t)svc->mode;
    /* Without these the worker needs no answer: it counts TCPCONNNUM in
     * the tally itself and runs the handler at once. */
    h.needs_verdict = svc->max_per_source || svc->rate > 0 ||
                      svc->on_overload == PSUP_OVERLOAD_REJECT ||
                      svc->stderr_mode == PSUP_STDERR_LOG;
    put_listeners(&w, &h, svc, in->listeners);
    put_admission(&w, &h, svc);
    put_process(&w, &h, svc);
    /* The base environment's strings are for a prestarted worker's
     * library; a worker in the supervisor's memory uses its arrays. */
    if (h.prestart)
        h.env = put_strs(&w, in->env, in->n_env);
    h.n_env = (uint32_t)in->n_env;
    if (w.failed) {
        free(w.buf);
        return NULL;
    }
    h.size = (uint32_t)w.used;
    memcpy(w.buf, &h, sizeof(h));
    return (struct psup_plan *)w.buf;
}

int psup_plan_memfd(void)
{
    int fd = memfd_create("psup-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    return fd < 0 ? -errno : fd;
}

int psup_plan_seal(int fd, const struct psup_plan *plan)
{
    size_t done = 0;

    while (done < plan->size) {
        ssize_t n = pwrite(fd, (const char *)plan + done, plan->size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    /* Sealed: nobody, the prestarted program included, can change what
     * the next worker reads. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return -errno;
    return 0;
}
