# SPDX-License-Identifier: MIT
"""The stop that drops nothing (spec/signals.md): shutdown_delay keeps psup
serving after SIGTERM while it says it is not ready; connections already
in a listener's backlog when the stop proper begins are served, not reset,
while new ones are not taken; and an essential service that keeps failing
stops psup with exit status 4."""

import datetime
import os
import signal
import socket
import time

import pytest

from conftest import config, connect, read_all, service, talk, wait_for

# A handler that waits for one line and answers with it: its client
# decides when it ends.
LINE = "read x; echo \"served $x\""


def send_line(s, text):
    s.sendall(text.encode() + b"\n")


# --------------------------------------------------------------------------
# shutdown_delay.


def test_a_client_one_second_into_the_delay_is_served(psup):
    p = psup(config(service("echo"), shutdown_delay=2))
    addr = p.addr("echo")
    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    wait_for(lambda: time.monotonic() - t0 >= 1, 2, "a second")
    assert talk(addr, b"late") == b"late"
    assert not p.exited()
    assert p.wait_exit() == 0
    assert time.monotonic() - t0 >= 2, "psup served for all of shutdown_delay"
    shutdown = p.events("shutdown")[0]
    assert shutdown["delay"] == 2 and shutdown["mode"] == "graceful"
    assert p.events("shutdown_delay_over", reason="elapsed")


def test_a_second_sigterm_ends_the_delay_and_a_third_stops_at_once(psup):
    p = psup(config(service("slow", command=LINE), shutdown_delay=30, shutdown_timeout=30))
    held = connect(p.addr("slow"))
    wait_for(lambda: p.handlers("sh"), 5, "the handler")
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    p.send(signal.SIGTERM)
    over = p.wait_event("shutdown_delay_over")[0]
    assert over["reason"] == "signal" and over["signal"] == "TERM"
    # The stop proper: no new client, the held one still served.
    send_line(held, "held")
    assert read_all(held) == b"served held\n"
    held.close()
    assert p.wait_exit() == 0

    q = psup(config(service("slow", command=LINE), shutdown_delay=30, shutdown_timeout=30))
    other = connect(q.addr("slow"))
    wait_for(lambda: q.handlers("sh"), 5, "the handler")
    for n in (1, 2):
        q.send(signal.SIGTERM)
        q.wait_event("shutdown" if n == 1 else "shutdown_delay_over")
    q.send(signal.SIGTERM)
    assert q.wait_exit() == 128 + signal.SIGTERM
    assert q.events("shutdown", mode="immediate")
    other.close()


def test_sighup_is_ignored_during_the_delay(psup):
    p = psup(config(service("echo"), shutdown_delay=1))
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    p.send(signal.SIGHUP)
    assert p.wait_exit() == 0
    assert not p.events("reloaded") and not p.events("reload_rejected")


# --------------------------------------------------------------------------
# The backlog at the stop.


def queue_behind_one(p, name, n):
    """A client holding the service's one worker, and n clients queued in
    the backlog behind it, each with its line already sent."""
    addr = p.addr(name)
    holder = connect(addr)
    wait_for(lambda: p.handlers("sh"), 5, "the held handler")
    queued = []
    for i in range(n):
        s = connect(addr)
        send_line(s, f"q{i}")
        queued.append(s)
    return holder, queued


def refused_or_unanswered(addr):
    """A new connection is not taken: refused, or (TCP, whose SYN is
    dropped) not completed within half a second."""
    try:
        s = connect(addr, timeout=0.5)
    except (FileNotFoundError, ConnectionRefusedError, socket.timeout):
        return True
    s.close()
    return False


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_five_queued_clients_are_served_at_sigterm(psup, tmp_path, kind):
    listen = ["127.0.0.1:0"] if kind == "tcp" else [f"unix:{tmp_path}/q.sock"]
    p = psup(config(service("one", listen=listen, command=LINE,
                            pool={"min_spare": 1, "max_spare": 1, "max_workers": 1})))
    addr = p.addr("one")
    holder, queued = queue_behind_one(p, "one", 5)
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    # While the backlog is served, no new connection is taken.
    assert refused_or_unanswered(addr)
    if kind == "unix":
        assert not os.path.exists(addr), "the socket file is gone: connect finds nothing"
    send_line(holder, "holder")
    assert read_all(holder) == b"served holder\n"
    for i, s in enumerate(queued):
        s.settimeout(10)
        assert read_all(s) == f"served q{i}\n".encode(), f"queued client {i}"
        s.close()
    holder.close()
    assert p.wait_exit() == 0
    assert len(p.events("conn_end", service="one")) == 6


def test_the_backlog_waits_no_longer_than_shutdown_timeout(psup):
    p = psup(config(service("one", command=LINE,
                            pool={"min_spare": 1, "max_spare": 1, "max_workers": 1}),
                    shutdown_timeout=1, kill_grace=0.5))
    holder, queued = queue_behind_one(p, "one", 2)
    t0 = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit() == 0
    assert time.monotonic() - t0 < 4
    p.wait_event("shutdown_timeout")
    for s in queued + [holder]:
        s.settimeout(5)
        try:
            assert read_all(s) == b""
        except ConnectionResetError:
            pass  # reset by the kernel as the listener closed: not served
        s.close()


# --------------------------------------------------------------------------
# essential services.


def make_script(path, body="echo fine"):
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def stamp(record):
    """A record's time, in seconds."""
    return datetime.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


def poke(addr):
    try:
        talk(addr, timeout=1)
    except OSError:
        pass


def test_an_essential_service_that_keeps_failing_ends_psup_with_status_4(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(config(service("core", command=[str(script)], essential=True, fatal_after=1.5,
                            pool={"min_spare": 1, "max_spare": 1}),
                    service("other")))
    p.expect_errors = True
    script.rename(tmp_path / "gone.sh")
    wait_for(lambda: poke(p.addr("core")) or p.events("backoff", service="core"), 10,
             "the service to back off")
    assert p.wait_exit(15) == 4
    # About fatal_after from the first delayed start to the decision.
    began = stamp(p.events("backoff", service="core")[0])
    decided = stamp(p.events("essential_failed")[0])
    assert 1.5 <= decided - began <= 3.5, decided - began
    failed = p.events("essential_failed")[0]
    assert failed["service"] == "core" and failed["fatal_after"] == 1.5
    assert failed["failing_for"] >= 1.5
    shutdown = p.events("shutdown")[0]
    assert shutdown["reason"] == "essential" and shutdown["service"] == "core"
    assert shutdown["mode"] == "graceful"
    assert p.events("exit")[-1]["status"] == 4


def test_a_service_that_is_not_essential_only_backs_off(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(config(service("side", command=[str(script)], pool={"min_spare": 1, "max_spare": 1})))
    p.expect_errors = True
    script.rename(tmp_path / "gone.sh")
    wait_for(lambda: poke(p.addr("side")) or p.events("backoff", service="side"), 10, "backoff")
    time.sleep(0.5)  # a bounded "must not happen"
    assert not p.exited()
    assert p.stop() == 0


def test_an_essential_service_that_recovers_keeps_psup_running(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(config(service("core", command=[str(script)], essential=True, fatal_after=3,
                            pool={"min_spare": 1, "max_spare": 1})))
    p.expect_errors = True
    hidden = script.rename(tmp_path / "gone.sh")
    wait_for(lambda: poke(p.addr("core")) or p.events("backoff", service="core"), 10, "backoff")
    hidden.rename(script)
    p.send(signal.SIGHUP)  # a reload ends the streak at once
    p.wait_event("recovered", service="core")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.5:
        assert not p.exited(), "psup stopped although the service recovered"
        time.sleep(0.1)
    assert talk(p.addr("core")) == b"fine\n"
    assert p.stop() == 0
