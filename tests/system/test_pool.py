# SPDX-License-Identifier: MIT
"""Pools observed from outside: spare bounds while clients hold handlers
busy, the max_workers limit with the backlog behind it, idle workers killed
or stopped, and no zombie after any of it."""

import os
import signal
import socket
import time

from conftest import config, connect, proc_stat, service, talk, wait_for


def pool(p):
    """(idle workers, busy cat handlers) of the service, seen in /proc."""
    return len(p.workers()), len(p.handlers("cat"))


def hold(p, name="svc"):
    """A client that keeps a cat handler busy until closed."""
    s = connect(p.addr(name))
    s.sendall(b"ping")
    assert s.recv(4) == b"ping"
    return s


def test_spares_are_replaced_as_workers_go_busy(psup):
    p = psup(config(service(pool={"min_spare": 2, "max_spare": 3, "max_workers": 4})))
    wait_for(lambda: pool(p) == (2, 0), 5, "2 idle workers at start")
    held = []
    for busy, idle in ((1, 2), (2, 2), (3, 1), (4, 0)):
        held.append(hold(p))
        wait_for(lambda: pool(p) == (idle, busy), 5, f"{idle} idle and {busy} busy")
    for s in held:
        s.close()
    wait_for(lambda: pool(p) == (2, 0), 5, "back to 2 idle")
    wait_for(lambda: not p.zombies(), 5, "no zombies")


def test_clients_past_max_workers_wait_in_the_backlog(psup):
    p = psup(config(service(pool={"min_spare": 1, "max_spare": 2, "max_workers": 3})))
    held = [hold(p) for _ in range(3)]
    waiting = [connect(p.addr("svc")) for _ in range(4)]
    for n, s in enumerate(waiting):
        s.sendall(f"queued {n}".encode())
    # Nothing more can run: 3 busy, none idle, for as long as we look.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert pool(p) == (0, 3)
        time.sleep(0.02)
    sat = p.wait_event("saturated", service="svc")
    assert len(sat) == 1
    for s in held:
        s.close()
    for n, s in enumerate(waiting):
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(100):
            data += chunk
        assert data == f"queued {n}".encode()
        s.close()
    p.wait_event("saturation_ended", service="svc")
    assert len(p.events("saturated")) == 1, "saturation is logged once, not per connection"
    wait_for(lambda: not p.zombies(), 5, "no zombies")


def test_idle_workers_killed_are_replaced(psup):
    p = psup(config(service(pool={"min_spare": 3, "max_spare": 3})))
    first = wait_for(lambda: len(p.workers()) == 3 and p.workers(), 5, "3 workers")
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    replaced = wait_for(lambda: (w := p.workers()) and len(w) == 3 and not set(w) & set(first) and w,
                        5, "3 new workers")
    assert len(replaced) == 3
    assert len(p.events("worker_lost")) == 3
    assert not p.events("backoff"), "an outside kill is not a failure of the service"
    assert talk(p.addr("svc"), b"still serving") == b"still serving"
    wait_for(lambda: not p.zombies(), 5, "no zombies")


def test_stopped_idle_worker_is_replaced_and_retired_when_continued(psup):
    p = psup(config(service(pool={"min_spare": 2, "max_spare": 2})))
    workers = wait_for(lambda: len(p.workers()) == 2 and p.workers(), 5, "2 workers")
    victim = workers[0]
    os.kill(victim, signal.SIGSTOP)
    running = lambda: [w for w in p.workers() if proc_stat(w)[0] != "T"]
    wait_for(lambda: len(running()) == 2, 5, "a replacement for the stopped worker")
    assert talk(p.addr("svc"), b"served") == b"served"
    os.kill(victim, signal.SIGCONT)
    # Continued, it is one spare too many: one of the three is retired.
    wait_for(lambda: len(p.workers()) == 2 and len(running()) == 2, 5, "back to 2 workers")
    assert not p.events("worker_failed") and not p.events("worker_lost")


def test_status_on_sigusr1(psup):
    p = psup(config(service(pool={"min_spare": 2, "max_spare": 4, "max_workers": 8})))
    s = hold(p)
    wait_for(lambda: pool(p) == (2, 1), 5, "one busy")
    p.send(signal.SIGUSR1)
    status = p.wait_event("status", service="svc")[0]
    assert (status["idle"], status["busy"], status["state"]) == (2, 1, "serving")
    s.close()


def test_many_short_connections_leave_no_zombie(psup):
    p = psup(config(service(command="exit 0", pool={"min_spare": 4})))
    for _ in range(200):
        with connect(p.addr("svc")) as s:
            s.close()
    wait_for(lambda: len(p.events("conn_end")) == 200, 20, "200 conn_end lines")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    p.send(signal.SIGUSR1)
    assert p.wait_event("status")[0]["busy"] == 0
