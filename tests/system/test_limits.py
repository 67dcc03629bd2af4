# SPDX-License-Identifier: MIT
"""Limits (spec/config.md 4.6, spec/pool.md "How a worker waits"):
max_per_source with TCPCONNNUM, released when a handler is reaped (also
after a timeout or an outside kill) and kept across reloads; rate with a
burst that comes back by itself; on_overload reject versus queue at
max_workers; per-uid counting on a unix socket."""

import os
import signal
import socket
import time

import pytest

from conftest import config, connect, read_all, read_line, service, talk, wait_for

HOLD = 'echo "$TCPCONNNUM"; exec cat'


def hold(addr, bind=None):
    """A client served by HOLD: returns (socket, TCPCONNNUM it was given)."""
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
    if bind:
        s.bind((bind, 0))
    s.settimeout(10)
    s.connect(addr)
    line = read_line(s)
    assert line.rstrip(b"\n").isdigit(), f"expected TCPCONNNUM, got {line!r}"
    return s, int(line)


def refused_with(addr, message, within=3.0, bind=None):
    """Connect and expect `message` then EOF, promptly (not queued)."""
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
    with s:
        if bind:
            s.bind((bind, 0))
        s.settimeout(within)
        start = time.monotonic()
        s.connect(addr)
        data = read_all(s)
        assert data == message, f"expected a refusal {message!r}, got {data!r}"
        assert time.monotonic() - start < within


def still_echoes(s, payload=b"still here"):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(4096)
        assert chunk, "held connection was closed"
        got += chunk
    return got == payload


def closing(*socks):
    for s in socks:
        s.close()


# --------------------------------------------------------------------------
# max_per_source


def test_five_concurrent_clients_against_max_per_source_2(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=2, per_source_message="too many\n")))
    addr = p.addr("lim")
    start = time.monotonic()
    clients = [connect(addr) for _ in range(5)]
    answers = [read_line(s) for s in clients]
    served = [s for s, a in zip(clients, answers) if a != b"too many\n"]
    refused = [s for s, a in zip(clients, answers) if a == b"too many\n"]
    assert sorted(a for a in answers if a != b"too many\n") == [b"1\n", b"2\n"], answers
    assert len(refused) == 3
    for s in refused:
        assert read_all(s) == b"", "a refused connection is closed after the message"
    assert time.monotonic() - start < 5, "refusals come at once, not after the held ones end"
    for s in served:
        assert still_echoes(s)
    limited = p.wait_event("limited", 3, service="lim")
    assert len(limited) == 3
    for rec in limited:
        assert rec["reason"] == "max_per_source" and rec["remote_ip"] == "127.0.0.1"
    closing(*clients)
    p.wait_event("conn_end", 2, service="lim")
    assert p.stop() == 0
    summary = p.events("summary", service="lim")[0]
    assert (summary["accepted"], summary["limited_per_source"]) == (2, 3)


def test_tcpconnnum_counts_one_then_two(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=2, per_source_message="busy\n")))
    addr = p.addr("lim")
    a, n1 = hold(addr)
    b, n2 = hold(addr)
    assert (n1, n2) == (1, 2)
    for _ in range(3):
        refused_with(addr, b"busy\n")
    assert still_echoes(a) and still_echoes(b)
    closing(a, b)


def test_tcpconnnum_counts_without_a_limit_too(psup):
    p = psup(config(service("nolim", command=HOLD)))
    held = [hold(p.addr("nolim")) for _ in range(3)]
    assert [n for _, n in held] == [1, 2, 3]
    closing(*(s for s, _ in held))


def test_without_a_message_the_refused_client_just_sees_eof(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=1)))
    a, _ = hold(p.addr("lim"))
    refused_with(p.addr("lim"), b"")
    closing(a)


def test_ipv4_and_ipv6_loopback_are_different_sources(psup):
    p = psup(config(service("lim", ["127.0.0.1:0", "[::1]:0", "*:0"], HOLD, max_per_source=1,
                            per_source_message="busy\n")))
    v4, v6, dual = p.addr("lim", 0), ("::1", p.addr("lim", 1)[1]), p.addr("lim", 2)[1]
    a, n = hold(v4)
    assert n == 1
    b, n = hold(v6)
    assert n == 1, "::1 is not counted with 127.0.0.1"
    c, n = hold(v4, bind="127.0.0.2")
    assert n == 1, "127.0.0.2 is another source"
    refused_with(v4, b"busy\n")
    refused_with(v6, b"busy\n")
    # The dual-stack listener counts an IPv4 client with the same address.
    refused_with(("127.0.0.1", dual), b"busy\n")
    refused_with(("::1", dual), b"busy\n")
    limited = p.wait_event("limited", 4, service="lim")
    assert sorted(r["remote_ip"] for r in limited) == ["127.0.0.1", "127.0.0.1", "::1", "::1"]
    closing(a, b, c)


def test_count_is_released_when_the_handler_ends(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=2, per_source_message="busy\n")))
    addr = p.addr("lim")
    a, _ = hold(addr)
    b, _ = hold(addr)
    refused_with(addr, b"busy\n")
    a.close()  # cat sees EOF and exits
    p.wait_event("conn_end", 1, service="lim")
    c, n = hold(addr)
    assert n == 2, "one held plus this one"
    refused_with(addr, b"busy\n")
    closing(b, c)
    p.wait_event("conn_end", 3, service="lim")
    d, n = hold(addr)
    assert n == 1
    closing(d)


def test_count_is_released_when_timeout_kills_the_handler(psup):
    p = psup(config(service("lim", command='echo "$TCPCONNNUM"; exec sleep 60', max_per_source=1,
                            per_source_message="busy\n", timeout=0.5), kill_grace=0.5))
    addr = p.addr("lim")
    a, n = hold(addr)
    assert n == 1
    refused_with(addr, b"busy\n")
    end = p.wait_event("conn_end", 1, service="lim")[0]
    assert end.get("outcome") == "timeout"
    assert read_all(a) == b""
    b, n = hold(addr)
    assert n == 1, "the timed-out handler's count was released"
    closing(a, b)
    p.wait_event("conn_end", 2, service="lim")
    assert p.stop() == 0
    assert p.events("summary", service="lim")[0]["timed_out"] == 2


def test_count_is_released_when_the_handler_is_killed_from_outside(psup):
    p = psup(config(service("lim", command='echo "$TCPCONNNUM"; exec sleep 60', max_per_source=1,
                            per_source_message="busy\n")))
    addr = p.addr("lim")
    a, _ = hold(addr)
    refused_with(addr, b"busy\n")
    victim = wait_for(lambda: p.handlers("sleep"), 5, "the sleep handler")
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    p.wait_event("conn_end", 1, service="lim")
    b, n = hold(addr)
    assert n == 1
    closing(a, b)


def test_racing_connections_cannot_exceed_the_limit(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=3, per_source_message="busy\n",
                            pool={"min_spare": 16, "max_spare": 16})))
    wait_for(lambda: len(p.workers()) == 16, 10, "16 idle workers")
    addr = p.addr("lim")
    clients = [connect(addr) for _ in range(16)]
    answers = [read_line(s) for s in clients]
    assert sorted(a for a in answers if a != b"busy\n") == [b"1\n", b"2\n", b"3\n"], answers
    closing(*clients)


# --------------------------------------------------------------------------
# Counts across reloads.


def reload(p, cfg, count):
    """Reload, and wait until the idle workers of the old generation have
    left: until then one of them may still take a connection and serve it
    with the old settings (spec/pool.md, "Reload")."""
    before = set(p.workers())
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    rec = p.wait_event("reloaded", count)[-1]
    if rec["changed"]:
        wait_for(lambda: not set(p.workers()) & before, 10, "the old idle workers to leave")


def test_counts_survive_a_reload_of_an_unchanged_file(psup):
    cfg = config(service("lim", command=HOLD, max_per_source=2, per_source_message="busy\n"))
    p = psup(cfg)
    addr = p.addr("lim")
    a, _ = hold(addr)
    b, _ = hold(addr)
    reload(p, cfg, 1)
    refused_with(addr, b"busy\n")
    assert still_echoes(a) and still_echoes(b)
    a.close()
    p.wait_event("conn_end", 1, service="lim")
    c, n = hold(addr)
    assert n == 2
    closing(b, c)


def test_counts_survive_a_reload_that_changes_the_service(psup):
    p = psup(config(service("lim", command=HOLD, max_per_source=2, per_source_message="busy\n")))
    addr = p.addr("lim")
    a, _ = hold(addr)
    b, _ = hold(addr)
    # A new generation, same limit: the two old handlers still count.
    reload(p, config(service("lim", command=HOLD, max_per_source=2,
                             per_source_message="still busy\n")), 1)
    refused_with(addr, b"still busy\n")
    # Raised to 3: exactly one more, numbered 3.
    reload(p, config(service("lim", command=HOLD, max_per_source=3,
                             per_source_message="full\n")), 2)
    c, n = hold(addr)
    assert n == 3
    refused_with(addr, b"full\n")
    assert still_echoes(a) and still_echoes(b) and still_echoes(c)
    # An old generation's handler ending releases the count too.
    a.close()
    p.wait_event("conn_end", 1, service="lim")
    d, n = hold(addr)
    assert n == 3
    closing(b, c, d)


# --------------------------------------------------------------------------
# rate


def test_rate_refuses_past_the_burst_and_recovers_by_itself(psup):
    rate, burst = 2, 4
    p = psup(config(service("r", command="echo ok", rate=rate, rate_burst=burst,
                            rate_message="slow down\n", pool={"min_spare": 8, "max_spare": 8})))
    wait_for(lambda: len(p.workers()) == 8, 10, "8 idle workers")
    addr = p.addr("r")
    start = time.monotonic()
    clients = [connect(addr) for _ in range(12)]
    answers = [read_all(s) for s in clients]
    elapsed = time.monotonic() - start
    closing(*clients)
    served = answers.count(b"ok\n")
    refused = answers.count(b"slow down\n")
    assert served + refused == 12, answers
    assert burst <= served <= burst + int(elapsed * rate), f"{served} served in {elapsed:.2f}s"
    assert refused >= 1
    limited = p.wait_event("limited", min(refused, 5), service="r")
    assert all(r["reason"] == "rate" for r in limited)
    # After a pause, connections are served again; every connection, refused
    # or not, was accepted: the listener stayed open throughout.
    wait_for(lambda: talk(addr) == b"ok\n", 5, "rate to let a connection through", interval=0.2)
    assert talk(addr) in (b"ok\n", b"slow down\n")
    p.wait_event("conn_end", served + 1, service="r")
    assert p.stop() == 0
    summary = p.events("summary", service="r")[0]
    assert summary["limited_rate"] >= refused
    assert summary["accepted"] >= served + 1


def test_refused_rate_connection_consumes_no_token(psup):
    """Refusals do not push recovery further away: probing while limited
    still lets a connection through after about 1/rate seconds."""
    p = psup(config(service("r", command="echo ok", rate=1, rate_burst=1, rate_message="no\n")))
    addr = p.addr("r")
    assert talk(addr) == b"ok\n"
    refusals = []

    def probe():
        answer = talk(addr)
        assert answer in (b"ok\n", b"no\n")
        refusals.append(answer)
        return answer == b"ok\n"

    # Probing every 50 ms while limited: if refusals took tokens, no token
    # would ever be left over for this to succeed.
    wait_for(probe, 3, "a token after about 1 s at rate 1", interval=0.05)
    assert len(refusals) >= 2, "the first probe was refused"


# --------------------------------------------------------------------------
# Overload at max_workers


def test_on_overload_reject_answers_at_once(psup):
    p = psup(config(service("ov", command=HOLD, on_overload="reject", overload_message="full\n",
                            pool={"min_spare": 1, "max_spare": 2, "max_workers": 2})))
    addr = p.addr("ov")
    a, _ = hold(addr)
    b, _ = hold(addr)
    for _ in range(4):
        refused_with(addr, b"full\n")
    limited = p.wait_event("limited", 4, service="ov")
    assert all(r["reason"] == "overload" for r in limited)
    assert still_echoes(a) and still_echoes(b)
    assert len(p.events("saturated", service="ov")) == 1, "saturation is logged once"
    a.close()
    p.wait_event("conn_end", 1, service="ov")
    c, n = hold(addr)
    assert n == 2
    closing(b, c)
    p.wait_event("conn_end", 3, service="ov")
    p.wait_event("saturation_ended", service="ov")
    assert p.stop() == 0
    assert len(p.events("saturated", service="ov")) == 1
    assert len(p.events("saturation_ended", service="ov")) == 1
    summary = p.events("summary", service="ov")[0]
    assert (summary["accepted"], summary["limited_overload"]) == (3, 4)


def test_default_queue_makes_clients_wait_and_serves_them_later(psup):
    p = psup(config(service("ov", command=HOLD, pool={"min_spare": 1, "max_spare": 2, "max_workers": 2})))
    addr = p.addr("ov")
    a, _ = hold(addr)
    b, _ = hold(addr)
    waiting = connect(addr)
    waiting.sendall(b"queued")
    waiting.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiting.recv(100)  # nothing within 0.5 s: it waits in the backlog
    a.close()
    waiting.settimeout(10)
    waiting.shutdown(socket.SHUT_WR)
    assert read_all(waiting) == b"2\nqueued"
    closing(b, waiting)
    assert not p.events("limited")
    p.wait_event("conn_end", 3, service="ov")
    assert p.stop() == 0
    assert p.events("summary", service="ov")[0]["limited_overload"] == 0


# --------------------------------------------------------------------------
# Unix sockets: one source per uid.


def connect_as(directory, name, uid, gid):
    """A unix stream socket connected by a child process running as uid/gid:
    SO_PEERCRED records the connecting process, and the parent keeps the
    connected socket. The path is relative to a world-searchable directory
    so that the parents of the test's directory need not be."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(directory)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            s.connect(name)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child could not connect"
    s.settimeout(10)
    return s


def test_unix_socket_counts_per_uid_of_the_same_user(psup, tmp_path):
    path = str(tmp_path / "u.sock")
    p = psup(config(service("u", [f"unix:{path}"], 'echo "$UNIXREMOTEEUID"; exec cat',
                            max_per_source=1, per_source_message="one per user\n")))
    a = connect(path)
    assert read_line(a) == f"{os.geteuid()}\n".encode()
    with connect(path) as b:
        assert read_all(b) == b"one per user\n"
    limited = p.wait_event("limited", 1, service="u")[0]
    assert limited["reason"] == "max_per_source" and limited["remote_uid"] == os.geteuid()
    a.close()
    p.wait_event("conn_end", 1, service="u")
    with connect(path) as c:
        assert read_line(c) == f"{os.geteuid()}\n".encode()


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another uid needs root")
def test_unix_socket_counts_each_uid_separately(psup, tmp_path):
    pub = tmp_path / "pub"
    pub.mkdir()
    pub.chmod(0o755)
    path = pub / "u.sock"
    p = psup(config(service("u", [f"unix:{path}"], 'echo "$UNIXREMOTEEUID"; exec cat',
                            max_per_source=1, per_source_message="one per user\n")))
    path.chmod(0o777)
    root = connect(str(path))
    assert read_line(root) == b"0\n"
    other = connect_as(pub, "u.sock", 65534, 65534)
    assert read_line(other) == b"65534\n", "another uid is another source"
    again = connect_as(pub, "u.sock", 65534, 65534)
    assert read_all(again) == b"one per user\n"
    with connect(str(path)) as s:
        assert read_all(s) == b"one per user\n"
    limited = p.wait_event("limited", 2, service="u")
    assert sorted(r["remote_uid"] for r in limited) == [0, 65534]
    assert still_echoes(root) and still_echoes(other)
    closing(root, other, again)


# --------------------------------------------------------------------------
# The order of the checks: a refused connection consumes nothing.


def test_per_source_refusals_take_no_rate_token(psup):
    # One token every 10 s: nothing comes back during the test.
    p = psup(config(service("o", command=HOLD, rate=0.1, rate_burst=2, rate_message="rate\n",
                            max_per_source=1, per_source_message="source\n")))
    addr = p.addr("o")
    a, _ = hold(addr)  # the first token
    for _ in range(3):
        refused_with(addr, b"source\n")
    a.close()
    p.wait_event("conn_end", 1, service="o")
    b, n = hold(addr)  # the second token is still there
    assert n == 1
    refused_with(addr, b"source\n")
    b.close()
    p.wait_event("conn_end", 2, service="o")
    refused_with(addr, b"rate\n")


def test_overload_is_decided_before_the_source_limit(psup):
    p = psup(config(service("o", command=HOLD, on_overload="reject", overload_message="overload\n",
                            max_per_source=2, per_source_message="source\n",
                            pool={"min_spare": 1, "max_spare": 2, "max_workers": 2})))
    addr = p.addr("o")
    a, _ = hold(addr)
    b, _ = hold(addr)
    refused_with(addr, b"overload\n")
    a.close()
    p.wait_event("conn_end", 1, service="o")
    c, n = hold(addr)
    assert n == 2, "the overload refusal took no per-source count"
    closing(b, c)
