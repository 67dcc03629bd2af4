# SPDX-License-Identifier: MIT
"""psup as a container entrypoint (issue 3, spec/signals.md): as PID 1 of a
PID namespace (what `docker run` gives it) and as an ordinary process (a
subreaper). SIGTERM while a handler runs exits 0 after the handler finished
its reply, well inside `docker stop`'s 10 s; a handler that ignores SIGTERM
is killed after shutdown_timeout + kill_grace and psup still exits 0;
orphans of handlers are re-parented to psup and reaped."""

import os
import signal
import subprocess
import time

import pytest

from conftest import alive, children_of, config, connect, proc_stat, read_all, service, talk, wait_for

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def unshare_available():
    try:
        return subprocess.run(UNSHARE[:-1] + ["true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


MODES = [
    pytest.param("pid1", marks=pytest.mark.skipif(
        not unshare_available(), reason="needs PID namespaces (unshare --pid: root or user namespaces)")),
    "subreaper",
]


def start(psup, mode, cfg, **kw):
    p = psup(cfg, wrapper=UNSHARE if mode == "pid1" else [], **kw)
    started = p.events("start")[0]
    assert started["reaper"] == mode
    if mode == "pid1":
        assert started["pid"] == 1 and p.pid != 1
    return p


def children_named(p, comm):
    return [c for c in children_of(p.pid) if (st := proc_stat(c)) and st[0] != "Z" and st[3] == comm]


def ns_pid(pid):
    """A process's pid in its own (innermost) PID namespace."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return pid


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_while_a_handler_runs_exits_0_after_the_whole_reply(psup, mode):
    # About a second of work, then a reply of 120 kB.
    p = start(psup, mode, config(service(command="read line; sleep 1; yes \"$line\" | head -n 20000")))
    s = connect(p.addr("svc"), timeout=20)
    s.sendall(b"payload\n")
    wait_for(lambda: children_named(p, "sh"), 5, "the handler running")
    begin = time.monotonic()
    p.send(signal.SIGTERM)
    reply = read_all(s)
    s.close()
    assert reply == b"payload\n" * 20000, f"{len(reply)} bytes"
    assert p.wait_exit(15) == 0
    elapsed = time.monotonic() - begin
    assert elapsed < 5, f"{elapsed:.1f}s: docker stop allows 10s"
    end = p.events("conn_end")[0]
    assert end["status"] == 0
    assert p.events("shutdown")[0]["mode"] == "graceful"
    assert not p.events("shutdown_timeout")


@pytest.mark.parametrize("mode", MODES)
def test_handler_ignoring_sigterm_is_killed_and_psup_exits_0(psup, mode):
    shutdown_timeout, kill_grace = 1.0, 1.0
    p = start(psup, mode, config(service(command="trap '' TERM; sleep 60"),
                                 shutdown_timeout=shutdown_timeout, kill_grace=kill_grace))
    assert p.events("start")[0]["shutdown_budget"] == shutdown_timeout + kill_grace
    s = connect(p.addr("svc"), timeout=20)
    handler = wait_for(lambda: children_named(p, "sh") or children_named(p, "sleep"), 5,
                       "the handler running")[0]
    group = [pid for pid in [handler] + children_of(handler)]
    begin = time.monotonic()
    p.send(signal.SIGTERM)
    assert p.wait_exit(15) == 0
    elapsed = time.monotonic() - begin
    budget = shutdown_timeout + kill_grace
    assert budget - 0.3 <= elapsed < budget + 3, f"{elapsed:.1f}s for a budget of {budget}s"
    assert read_all(s) == b""
    s.close()
    assert not any(alive(pid) for pid in group)
    assert p.events("shutdown_timeout")
    assert p.events("conn_end")[0]["signal"] == "KILL"


@pytest.mark.parametrize("mode", MODES)
def test_orphans_are_reparented_to_psup_and_reaped(psup, tmp_path, mode):
    pidfile = tmp_path / "orphan"
    # The subshell starts sleep and exits at once: sleep's parent is gone,
    # and it is re-parented to psup (the subreaper, or PID 1). A second,
    # short-lived orphan exits on its own.
    cmd = (f"( sleep 60 </dev/null >/dev/null 2>&1 & echo $! > {pidfile} ); "
           f"( sleep 0.2 </dev/null >/dev/null 2>&1 & ); echo started")
    p = start(psup, mode, config(service(command=cmd)), args=["--verbose"])
    orphans = []
    try:
        assert talk(p.addr("svc")) == b"started\n"
        inner = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "pidfile"))
        p.wait_event("conn_end")
        orphan = wait_for(lambda: [c for c in children_named(p, "sleep") if ns_pid(c) == inner], 5,
                          "the orphan among psup's children")[0]
        orphans.append(orphan)
        assert proc_stat(orphan)[1] == p.pid, "the orphan's parent is psup"
        # The short one exited and was reaped by psup.
        wait_for(lambda: [r for r in p.events("reaped_orphan") if r.get("status") == 0], 10,
                 "the short-lived orphan reaped")
        # The long one is reaped as soon as it dies.
        os.kill(orphan, signal.SIGKILL)
        wait_for(lambda: proc_stat(orphan) is None, 10, "the orphan reaped (not a zombie)")
        ev = p.wait_event("reaped_orphan", pid=inner)[0]
        assert ev["signal"] == "KILL"
        wait_for(lambda: not p.zombies(), 5, "no zombies")
        assert p.stop() == 0
    finally:
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
