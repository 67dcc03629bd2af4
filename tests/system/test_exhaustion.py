# SPDX-License-Identifier: MIT
"""Resource exhaustion (issue 3, spec/pool.md "Failures and backoff"): the
seeds' scenario (psup unprivileged under `ulimit -n 256` and `ulimit -u 400`
hit by 500 concurrent clients of a two-second handler), fork failing under a
small RLIMIT_NPROC, and the supervisor out of descriptors with stderr "log".
psup must stay up, leave no zombie, serve every client in the end (they wait
in the backlog) and recover by itself.

RLIMIT_NPROC does not bind root, so psup runs as nobody there: those tests
need root to switch, and skip otherwise. The clients run as root in the test
process, so they do not count against nobody's process limit."""

import os
import pwd
import grp
import resource
import selectors
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import (Psup, children_of, config, proc_stat, public_copy, public_dir, service, talk,
                      wait_for)

BASH = shutil.which("bash") or "/bin/bash"


def ids_of_nobody():
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None
    for group in ("nogroup", "nobody"):
        try:
            return uid, grp.getgrnam(group).gr_gid
        except KeyError:
            pass
    return None


def processes_of(uid):
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n


def settle(uid, timeout=15):
    """Give init time to reap what a previous test left (processes killed at
    its end stay zombies, holding their user's process slots, until reaped).
    Best effort: another job may own such processes too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        zombies = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        zombies += (proc_stat(int(entry)) or ("?",))[0] == "Z"
                except OSError:
                    pass
        if not zombies:
            return
        time.sleep(0.05)


@pytest.fixture
def nobody_psup(psup_bin):
    """Like the psup fixture, but psup runs as nobody with the given
    RLIMIT_NOFILE and RLIMIT_NPROC, from a copy in a directory nobody can
    read (pytest's tmp_path and a clone under /root are private to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run psup as nobody (RLIMIT_NPROC does not bind root)")
    ids = ids_of_nobody()
    if ids is None:
        pytest.skip("no nobody user")
    uid, gid = ids
    # What the previous test left (processes killed at its end are reaped
    # by init a little later) must not take this test's process slots.
    settle(uid)
    workdir = public_dir("psup-exhaustion-")
    binary = public_copy(psup_bin, workdir)
    started = []

    def start(cfg, nofile=None, nproc=None):
        def drop():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if nproc:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)

        p = Psup(str(binary), workdir, cfg, preexec_fn=drop, name=f"psup{len(started)}")
        os.chmod(p.config_path, 0o644)
        p.expect_errors = True  # spawn_failed is an error-level event
        started.append(p)
        return p.start()

    try:
        yield start
    finally:
        problems = []
        for p in started:
            p.cleanup()
            if p.sanitizer_report():
                problems.append(p.sanitizer_report())
        shutil.rmtree(workdir, ignore_errors=True)
        # Leave nobody's process slots as we found them.
        settle(uid)
        assert not problems, "\n".join(problems)


@pytest.fixture
def many_fds():
    """Enough descriptors in the test process for hundreds of clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if want < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} too low for the clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def concurrent_clients(addr, n, deadline_s):
    """Open n connections at once (non-blocking), send nothing, and read each
    to EOF. Returns the replies (bytes, or the error's name), in order."""
    sel = selectors.DefaultSelector()
    replies = [None] * n
    pending = {}
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(addr)
            assert err in (0, 115), os.strerror(err)  # EINPROGRESS
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ, i)
        deadline = time.monotonic() + deadline_s
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except OSError as e:
                    replies[key.data] = type(e).__name__
                    chunk = None
                if chunk:
                    pending[s] += chunk
                    continue
                if chunk is not None:
                    replies[key.data] = pending[s]
                sel.unregister(s)
                del pending[s]
                s.close()
    finally:
        for s in pending:
            s.close()
        sel.close()
    return replies


def spawn_events(p):
    return [r["event"] for r in p.records() if r.get("event") in ("spawn_failed", "spawn_recovered")]


def alternate(events):
    """spawn_failed and spawn_recovered alternate, starting with a failure."""
    return all(e == ("spawn_failed" if i % 2 == 0 else "spawn_recovered")
               for i, e in enumerate(events))


# --------------------------------------------------------------------------
# (a) The seeds' scenario.

# A handler that takes two seconds as one process: bash's builtins only (the
# clients send nothing, so `read` waits for its timeout).
TWO_SECONDS = [BASH, "-c", "read -t 2 x; echo ok"]


def run_seeds_scenario(nobody_psup, command):
    p = nobody_psup(config(service(command=command, pool={"max_workers": 1000})),
                    nofile=256, nproc=400)
    addr = p.addr("svc")
    begin = time.monotonic()
    replies = concurrent_clients(addr, 500, 45)
    elapsed = time.monotonic() - begin
    return p, replies, elapsed


def other_errors(p):
    return [r for r in p.records() if r.get("level") == "error" and r.get("event") != "spawn_failed"]


def check_after_the_storm(p, replies, elapsed):
    assert not p.exited(), f"psup exited:\n{p.log_text()[-3000:]}"
    assert not other_errors(p), other_errors(p)[:5]
    served = sum(r == b"ok\n" for r in replies)
    others = {}
    for r in replies:
        if r != b"ok\n":
            others[repr(r)] = others.get(repr(r), 0) + 1
    assert served == 500, f"{served}/500 served in {elapsed:.1f}s; others: {others}"
    # psup may never reach the limit: near it, it keeps one spare and checks
    # for headroom before each start (spec/pool.md). If it did reach it, it
    # said so once and recovered.
    if p.events("spawn_failed"):
        assert p.events("spawn_failed")[0]["errno"] == "EAGAIN"
        wait_for(lambda: spawn_events(p)[-1] == "spawn_recovered", 15, "spawn_recovered")
        assert alternate(spawn_events(p)), spawn_events(p)
    wait_for(lambda: not p.zombies(), 15, "no zombies")
    # Still serving normally afterwards.
    assert talk(p.addr("svc"), timeout=15) == b"ok\n"
    assert p.stop(timeout=30) == 0


def test_seeds_ulimit_scenario_500_clients(nobody_psup, many_fds):
    p, replies, elapsed = run_seeds_scenario(nobody_psup, TWO_SECONDS)
    check_after_the_storm(p, replies, elapsed)
    assert len(p.events("conn_end")) >= 501


def test_seeds_ulimit_scenario_with_a_shell_handler(nobody_psup, many_fds):
    # The same with `sleep 2; echo ok` as written in the brief: the shell
    # forks sleep, so every handler needs a second process slot.
    p, replies, elapsed = run_seeds_scenario(nobody_psup, "sleep 2; echo ok")
    check_after_the_storm(p, replies, elapsed)


# --------------------------------------------------------------------------
# (b) fork failing under a small RLIMIT_NPROC.

ONE_SECOND = [BASH, "-c", "read -t 1 x; echo ok"]


def test_fork_failing_under_a_small_nproc_serves_everyone(nobody_psup, many_fds):
    p = nobody_psup(config(service(command=ONE_SECOND, pool={"max_workers": 200})), nproc=30)
    replies = concurrent_clients(p.addr("svc"), 80, 30)
    assert not p.exited(), "psup never exits for a failing fork"
    assert replies == [b"ok\n"] * 80, {repr(r) for r in replies}
    assert not other_errors(p), other_errors(p)[:5]
    assert p.events("spawn_failed"), "RLIMIT_NPROC 30 was never reached"
    wait_for(lambda: spawn_events(p)[-1] == "spawn_recovered", 15, "spawn_recovered")
    assert alternate(spawn_events(p)), spawn_events(p)
    wait_for(lambda: not p.zombies(), 10, "no zombies")
    # Recovered: the pool is refilled (default min_spare 4) and serves.
    wait_for(lambda: len(children_of(p.pid)) >= 4, 10,
             "the pool refilled")
    assert talk(p.addr("svc"), timeout=10) == b"ok\n"
    assert p.stop(timeout=30) == 0


def test_spawn_failed_is_logged_once_per_burst(nobody_psup, many_fds):
    p = nobody_psup(config(service(command=ONE_SECOND, pool={"max_workers": 200})), nproc=30)
    replies = concurrent_clients(p.addr("svc"), 80, 30)
    assert replies == [b"ok\n"] * 80
    wait_for(lambda: spawn_events(p)[-1] == "spawn_recovered", 15, "spawn_recovered")
    failed = p.events("spawn_failed")
    # One burst of clients: the limit is hit from the first wave of handlers
    # to the last. Logged once (a little slack for the gaps between waves),
    # never once per attempt.
    assert 1 <= len(failed) <= 3, f"{len(failed)} spawn_failed lines for one burst"


# --------------------------------------------------------------------------
# Recovering by itself once process slots free up (issue 3, item 4).


@pytest.fixture
def sleepers():
    """fill(n) starts n `sleep` processes as nobody, taking n of nobody's
    process slots; free() ends them (by pid). All are ended at teardown."""
    uid, gid = ids_of_nobody() or (65534, 65534)
    procs = []

    def drop():
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)

    class Sleepers:
        uid_ = uid

        def fill(self, n):
            for _ in range(n):
                procs.append(subprocess.Popen(["sleep", "120"], preexec_fn=drop))

        def free(self):
            while procs:
                proc = procs.pop()
                proc.kill()
                proc.wait(10)

    try:
        yield Sleepers()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_recovers_when_process_slots_free_up_after_a_failed_start(nobody_psup, sleepers):
    # Every one of nobody's slots but psup's own is taken before it starts.
    limit = processes_of(sleepers.uid_) + 10
    sleepers.fill(limit - processes_of(sleepers.uid_) - 1)
    p = nobody_psup(config(service(pool={"min_spare": 2, "max_spare": 2})), nproc=limit)
    assert p.events("spawn_failed"), "psup could start a worker: the slots were not taken"
    assert not children_of(p.pid)
    sleepers.free()
    # Retried after at most 2 s (spec/pool.md): workers come, clients are served.
    wait_for(lambda: len(children_of(p.pid)) == 2, 10, "2 workers once slots are free")
    assert talk(p.addr("svc"), b"late start", timeout=10) == b"late start"
    p.wait_event("spawn_recovered")


def test_recovers_when_process_slots_free_up_while_serving(nobody_psup, sleepers):
    limit = processes_of(sleepers.uid_) + 12
    p = nobody_psup(config(service(pool={"min_spare": 2, "max_spare": 2})), nproc=limit)
    wait_for(lambda: len(children_of(p.pid)) == 2, 10, "2 workers")
    sleepers.fill(limit - processes_of(sleepers.uid_))
    held = []
    try:
        # Two clients take both spares; neither can be replaced.
        for _ in range(2):
            s = socket.create_connection(p.addr("svc"), timeout=10)
            s.sendall(b"held")
            assert s.recv(4) == b"held"
            held.append(s)
        p.wait_event("spawn_failed")
        sleepers.free()
        # psup recovers by itself: a third client is served...
        assert talk(p.addr("svc"), b"after", timeout=10) == b"after"
        p.wait_event("spawn_recovered")
        # ...and psup is idle again, not spinning (a bounded negative poll).
        # With 12 process slots, 2 handlers and their spares fill a third of
        # them: psup keeps one spare (spec/pool.md, scarce slots).
        wait_for(lambda: len(children_of(p.pid)) == 3, 10, "2 held handlers and a spare")
        before = cpu_seconds(p.pid)
        time.sleep(1.0)
        assert cpu_seconds(p.pid) - before < 0.5, "psup is spinning"
        for s in held:
            s.sendall(b"still")
            assert s.recv(5) == b"still"
    finally:
        for s in held:
            s.close()
    wait_for(lambda: len(children_of(p.pid)) == 2 and not p.zombies(), 10, "back to 2 spares")


# --------------------------------------------------------------------------
# (c) The supervisor out of descriptors.


def test_supervisor_out_of_descriptors_with_stderr_log(psup):
    # stderr "log": the supervisor receives and holds one pipe per running
    # handler. With 32 descriptors and 80 concurrent handlers it runs out;
    # the handlers that get no pipe inherit psup's stderr instead.
    limit = 32
    cmd = "echo marker-$PSUP_CONN_ID >&2; sleep 1; echo ok"
    p = psup(config(service(command=cmd, stderr="log", pool={"max_workers": 200})),
             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    n = 80
    results = [None] * n

    def client(i):
        try:
            results[i] = talk(p.addr("svc"), timeout=30)
        except OSError as e:
            results[i] = type(e).__name__

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "clients still waiting after 60s"
    assert not p.exited(), f"psup exited:\n{p.log_text()[-3000:]}"
    assert results == [b"ok\n"] * n, {repr(r) for r in results}
    ends = p.wait_event("conn_end", n, timeout=20)
    conns = {e["conn"] for e in ends}
    assert len(conns) == n

    logged = {r["line"] for r in p.events("stderr")}
    raw = {line for line in p.log_text().splitlines() if line.startswith("marker-")}
    # Every handler's line is somewhere, exactly once: captured, or (out of
    # descriptors) written straight to psup's stderr.
    assert {f"marker-{c}" for c in conns} == logged | raw
    assert not logged & raw
    assert logged, "no handler's stderr was captured at all"
    assert raw, f"the descriptor limit ({limit}) was never reached"
    wait_for(lambda: not p.zombies(), 10, "no zombies")
    # Descriptors freed: capture works again.
    assert talk(p.addr("svc"), timeout=10) == b"ok\n"
    last = p.wait_event("conn_end", n + 1)[-1]["conn"]
    p.wait_event("stderr", line=f"marker-{last}")
    assert p.stop() == 0
