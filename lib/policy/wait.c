/* SPDX-License-Identifier: MIT */
/* The wait-mode policy (wait.h, spec/wait.md). Pure. */
#include "policy/wait.h"

static unsigned at_most(unsigned n, unsigned limit)
{
    return n < limit ? n : limit;
}

struct psup_wait_action psup_wait_decide(const struct psup_wait_facts *f)
{
    struct psup_wait_action a = {0, false};

    if (!f->serving)
        return a;
    if (f->start == PSUP_START_ALWAYS) {
        if (f->running < f->instances)
            a.start = at_most(f->instances - f->running, f->allowance);
        return a;
    }
    /* on_demand. While a server runs it takes what arrives: psup cannot
     * tell when it has taken what woke it, and a level-triggered watch
     * would fire again until then, so psup watches only while none runs,
     * and starts the whole set at once. */
    if (f->running)
        return a;
    if (f->demand && f->allowance) {
        a.start = at_most(f->instances, f->allowance);
        return a;
    }
    /* During a backoff delay the sockets are not watched either (what is
     * pending would wake psup at every turn of its loop): the delay's end
     * is a deadline of its own. */
    a.watch = !f->demand && f->allowance > 0;
    return a;
}

enum psup_wait_verdict psup_wait_judge_exit(const struct psup_wait_exit *e)
{
    if (e->failed_to_start)
        return PSUP_WAIT_FAILED;
    if (e->stopped_by_psup)
        return PSUP_WAIT_STOPPED;
    /* A server given for good is meant to stay: any exit is a failure,
     * restarted at once twice, then with growing delays. */
    if (e->start == PSUP_START_ALWAYS)
        return PSUP_WAIT_FAILED;
    /* inetd's "looping": a server that left what woke it would be started
     * again at once, for ever. A crash is a failure as well. */
    if (!e->exit_zero || e->left_pending)
        return PSUP_WAIT_FAILED;
    return PSUP_WAIT_CLEAN;
}
