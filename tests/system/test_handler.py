# SPDX-License-Identifier: MIT
"""The handler contract (spec/handler.md), checked from inside a real handler:
descriptors, signal mask and dispositions, process group and session,
environment for TCP over IPv4/IPv6 and for unix sockets."""

import fcntl
import os
import signal
import socket
import termios

import pytest

from conftest import SPAWN_MODES, config, connect, parse_report, read_all, service, spawn_env, talk


def report(p, name="r", index=0, data=b""):
    return parse_report(talk(p.addr(name, index), data))


def hostile_parent():
    """What psup may inherit from a careless parent: ignored and blocked
    signals. None of it may reach a handler. psup also leads its own
    session, without a terminal, as under systemd or in a container (the
    test runner's terminal must not change what is tested)."""
    os.setsid()
    for sig in (signal.SIGPIPE, signal.SIGUSR2, signal.SIGTTOU, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM, signal.SIGCHLD})


@pytest.fixture(params=SPAWN_MODES)
def reporter(request, psup, helpers, tmp_path):
    """psup with a reporting handler, in both ways of creating workers: the
    contract must not depend on it (PSUP_SPAWN=fork, docs/design.md)."""
    sock = str(tmp_path / "r.sock")
    env = spawn_env(request.param)
    p = psup(config(service("r", ["127.0.0.1:0", "[::1]:0", f"unix:{sock}", "*:0"],
                            [str(helpers / "report")])),
             preexec_fn=hostile_parent, env=env)
    assert p.events("start")[0]["spawn"] == request.param
    return p


def test_only_the_connection_and_stderr_are_open(reporter):
    r = report(reporter)
    fds = dict(item.split(":", 1) for item in r["fds"].strip(",").split(","))
    assert sorted(fds) == ["0", "1", "2"], r["fds"]
    assert fds["0"].startswith("socket:") and fds["0"] == fds["1"]
    assert fds["2"] == str(reporter.log_path), "fd 2 is psup's stderr"


def test_signals_are_default_and_unblocked(reporter):
    r = report(reporter)
    assert r["SigBlk"] == "0000000000000000"
    assert r["SigIgn"] == "0000000000000000"
    assert r["SigCgt"] == "0000000000000000"


def test_handler_leads_its_own_group(reporter):
    r = report(reporter)
    pid = int(r["pid"])
    assert int(r["pgid"]) == pid
    # psup has no terminal here: no session per handler (each would also
    # be a scheduling autogroup, spec/handler.md).
    assert int(r["sid"]) == reporter.pid
    assert int(r["ppid"]) == reporter.pid


def test_with_a_terminal_the_handler_leads_its_own_session(psup, helpers):
    """psup started on a terminal (a pty it controls): handlers get their
    own session, so they are detached from it."""
    try:
        master, slave = os.openpty()
    except OSError as e:  # a chroot without /dev/pts
        pytest.skip(f"no pseudo-terminal: {e}")

    def on_a_terminal():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    try:
        p = psup(config(service("r", command=[str(helpers / "report")])),
                 preexec_fn=on_a_terminal)
        r = report(p)
        # Stopped before its terminal goes: a hangup would be a SIGHUP.
        assert p.stop() == 0
    finally:
        os.close(slave)
        os.close(master)
    pid = int(r["pid"])
    assert int(r["pgid"]) == pid and int(r["sid"]) == pid
    assert int(r["ppid"]) == p.pid


def test_tcp_ipv4_environment(reporter):
    with connect(reporter.addr("r", 0)) as s:
        s.shutdown(socket.SHUT_WR)
        local_port, client_port = reporter.addr("r", 0)[1], s.getsockname()[1]
        r = parse_report(read_all(s))
    env = r["env"]
    assert env["PROTO"] == "TCP"
    assert env["TCPLOCALIP"] == "127.0.0.1" and env["TCPLOCALPORT"] == str(local_port)
    assert env["TCPREMOTEIP"] == "127.0.0.1" and env["TCPREMOTEPORT"] == str(client_port)
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"] == str(client_port)
    assert env["TCPCONNNUM"] == "1"
    assert env["PSUP_SERVICE"] == "r"
    end = reporter.wait_event("conn_end", remote_port=client_port)[0]
    assert env["PSUP_CONN_ID"] == str(end["conn"])


def test_tcp_ipv6_environment_is_compact(reporter):
    r = report(reporter, index=1)
    env = r["env"]
    assert env["PROTO"] == "TCP"
    assert env["TCPLOCALIP"] == "::1" and env["TCPREMOTEIP"] == "::1"
    assert env["REMOTE_ADDR"] == "::1"


def test_v4_mapped_peer_is_dotted_ipv4(reporter):
    port = reporter.addr("r", 3)[1]
    r = parse_report(talk(("127.0.0.1", port)))
    assert r["env"]["TCPREMOTEIP"] == "127.0.0.1"
    assert r["env"]["TCPLOCALIP"] == "127.0.0.1"


def test_unix_environment(reporter, tmp_path):
    r = report(reporter, index=2)
    env = r["env"]
    assert env["PROTO"] == "UNIX"
    assert env["UNIXLOCALPATH"] == str(tmp_path / "r.sock")
    assert env["UNIXREMOTEEUID"] == str(os.geteuid())
    assert env["UNIXREMOTEEGID"] == str(os.getegid())
    assert env["UNIXREMOTEPID"] == str(os.getpid())
    for tcp_only in ("TCPREMOTEIP", "REMOTE_ADDR", "TCPCONNNUM"):
        assert tcp_only not in env


def test_psup_environment_is_passed_but_connection_variables_are_not_inherited(psup, helpers):
    env = dict(os.environ, KEEP_ME="yes", PROTO="BOGUS", TCPREMOTEIP="6.6.6.6",
               NOTIFY_SOCKET="/run/x", LISTEN_FDS="3", LISTEN_PID="1", PSUP_SECRET="no")
    p = psup(config(service("r", ["unix:" + "r.sock"], [str(helpers / "report")],
                            env={"ADDED": "1", "KEEP_ME": "overridden"})), env=env)
    r = parse_report(talk(str(p.tmp / "r.sock")))["env"]
    assert r["KEEP_ME"] == "overridden" and r["ADDED"] == "1"
    assert r["PROTO"] == "UNIX" and "TCPREMOTEIP" not in r
    for control in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "PSUP_SECRET"):
        assert control not in r
    assert r["PATH"] == os.environ["PATH"]


def test_clear_env_keeps_only_pass_env_and_env(psup, helpers):
    env = dict(os.environ, SECRET="hunter2", KEEP="kept")
    p = psup(config(service("r", command=[str(helpers / "report")], clear_env=True,
                            pass_env=["KEEP", "PATH"], env={"EXTRA": "x"})), env=env)
    r = report(p)["env"]
    assert "SECRET" not in r and "HOME" not in r
    assert r["KEEP"] == "kept" and r["EXTRA"] == "x" and r["PATH"] == os.environ["PATH"]
    assert set(r) <= {"KEEP", "PATH", "EXTRA", "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP",
                      "TCPREMOTEPORT", "TCPCONNNUM", "REMOTE_ADDR", "REMOTE_PORT",
                      "PSUP_SERVICE", "PSUP_CONN_ID"}


def test_string_command_runs_under_sh(psup):
    p = psup(config(service("sh", command="echo \"$PSUP_SERVICE:$0\"")))
    assert talk(p.addr("sh")) == b"sh:sh\n"


def test_bare_program_name_is_found_in_path(psup):
    p = psup(config(service("c", command=["cat"])))
    assert talk(p.addr("c"), b"via PATH") == b"via PATH"


def test_psup_with_closed_stdin_still_gives_the_socket_on_fd0(psup, helpers):
    def close_stdin():
        hostile_parent()
        os.close(0)

    p = psup(config(service("r", command=[str(helpers / "report"), "read"])),
             preexec_fn=close_stdin)
    with connect(p.addr("r")) as s:
        s.sendall(b"input that the handler reads from fd 0")
        s.shutdown(socket.SHUT_WR)
        r = parse_report(read_all(s))
    assert r["end"] == "1"
    fds = dict(item.split(":", 1) for item in r["fds"].strip(",").split(","))
    assert fds["0"].startswith("socket:") and sorted(fds) == ["0", "1", "2"]
