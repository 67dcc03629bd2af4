# SPDX-License-Identifier: MIT
"""Services behind a load balancer: the PROXY protocol (spec/proxy.md) in the
worker, end to end. Real peers: HAProxy in front (send-proxy and
send-proxy-v2, run here on loopback with a configuration in the test's
directory) and curl --haproxy-protocol; raw sockets for what they never
send: malformed, truncated, oversized, slow and silent headers, LOCAL,
UNKNOWN, TLVs, IPv6. Clients bind to other loopback addresses (127.0.0.2,
127.0.0.3) so that the header's source differs from the balancer's own
address, and allow/deny and max_per_source are seen judging the real
client. Also: a connection from outside proxy_from is closed unread, and
workers reading headers are replaced, so slow balancers do not starve the
pool."""

import json
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (config, connect, kill_quietly, parse_report, read_all, read_line,
                      service, wait_for)

ROOT = pathlib.Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                      if pathlib.Path("/usr/sbin/haproxy").exists() else None)
ENV_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
env | grep -E '^(REMOTE_|TCP|PROXY|SERVER_)' | sort
"""
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(command=0x21, family=0x11, src="10.1.2.3", dst="10.9.9.9", sport=5555,
              dport=443, tlvs=b""):
    """A version 2 header: PROXY (0x21) or LOCAL (0x20), TCP over IPv4
    (0x11) or IPv6 (0x21)."""
    if family == 0x21:
        block = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                 + struct.pack(">HH", sport, dport))
    elif family == 0x11:
        block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    else:
        block = b""
    body = block + tlvs
    return V2_SIGNATURE + bytes([command, family]) + struct.pack(">H", len(body)) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def free_port():
    """A port the kernel just gave and took back (for HAProxy's frontends)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether something listens on 127.0.0.1:port (read from /proc, so that
    probing does not make a connection HAProxy would pass on)."""
    key = f"0100007F:{port:04X}"
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == key and fields[3] == "0A":
            return True
    return False


@pytest.fixture
def haproxy(tmp_path):
    """haproxy((backend_addr, "send-proxy" | "send-proxy-v2"), ...) starts
    HAProxy in TCP mode with one frontend per backend; returns the
    frontends' ports. Ended by pid at teardown."""
    if not HAPROXY:
        pytest.skip("haproxy is not installed")
    started = []

    def launch(text, ports):
        """HAProxy with the configuration text, once it listens on ports."""
        cfg = tmp_path / f"haproxy{len(started)}.cfg"
        cfg.write_text(text)
        log_path = tmp_path / f"haproxy{len(started)}.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        started.append((proc, log))
        wait_for(lambda: all(listening(p) for p in ports) or proc.poll() is not None, 15,
                 "haproxy to listen")
        assert proc.poll() is None, log_path.read_text()

    def start(*backends):
        ports = [free_port() for _ in backends]
        lines = ["global", "    maxconn 200", "defaults", "    mode tcp",
                 "    timeout connect 5s", "    timeout client 30s", "    timeout server 30s"]
        for i, ((host, port), send) in enumerate(backends):
            lines += [f"frontend f{i}", f"    bind 127.0.0.1:{ports[i]}", f"    default_backend b{i}",
                      f"backend b{i}", f"    server s{i} {host}:{port} {send}"]
        launch("\n".join(lines) + "\n", ports)
        return ports

    start.launch = launch
    yield start
    for proc, log in started:
        kill_quietly(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_quietly(proc.pid)
            proc.wait(10)
        log.close()


def client(port, source, host="127.0.0.1", timeout=10.0):
    """A TCP connection from the loopback address source."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def report_via(port, source):
    """The report helper's output, for a client from source. The client
    does not half-close: the helper reads nothing, and HAProxy 2.6 now and
    then resets its server side when the client shuts its own write side
    right after connecting (seen about once in 40 connections, with psup
    and with a plain Python server behind it alike), losing the reply."""
    with client(port, source) as s:
        local = s.getsockname()
        return parse_report(read_all(s)), local


def proxied_service(helpers, name="p", version="v2", proxy_from=("127.0.0.1",), **kw):
    return service(name, ["127.0.0.1:0"], [str(helpers / "report")], proxy_protocol=version,
                   proxy_from=list(proxy_from), **kw)


# --------------------------------------------------------------------------
# Real balancers.


@pytest.mark.parametrize("version,send", [("v1", "send-proxy"), ("v2", "send-proxy-v2")])
def test_haproxy_in_front_gives_the_real_client(psup, helpers, haproxy, version, send):
    p = psup(config(proxied_service(helpers, version=version)))
    backend = p.addr("p")
    (front,) = haproxy((backend, send))
    report, (ip, port) = report_via(front, "127.0.0.2")
    env = report["env"]
    assert (env["TCPREMOTEIP"], env["TCPREMOTEPORT"]) == ("127.0.0.2", str(port))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.2", str(port))
    assert (env["TCPLOCALIP"], env["TCPLOCALPORT"]) == ("127.0.0.1", str(front))
    assert env["PROXYREMOTEIP"] == "127.0.0.1"
    proxy_port = int(env["PROXYREMOTEPORT"])
    assert proxy_port not in (port, front, backend[1])
    assert env["TCPCONNNUM"] == "1"
    end = p.wait_event("conn_end", service="p")[0]
    assert (end["remote_ip"], end["remote_port"]) == ("127.0.0.2", port)
    assert (end["proxy_ip"], end["proxy_port"]) == ("127.0.0.1", proxy_port)
    assert end["status"] == 0


def test_cgi_behind_haproxy_sees_the_real_client_in_remote_addr(psup, haproxy, tmp_path):
    script = tmp_path / "env.cgi"
    script.write_text(ENV_CGI)
    script.chmod(0o755)
    p = psup(config(service("web", ["127.0.0.1:0"], [str(script)], protocol="cgi",
                            proxy_protocol="any", proxy_from=["127.0.0.1"])))
    v1, v2 = haproxy((p.addr("web"), "send-proxy"), (p.addr("web"), "send-proxy-v2"))
    for front, source in ((v1, "127.0.0.2"), (v2, "127.0.0.3")):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", "--interface", source,
                              f"http://127.0.0.1:{front}/who?x=1"], capture_output=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        env = dict(line.split("=", 1) for line in out.stdout.decode().splitlines())
        assert env["REMOTE_ADDR"] == source
        assert env["SERVER_PORT"] == str(front)  # the balancer's frontend
        assert env["PROXYREMOTEIP"] == "127.0.0.1"
    ends = p.wait_event("conn_end", count=2, service="web")
    assert sorted(e["remote_ip"] for e in ends) == ["127.0.0.2", "127.0.0.3"]


def curl_speaks_proxy_protocol():
    out = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True, timeout=10)
    return "--haproxy-protocol" in out.stdout


@pytest.mark.skipif(not shutil.which("curl") or not curl_speaks_proxy_protocol(),
                    reason="curl without --haproxy-protocol")
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_curl_haproxy_protocol(psup, tmp_path, family):
    """curl --haproxy-protocol sends a v1 header naming its own connection:
    TCP4 or TCP6."""
    script = tmp_path / "env.cgi"
    script.write_text(ENV_CGI)
    script.chmod(0o755)
    host, listen, source = (("127.0.0.1", "127.0.0.1:0", "127.0.0.4") if family == "ipv4"
                            else ("::1", "[::1]:0", "::1"))
    p = psup(config(service("web", [listen], [str(script)], protocol="cgi",
                            proxy_protocol="v1", proxy_from=[source])))
    port = p.addr("web")[1]
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    out = subprocess.run(["curl", "-sS", "-g", "--max-time", "10", "--haproxy-protocol",
                          "--interface", source, url], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    env = dict(line.split("=", 1) for line in out.stdout.decode().splitlines())
    assert env["REMOTE_ADDR"] == source and env["PROXYREMOTEIP"] == source
    assert env["TCPLOCALIP"] == host and env["TCPLOCALPORT"] == str(port)
    assert env["PROXYREMOTEPORT"] == env["REMOTE_PORT"]


# --------------------------------------------------------------------------
# Who may send a header, and what a header decides.


def test_a_connection_from_outside_proxy_from_is_closed_unread(psup, helpers, tmp_path):
    marker = tmp_path / "ran"
    svc = service("p", ["127.0.0.1:0"], f": > {marker}", proxy_protocol="v1",
                  proxy_from=["127.0.0.1"], proxy_timeout=30)
    p = psup(config(svc))
    started = time.monotonic()
    with client(p.addr("p")[1], "127.0.0.2") as s:
        s.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\nhello")
        try:
            assert read_all(s) == b""
        except ConnectionResetError:
            pass  # closed with the bytes unread: the kernel may reset
    assert time.monotonic() - started < 5
    rec = p.wait_event("proxy_refused", service="p")[0]
    assert (rec["reason"], rec["proxy_ip"]) == ("proxy_from", "127.0.0.2")
    assert "remote_ip" not in rec
    assert not marker.exists()
    p.stop()
    assert p.wait_event("summary", service="p")[0]["proxy_refused"] == 1


def test_allow_and_deny_judge_the_real_client(psup, helpers, haproxy):
    svc = proxied_service(helpers, allow=["127.0.0.2"], deny_message="no\n")
    p = psup(config(svc))
    (front,) = haproxy((p.addr("p"), "send-proxy-v2"))
    report, _ = report_via(front, "127.0.0.2")
    assert report["env"]["TCPREMOTEIP"] == "127.0.0.2"
    with client(front, "127.0.0.3") as s:
        assert read_all(s) == b"no\n"
    rec = p.wait_event("denied", service="p")[0]
    assert (rec["remote_ip"], rec["proxy_ip"]) == ("127.0.0.3", "127.0.0.1")


def test_max_per_source_counts_the_real_clients(psup, haproxy):
    hold = 'echo "$TCPREMOTEIP $TCPCONNNUM"; read line; echo "$line"'
    svc = service("p", ["127.0.0.1:0"], hold, proxy_protocol="v1", proxy_from=["127.0.0.1"],
                  max_per_source=1, per_source_message="busy\n")
    p = psup(config(svc))
    (front,) = haproxy((p.addr("p"), "send-proxy"))
    first = client(front, "127.0.0.2")
    assert read_line(first) == b"127.0.0.2 1\n"
    with client(front, "127.0.0.2") as second:
        assert read_all(second) == b"busy\n"
    rec = p.wait_event("limited", service="p")[0]
    assert (rec["reason"], rec["remote_ip"], rec["proxy_ip"]) == \
        ("max_per_source", "127.0.0.2", "127.0.0.1")
    with client(front, "127.0.0.3") as other:
        assert read_line(other) == b"127.0.0.3 1\n"
        other.sendall(b"bye\n")
        assert read_line(other) == b"bye\n"
    first.sendall(b"done\n")
    assert read_line(first) == b"done\n"
    first.close()


def test_the_handler_reads_exactly_what_follows_the_header(psup):
    """The header's bytes are taken off the socket and not one more, in
    both versions, even when the client's first bytes arrive with it."""
    p = psup(config(service("p", ["127.0.0.1:0"], ["/bin/cat"], proxy_protocol="any",
                            proxy_from=["127.0.0.1"])))
    for header in (b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n",
                   v2_header(tlvs=tlv(0x04, b"\0" * 20))):
        with connect(p.addr("p")) as s:
            s.sendall(header + b"PROXY is the payload\r\n\r\nQUIT\n")
            s.shutdown(socket.SHUT_WR)
            assert read_all(s) == b"PROXY is the payload\r\n\r\nQUIT\n"


def test_local_and_unknown_keep_the_connection_addresses(psup, helpers):
    p = psup(config(proxied_service(helpers, version="any")))
    for header in (v2_header(command=0x20, family=0x00), b"PROXY UNKNOWN\r\n",
                   b"PROXY UNKNOWN whatever the balancer had\r\n"):
        with connect(p.addr("p")) as s:
            s.sendall(header)
            s.shutdown(socket.SHUT_WR)
            own_port = s.getsockname()[1]
            env = parse_report(read_all(s))["env"]
        assert (env["TCPREMOTEIP"], env["TCPREMOTEPORT"]) == ("127.0.0.1", str(own_port))
        assert (env["PROXYREMOTEIP"], env["PROXYREMOTEPORT"]) == ("127.0.0.1", str(own_port))
        assert env["TCPLOCALPORT"] == str(p.addr("p")[1])


def test_v2_ipv6_addresses_and_tlvs_reach_the_handler(psup, helpers):
    p = psup(config(proxied_service(helpers)))
    tlvs = (tlv(0x02, b"app.example") + tlv(0x05, b"req-42:abc") + tlv(0xE0, b"vendor")
            + tlv(0x04, b""))
    header = v2_header(family=0x21, src="2001:db8::7", dst="2001:db8::1", sport=61000,
                       dport=8443, tlvs=tlvs)
    with connect(p.addr("p")) as s:
        s.sendall(header)
        s.shutdown(socket.SHUT_WR)
        env = parse_report(read_all(s))["env"]
    assert (env["TCPREMOTEIP"], env["TCPREMOTEPORT"]) == ("2001:db8::7", "61000")
    assert (env["TCPLOCALIP"], env["TCPLOCALPORT"]) == ("2001:db8::1", "8443")
    assert (env["PROXYAUTHORITY"], env["PROXYUNIQUEID"]) == ("app.example", "req-42:abc")
    # A unique id that is not visible ASCII is left out, not encoded.
    with connect(p.addr("p")) as s:
        s.sendall(v2_header(tlvs=tlv(0x05, b"\x00\x01binary")))
        s.shutdown(socket.SHUT_WR)
        env = parse_report(read_all(s))["env"]
    assert env["TCPREMOTEIP"] == "10.1.2.3" and "PROXYUNIQUEID" not in env
    assert "PROXYAUTHORITY" not in env


# --------------------------------------------------------------------------
# Headers refused.

REFUSED = [
    # (what the client sends, whether it then closes, the logged reason)
    (b"GET / HTTP/1.0\r\n\r\n", False, "malformed"),
    (b"PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n", False, "malformed"),
    (b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n", False, "malformed"),
    (b"PROXY TCP4  10.0.0.1 10.0.0.2 1 2\r\n", False, "malformed"),
    (b"PROXY TCP4 10.0.0.1 10.0.0.2 1 99999\r\n", False, "malformed"),
    (V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\0" * 12, False, "malformed"),
    (V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\0" * 4, False, "malformed"),
    (v2_header(tlvs=tlv(0x03, b"\0\0\0\0")), False, "malformed"),
    (v2_header(family=0x00), False, "unsupported"),
    (v2_header(family=0x12), False, "unsupported"),
    (b"PROXY UNKNOWN " + b"x" * 120, False, "too_long"),
    (V2_SIGNATURE + b"\x21\x11\x0b\xb8", False, "too_long"),
    (b"PROXY TCP4 10.0.0.1", True, "closed"),
    (V2_SIGNATURE[:7], True, "closed"),
    (v2_header()[:20], True, "closed"),
]


def test_refused_headers_close_the_connection_without_a_handler(psup, tmp_path):
    marker = tmp_path / "ran"
    p = psup(config(service("p", ["127.0.0.1:0"], f": > {marker}", proxy_protocol="any",
                            proxy_from=["127.0.0.1"], proxy_timeout=20)))
    for data, close, reason in REFUSED:
        started = time.monotonic()
        with connect(p.addr("p")) as s:
            s.sendall(data)
            if close:
                s.shutdown(socket.SHUT_WR)
            try:
                got = read_all(s)
            except ConnectionResetError:
                got = b""
        assert got == b"", (data, got)
        assert time.monotonic() - started < 5, f"{data!r} waited for more"
    recs = p.wait_event("proxy_refused", count=5, service="p")
    # Five logged at once, then one a second with the count of the others.
    wait_for(lambda: sum(1 + r.get("suppressed", 0) for r in p.events("proxy_refused"))
             == len(REFUSED), 10, "every refusal to be counted in the log")
    reasons = [r["reason"] for r in recs[:5]]
    assert reasons == [r for _, _, r in REFUSED[:5]]
    assert not marker.exists()
    p.stop()
    assert p.wait_event("summary", service="p")[0]["proxy_refused"] == len(REFUSED)


def test_a_version_the_service_does_not_take_is_unsupported(psup, helpers):
    p = psup(config(proxied_service(helpers, version="v1"),
                    proxied_service(helpers, name="q", version="v2")))
    for name, header in (("p", v2_header()), ("q", b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n")):
        with connect(p.addr(name)) as s:
            s.sendall(header)
            try:
                s.shutdown(socket.SHUT_WR)
                assert read_all(s) == b""
            except OSError:
                pass  # refused at once, the header unread: the kernel may reset first
        assert p.wait_event("proxy_refused", service=name)[0]["reason"] == "unsupported"


def test_a_slow_or_silent_header_is_cut_at_proxy_timeout(psup, helpers):
    p = psup(config(proxied_service(helpers, version="v1", proxy_timeout=1)))
    header = b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"
    with connect(p.addr("p")) as s:
        started = time.monotonic()
        closed_after = None
        for i in range(len(header)):
            try:
                s.sendall(header[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)  # the trickle itself, not synchronisation
        if closed_after is None:
            closed_after = time.monotonic() - started
    assert closed_after < 3, f"a trickle held the worker for {closed_after:.1f}s"
    with connect(p.addr("p")) as s:
        started = time.monotonic()
        assert read_all(s) == b""
        assert 0.8 < time.monotonic() - started < 3
    recs = p.wait_event("proxy_refused", count=2, service="p")
    assert [r["reason"] for r in recs] == ["timeout", "timeout"]


def test_workers_reading_headers_are_replaced(psup, helpers):
    """A worker reading a header counts as busy: a spare replaces it, so
    balancers that open connections and send slowly cannot hold every
    spare for proxy_timeout."""
    svc = proxied_service(helpers, version="v1", proxy_timeout=8,
                          pool={"min_spare": 1, "max_spare": 1, "max_workers": 4})
    p = psup(config(svc))
    silent = [connect(p.addr("p")) for _ in range(2)]
    try:
        started = time.monotonic()
        with connect(p.addr("p")) as s:
            s.sendall(b"PROXY TCP4 10.0.0.7 10.0.0.8 7 8\r\n")
            s.shutdown(socket.SHUT_WR)
            env = parse_report(read_all(s))["env"]
        assert env["TCPREMOTEIP"] == "10.0.0.7"
        assert time.monotonic() - started < 4, "the client waited for a reading worker"
        p.send(signal.SIGUSR1)
        status = p.wait_event("status", service="p")[0]
        assert status["busy"] >= 2, status
    finally:
        for s in silent:
            s.close()
    recs = p.wait_event("proxy_refused", count=2, service="p")
    assert {r["reason"] for r in recs} == {"closed"}


def test_the_haproxy_example(psup, haproxy):
    """examples/proxy: psup's services.json and haproxy.cfg as shipped, on
    ports of the test's choosing."""
    example = json.loads((ROOT / "examples" / "proxy" / "services.json").read_text())
    svc = example["services"][0]
    svc["listen"] = ["127.0.0.1:0"]
    svc["command"] = [str(ROOT / svc["command"][0])]
    p = psup(example)
    backend = p.addr(svc["name"])[1]
    front = free_port()
    text = (ROOT / "examples" / "proxy" / "haproxy.cfg").read_text()
    assert "127.0.0.1:8000" in text and "127.0.0.1:8090" in text
    haproxy.launch(text.replace("127.0.0.1:8000", f"127.0.0.1:{front}")
                   .replace("127.0.0.1:8090", f"127.0.0.1:{backend}"), [front])
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--interface", "127.0.0.2",
                          f"http://127.0.0.1:{front}/hello"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().startswith('Hello from psup! You asked for /hello (query ""); '
                                          'you are 127.0.0.2:'), out.stdout
