# SPDX-License-Identifier: MIT
"""UDP listeners in datagram mode (spec/udp.md): a handler per datagram,
which reads the datagram on stdin and whose every write to stdout goes
back to the client as one datagram, from the address and port the client
sent to. Clients here use connected sockets, as dig and nc -u do: such a
socket drops any datagram that does not come from the address it is
connected to, so every reply a test receives is also checked to come from
the right place. Each reply is matched to its request by content.

Real clients too (socat, nc -u), a few thousand datagrams from many
clients at once, a wildcard listener answering from each of two loopback
addresses, handlers that do not read, crash, never exit, write nothing or
write many datagrams, allow/deny, max_per_source and rate per datagram,
reloads and shutdowns while datagrams flow, the handler's environment and
descriptors from inside."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import SPAWN_MODES, config, parse_report, service, spawn_env, talk, wait_for

SCRIPT = 'read line; echo "got $line from $UDPREMOTEIP:$UDPREMOTEPORT"'


def udp_addr(p, svc, index=0):
    """(host, port) of a service's UDP listener as bound; "*" as 127.0.0.1."""
    text = [r["addr"] for r in p.events("listening", service=svc)][index]
    assert text.startswith("udp://"), text
    host, _, port = text[6:].rpartition(":")
    return (host.strip("[]").replace("*", "127.0.0.1"), int(port))


def client(addr, timeout=10.0):
    """A UDP socket connected to addr: the kernel drops datagrams from any
    other address or port, as dig's and nc -u's sockets do."""
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def same_addr(got, want):
    """A recvfrom address against a (host, port): IPv6 tuples are longer."""
    return got[0] == want[0] and got[1] == want[1]


def ask(addr, data, replies=1, timeout=10.0):
    """Send one datagram from a new connected socket; return the replies,
    checking each came from addr."""
    with client(addr, timeout) as s:
        s.send(data)
        out = []
        for _ in range(replies):
            reply, src = s.recvfrom(70000)
            assert same_addr(src, addr), f"reply from {src}, expected {addr}"
            out.append(reply)
        return out


def report_from(addr):
    """Send one datagram to a handler that reports (tests/helpers/report.c,
    or a script printing its keys) and read replies until its end=1; the
    report parsed, with the client's address as "client"."""
    with client(addr) as s:
        me = s.getsockname()
        s.send(b"report please")
        text = b""
        while b"end=1\n" not in text:
            text += s.recv(70000)
    r = parse_report(text)
    r["client"] = me
    return r


def nothing_arrives(s, within=0.5):
    """No datagram arrives on s within `within` seconds (a bounded "must not
    happen" poll)."""
    s.settimeout(within)
    try:
        data = s.recv(70000)
    except socket.timeout:
        return True
    raise AssertionError(f"unexpected datagram {data!r}")


def run_clients(n, body):
    """Run body(i) in n threads at once; re-raise the first failure."""
    errors = []
    start = threading.Barrier(n)

    def run(i):
        try:
            start.wait(30)
            body(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a client thread did not finish"
    if errors:
        raise errors[0]


def summary(p, name):
    return p.wait_event("summary", service=name)[0]


# --------------------------------------------------------------------------
# Answering: cat and a shell script, v4 and v6, concurrent clients.


@pytest.mark.parametrize("mode", SPAWN_MODES)
def test_cat_and_script_answer_concurrent_connected_clients_v4_and_v6(psup, mode):
    """In both ways of creating workers: the datagram's buffer is the
    worker record's, shared with the supervisor (clone_vm) or a copy."""
    p = psup(config(service("echo", listen=["udp://127.0.0.1:0", "udp://[::1]:0"], command=["cat"]),
                    service("script", listen=["udp://127.0.0.1:0", "udp://[::1]:0"], command=SCRIPT)),
             env=spawn_env(mode))
    assert p.events("start")[0]["spawn"] == mode
    targets = [udp_addr(p, "echo", 0), udp_addr(p, "echo", 1),
               udp_addr(p, "script", 0), udp_addr(p, "script", 1)]

    def body(i):
        addr = targets[i % 4]
        with client(addr) as s:
            me = s.getsockname()
            for k in range(5):
                msg = f"client {i} request {k}"
                s.send(msg.encode() + b"\n")
                reply, src = s.recvfrom(70000)
                assert same_addr(src, addr), f"reply from {src}, expected {addr}"
                if i % 4 < 2:
                    assert reply == msg.encode() + b"\n"
                else:
                    assert reply == f"got {msg} from {me[0]}:{me[1]}\n".encode(), reply

    run_clients(16, body)
    ends = p.wait_event("conn_end", 80)
    assert all(e["status"] == 0 and e["replies"] == 1 for e in ends), ends[:3]
    assert {e["listener"].split("://")[0] for e in ends} == {"udp"}
    assert p.stop() == 0
    for name in ("echo", "script"):
        s = summary(p, name)
        assert s["accepted"] == 40 and s["replies"] == 40 and s["replies_failed"] == 0, s


def test_real_clients_socat_and_netcat(psup):
    if not shutil.which("socat") or not shutil.which("nc"):
        pytest.skip("socat and nc (netcat-openbsd) are needed")
    p = psup(config(service("script", listen=["udp://127.0.0.1:0", "udp://[::1]:0"], command=SCRIPT)))
    v4, v6 = udp_addr(p, "script", 0), udp_addr(p, "script", 1)
    # socat - UDP:...: a connected socket; it waits 0.5 s after stdin's EOF
    # for replies (-t), and exits.
    r = subprocess.run(["socat", "-t", "3", "-", f"UDP:127.0.0.1:{v4[1]}"], input=b"hello\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"got hello from 127.0.0.1:"), r.stdout
    r = subprocess.run(["socat", "-t", "3", "-", f"UDP6:[::1]:{v6[1]}"], input=b"six\n",
                       capture_output=True, timeout=30)
    assert r.stdout.startswith(b"got six from ::1:"), r.stdout
    # nc -u: connected too. It stops reading at its stdin's EOF, so its
    # stdin stays open for a second; -w 1 ends it after a second of quiet.
    for host, port in (("127.0.0.1", v4[1]), ("::1", v6[1])):
        r = subprocess.run(f"(echo netcat; sleep 1) | nc -u -w 1 {host} {port}", shell=True,
                           capture_output=True, timeout=30)
        assert r.stdout.startswith(b"got netcat from " + host.encode() + b":"), (r.stdout, r.stderr)
    assert p.stop() == 0


def test_a_few_thousand_datagrams_from_many_clients_at_once(psup):
    """60 clients each send 50 datagrams without waiting (3000 in a burst,
    beyond what a default receive buffer holds: 256 small datagrams); every
    one is answered, to its own client, from the service's address."""
    p = psup(config(service("echo", listen=["udp://127.0.0.1:0"], command=["cat"],
                            pool={"max_workers": 64})))
    addr = udp_addr(p, "echo")
    clients, per_client = 60, 50
    socks = [client(addr, timeout=90) for _ in range(clients)]
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    got = [dict() for _ in range(clients)]

    def body(i):
        s = socks[i]
        for k in range(per_client):
            s.send(f"{i}:{k}".encode())
        while len(got[i]) < per_client:
            reply, src = s.recvfrom(100)
            assert same_addr(src, addr)
            who, _, k = reply.decode().partition(":")
            assert int(who) == i, f"client {i} got client {who}'s reply"
            assert int(k) not in got[i], f"reply {k} twice"
            got[i][int(k)] = True

    try:
        run_clients(clients, body)
    finally:
        for s in socks:
            s.close()
    assert p.stop(timeout=60) == 0
    s = summary(p, "echo")
    assert s["accepted"] == clients * per_client and s["replies"] == clients * per_client, s


def test_wildcard_listener_answers_from_the_address_the_client_sent_to(psup):
    """Two loopback addresses on lo (127.0.0.1 and 127.0.0.2), and ::1; a
    client connected to each gets its reply from that address."""
    p = psup(config(service("echo", listen=["udp://*:0"], command=["cat"])))
    port = udp_addr(p, "echo")[1]
    for host in ("127.0.0.1", "127.0.0.2", "::1"):
        for _ in range(3):
            assert ask((host, port), host.encode()) == [host.encode()]
    # Both IPv4 addresses at once, from one unconnected socket: the source
    # of each reply is the address its request went to.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(b"one", ("127.0.0.1", port))
        s.sendto(b"two", ("127.0.0.2", port))
        replies = dict(s.recvfrom(100) for _ in range(2))
    assert replies == {b"one": ("127.0.0.1", port), b"two": ("127.0.0.2", port)}
    assert p.stop() == 0


def port_free_for_tcp_too():
    """A UDP socket bound with SO_REUSEADDR to a port that TCP has free too
    (held by a TCP socket until the caller closes it)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
    raise AssertionError("no port free for both TCP and UDP")


def test_udp_and_tcp_ports_are_apart_and_a_held_udp_port_is_not_shared(psup):
    """No SO_REUSEADDR on UDP: psup cannot bind beside a process that holds
    the address (nor could another bind beside psup). A TCP listener on the
    same port number is no clash, and a reload tells the two apart."""
    taken, tcp = port_free_for_tcp_too()
    port = taken.getsockname()[1]
    try:
        p = psup(config(service("x", [f"udp://127.0.0.1:{port}"])), wait=False)
        p.expect_errors = True
        assert p.wait_exit() == 3
        failure = p.events("bind_failed")[0]
        assert failure["addr"] == f"udp://127.0.0.1:{port}" and failure["errno"] == "EADDRINUSE"
    finally:
        taken.close()
        tcp.close()
    p = psup(config(service("u", [f"udp://127.0.0.1:{port}"]), service("t", [f"127.0.0.1:{port}"])))
    with pytest.raises(OSError):
        thief = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            thief.bind(("127.0.0.1", port))
    assert ask(("127.0.0.1", port), b"udp") == [b"udp"]
    assert talk(("127.0.0.1", port), b"tcp") == b"tcp"
    # A reload that swaps the two: each socket is kept by its address (TCP
    # and UDP apart) and moves to the other service, whose mode follows.
    p.write_config(config(service("u", [f"127.0.0.1:{port}"], command="printf u; cat"),
                          service("t", [f"udp://127.0.0.1:{port}"], command="sed s/^/t/")))
    p.send(signal.SIGHUP)
    reloaded = p.wait_event("reloaded")[0]
    assert reloaded["listeners_opened"] == 0 and reloaded["listeners_closed"] == 0
    assert ask(("127.0.0.1", port), b"udp") == [b"tudp"]
    assert talk(("127.0.0.1", port), b"tcp") == b"utcp"
    assert p.stop() == 0


def test_large_and_empty_datagrams(psup, tmp_path):
    """A 65000-byte datagram comes back whole (a pipe's 64 KiB holds it);
    an empty one gives the handler EOF at once; an empty reply (send of 0
    bytes) reaches the client as an empty datagram."""
    empty_reply = tmp_path / "empty.py"
    empty_reply.write_text("import socket\ns = socket.socket(fileno=1)\n"
                           "s.send(b'')\ns.send(b'after')\ns.detach()\n")
    p = psup(config(service("echo", listen=["udp://127.0.0.1:0", "udp://[::1]:0"], command=["cat"]),
                    service("empty", listen=["udp://127.0.0.1:0"],
                            command=["/usr/bin/python3", str(empty_reply)])))
    for addr in (udp_addr(p, "echo", 0), udp_addr(p, "echo", 1)):
        big = os.urandom(65000)
        assert ask(addr, big) == [big]
    with client(udp_addr(p, "echo")) as s:
        s.send(b"")
        assert nothing_arrives(s)  # cat read EOF and wrote nothing
    end = [e for e in p.wait_event("conn_end", 3, service="echo") if e["replies"] == 0]
    assert end and end[0]["status"] == 0
    assert ask(udp_addr(p, "empty"), b"x", replies=2) == [b"", b"after"]
    assert p.stop() == 0


# --------------------------------------------------------------------------
# Handlers that misbehave.


def test_handlers_that_do_not_read_crash_hang_or_say_nothing(psup):
    p = psup(config(
        service("noread", listen=["udp://127.0.0.1:0"], command="echo answered"),
        service("crash", listen=["udp://127.0.0.1:0"], command="kill -SEGV $$"),
        service("hang", listen=["udp://127.0.0.1:0"], command="read x; echo first; exec sleep 60",
                timeout=0.5),
        service("silent", listen=["udp://127.0.0.1:0"], command=["true"])))
    # Not reading is fine: the datagram was read by psup already.
    for k in range(3):
        assert ask(udp_addr(p, "noread"), b"ignored %d" % k) == [b"answered\n"]
    with client(udp_addr(p, "crash")) as s:
        s.send(b"boom")
        assert nothing_arrives(s)
    crash = p.wait_event("conn_end", service="crash")[0]
    assert crash["signal"] == "SEGV" and crash["replies"] == 0
    assert ask(udp_addr(p, "hang"), b"x\n") == [b"first\n"]
    hang = p.wait_event("conn_end", service="hang")[0]
    assert hang["outcome"] == "timeout" and hang["signal"] == "TERM", hang
    assert p.events("timeout", service="hang")
    with client(udp_addr(p, "silent")) as s:
        s.send(b"hello?")
        assert nothing_arrives(s)
    assert p.wait_event("conn_end", service="silent")[0]["replies"] == 0
    # None of it is a failure of the service: each still answers.
    assert ask(udp_addr(p, "noread"), b"again") == [b"answered\n"]
    assert p.stop() == 0
    assert summary(p, "crash")["failed"] == 0


def test_a_handler_that_writes_many_datagrams(psup):
    p = psup(config(service("many", listen=["udp://127.0.0.1:0"],
                            command="i=0; while [ $i -lt 300 ]; do echo $i; i=$((i+1)); done")))
    with client(udp_addr(p, "many")) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.send(b"go")
        got = [s.recv(100) for _ in range(300)]
    assert got == [b"%d\n" % i for i in range(300)], "each write is one datagram, in order"
    assert p.wait_event("conn_end", service="many")[0]["replies"] == 300
    assert p.stop() == 0


def test_a_reply_too_large_for_a_datagram_is_dropped_and_logged(psup, tmp_path):
    """65530 bytes cannot be one IPv4 datagram (65507 at most), 70000 not
    even one message psup reads whole: each is dropped, counted and logged,
    and the handler's next reply still goes out."""
    writer = tmp_path / "big.py"
    writer.write_text("import socket\ns = socket.socket(fileno=1)\n"
                      "s.send(b'x' * 65530)\ns.send(b'y' * 70000)\ns.send(b'ok')\ns.detach()\n")
    admin = str(tmp_path / "admin.sock")
    p = psup(config(service("big", listen=["udp://127.0.0.1:0"],
                            command=["/usr/bin/python3", str(writer)]),
                    admin={"listen": [f"unix:{admin}"]}))
    with client(udp_addr(p, "big")) as s:
        s.send(b"go")
        assert s.recv(70000) == b"ok"
        assert nothing_arrives(s)
    failed = p.wait_event("reply_failed", 2, service="big")
    assert [f["errno"] for f in failed] == ["EMSGSIZE", "EMSGSIZE"] and failed[0]["step"] == "send"
    assert p.wait_event("conn_end", service="big")[0]["replies"] == 1
    # The same counts on the admin endpoint, and the service's mode.
    metrics = talk(admin, b"GET /metrics HTTP/1.0\r\n\r\n").decode()
    assert 'psup_replies_total{service="big",result="sent"} 1\n' in metrics
    assert 'psup_replies_total{service="big",result="failed"} 2\n' in metrics
    status = talk(admin, b"GET /status HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")[2]
    assert json.loads(status)["services"][0]["mode"] == "datagram"
    assert p.stop() == 0
    s = summary(p, "big")
    assert s["replies"] == 1 and s["replies_failed"] == 2, s


def test_replies_of_a_process_left_behind_are_sent_for_a_second_only(psup):
    """A descendant holding stdout after the handler exited: what it writes
    within a second of the handler's end is sent, later writes fail."""
    p = psup(config(service("late", listen=["udp://127.0.0.1:0"],
                            command="(sleep 0.3; echo late; sleep 2; echo too-late) & echo early")))
    with client(udp_addr(p, "late")) as s:
        s.send(b"x")
        assert s.recv(100) == b"early\n"
        assert s.recv(100) == b"late\n"
        assert nothing_arrives(s, 3.0)
    end = p.wait_event("conn_end", service="late")[0]
    assert end["replies"] == 1, "only what was sent before the handler was reaped"
    assert p.stop() == 0
    assert summary(p, "late")["replies"] == 2


def test_a_handler_cannot_leave_descriptors_in_psup(psup, tmp_path):
    """Descriptors passed along a reply (SCM_RIGHTS) are not kept by psup."""
    sender = tmp_path / "pass_fds.py"
    sender.write_text("import socket, os\ns = socket.socket(fileno=1)\n"
                      "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(8)]\n"
                      "socket.send_fds(s, [b'with fds'], fds)\ns.detach()\n")
    p = psup(config(service("fds", listen=["udp://127.0.0.1:0"],
                            command=["/usr/bin/python3", str(sender)])))
    before = len(os.listdir(f"/proc/{p.pid}/fd"))
    for _ in range(5):
        assert ask(udp_addr(p, "fds"), b"x") == [b"with fds"]
    p.wait_event("conn_end", 5, service="fds")
    wait_for(lambda: len(os.listdir(f"/proc/{p.pid}/fd")) <= before, 5, "psup's descriptors")
    assert not [f for f in os.listdir(f"/proc/{p.pid}/fd")
                if os.readlink(f"/proc/{p.pid}/fd/{f}") == "/dev/null" and int(f) > 2]
    assert p.stop() == 0


# --------------------------------------------------------------------------
# Access and limits, per datagram.


def udp_packet_from_port_zero(dst_port, payload):
    """An IPv4 UDP datagram from 127.0.0.1 port 0 (no checksum), for a raw
    socket: no ordinary socket sends from port 0."""
    udp = struct.pack("!HHHH", 0, dst_port, 8 + len(payload), 0) + payload
    return udp


def test_allow_deny_and_source_port_zero(psup):
    p = psup(config(service("only6", listen=["udp://*:0"], command=["cat"], allow=["::1"]),
                    service("open", listen=["udp://127.0.0.1:0"], command=["cat"])))
    port = udp_addr(p, "only6")[1]
    assert ask(("::1", port), b"six") == [b"six"]
    for _ in range(3):
        with client(("127.0.0.1", port)) as s:
            s.send(b"four")
            assert nothing_arrives(s)
    denied = p.wait_event("denied", 3, service="only6")
    assert denied[0]["remote_ip"] == "127.0.0.1"
    if os.geteuid() == 0:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        with raw:
            raw.sendto(udp_packet_from_port_zero(udp_addr(p, "open")[1], b"zero"),
                       ("127.0.0.1", 0))
        zero = p.wait_event("denied", service="open")[0]
        assert zero["remote_port"] == 0
    assert p.stop() == 0
    assert summary(p, "only6")["denied"] == 3 and summary(p, "only6")["accepted"] == 1
    assert not p.events("conn_end", service="open"), "no handler for a datagram from port 0"


def test_max_per_source_counts_running_handlers_per_datagram(psup):
    # The first handler runs 3 s: the others are judged while it runs.
    p = psup(config(service("lim", listen=["udp://127.0.0.1:0"], command="cat; sleep 3",
                            max_per_source=1)))
    addr = udp_addr(p, "lim")
    with client(addr) as s:
        for k in range(3):
            s.send(b"%d" % k)
        # Three workers may take them at once: whichever asked first runs.
        assert s.recv(100) in (b"0", b"1", b"2")
        assert nothing_arrives(s, 0.5)
    limited = p.wait_event("limited", 2, service="lim")
    assert {e["reason"] for e in limited} == {"max_per_source"}
    p.wait_event("conn_end", service="lim")
    # The handler has ended: the source may run one again.
    assert ask(addr, b"next") == [b"next"]
    assert p.stop() == 0
    assert summary(p, "lim")["limited_per_source"] == 2


def test_rate_counts_datagrams(psup):
    p = psup(config(service("rate", listen=["udp://127.0.0.1:0"], command=["cat"],
                            rate=0.1, rate_burst=2)))
    with client(udp_addr(p, "rate")) as s:
        for k in range(5):
            s.send(b"%d" % k)
        got = {s.recv(100), s.recv(100)}
        assert nothing_arrives(s, 0.5)
    assert len(got) == 2 and got <= {b"%d" % k for k in range(5)}
    assert len(p.wait_event("limited", 3, service="rate", reason="rate")) == 3
    assert p.stop() == 0


def test_max_workers_queues_datagrams_in_the_socket_buffer(psup):
    p = psup(config(service("slow", listen=["udp://127.0.0.1:0"], command="cat; sleep 0.2",
                            pool={"max_workers": 2})))
    with client(udp_addr(p, "slow"), timeout=30) as s:
        for k in range(10):
            s.send(b"%d" % k)
        got = sorted(s.recv(100) for _ in range(10))
    assert got == sorted(b"%d" % k for k in range(10))
    assert p.stop() == 0


def test_stderr_log_and_verdicts_with_datagrams(psup):
    """stderr "log" makes each datagram wait for a verdict, with both the
    log pipe and the reply socket passed to psup."""
    p = psup(config(service("logged", listen=["udp://127.0.0.1:0"], stderr="log",
                            command='read x; echo "to the log: $x" >&2; echo "to the client: $x"')))
    assert ask(udp_addr(p, "logged"), b"hi\n") == [b"to the client: hi\n"]
    line = p.wait_event("stderr", service="logged")[0]
    assert line["line"] == "to the log: hi"
    end = p.wait_event("conn_end", service="logged")[0]
    assert end["conn"] == line["conn"] and end["replies"] == 1
    assert p.stop() == 0


# --------------------------------------------------------------------------
# The handler's side.


def test_environment_and_descriptors_from_inside(psup, helpers):
    p = psup(config(service("rep", listen=["udp://127.0.0.1:0", "udp://*:0"],
                            command=[str(helpers / "report"), "read"])))
    for addr, local in ((udp_addr(p, "rep", 0), "127.0.0.1"), (("127.0.0.2", udp_addr(p, "rep", 1)[1]), "127.0.0.2"),
                        (("::1", udp_addr(p, "rep", 1)[1]), "::1")):
        r = report_from(addr)
        me = r["client"]
        env = r["env"]
        assert env["PROTO"] == "UDP"
        assert env["UDPREMOTEIP"] == me[0] and env["UDPREMOTEPORT"] == str(me[1])
        assert env["REMOTE_ADDR"] == me[0] and env["REMOTE_PORT"] == str(me[1])
        assert env["UDPLOCALIP"] == local and env["UDPLOCALPORT"] == str(addr[1])
        assert env["PSUP_SERVICE"] == "rep" and env["PSUP_CONN_ID"].isdigit()
        assert not {"TCPREMOTEIP", "TCPLOCALIP", "TCPCONNNUM", "UDPCONNNUM"} & set(env)
        fds = dict(f.split(":", 1) for f in r["fds"].strip(",").split(","))
        assert sorted(fds) == ["0", "1", "2"], fds
        assert fds["0"].startswith("pipe:") and fds["1"].startswith("socket:")
        assert r["SigBlk"] == "0000000000000000"
    assert p.stop() == 0


def test_inherited_udp_variables_never_reach_a_handler(psup, helpers):
    env = dict(os.environ, UDPREMOTEIP="6.6.6.6", UDPLOCALPORT="1")
    p = psup(config(service("tcp", command=[str(helpers / "report")])), env=env)
    r = parse_report(talk(p.addr("tcp")))
    assert "UDPREMOTEIP" not in r["env"] and "UDPLOCALPORT" not in r["env"]
    assert p.stop() == 0


# --------------------------------------------------------------------------
# Reload and shutdown while datagrams flow.


class Flow:
    """Clients sending a datagram, waiting for its reply (5 s at most), and
    sending the next, until stopped; counts answered and unanswered."""

    def __init__(self, addr, clients=4):
        self.addr = addr
        self.stop = threading.Event()
        self.answered = 0
        self.lost = []
        self.prefixes = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            self.exchange(i)
        except Exception as e:  # noqa: BLE001 - the test reads lost
            with self.lock:
                self.lost.append(repr(e))

    def exchange(self, i):
        with client(self.addr, timeout=5) as s:
            k = 0
            while not self.stop.is_set():
                msg = b"%d.%d" % (i, k)
                s.send(msg)
                try:
                    reply = s.recv(100)
                except socket.timeout:
                    with self.lock:
                        self.lost.append(msg)
                    continue
                assert reply.endswith(msg), (reply, msg)
                with self.lock:
                    self.answered += 1
                    self.prefixes.add(reply[: -len(msg)])
                k += 1

    def wait_answers(self, n, timeout=30):
        start = self.answered
        wait_for(lambda: self.answered >= start + n, timeout, f"{n} more answers")

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def test_reload_while_datagrams_flow_loses_none(psup):
    # sed writes each line once: one reply per datagram.
    cfg = config(service("flow", listen=["udp://127.0.0.1:0"], command="sed s/^/old:/"))
    p = psup(cfg)
    flow = Flow(udp_addr(p, "flow"))
    try:
        flow.wait_answers(20)
        for k in range(3):
            cmd = "sed s/^/new%d:/" % k
            p.write_config(config(service("flow", listen=["udp://127.0.0.1:0"], command=cmd)))
            p.send(signal.SIGHUP)
            p.wait_event("reloaded", k + 1)
            flow.wait_answers(20)
    finally:
        flow.end()
    assert flow.lost == [], f"datagrams unanswered across reloads: {flow.lost[:5]}"
    assert {b"old:", b"new2:"} <= flow.prefixes
    assert p.events("reloaded")[0]["listeners_opened"] == 0, "the socket is kept"
    assert p.stop() == 0


def test_sigterm_while_datagrams_flow_answers_what_was_taken(psup):
    p = psup(config(service("slow", listen=["udp://127.0.0.1:0", "udp://[::1]:0"],
                            command="read x; sleep 2; echo \"done $x\"")))
    socks = [client(udp_addr(p, "slow", i % 2)) for i in range(6)]
    try:
        for i, s in enumerate(socks):
            s.send(b"%d\n" % i)
        wait_for(lambda: len(p.handlers("sh")) == 6, 10, "six handlers")
        p.send(signal.SIGTERM)
        # The listeners close at once; the handlers finish, and their
        # replies still go out, from the address each client sent to.
        for i, s in enumerate(socks):
            assert s.recv(100) == b"done %d\n" % i
        assert p.wait_exit() == 0
    finally:
        for s in socks:
            s.close()
    assert summary(p, "slow")["replies"] == 6
