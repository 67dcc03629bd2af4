# SPDX-License-Identifier: MIT
"""Fault injection (issue 3): idle workers and running handlers killed or
stopped at random under steady load, handlers that misbehave with their
connection (exit without reading, close stdout early, leave a background
child holding the socket), clients that reset mid-stream or never send, and
a storm of connections reset at once. psup must keep serving, lose only the
connections that were killed, leave no zombie, and never treat an outside
kill or a client's reset as a failure of the service (no backoff)."""

import os
import random
import shutil
import signal
import socket
import struct
import threading
import time

from conftest import (alive, children_of, config, connect, proc_stat, read_all, service,
                      talk, wait_for)

ROUNDS = 3  # echo round trips per connection


def status(p, name="svc"):
    """Ask for a status line (SIGUSR1) and return the new one."""
    seen = len(p.events("status", service=name))
    p.send(signal.SIGUSR1)
    return p.wait_event("status", seen + 1, service=name)[-1]


def workers_of(p):
    """Idle workers (psup's children still named psup), read once each: the
    conftest helper can race with a process that exits in between."""
    return [c for c in children_of(p.pid) if (st := proc_stat(c)) and st[0] != "Z" and st[3] == "psup"]


def handlers_of(p, comm):
    return [c for c in children_of(p.pid) if (st := proc_stat(c)) and st[0] != "Z" and st[3] == comm]


def settled(st, idle=3):
    """psup's own count: idle spares only, nothing busy, stopped or leaving
    (a handler's exit is counted when it is reaped, after /proc shows it gone)."""
    return (st["idle"], st["busy"], st["stopped"], st["retiring"]) == (idle, 0, 0, 0)


def running(pids):
    """The pids that exist and are not stopped."""
    return [pid for pid in pids if (proc_stat(pid) or ("Z",))[0] not in ("T", "t", "Z")]


def reset_close(s):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def no_failure_events(p):
    """An outside kill, a stop or a client's reset is not a failure."""
    bad = [r for r in p.records() if r.get("event") in ("backoff", "worker_failed", "exec_failed")]
    assert not bad, bad


class Load:
    """Client threads doing echo round trips against cat, each connection
    ROUNDS round trips then a half-close and EOF. A connection that errs or
    gets back the wrong bytes is a failure, recorded with its local port
    (the remote_port of psup's conn_end line for it)."""

    def __init__(self, addr, threads=4, timeout=20.0):
        self.addr = addr
        self.timeout = timeout
        self.stopping = threading.Event()
        self.ok = 0
        self.failures = []  # (local port or None, what)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True)
                        for n in range(threads)]

    def one(self, n, i):
        port = None
        try:
            with connect(self.addr, self.timeout) as s:
                port = s.getsockname()[1]
                for r in range(ROUNDS):
                    msg = f"client {n} conn {i} round {r}\n".encode()
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = s.recv(len(msg) - len(got))
                        if not chunk:
                            raise EOFError(f"EOF after {got!r}")
                        got += chunk
                    if got != msg:
                        raise AssertionError(f"{got!r} != {msg!r}")
                s.shutdown(socket.SHUT_WR)
                rest = read_all(s)
                if rest:
                    raise AssertionError(f"unexpected {rest!r}")
        except (OSError, EOFError, AssertionError) as e:
            with self.lock:
                self.failures.append((port, repr(e)))
            return
        with self.lock:
            self.ok += 1

    def run(self, n):
        i = 0
        while not self.stopping.is_set():
            self.one(n, i)
            i += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=30):
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        stuck = [t for t in self.threads if t.is_alive()]
        assert not stuck, f"{len(stuck)} client threads still running after {timeout}s"

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(30)

    def wait_progress(self, more, timeout=20, what="round trips"):
        start = self.ok
        wait_for(lambda: self.ok >= start + more, timeout, f"{more} more {what}")


# --------------------------------------------------------------------------
# (a) SIGKILL at random under steady load.


def test_random_sigkills_under_load_lose_only_the_killed_connections(psup):
    p = psup(config(service(pool={"min_spare": 3, "max_spare": 3, "max_workers": 32})))
    wait_for(lambda: len(workers_of(p)) == 3, 10, "3 idle workers")
    rng = random.Random(3)
    handler_kills, worker_kills = [], []

    with Load(p.addr("svc"), threads=4) as load:
        load.wait_progress(20)
        deadline = time.monotonic() + 3.0
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            want_handler = turn % 2 == 0
            pool = handlers_of(p, "cat") if want_handler else workers_of(p)
            if pool:
                victim = rng.choice(pool)
                try:
                    # Decided on what the process was when picked: a worker
                    # may take a connection in between (counted below).
                    os.kill(victim, signal.SIGKILL)
                    (handler_kills if want_handler else worker_kills).append(victim)
                except ProcessLookupError:
                    pass
            time.sleep(rng.uniform(0.02, 0.05))  # pacing of the kills, not a wait
        load.wait_progress(10, what="round trips after the kills")
        load.stop()

    assert len(handler_kills) >= 5 and len(worker_kills) >= 5, (handler_kills, worker_kills)
    assert load.ok >= 100, f"too little load to mean anything: {load.ok}"

    # The pool recovers: back to exactly min_spare idle, nothing busy.
    wait_for(lambda: len(workers_of(p)) == 3 and not handlers_of(p, "cat")
             and settled(status(p)), 20, "3 idle, 0 busy", interval=0.1)
    wait_for(lambda: not p.zombies(), 10, "no zombies")

    p.wait_event("conn_end", load.ok)
    ends = {}
    for e in p.events("conn_end"):
        ends.setdefault(e["remote_port"], []).append(e)
    killed_conns = [e for e in p.events("conn_end") if e.get("signal") == "KILL"]
    # psup killed nothing itself: every KILL it reports is one of ours.
    ours = set(handler_kills) | set(worker_kills)
    assert all(e["pid"] in ours and e.get("hint") == "oom_or_external_kill"
               for e in killed_conns), killed_conns
    # Only the killed connections failed. A failed client either has a
    # conn_end showing its handler was killed, or none at all when its
    # worker died between accept and reporting it (counted as lost).
    assert all(port is not None for port, _ in load.failures), "a connect failed: " + repr(load.failures)
    failed_ports = [port for port, _ in load.failures]
    lost_unreported = [port for port in failed_ports if port not in ends]
    for port, what in load.failures:
        if port in ends:
            # (a port may be reused over thousands of connections)
            assert any(e.get("signal") == "KILL" for e in ends[port]), (port, what, ends[port])
    assert len(lost_unreported) <= len(worker_kills)
    workers_holding_a_conn = {e["pid"] for e in killed_conns} & set(worker_kills)
    connection_kills = len(handler_kills) + len(workers_holding_a_conn) + len(lost_unreported)
    assert len(load.failures) <= connection_kills, (load.failures, handler_kills, worker_kills)
    assert len(load.failures) <= len(handler_kills) + len(worker_kills)

    # Outside kills are replaced, never held against the service.
    lost = p.events("worker_lost")
    assert 1 <= len(lost) <= len(worker_kills)
    no_failure_events(p)
    assert talk(p.addr("svc"), b"still serving") == b"still serving"
    assert p.stop() == 0
    assert p.events("summary")[0]["failed"] == 0


# --------------------------------------------------------------------------
# (b) SIGSTOP under load.


def handler_of_client(p, sock, comm="cat"):
    """The handler serving this client: its TCPREMOTEPORT is our port."""
    port = str(sock.getsockname()[1]).encode()
    for pid in handlers_of(p, comm):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if b"TCPREMOTEPORT=" + port in env:
            return pid
    return None


def round_trip(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        assert chunk, f"EOF after {got!r}"
        got += chunk
    return got


def test_stopped_workers_and_handlers_under_load(psup):
    p = psup(config(service(pool={"min_spare": 3, "max_spare": 3, "max_workers": 32})))
    wait_for(lambda: len(workers_of(p)) == 3, 10, "3 idle workers")
    stopped, held = [], []
    try:
        with Load(p.addr("svc"), threads=4) as load:
            load.wait_progress(20)
            # Two clients whose handlers will be stopped mid-connection.
            for n in range(2):
                s = connect(p.addr("svc"), timeout=20)
                held.append(s)
                assert round_trip(s, b"before stop\n") == b"before stop\n"
            handlers = [wait_for(lambda: handler_of_client(p, s), 5, "the held handler") for s in held]
            # Two idle workers, picked while load runs, and the two handlers.
            for n in range(2):
                victim = wait_for(lambda: [w for w in running(workers_of(p)) if w not in stopped],
                                  10, "an idle worker to stop")[0]
                os.kill(victim, signal.SIGSTOP)
                stopped.append(victim)
            for pid in handlers:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            wait_for(lambda: all((proc_stat(pid) or ("?",))[0] in ("T", "t") for pid in handlers),
                     5, "the handlers to be stopped")
            # The service goes on: stopped spares are replaced (three running
            # idle workers again), new clients are served, the load goes on.
            wait_for(lambda: len(running(workers_of(p))) >= 3, 10,
                     "replacements for the stopped workers")
            for n in range(5):
                msg = f"during stop {n}".encode()
                assert talk(p.addr("svc"), msg, timeout=10) == msg
            load.wait_progress(20, what="round trips while four processes are stopped")
            # A stopped handler answers nothing (a bounded negative poll)...
            held[0].sendall(b"while stopped\n")
            held[0].settimeout(0.3)
            try:
                data = held[0].recv(100)
                raise AssertionError(f"a stopped handler answered {data!r}")
            except socket.timeout:
                pass
            held[0].settimeout(20)
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    assert pid not in handlers, "a stopped handler disappeared"
            continued, stopped = stopped, []
            # ...and answers once continued: nothing was lost.
            got = b""
            while got != b"while stopped\n":
                chunk = held[0].recv(100)
                assert chunk, f"EOF after {got!r}"
                got += chunk
            assert round_trip(held[1], b"after cont\n") == b"after cont\n"
            for s in held:
                s.shutdown(socket.SHUT_WR)
                assert read_all(s) == b""
            load.wait_progress(10, what="round trips after SIGCONT")
            load.stop()
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for s in held:
            s.close()

    assert not load.failures, load.failures
    # Everything settles: continued spares were surplus and retired.
    wait_for(lambda: len(workers_of(p)) == 3 and len(running(workers_of(p))) == 3
             and not handlers_of(p, "cat") and settled(status(p)), 20,
             "3 running idle workers, 0 busy", interval=0.1)
    assert not any((proc_stat(pid) or ("?",))[0] in ("T", "t") for pid in continued)
    ends = {e["pid"]: e for e in p.events("conn_end")}
    assert all(ends[pid]["status"] == 0 for pid in handlers), "stopped handlers ended normally"
    wait_for(lambda: not p.zombies(), 10, "no zombies")
    assert not p.events("worker_lost")
    no_failure_events(p)


# --------------------------------------------------------------------------
# (c) Handlers that misbehave with their connection.


def test_handler_that_exits_without_reading_its_input(psup):
    p = psup(config(service(command="echo bye", pool={"min_spare": 2, "max_spare": 2})))
    # A client that sends nothing gets the reply and EOF.
    assert talk(p.addr("svc")) == b"bye\n"
    # Clients that send input nobody reads: the connection ends (EOF, or a
    # reset since unread data was discarded) and never hangs.
    outcomes = []
    for n in range(20):
        s = connect(p.addr("svc"), timeout=10)
        try:
            s.sendall(b"x" * (16 * 1024 * (n % 4)) + b"unread\n")
            outcomes.append(read_all(s))
        except (ConnectionResetError, BrokenPipeError) as e:
            outcomes.append(type(e).__name__)
        finally:
            s.close()
    assert all(o in (b"bye\n", b"", "ConnectionResetError", "BrokenPipeError") for o in outcomes), outcomes
    ends = p.wait_event("conn_end", 21)
    assert all(e.get("status") == 0 for e in ends), ends
    wait_for(lambda: len(workers_of(p)) == 2 and not handlers_of(p, "sh"), 10, "2 idle workers")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    no_failure_events(p)


def test_handler_closing_its_connection_early_ends_it_for_the_client(psup, tmp_path):
    release = tmp_path / "release"
    # Closes stdin and stdout (the socket's only descriptors in the handler),
    # then keeps running until the test lets it go.
    p = psup(config(service(command=f"echo hi; exec >&- <&-; "
                                     f"while [ ! -e {release} ]; do sleep 0.05; done")))
    s = connect(p.addr("svc"), timeout=10)
    assert read_all(s) == b"hi\n", "EOF while the handler still runs"
    s.close()
    handler = handlers_of(p, "sh")
    assert handler and alive(handler[0]), "the handler is still running"
    assert not p.events("conn_end")
    release.touch()
    end = p.wait_event("conn_end")[0]
    assert end["status"] == 0 and end["pid"] == handler[0]
    wait_for(lambda: not p.zombies(), 5, "no zombies")


def test_handler_closing_only_stdout_keeps_the_connection_until_it_exits(psup, tmp_path):
    release = tmp_path / "release"
    # `exec >&-` alone: fd 0 still holds the socket, so no EOF yet; psup
    # itself holds no copy, so EOF comes exactly when the handler exits.
    p = psup(config(service(command=f"echo hi; exec >&-; "
                                     f"while [ ! -e {release} ]; do sleep 0.05; done")))
    s = connect(p.addr("svc"), timeout=10)
    got = b""
    while got != b"hi\n":
        got += s.recv(10)
    s.settimeout(0.3)
    try:
        data = s.recv(10)
        raise AssertionError(f"connection ended early: {data!r}")
    except socket.timeout:
        pass
    release.touch()
    s.settimeout(10)
    assert read_all(s) == b""
    s.close()
    assert p.wait_event("conn_end")[0]["status"] == 0


def test_background_child_holding_the_socket(psup, tmp_path):
    release = tmp_path / "release"
    p = psup(config(service(command=f"(while [ ! -e {release} ]; do sleep 0.05; done; echo late) & "
                                     f"echo \"early $!\"")),
             args=["--verbose"])
    s = connect(p.addr("svc"), timeout=10)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        assert chunk, f"EOF after {got!r}"
        got += chunk
    word, child = got.split()
    child = int(child)
    assert word == b"early"
    # The handler itself exited: conn_end is logged at its own exit...
    end = p.wait_event("conn_end")[0]
    assert end["status"] == 0 and end["pid"] != child
    # ...while the orphan, now psup's child, still holds the connection.
    assert alive(child)
    assert wait_for(lambda: (proc_stat(child) or (0, 0))[1] == p.pid, 5,
                    "the orphan re-parented to psup")
    s.settimeout(0.3)
    try:
        data = s.recv(100)
        raise AssertionError(f"the client saw {data!r} before the child exited")
    except socket.timeout:
        pass
    release.touch()
    s.settimeout(10)
    assert read_all(s) == b"late\n", "EOF only when the child exits"
    s.close()
    p.wait_event("reaped_orphan", pid=child)
    wait_for(lambda: proc_stat(child) is None, 5, "the orphan reaped")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    assert len(p.events("conn_end")) == 1


# --------------------------------------------------------------------------
# (d) Clients that reset mid-stream, and clients that never send.


def test_clients_resetting_while_the_handler_writes(psup):
    yes = shutil.which("yes")
    p = psup(config(service(command=[yes], stderr="null",
                            pool={"min_spare": 2, "max_spare": 2})))
    for _ in range(20):
        s = connect(p.addr("svc"), timeout=10)
        got = 0
        while got < 65536:
            chunk = s.recv(65536)
            assert chunk
            got += len(chunk)
        reset_close(s)
    ends = p.wait_event("conn_end", 20, timeout=20)
    # Each handler ended because of the reset (SIGPIPE or a write error).
    assert all(e.get("signal") == "PIPE" or e.get("status", 0) != 0 for e in ends), ends
    wait_for(lambda: len(workers_of(p)) == 2 and not handlers_of(p, "yes"), 10, "2 idle workers")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    no_failure_events(p)
    s = connect(p.addr("svc"))
    assert s.recv(4) in (b"y\ny\n", b"y\n", b"y")
    reset_close(s)


def test_clients_resetting_while_sending(psup):
    # (stderr null: cat's "write error" lines would land in the log file)
    p = psup(config(service(stderr="null", pool={"min_spare": 2, "max_spare": 2})))
    for _ in range(20):
        s = connect(p.addr("svc"), timeout=10)
        s.sendall(b"z" * 200000)  # cat echoes it back; nobody reads it
        reset_close(s)
    p.wait_event("conn_end", 20, timeout=20)
    wait_for(lambda: len(workers_of(p)) == 2 and not handlers_of(p, "cat"), 10, "2 idle workers")
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    no_failure_events(p)
    assert talk(p.addr("svc"), b"fine") == b"fine"


def test_client_that_never_sends_is_cut_at_the_timeout(psup):
    p = psup(config(service(timeout=1)))
    s = connect(p.addr("svc"), timeout=15)
    begin = time.monotonic()
    assert read_all(s) == b"", "the connection is closed at the timeout"
    elapsed = time.monotonic() - begin
    s.close()
    assert 0.8 <= elapsed < 6, elapsed
    ev = p.wait_event("timeout")[0]
    end = p.wait_event("conn_end")[0]
    assert ev["conn"] == end["conn"] and ev["service"] == "svc"
    assert end["outcome"] == "timeout" and end["signal"] == "TERM"
    assert "hint" not in end
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    no_failure_events(p)
    assert talk(p.addr("svc"), b"quick") == b"quick", "a quick client is not cut"


def test_handler_ignoring_sigterm_is_killed_after_kill_grace(psup):
    p = psup(config(service(command="trap '' TERM; cat", timeout=1), kill_grace=0.5))
    s = connect(p.addr("svc"), timeout=15)
    begin = time.monotonic()
    assert read_all(s) == b""
    elapsed = time.monotonic() - begin
    s.close()
    assert 1.3 <= elapsed < 7, elapsed
    end = p.wait_event("conn_end")[0]
    assert end["outcome"] == "timeout" and end["signal"] == "KILL"
    assert "hint" not in end, "psup sent that SIGKILL itself"
    assert len(p.events("timeout")) == 1
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    no_failure_events(p)


# --------------------------------------------------------------------------
# (e) A storm of connections reset at once.


def test_thousand_connections_reset_at_once(psup):
    p = psup(config(service(stderr="null", pool={"min_spare": 4, "max_spare": 4, "max_workers": 64})))
    wait_for(lambda: len(workers_of(p)) == 4, 10, "4 idle workers")
    before = status(p)
    assert (before["idle"], before["busy"]) == (4, 0)
    for _ in range(1000):
        s = socket.socket()
        s.settimeout(10)
        s.connect(p.addr("svc"))
        reset_close(s)
    # Every reset connection ends; the pool is the same size as before.
    wait_for(lambda: len(children_of(p.pid)) == 4 and len(workers_of(p)) == 4
             and (st := status(p))["busy"] == 0 and st["idle"] == 4, 30,
             "back to 4 idle workers and nothing else", interval=0.1)
    wait_for(lambda: not p.zombies(), 10, "no zombies")
    assert not p.events("worker_lost")
    no_failure_events(p)
    assert talk(p.addr("svc"), b"after the storm") == b"after the storm"
    assert p.stop() == 0
    summary = p.events("summary")[0]
    assert summary["failed"] == 0, summary
