# SPDX-License-Identifier: MIT
"""Wait mode (spec/wait.md): servers given the listening sockets themselves,
as inetd's wait = yes and systemd's Accept=no give them. The contract from
inside a server of ours (tests/helpers/sdserver.c), compared with what
systemd-socket-activate gives the same program; real servers (gunicorn
through LISTEN_FDS); on_demand and always starts, inetd's looping server,
crashes, reloads under load and shutdown while connections are served, on
IPv4, IPv6 and unix sockets."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (SPAWN_MODES, alive, config, connect, kill_quietly, parse_report,
                      public_copy, public_dir, read_all, service, spawn_env, talk, wait_for)


def sdserver(helpers, *args):
    return [str(helpers / "sdserver"), *args]


def ask(addr, timeout=30.0):
    """Connect to a wait-mode server of ours and read its report."""
    r = parse_report(talk(addr, timeout=timeout))
    assert r.get("end") == "1", r
    return r


def fd_info(r, fd):
    return r.get(f"fd.{fd}", "")


def inode(r, fd):
    return fd_info(r, fd).split()[0]


def servers(p, service_name):
    return p.events("server_started", service=service_name)


def hostile_parent():
    """What psup may inherit from its parent that must not reach a server:
    ignored and blocked signals (as in test_handler.py)."""
    os.setsid()
    for sig in (signal.SIGPIPE, signal.SIGUSR2, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM, signal.SIGCHLD})


# --------------------------------------------------------------------------
# The contract, from inside.


@pytest.fixture(params=SPAWN_MODES)
def reporting_server(request, psup, helpers, tmp_path):
    sock = str(tmp_path / "w.sock")
    env = spawn_env(request.param)
    # What psup itself was given by systemd never reaches a server.
    env.update(LISTEN_FDS="7", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="psup",
               NOTIFY_SOCKET="/nonexistent")
    p = psup(config(service("w", ["127.0.0.1:0", "[::1]:0", f"unix:{sock}"],
                            sdserver(helpers), mode="wait")),
             env=env, preexec_fn=hostile_parent)
    return p


def test_the_sockets_are_fds_0_1_and_3_on(reporting_server):
    p = reporting_server
    r = ask(p.addr("w", 0))
    assert r["fds"] == "0,1,2,3,4,5,", r["fds"]
    # fds 0, 1 and 3: the first listener; 4 and 5 the others, in order.
    assert inode(r, 0) == inode(r, 1) == inode(r, 3)
    assert len({inode(r, 3), inode(r, 4), inode(r, 5)}) == 3
    for fd in (0, 1, 3, 4, 5):
        info = fd_info(r, fd)
        assert info.startswith("socket:") and " stream listening " in info, info
        # Blocking, and kept across exec: the server owns them.
        assert "nonblock=0 cloexec=0" in info, info
    assert fd_info(r, 2).startswith(str(p.log_path))
    # The other listeners are the same sockets, seen from the same server.
    r6 = ask(p.addr("w", 1))
    ru = ask(p.addr("w", 2))
    assert r6["served_by"] == ru["served_by"] == r["served_by"]
    assert r6["fd.4"] == r["fd.4"] and ru["fd.5"] == r["fd.5"]
    assert len(servers(p, "w")) == 1


def test_listen_variables_are_the_servers_own(reporting_server):
    p = reporting_server
    r = ask(p.addr("w", 0))
    env = r["env"]
    assert env["LISTEN_FDS"] == "3"
    assert env["LISTEN_PID"] == r["pid"] and r["listen_pid_is_mine"] == "1"
    assert env["LISTEN_FDNAMES"] == "w:w:w"
    assert env["PSUP_SERVICE"] == "w"
    assert "NOTIFY_SOCKET" not in env
    # No connection of psup's: nothing per connection.
    for name in ("PSUP_CONN_ID", "PROTO", "TCPREMOTEIP", "REMOTE_ADDR", "TCPCONNNUM"):
        assert name not in env, name


def test_signals_group_and_parent(reporting_server):
    p = reporting_server
    r = ask(p.addr("w", 0))
    assert r["SigBlk"] == "0000000000000000"
    assert r["SigIgn"] == "0000000000000000"
    assert r["SigCgt"] == "0000000000000000"
    pid = int(r["pid"])
    assert int(r["pgid"]) == pid
    assert int(r["ppid"]) == p.pid
    started = servers(p, "w")[0]
    assert started["pid"] == pid and started["start"] == "on_demand"


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_same_as_systemd_socket_activate(psup, helpers, tmp_path):
    """The reference sender: systemd-socket-activate -l ADDR --fdname=NAME
    gives the same program the same sockets and variables."""
    ssa = shutil.which("systemd-socket-activate")
    if not ssa:
        pytest.skip("systemd-socket-activate (Debian systemd) is not installed")
    port = free_port()
    log = open(tmp_path / "ssa.log", "wb")
    ref = subprocess.Popen([ssa, "-l", f"127.0.0.1:{port}", "--fdname=w",
                            *sdserver(helpers, "--once")],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           start_new_session=True)
    try:
        want = wait_for(lambda: try_ask(("127.0.0.1", port)), 10, "systemd-socket-activate")
    finally:
        kill_quietly(ref.pid)
        ref.wait(10)
        log.close()
    p = psup(config(service("w", ["127.0.0.1:0"], sdserver(helpers), mode="wait")))
    got = ask(p.addr("w"))
    for key in ("LISTEN_FDS", "LISTEN_FDNAMES"):
        assert got["env"][key] == want["env"][key], key
    assert got["listen_pid_is_mine"] == want["listen_pid_is_mine"] == "1"
    # fd 3 alike: a listening stream socket, blocking, kept across exec.
    assert fd_info(got, 3).split()[1:] == fd_info(want, 3).split()[1:]
    # psup also gives the socket as 0 and 1 (inetd's wait = yes).
    assert inode(got, 0) == inode(got, 3)


def try_ask(addr):
    try:
        return ask(addr, timeout=5)
    except OSError:
        return None


def test_credentials_apply(psup, helpers):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    pub = public_dir("psup-wait-")
    try:
        prog = public_copy(helpers / "sdserver", pub)
        p = psup(config(service("w", ["127.0.0.1:0"], [str(prog)], mode="wait",
                                user="nobody", no_new_privileges=True)))
        r = ask(p.addr("w"))
        assert int(r["uid"]) == 65534
        assert r["NoNewPrivs"] == "1"
    finally:
        shutil.rmtree(pub)


# --------------------------------------------------------------------------
# gunicorn, a real server that takes its sockets from LISTEN_FDS.

WSGI_APP = '''
import os

def app(environ, start_response):
    body = ("served_by=%d parent=%d\\n" % (os.getpid(), os.getppid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def gunicorn(tmp_path):
    exe = shutil.which("gunicorn")
    if not exe:
        pytest.skip("gunicorn (Debian gunicorn) is not installed")
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    (tmp_path / "app.py").write_text(WSGI_APP)
    return [exe, "--chdir", str(tmp_path), "--workers", "1", "--graceful-timeout", "5",
            "app:app"]


def curl(addr, timeout=60):
    if isinstance(addr, str):
        args = ["--unix-socket", addr, "http://localhost/"]
    else:
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        args = [f"http://{host}:{addr[1]}/"]
    r = subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args],
                       capture_output=True, timeout=timeout + 5)
    assert r.returncode == 0, r.stderr
    return dict(kv.split("=") for kv in r.stdout.decode().split())


def test_gunicorn_on_demand(psup, gunicorn, tmp_path):
    sock = str(tmp_path / "web.sock")
    p = psup(config(service("web", ["127.0.0.1:0", "[::1]:0", f"unix:{sock}"], gunicorn,
                            mode="wait", stderr="log")))
    # Nothing runs before the first request.
    time.sleep(0.5)  # a bounded "must not happen"
    assert not servers(p, "web") and not p.children_named("gunicorn")
    first = curl(p.addr("web", 0))
    master = servers(p, "web")[0]["pid"]
    assert int(first["parent"]) == master
    # Later requests, on every socket, reach the same server.
    assert int(curl(p.addr("web", 1))["parent"]) == master
    assert int(curl(p.addr("web", 2))["parent"]) == master
    assert len(servers(p, "web")) == 1
    # gunicorn's own log, through stderr "log", names the sockets it took.
    p.wait_event("stderr", service="web")
    assert any("Listening at" in r["line"] for r in p.events("stderr", service="web"))
    # Killed: the next request starts a new one.
    os.killpg(master, signal.SIGKILL)
    p.wait_event("server_exit", service="web", pid=master)
    assert p.events("server_exit", pid=master)[0]["failure"] is True
    again = curl(p.addr("web", 1))
    second = servers(p, "web")[-1]["pid"]
    assert second != master and int(again["parent"]) == second
    assert len(servers(p, "web")) == 2
    assert p.stop() == 0
    ended = p.events("server_exit", pid=second)[0]
    assert ended["outcome"] == "stopped" and ended["failure"] is False


def test_gunicorn_always(psup, gunicorn):
    p = psup(config(service("web", ["127.0.0.1:0", "[::1]:0"], gunicorn, mode="wait",
                            start="always")))
    # Started with psup, before any request.
    master = p.wait_event("server_started", service="web")[0]["pid"]
    assert p.events("server_started")[0]["start"] == "always"
    assert int(curl(p.addr("web", 1))["parent"]) == master
    # Killed: started again at once, without a request.
    os.killpg(master, signal.SIGKILL)
    p.wait_event("server_started", count=2, service="web", timeout=15)
    again = servers(p, "web")[-1]["pid"]
    assert int(curl(p.addr("web", 0))["parent"]) == again
    assert p.stop() == 0


# --------------------------------------------------------------------------
# Failing servers.


def test_a_server_that_leaves_the_connection_backs_off(psup, helpers):
    """inetd's looping server: it exits without taking the connection that
    woke it. psup counts each as a failure and backs off: a bounded number
    of starts, not a spin; once the service is fixed (a reload), the
    waiting client is served."""
    p = psup(config(service("w", ["127.0.0.1:0"], sdserver(helpers, "--exit-at-once"),
                            mode="wait")))
    client = connect(p.addr("w"), timeout=30)
    try:
        p.wait_event("backoff", service="w")
        t0 = time.monotonic()
        n0 = len(servers(p, "w"))
        time.sleep(2.0)  # a bounded window in which starts are counted
        n = len(servers(p, "w")) - n0
        elapsed = time.monotonic() - t0
        # Free starts are over: delays of 0.1, 0.2, 0.4, 0.8 s ... at most
        # a handful in two seconds, never a spin.
        assert n <= 6, f"{n} starts in {elapsed:.1f}s"
        exits = p.events("server_exit", service="w")
        assert exits and all(e["failure"] is True and e.get("pending") is True for e in exits)
        assert p.events("backoff")[-1]["delay"] > 0.1
        # Fixed: the client that waited all along is served.
        cfg = config(service("w", ["127.0.0.1:0"], sdserver(helpers), mode="wait"))
        p.write_config(cfg)
        p.send(signal.SIGHUP)
        client.settimeout(30)
        r = parse_report(read_all(client))
        assert r.get("end") == "1" and r["conn"] == "1"
        p.wait_event("recovered", service="w")
    finally:
        client.close()


def test_a_crashing_server_is_a_failure(psup):
    p = psup(config(service("w", ["127.0.0.1:0"], "kill -SEGV $$", mode="wait")))
    with connect(p.addr("w"), timeout=10):
        e = p.wait_event("server_exit", service="w")[0]
    assert e["signal"] == "SEGV" and e["failure"] is True
    assert e.get("core") in (None, "dumped")


def test_exec_failure_is_reported(psup, tmp_path):
    prog = tmp_path / "server.sh"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    p = psup(config(service("w", ["127.0.0.1:0"], [str(prog)], mode="wait", start="always")))
    p.expect_errors = True
    prog.unlink()  # gone after load: each start after the first fails
    p.wait_event("worker_failed", service="w", timeout=15)
    failed = p.events("worker_failed", service="w")[0]
    assert failed["step"] == "program" and failed["errno"] == "ENOENT"
    assert p.wait_event("backoff", service="w", timeout=15)


# --------------------------------------------------------------------------
# Reload and shutdown.


def client_loop(addrs, stop, results):
    """Connect again and again until stop is set; record each outcome."""
    i = 0
    while not stop.is_set():
        addr = addrs[i % len(addrs)]
        i += 1
        try:
            r = parse_report(talk(addr, timeout=20))
            results.append(("ok", r.get("served_by")) if r.get("end") == "1"
                           else ("short", repr(r)[:200]))
        except OSError as e:
            results.append(("error", repr(e)))


def test_reload_refuses_no_connection(psup, helpers):
    """Clients keep connecting (IPv4 and IPv6) while the server's command
    changes twice: every connection is served, by the old server or the
    new, and the old ones are stopped."""
    def cfg(hold):
        return config(service("w", ["127.0.0.1:0", "[::1]:0"],
                              sdserver(helpers, "--hold-ms", str(hold)), mode="wait"))

    p = psup(cfg(0))
    addrs = [p.addr("w", 0), p.addr("w", 1)]
    ask(addrs[0])
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=client_loop, args=(addrs, stop, results))
               for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for hold in (1, 2):
            wait_for(lambda: len(results) >= 20 * hold, 30, "clients served")
            p.write_config(cfg(hold))
            p.send(signal.SIGHUP)
            p.wait_event("reloaded", count=hold)
            p.wait_event("server_exit", count=hold, service="w", outcome="stopped")
        newest = str(servers(p, "w")[-1]["pid"])
        wait_for(lambda: ("ok", newest) in results, 30, "the new server serving")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    bad = [r for r in results if r[0] != "ok"]
    assert not bad, bad[:5]
    assert len(results) >= 40
    assert all(e["failure"] is False for e in p.events("server_exit"))
    assert p.stop() == 0


def test_psup_leaves_a_servers_o_nonblock_alone(psup, helpers):
    """A server that made its sockets non-blocking (gunicorn does: the flag
    belongs to the socket, shared with psup) keeps them so across a
    reload; a socket that moves from an accept-mode service to a wait-mode
    one is made blocking for it."""
    cfg = config(service("w", ["127.0.0.1:0"], sdserver(helpers, "--nonblock"), mode="wait"),
                 service("a", ["127.0.0.1:0"], ["/bin/cat"]))
    p = psup(cfg)
    r = ask(p.addr("w"))
    assert "nonblock=0" in r["fd.3"] and r["nonblock_now"] == "1"
    # Another service changes; w and its server stay.
    cfg["services"][1]["command"] = ["/bin/cat", "-u"]
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    again = ask(p.addr("w"))
    assert again["served_by"] == r["served_by"] and again["nonblock_now"] == "1"
    # a's socket (non-blocking for its workers; a port-0 socket is kept
    # for its service) is given to a's wait-mode servers.
    cfg["services"][1] = service("a", ["127.0.0.1:0"], sdserver(helpers), mode="wait")
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded", count=2)
    # a's old cat workers may still take a connection while they retire
    # (an idle worker woken at its retirement serves with the old settings:
    # spec/pool.md): ask until the wait-mode server answers.
    deadline = time.monotonic() + 10
    while True:
        moved = parse_report(talk(p.addr("a"), timeout=30.0))
        if moved.get("end") == "1" or time.monotonic() > deadline:
            break
    assert moved.get("end") == "1", moved
    assert "nonblock=0" in moved["fd.3"], moved["fd.3"]
    assert p.events("reloaded")[-1]["listeners_opened"] == 0


FORKING_SERVER = r"""
import os, select, signal, socket, sys, time
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ["LISTEN_FDS"]))]
print("forking server %d ready" % os.getpid(), file=sys.stderr, flush=True)
while True:
    ready, _, _ = select.select(listeners, [], [])
    conn, _ = ready[0].accept()
    if os.fork() == 0:
        # The child serves (as in.tftpd's transfers): slowly.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        print("child %d took a connection" % os.getpid(), file=sys.stderr, flush=True)
        time.sleep(1.5)
        conn.sendall(b"served by a child of %d\n" % os.getppid())
        os._exit(0)
    conn.close()
"""


def test_reload_lets_what_the_old_server_started_finish(psup, tmp_path):
    """A reload stops the old server with SIGTERM to it alone: what it
    started (a child serving a connection, as in.tftpd's transfers) is not
    signalled, finishes, and is reaped by psup."""
    script = tmp_path / "forking.py"
    script.write_text(FORKING_SERVER)

    def cfg(tag):
        return config(service("f", ["127.0.0.1:0", "[::1]:0"], ["/usr/bin/python3", str(script)],
                              mode="wait", env={"TAG": tag}))

    p = psup(cfg("old"))
    out = []
    t = threading.Thread(target=lambda: out.append(talk(p.addr("f", 1), timeout=30)))
    t.start()
    wait_for(lambda: "took a connection" in p.log_text(), 30, "a child serving")
    old = servers(p, "f")[0]["pid"]
    p.write_config(cfg("new"))
    p.send(signal.SIGHUP)
    p.wait_event("server_exit", pid=old, timeout=20)
    t.join(30)
    assert out and out[0].startswith(b"served by a child"), out
    e = p.events("server_exit", pid=old)[0]
    assert e["outcome"] == "stopped" and e["signal"] == "TERM"
    # The new server serves the next client.
    assert talk(p.addr("f", 0), timeout=30).startswith(b"served by a child")
    assert len(servers(p, "f")) == 2
    assert p.stop() == 0


def test_unchanged_service_keeps_its_server(psup, helpers):
    cfg = config(service("w", ["127.0.0.1:0"], sdserver(helpers), mode="wait"))
    p = psup(cfg)
    first = ask(p.addr("w"))["served_by"]
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    assert ask(p.addr("w"))["served_by"] == first
    assert not p.events("server_exit")


def test_shutdown_lets_the_server_finish(psup, helpers):
    """SIGTERM while a connection is being served: the server gets SIGTERM
    at once, answers what it holds, exits; psup exits 0."""
    p = psup(config(service("w", ["127.0.0.1:0", "[::1]:0"],
                            sdserver(helpers, "--hold-ms", "1500"), mode="wait")))
    out = []
    t = threading.Thread(target=lambda: out.append(talk(p.addr("w", 1), timeout=20)))
    t.start()
    pid = p.wait_event("server_started", service="w")[0]["pid"]
    wait_for(lambda: f"sdserver {pid}: took conn 1" in p.log_text(), 10, "the connection taken")
    assert p.stop() == 0
    t.join(20)
    assert parse_report(out[0]).get("end") == "1"
    e = p.events("server_exit", service="w")[0]
    assert e["outcome"] == "stopped" and e["status"] == 0 and e["failure"] is False


def test_shutdown_kills_a_server_that_ignores_sigterm(psup):
    """A server that ignores SIGTERM gets SIGKILL once shutdown_timeout and
    kill_grace have passed."""
    p = psup(config(service("w", ["127.0.0.1:0"],
                            "trap '' TERM; echo ignoring TERM >&2; while :; do sleep 1; done",
                            mode="wait", start="always"),
                    shutdown_timeout=0.5, kill_grace=0.5))
    pid = p.wait_event("server_started", service="w")[0]["pid"]
    wait_for(lambda: "ignoring TERM" in p.log_text(), 10, "the server to ignore SIGTERM")
    t0 = time.monotonic()
    assert p.stop(timeout=15) == 0
    assert time.monotonic() - t0 < 8
    e = p.events("server_exit", pid=pid)[0]
    assert e["signal"] == "KILL" and e["outcome"] == "stopped"
    assert not alive(pid)


def test_a_server_does_not_outlive_psup(psup, helpers):
    """psup killed outright: its server gets SIGTERM (its parent-death
    signal) and leaves, so the port is free for the next psup."""
    p = psup(config(service("w", ["127.0.0.1:0"], sdserver(helpers), mode="wait",
                            start="always")))
    pid = p.wait_event("server_started", service="w")[0]["pid"]
    addr = p.addr("w")
    wait_for(lambda: "serving 1 sockets" in p.log_text(), 10, "the server serving")
    p.proc.kill()
    p.proc.wait(10)
    wait_for(lambda: not alive(pid), 10, "the server gone")
    with socket.socket() as s:
        s.bind(addr)


def test_check_describes_wait_services(psup_bin, tmp_path, helpers):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(
        service("w", ["127.0.0.1:0"], sdserver(helpers), mode="wait", start="always",
                instances=2))))
    r = subprocess.run([psup_bin, "--check", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "wait, always, 2 instances" in r.stdout


ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_examples_pass_check(psup_bin, unsupported_udp):
    for name in ("web.json", "tftp.json"):
        if name == "tftp.json" and unsupported_udp:
            continue
        if name == "web.json" and not shutil.which("gunicorn"):
            continue
        r = subprocess.run([psup_bin, "--check", str(ROOT / "examples" / "wait" / name)],
                           capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, r.stderr


def test_the_gunicorn_example_serves(psup, gunicorn):
    """examples/wait/web.json, on ephemeral ports."""
    cfg = json.loads((ROOT / "examples" / "wait" / "web.json").read_text())
    svc = cfg["services"][0]
    svc["listen"] = ["127.0.0.1:0", "[::1]:0"]
    svc["command"][svc["command"].index("examples/wait")] = str(ROOT / "examples" / "wait")
    p = psup(cfg)
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "http://[%s]:%d/x" % p.addr("web", 1)],
                       capture_output=True, text=True, timeout=65)
    assert r.returncode == 0 and r.stdout.startswith("hello from gunicorn worker"), r
    assert r.stdout.rstrip().endswith("GET /x")


@pytest.fixture(scope="module")
def unsupported_udp(psup_bin, tmp_path_factory):
    """Why psup --check refuses a UDP listener (None once it accepts them)."""
    path = tmp_path_factory.mktemp("udp") / "u.json"
    path.write_text(json.dumps(config(service("u", ["udp://127.0.0.1:0"], ["/bin/cat"],
                                              mode="wait"))))
    r = subprocess.run([psup_bin, "--check", str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else r.stderr.strip()


# --------------------------------------------------------------------------
# UDP: in.tftpd, inetd's wait = yes on a datagram socket (tftpd-hpa), with
# tftp-hpa's client.


def udp_addr(p, service_name, index=0):
    text = [r["addr"] for r in p.events("listening", service=service_name)][index]
    assert text.startswith("udp://"), text
    host, _, port = text[len("udp://"):].rpartition(":")
    return host.strip("[]"), int(port)


@pytest.fixture
def tftpd(unsupported_udp):
    if unsupported_udp:
        pytest.skip(f"psup --check rejects UDP listeners: {unsupported_udp}")
    exe = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    if not os.access(exe, os.X_OK) or not shutil.which("tftp"):
        pytest.skip("tftpd-hpa and tftp-hpa are not installed")
    if os.geteuid() != 0:
        pytest.skip("in.tftpd --secure chroots: needs root")
    root = public_dir("psup-tftp-")
    yield exe, root
    shutil.rmtree(root)


def tftp_get(addr, name, out, timeout=60):
    host, port = addr
    r = subprocess.run(["tftp", "-6" if ":" in host else "-4", "-m", "binary", host, str(port),
                        "-c", "get", name, str(out)], capture_output=True, timeout=timeout)
    return r.returncode == 0 and not r.stderr.strip(), r


def tftp_services(exe, root, **kw):
    """in.tftpd serves the socket on its standard input only: one service
    per socket, as inetd has one line per protocol."""
    return [service(name, [addr], [exe, "--secure", str(root)] + kw.pop("args", []),
                    mode="wait", **kw)
            for name, addr in (("tftp", "udp://127.0.0.1:0"), ("tftp6", "udp://[::1]:0"))]


def put_file(root, name, size):
    data = os.urandom(size)
    (root / name).write_bytes(data)
    (root / name).chmod(0o644)
    return data


def test_tftpd_serves_v4_and_v6_and_several_at_once(psup, tftpd, tmp_path):
    exe, root = tftpd
    data = put_file(root, "boot.img", 400_000)
    p = psup(config(*tftp_services(exe, root, args=["--timeout", "30"])))
    time.sleep(0.3)  # a bounded "must not happen": nothing starts without a request
    assert not p.events("server_started")
    addrs = [udp_addr(p, "tftp"), udp_addr(p, "tftp6")]
    for i, addr in enumerate(addrs):
        ok, r = tftp_get(addr, "boot.img", tmp_path / f"one{i}")
        assert ok, r
        assert (tmp_path / f"one{i}").read_bytes() == data
    # Several at once, on both: in.tftpd forks a process per transfer.
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        (i, tftp_get(addrs[i % 2], "boot.img", tmp_path / f"many{i}")[0]))) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == [(i, True) for i in range(6)]
    for i in range(6):
        assert (tmp_path / f"many{i}").read_bytes() == data
    # One server per socket served everything (it stays until 30 s idle).
    assert len(servers(p, "tftp")) == 1 and len(servers(p, "tftp6")) == 1
    assert p.stop() == 0


def test_tftpd_exits_when_idle_and_the_next_request_starts_it(psup, tftpd, tmp_path):
    exe, root = tftpd
    data = put_file(root, "small.bin", 3000)
    p = psup(config(*tftp_services(exe, root, args=["--timeout", "1"])))
    addr = udp_addr(p, "tftp")
    ok, r = tftp_get(addr, "small.bin", tmp_path / "a")
    assert ok, r
    first = servers(p, "tftp")[0]["pid"]
    e = p.wait_event("server_exit", pid=first, timeout=20)[0]
    assert e["status"] == 0 and e["failure"] is False
    ok, r = tftp_get(addr, "small.bin", tmp_path / "b")
    assert ok, r
    assert (tmp_path / "b").read_bytes() == data
    assert len(servers(p, "tftp")) == 2


def test_tftpd_reload_lets_a_transfer_finish(psup, tftpd, tmp_path):
    """kill -HUP with a changed command while a transfer runs: the old
    in.tftpd gets SIGTERM, its transfer (a process of its own) finishes; the
    next request starts the new server."""
    exe, root = tftpd
    big = put_file(root, "big.img", 3_000_000)
    small = put_file(root, "small.bin", 3000)
    p = psup(config(*tftp_services(exe, root, args=["--timeout", "60"])))
    addr = udp_addr(p, "tftp")
    out, done = tmp_path / "big", []
    t = threading.Thread(target=lambda: done.append(tftp_get(addr, "big.img", out, 120)[0]))
    t.start()
    wait_for(lambda: out.exists() and out.stat().st_size > 100_000, 60, "the transfer running")
    old = servers(p, "tftp")[0]["pid"]
    p.write_config(config(*tftp_services(exe, root, args=["--timeout", "30"])))
    p.send(signal.SIGHUP)
    p.wait_event("server_exit", pid=old, timeout=20)
    ok, r = tftp_get(addr, "small.bin", tmp_path / "small")
    assert ok, r
    assert (tmp_path / "small").read_bytes() == small
    t.join(120)
    assert done == [True] and out.read_bytes() == big
    assert len(servers(p, "tftp")) == 2
    assert p.stop() == 0


def test_tftpd_stop_while_transfers_run(psup, tftpd, tmp_path):
    """kill -TERM during transfers: psup stops within its budget, exit 0,
    and leaves no process behind."""
    exe, root = tftpd
    put_file(root, "big.img", 3_000_000)
    p = psup(config(*tftp_services(exe, root, args=["--timeout", "60"])),
             )
    addrs = [udp_addr(p, "tftp"), udp_addr(p, "tftp6")]
    outs = [tmp_path / "v4", tmp_path / "v6"]
    threads = [threading.Thread(target=tftp_get, args=(a, "big.img", o, 60))
               for a, o in zip(addrs, outs)]
    for t in threads:
        t.start()
    wait_for(lambda: all(o.exists() and o.stat().st_size > 50_000 for o in outs), 60,
             "both transfers running")
    pids = [e["pid"] for e in p.events("server_started")]
    t0 = time.monotonic()
    assert p.stop() == 0
    assert time.monotonic() - t0 < 12
    assert not any(alive(pid) for pid in pids)
    for t in threads:
        t.join(90)


def test_a_udp_server_that_reads_nothing_backs_off(psup, unsupported_udp):
    """A datagram nobody reads keeps the socket readable: each start of a
    server that leaves it is a failure, and starts back off."""
    if unsupported_udp:
        pytest.skip(f"psup --check rejects UDP listeners: {unsupported_udp}")
    p = psup(config(service("u", ["udp://127.0.0.1:0"], ["/bin/true"], mode="wait")))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.sendto(b"hello", udp_addr(p, "u"))
        p.wait_event("backoff", service="u")
        n0 = len(servers(p, "u"))
        time.sleep(2.0)  # a bounded window in which starts are counted
        assert len(servers(p, "u")) - n0 <= 6
    assert all(e["pending"] is True for e in p.events("server_exit", service="u"))


def ask_udp(addr, timeout=20):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as c:
        c.settimeout(timeout)
        c.connect(addr)
        c.send(b"report")
        r = parse_report(c.recv(65536))
    assert r.get("end") == "1", r
    return r


def test_udp_and_stream_sockets_in_one_server(psup, helpers, unsupported_udp):
    """Wait mode may mix datagram and stream sockets, as a systemd socket
    unit may: the server gets them all, in listen order, and tells them
    apart itself."""
    if unsupported_udp:
        pytest.skip(f"psup --check rejects UDP listeners: {unsupported_udp}")
    p = psup(config(service("m", ["udp://127.0.0.1:0", "127.0.0.1:0", "udp://[::1]:0"],
                            sdserver(helpers), mode="wait")))
    r = ask_udp(udp_addr(p, "m", 0))
    assert r["fds"] == "0,1,2,3,4,5,", r["fds"]
    assert inode(r, 0) == inode(r, 1) == inode(r, 3)
    assert " dgram " in fd_info(r, 3) and " stream listening " in fd_info(r, 4)
    assert " dgram " in fd_info(r, 5)
    for fd in (3, 4, 5):
        assert "nonblock=0 cloexec=0" in fd_info(r, fd)
    assert r["env"]["LISTEN_FDS"] == "3" and r["env"]["LISTEN_FDNAMES"] == "m:m:m"
    # The same server answers on the stream socket and the other datagram one.
    assert ask(p.addr("m", 1))["served_by"] == r["served_by"]
    assert ask_udp(udp_addr(p, "m", 2))["served_by"] == r["served_by"]


def test_udp_same_as_systemd_socket_activate(psup, helpers, unsupported_udp):
    if unsupported_udp:
        pytest.skip(f"psup --check rejects UDP listeners: {unsupported_udp}")
    ssa = shutil.which("systemd-socket-activate")
    if not ssa:
        pytest.skip("systemd-socket-activate (Debian systemd) is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = subprocess.Popen([ssa, "--datagram", "-l", f"127.0.0.1:{port}", "--fdname=u",
                            *sdserver(helpers, "--once")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        want = wait_for(lambda: try_ask_udp(("127.0.0.1", port)), 10, "systemd-socket-activate")
    finally:
        kill_quietly(ref.pid)
        ref.wait(10)
    p = psup(config(service("u", ["udp://127.0.0.1:0"], sdserver(helpers), mode="wait")))
    got = ask_udp(udp_addr(p, "u"))
    assert got["env"]["LISTEN_FDS"] == want["env"]["LISTEN_FDS"] == "1"
    assert got["env"]["LISTEN_FDNAMES"] == "u" and want["env"]["LISTEN_FDNAMES"] == "u"
    assert fd_info(got, 3).split()[1:] == fd_info(want, 3).split()[1:]


def try_ask_udp(addr):
    try:
        return ask_udp(addr, timeout=1)
    except OSError:
        return None
