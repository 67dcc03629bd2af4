# SPDX-License-Identifier: MIT
"""Signals to psup (spec/signals.md): graceful TERM/INT, a second TERM, QUIT,
handlers stuck past shutdown_timeout with everything they started, and psup
as PID 1 of a PID namespace and as a subreaper, reaping orphans."""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import alive, config, connect, read_all, service, talk, wait_for


def test_sigterm_lets_a_running_handler_finish(psup):
    p = psup(config(service(command="read line; sleep 0.5; echo \"done $line\"")))
    s = connect(p.addr("svc"), timeout=30)
    s.sendall(b"slow\n")
    wait_for(lambda: p.handlers("sh"), 5, "handler running")
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    # New connections are refused at once: the listener is closed.
    wait_for(lambda: not p.workers(), 5, "idle workers gone")
    with pytest.raises(ConnectionRefusedError):
        connect(p.addr("svc"))
    assert read_all(s) == b"done slow\n"
    assert p.wait_exit(10) == 0
    end = p.events("conn_end")[0]
    assert end["status"] == 0 and end["duration_ms"] >= 400


def test_sigint_is_graceful_too(psup):
    p = psup(config(service()))
    assert talk(p.addr("svc"), b"x") == b"x"
    assert p.stop(signal.SIGINT) == 0
    assert p.events("shutdown")[0]["mode"] == "graceful"


def test_stuck_handler_is_killed_with_everything_it_started(psup, tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {pids}; trap '' TERM; sleep 1000; wait"
    p = psup(config(service(command=script), shutdown_timeout=0.5, kill_grace=0.5))
    s = connect(p.addr("svc"))
    bg = int(wait_for(lambda: pids.exists() and pids.read_text().strip(), 5, "background pid"))
    handler = p.handlers("sh")[0]
    begin = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit(10) == 0
    elapsed = time.monotonic() - begin
    assert 0.9 <= elapsed < 5, elapsed
    assert not alive(bg) and not alive(handler)
    assert p.events("shutdown_timeout")
    end = p.events("conn_end")[0]
    assert end["signal"] == "KILL", "the shell ignores TERM: KILL after kill_grace"
    assert read_all(s) == b""
    s.close()


def test_second_sigterm_stops_at_once(psup):
    p = psup(config(service(command="sleep 1000"), shutdown_timeout=60))
    s = connect(p.addr("svc"))
    wait_for(lambda: p.handlers("sh"), 5, "handler running")
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    p.send(signal.SIGTERM)
    assert p.wait_exit(10) == 128 + signal.SIGTERM
    assert p.events("shutdown")[1]["mode"] == "immediate"
    assert p.events("conn_end")[0]["signal"] == "KILL"
    s.close()


def test_sigquit_stops_at_once_with_a_failure_status(psup):
    p = psup(config(service(command="sleep 1000")))
    s = connect(p.addr("svc"))
    handler = wait_for(lambda: p.handlers("sh"), 5, "handler running")[0]
    assert p.stop(signal.SIGQUIT) == 128 + signal.SIGQUIT
    assert not alive(handler)
    s.close()


def test_orphans_of_handlers_are_reaped_by_the_subreaper(psup, tmp_path):
    marker = tmp_path / "orphan"
    # The handler leaves a grandchild behind that outlives it.
    p = psup(config(service(command=f"(sleep 0.3; echo $$ > {marker}) & echo started")),
             args=["--verbose"])
    assert talk(p.addr("svc")) == b"started\n"
    wait_for(lambda: marker.exists(), 5, "the orphan to finish")
    p.wait_event("reaped_orphan")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    assert p.stop() == 0


def test_shutdown_waits_for_orphans_that_left_the_group(psup, tmp_path):
    pidfile = tmp_path / "escaped"
    p = psup(config(service(command=f"setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}; echo ok"),
                    kill_grace=0.5))
    assert talk(p.addr("svc")) == b"ok\n"
    escaped = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "pid"))
    assert alive(escaped)
    assert p.stop() == 0
    assert not alive(escaped), "psup exits only after the orphan is gone"


def unshare_available():
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not unshare_available(), reason="needs PID namespaces (root or user namespaces)")
def test_pid1_in_a_namespace_reaps_orphans_and_exits_0_on_sigterm(psup, tmp_path):
    marker = tmp_path / "orphan"
    p = psup(config(service(command=f"(sleep 0.3; echo done > {marker}) & echo started")),
             args=["--verbose"], wrapper=["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
    assert p.events("start")[0]["pid"] == 1 and p.events("start")[0]["reaper"] == "pid1"
    for _ in range(5):
        assert talk(p.addr("svc")) == b"started\n"
    wait_for(lambda: marker.exists(), 5, "the orphans to finish")
    wait_for(lambda: len(p.events("reaped_orphan")) >= 5, 5, "orphans reaped by PID 1")
    wait_for(lambda: not p.zombies(), 5, "no zombies in the namespace")
    begin = time.monotonic()
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait_exit(10) == 0
    assert time.monotonic() - begin < 7
