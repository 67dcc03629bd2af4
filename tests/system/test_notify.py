# SPDX-License-Identifier: MIT
"""Readiness (spec/readiness.md): sd_notify messages on NOTIFY_SOCKET, in
their exact form and order, from psup's own pid, through a start, a reload,
a rejected reload and a stop; the watchdog's period; the STATUS= summary;
and s6's notification descriptor (--ready-fd). The receiver is our own: a
unix datagram socket in the test's directory (or an abstract name), as
systemd's is."""

import array
import os
import re
import select
import signal
import socket
import subprocess
import time
import uuid

import pytest

from conftest import config, parse_report, service, talk, wait_for

SUMMARY = r"\d+ services?, \d+ workers?, \d+ busy(, \d+ paused)?(, \d+ backing off)?"


class Receiver:
    """A NOTIFY_SOCKET: every datagram with the pid that sent it."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []

    @property
    def env_value(self):
        return "@" + self.address[1:].decode() if isinstance(self.address, bytes) else self.address

    def poll(self):
        self.sock.setblocking(False)
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.messages
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = array.array("i", payload[:12])[0]
            self.messages.append((data.decode(), pid))

    def texts(self):
        return [m for m, _ in self.poll()]

    def state_messages(self):
        """The messages that change psup's state (all but STATUS= updates
        and watchdog pings), in order."""
        return [m for m in self.texts() if not re.fullmatch(r"STATUS=.*|WATCHDOG=1", m, re.S)]

    def wait_states(self, n, timeout=10):
        return wait_for(lambda: len(self.state_messages()) >= n and self.state_messages(), timeout,
                        f"{n} state messages (have {self.texts()})")

    def close(self):
        self.sock.close()


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(str(tmp_path / "notify.sock"))
    yield r
    r.close()


def notify_env(receiver, **extra):
    env = dict(os.environ, NOTIFY_SOCKET=receiver.env_value, **extra)
    for name in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        if name not in extra:
            env.pop(name, None)
    return env


def test_messages_and_their_order_through_reloads_and_a_stop(psup, receiver):
    p = psup(config(service("echo", pool={"min_spare": 2, "max_spare": 2})),
             env=notify_env(receiver))
    p.expect_errors = True  # the rejected reload
    states = receiver.wait_states(1)
    assert re.fullmatch(r"READY=1\nSTATUS=1 service, \d+ workers?, 0 busy", states[0]), states

    before = time.monotonic_ns() // 1000
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    states = receiver.wait_states(3)
    after = time.monotonic_ns() // 1000
    m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", states[1])
    assert m, states[1]
    assert before <= int(m.group(1)) <= after
    assert re.fullmatch(r"READY=1\nSTATUS=Reloaded: 1 service, \d+ workers?, 0 busy", states[2]), states

    p.write_config("{ not json")
    p.send(signal.SIGHUP)
    p.wait_event("reload_rejected")
    states = receiver.wait_states(5)
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", states[3]), states[3]
    assert re.fullmatch(r"READY=1\nSTATUS=Reload rejected \(1 problem in .*psup0\.json\), running "
                        r"configuration kept: 1 service, \d+ workers?, 0 busy", states[4]), states[4]
    # psup still serves with the configuration it had.
    assert talk(p.addr("echo"), b"still") == b"still"

    assert p.stop() == 0
    states = receiver.wait_states(6)
    assert states[5] == "STOPPING=1\nSTATUS=Stopping on TERM"
    assert len(states) == 6, states
    # Every message came from psup itself (systemd's NotifyAccess=main).
    assert {pid for _, pid in receiver.poll()} == {p.pid}
    for text in receiver.texts():
        if text.startswith("STATUS="):
            assert re.fullmatch(r"STATUS=(Stopping: )?" + SUMMARY, text), text


def test_abstract_socket_name(psup):
    name = b"\0psup-test-" + uuid.uuid4().hex.encode()
    r = Receiver(name)
    try:
        p = psup(config(service("echo")), env=notify_env(r))
        states = r.wait_states(1)
        assert states[0].startswith("READY=1\nSTATUS=1 service, ")
        p.stop()
        assert r.wait_states(2)[1].startswith("STOPPING=1\n")
    finally:
        r.close()


def test_status_follows_the_pool_at_most_once_a_second(psup, receiver):
    p = psup(config(service("slow", command="read x; echo $x", pool={"min_spare": 1, "max_spare": 1})),
             env=notify_env(receiver))
    receiver.wait_states(1)
    addr = p.addr("slow")
    held = socket.create_connection(addr, timeout=10)
    try:
        busy = wait_for(lambda: [m for m in receiver.texts() if re.fullmatch(r"STATUS=1 service, \d+ workers?, 1 busy", m)],
                        5, "a STATUS= with the busy handler")
        assert busy
    finally:
        held.sendall(b"done\n")
        held.recv(100)
        held.close()
    wait_for(lambda: receiver.texts()[-1].endswith(", 0 busy"), 5, "STATUS= back to 0 busy")
    updates = [m for m in receiver.texts() if m.startswith("STATUS=")]
    # Sent when the summary changed, never twice the same in a row.
    assert all(a != b for a, b in zip(updates, updates[1:])), updates


def own_pid_env(env):
    """A preexec_fn that gives psup env, with WATCHDOG_PID its own pid (set
    in the child, before exec, where the pid is known)."""
    def setup():
        os.environ.clear()
        os.environ.update(env, WATCHDOG_PID=str(os.getpid()))
    return setup


def test_watchdog_pings_at_half_the_interval(psup, receiver):
    """The interval between pings is half of WATCHDOG_USEC: never less, and
    about that in the middle."""
    env = notify_env(receiver, WATCHDOG_USEC="300000")
    p = psup(config(service("echo")), env=None, preexec_fn=own_pid_env(env))
    receiver.wait_states(1)
    arrivals = []
    receiver.sock.setblocking(True)
    receiver.sock.settimeout(2)
    while len(arrivals) < 8:
        data = receiver.sock.recv(4096)
        if data == b"WATCHDOG=1":
            arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.13, gaps  # 150 ms, less the receiver's own jitter
    assert sorted(gaps)[len(gaps) // 2] < 0.3, gaps
    p.stop()


def test_no_watchdog_for_another_pid(psup, receiver):
    p = psup(config(service("echo")), env=notify_env(receiver, WATCHDOG_USEC="100000", WATCHDOG_PID="1"))
    receiver.wait_states(1)
    time.sleep(0.5)  # a bounded "must not happen": 10 periods
    assert "WATCHDOG=1" not in receiver.texts()
    p.stop()


def test_a_missing_receiver_is_a_warning_not_an_error(psup, tmp_path):
    p = psup(config(service("echo")), env=dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "nobody.sock")))
    w = p.wait_event("notify_failed")[0]
    assert w["level"] == "warn" and w["errno"] == "ENOENT" and w["target"] == "NOTIFY_SOCKET"
    assert talk(p.addr("echo"), b"x") == b"x"
    assert p.stop() == 0
    assert len(p.events("notify_failed")) == 1, "one warning for the streak"


def test_an_unusable_address_is_ignored(psup):
    p = psup(config(service("echo")), env=dict(os.environ, NOTIFY_SOCKET="vsock:2:1234"))
    w = p.wait_event("notify_failed")[0]
    assert w["target"] == "vsock:2:1234" and "abstract" in w["error"]
    assert p.stop() == 0


# --------------------------------------------------------------------------
# --ready-fd (s6's notification-fd).


def test_ready_fd_gets_a_newline_then_eof(psup, helpers):
    r, w = os.pipe()
    try:
        p = psup(config(service("r", command=[str(helpers / "report")])), args=["--ready-fd", str(w)],
                 pass_fds=(w,), wait=False)
        os.close(w)
        w = -1
        got, deadline = b"", time.monotonic() + 15
        while time.monotonic() < deadline:
            if not select.select([r], [], [], 0.1)[0]:
                continue
            chunk = os.read(r, 10)
            if not chunk:
                break
            got += chunk
        else:
            raise AssertionError(f"no EOF on the ready descriptor, read {got!r}")
        assert got == b"\n"
        assert p.events("ready"), "the newline comes with the ready record"
        # The descriptor does not reach handlers.
        fds = parse_report(talk(p.addr("r")))["fds"]
        assert [int(f.split(":")[0]) for f in fds.split(",") if f] == [0, 1, 2], fds
        assert p.stop() == 0
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@pytest.mark.parametrize("arg", ["3", "1", "x", "-1"])
def test_ready_fd_must_be_an_open_descriptor_above_2(psup_bin, tmp_path, arg):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"services": [{"name": "e", "listen": ["127.0.0.1:0"], "command": ["/bin/cat"]}]}')
    # fd 3 is not open in the child: close_fds.
    out = subprocess.run([psup_bin, "--ready-fd", arg, str(cfg)], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2, out
    assert "--ready-fd" in out.stderr
