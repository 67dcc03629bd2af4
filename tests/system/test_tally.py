# SPDX-License-Identifier: MIT
"""Workers that need no verdict (spec/pool.md, "How a worker waits"): a
service without max_per_source, rate, on_overload "reject" or stderr "log"
runs the handler without waiting for the supervisor, and counts TCPCONNNUM
itself in the tally shared with the supervisor (lib/proto/tally.h). Its hazards:
counts of racing connections, entries reused after a reap, a handler that
exits before the supervisor has read that it started, reloads that switch a
service between the two ways, and workers created without shared memory."""

import threading

import pytest

from conftest import SPAWN_MODES, config, service, spawn_env, talk
from test_limits import HOLD, closing, hold, refused_with, reload


@pytest.fixture(params=SPAWN_MODES)
def mode_env(request):
    """Both ways of creating workers: the tally is a MAP_SHARED mapping, so
    it must work when workers get a copy of psup's memory too."""
    return spawn_env(request.param)


def hold_all_at_once(addr, n):
    """n clients connecting together; returns [(socket, TCPCONNNUM)]."""
    results, errors = [None] * n, []
    go = threading.Barrier(n)

    def one(i):
        try:
            go.wait(timeout=10)
            results[i] = hold(addr)
        except Exception as e:  # reported below, with the others
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_racing_clients_get_exact_counts(psup, mode_env):
    p = psup(config(service("fast", command=HOLD, pool={"min_spare": 16, "max_spare": 32})),
             env=mode_env)
    addr = p.addr("fast")
    for round_ in range(3):
        held = hold_all_at_once(addr, 16)
        counts = sorted(n for _, n in held)
        # Each count is exact for some order of the racing connections: the
        # last one to publish sees all sixteen, none sees more or fewer
        # than exist.
        assert all(1 <= n <= 16 for n in counts), counts
        assert counts[-1] == 16, counts
        closing(*(s for s, _ in held))
        # Each earlier round ended 17 handlers: its 16 and the lone one.
        p.wait_event("conn_end", 17 * round_ + 16, service="fast")
        # Every entry was cleared at its reap: a lone client counts 1.
        s, n = hold(addr)
        assert n == 1, f"round {round_}: stale entries counted ({n})"
        s.close()
        p.wait_event("conn_end", 17 * (round_ + 1), service="fast")


def test_handlers_that_exit_at_once_are_never_taken_for_failed_workers(psup, mode_env):
    # The handler exits right after its RUNNING message; the supervisor must
    # read that message before it handles the exit, or it would count a
    # crashed idle worker and back off.
    p = psup(config(service("quick", command="echo hi")), env=mode_env)
    addr = p.addr("quick")
    failures = []

    def client(k):
        for _ in range(k):
            if talk(addr) != b"hi\n":
                failures.append("wrong reply")

    threads = [threading.Thread(target=client, args=(40,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures
    p.wait_event("conn_end", 320, service="quick", timeout=20)
    assert not p.events("worker_failed") and not p.events("backoff")
    assert p.stop() == 0
    summary = p.events("summary", service="quick")[0]
    assert (summary["accepted"], summary["failed"]) == (320, 0)


def test_a_reload_that_sets_a_limit_counts_the_running_handlers(psup):
    p = psup(config(service("svc", command=HOLD)))
    addr = p.addr("svc")
    a, n1 = hold(addr)
    b, n2 = hold(addr)
    assert (n1, n2) == (1, 2)
    reload(p, config(service("svc", command=HOLD, max_per_source=3,
                             per_source_message="full\n")), 1)
    c, n = hold(addr)
    assert n == 3, "counted by the supervisor, with the two started without a verdict"
    refused_with(addr, b"full\n")
    closing(a, b, c)


def test_a_reload_that_drops_the_limit_counts_the_running_handlers(psup):
    p = psup(config(service("svc", command=HOLD, max_per_source=5)))
    addr = p.addr("svc")
    held = [hold(addr) for _ in range(2)]
    assert [n for _, n in held] == [1, 2]
    reload(p, config(service("svc", command=HOLD)), 1)
    c, n = hold(addr)
    assert n == 3, "handlers started with a verdict are in the tally too"
    closing(c, *(s for s, _ in held))


def test_other_sources_and_services_are_not_counted(psup):
    p = psup(config(service("one", command=HOLD), service("two", command=HOLD)))
    a, n = hold(p.addr("one"))
    assert n == 1
    b, n = hold(p.addr("one"), bind="127.0.0.2")
    assert n == 1, "127.0.0.2 is another source"
    c, n = hold(p.addr("two"))
    assert n == 1, "each service has its own tally"
    d, n = hold(p.addr("one"))
    assert n == 2
    closing(a, b, c, d)
    p.wait_event("conn_end", 4)
