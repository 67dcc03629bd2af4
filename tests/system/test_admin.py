# SPDX-License-Identifier: MIT
"""The admin endpoint (spec/admin.md): /metrics read by Prometheus's own
parser with counts compared to the connections made and refused; /livez
and /readyz through a service in backoff, a reload and a shutdown; /status
against the configuration; strict requests and their limits; clients that
never send anything cannot slow a service; listeners kept across reloads;
the unix socket's mode; and the status page in a real browser."""

import contextlib
import html.parser
import json
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import config, connect, make_script, read_all, service, talk, wait_for

HOLD = "exec cat"  # a handler that lives as long as its client's connection


def admin_addr(p, index=0):
    """The admin listener's address as bound (port 0 resolved)."""
    text = wait_for(lambda: [r["addr"] for r in p.events("admin_listening")][index:], 5,
                    "admin_listening")[0]
    if text.startswith("unix:"):
        return text[5:]
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


def http(addr, path, method="GET", headers=(), body=b"", version="1.1", raw=None, timeout=10):
    """One request; (status, {header: value}, body). raw sends bytes as they are."""
    with connect(addr, timeout) as s:
        if raw is None:
            head = f"{method} {path} HTTP/{version}\r\nHost: psup\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers)
            if body:
                head += f"Content-Length: {len(body)}\r\n"
            raw = head.encode() + b"\r\n" + body
        s.sendall(raw)
        data = read_all(s)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, rest


def get(addr, path):
    status, _, body = http(addr, path)
    return status, body.decode()


def status_doc(addr):
    status, body = get(addr, "/status")
    assert status == 200
    return json.loads(body)


def families(addr):
    """/metrics parsed by prometheus_client: {family name: family}."""
    parser = pytest.importorskip("prometheus_client.parser")
    status, headers, body = http(addr, "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in parser.text_string_to_metric_families(body.decode())}


def sample(fams, family, name=None, **labels):
    """The value of the one sample of family with these labels."""
    found = [s.value for s in fams[family].samples
             if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{family} {labels}: {found}"
    return found[0]


def with_admin(*services, **top):
    return config(*services, admin={"listen": ["127.0.0.1:0"]}, **top)


# --------------------------------------------------------------------------
# /metrics


def test_metrics_are_typed_and_exact_after_n_connections(psup):
    p = psup(with_admin(service("echo", pool={"min_spare": 1, "max_spare": 2}),
                        service("quiet", command=["/bin/true"])))
    admin, echo = admin_addr(p), p.addr("echo")
    for i in range(7):
        assert talk(echo, b"x%d" % i) == b"x%d" % i
    talk(p.addr("quiet"))

    def counted():
        f = families(admin)
        return f if sample(f, "psup_connections", outcome="ok", service="echo") == 7 else None
    fams = wait_for(counted, 10, "7 connections counted")
    for name, fam in fams.items():
        assert fam.type in ("counter", "gauge", "histogram"), f"{name} is {fam.type}"
        if fam.type == "counter":
            assert all(s.name == name + "_total" for s in fam.samples), name
    for outcome in ("error", "signal", "timeout", "exec_failed"):
        assert sample(fams, "psup_connections", service="echo", outcome=outcome) == 0
    assert sample(fams, "psup_connections", service="quiet", outcome="ok") == 1
    hist = "psup_handler_duration_seconds"
    assert sample(fams, hist, name=hist + "_count", service="echo") == 7
    assert sample(fams, hist, name=hist + "_bucket", service="echo", le="+Inf") == 7
    buckets = [s for s in fams[hist].samples if s.name == hist + "_bucket" and s.labels["service"] == "echo"]
    bounds = [float(s.labels["le"]) for s in buckets]
    assert bounds == sorted(bounds) and len(bounds) >= 10
    assert [s.value for s in buckets] == sorted(s.value for s in buckets), "cumulative"
    assert sample(fams, "psup_handlers", service="echo") == 0
    assert sample(fams, "psup_workers_idle", service="echo") >= 1
    assert sample(fams, "psup_workers_max", service="echo") == 256
    assert sample(fams, "psup_worker_failures", service="echo") == 0
    assert sample(fams, "psup_backoff_seconds", service="echo") == 0
    assert sample(fams, "psup_build_info", version=p.events("start")[0]["version"]) == 1
    assert sample(fams, "psup_reloads", result="ok") == 0
    assert sample(fams, "psup_ready") == 1
    assert sample(fams, "process_start_time_seconds") > time.time() - 600
    assert sample(fams, "process_resident_memory_bytes") > 1 << 20
    assert sample(fams, "process_virtual_memory_bytes") > sample(fams, "process_resident_memory_bytes")
    assert 3 < sample(fams, "process_open_fds") < sample(fams, "process_max_fds")
    assert sample(fams, "process_cpu_seconds") > 0
    # No unbounded label: no address, no pid anywhere.
    labels = {k for fam in fams.values() for s in fam.samples for k in s.labels}
    assert labels <= {"service", "outcome", "reason", "le", "result", "version"}, labels


def test_running_handlers_are_a_gauge(psup):
    p = psup(with_admin(service("hold", command=HOLD)))
    admin = admin_addr(p)
    held = [connect(p.addr("hold")) for _ in range(3)]
    try:
        for s in held:
            s.sendall(b"a")
            assert s.recv(1) == b"a"
        wait_for(lambda: sample(families(admin), "psup_handlers", service="hold") == 3, 10, "3 running")
    finally:
        for s in held:
            s.close()
    wait_for(lambda: sample(families(admin), "psup_handlers", service="hold") == 0, 10, "none running")
    assert sample(families(admin), "psup_connections", service="hold", outcome="ok") == 3


def test_refusals_are_counted_by_reason(psup):
    p = psup(with_admin(
        service("denied", deny=["127.0.0.0/8"]),
        service("per_source", command=HOLD, max_per_source=1),
        service("rate", command=["/bin/true"], rate=0.001),
        service("overload", command=HOLD, pool={"min_spare": 1, "max_spare": 1, "max_workers": 1},
                on_overload="reject")))
    admin = admin_addr(p)
    for _ in range(3):
        assert talk(p.addr("denied")) == b""
    talk(p.addr("rate"))  # the burst's one token
    for _ in range(2):
        assert talk(p.addr("rate")) == b""
    keep = [connect(p.addr("per_source")), connect(p.addr("overload"))]
    try:
        for s in keep:
            s.sendall(b"a")
            assert s.recv(1) == b"a"
        for _ in range(4):
            assert talk(p.addr("per_source")) == b""
        for _ in range(2):
            assert talk(p.addr("overload")) == b""
        want = {("denied", "denied"): 3, ("rate", "rate"): 2, ("per_source", "per_source"): 4,
                ("overload", "overload"): 2}

        def all_counted():
            f = families(admin)
            return all(sample(f, "psup_refused", service=svc, reason=why) == n
                       for (svc, why), n in want.items())
        wait_for(all_counted, 10, f"refusals {want}")
        fams = families(admin)
        for svc in ("denied", "per_source", "rate", "overload"):
            for why in ("denied", "per_source", "rate", "overload"):
                assert sample(fams, "psup_refused", service=svc, reason=why) == want.get((svc, why), 0)
        assert sample(fams, "psup_connections", service="rate", outcome="ok") == 1
    finally:
        for s in keep:
            s.close()


def test_workers_reading_proxy_headers_are_busy_and_refusals_counted(psup):
    """spec/proxy.md, section 7: a worker reading a PROXY header is busy in
    /status, in /metrics (psup_handlers) and in the status record, but no
    connection is accepted or ended; a refused header is counted as
    psup_refused_total{reason="proxy"} and refused.proxy, as is a
    connection from outside proxy_from."""
    p = psup(with_admin(
        service("p", proxy_protocol="v1", proxy_from=["127.0.0.1"], proxy_timeout=30,
                pool={"min_spare": 1, "max_spare": 1, "max_workers": 8}),
        service("q", proxy_protocol="v2", proxy_from=["192.0.2.1"])))
    admin = admin_addr(p)

    def svc(name):
        return {s["name"]: s for s in status_doc(admin)["services"]}[name]

    silent = [connect(p.addr("p")) for _ in range(2)]
    try:
        wait_for(lambda: sample(families(admin), "psup_handlers", service="p") == 2, 10,
                 "2 workers reading")
        wait_for(lambda: svc("p")["pool"]["idle"] == 1, 10, "a spare in their place")
        doc = svc("p")
        assert doc["pool"]["busy"] == 2 and doc["counters"]["accepted"] == 0, doc
        fams = families(admin)
        for outcome in ("ok", "error", "signal", "timeout", "exec_failed"):
            assert sample(fams, "psup_connections", service="p", outcome=outcome) == 0
        assert sample(fams, "psup_workers_idle", service="p") == 1
        p.send(signal.SIGUSR1)
        rec = p.wait_event("status", service="p")[0]
        assert rec["busy"] == 2 and rec["idle"] == 1 and rec["accepted"] == 0, rec
    finally:
        for s in silent:
            s.close()
    assert talk(p.addr("q")) == b""  # from 127.0.0.1, outside proxy_from: unread

    def counted():
        f = families(admin)
        return (sample(f, "psup_refused", service="p", reason="proxy") == 2 and
                sample(f, "psup_refused", service="q", reason="proxy") == 1 and
                sample(f, "psup_handlers", service="p") == 0)
    wait_for(counted, 10, "2 + 1 proxy refusals, none reading")
    fams = families(admin)
    for name in ("p", "q"):
        for why in ("denied", "per_source", "rate", "overload"):
            assert sample(fams, "psup_refused", service=name, reason=why) == 0
    assert svc("p")["counters"]["refused"]["proxy"] == 2
    assert svc("q")["counters"]["refused"]["proxy"] == 1
    assert svc("p")["pool"]["busy"] == 0
    assert {r["reason"] for r in p.events("proxy_refused", service="p")} == {"closed"}
    assert [r["reason"] for r in p.events("proxy_refused", service="q")] == ["proxy_from"]


# --------------------------------------------------------------------------
# /livez, /readyz, /status


def test_status_matches_the_configuration(psup, tmp_path):
    sock = tmp_path / "files.sock"
    p = psup(with_admin(
        service("echo", listen=["127.0.0.1:0", "[::1]:0"],
                pool={"min_spare": 2, "max_spare": 3, "max_workers": 9}, max_per_source=4,
                timeout=30),
        service("files", listen=[f"unix:{sock}"], rate=50, rate_burst=7, on_overload="reject")))
    doc = status_doc(admin_addr(p))
    assert doc["version"] == p.events("start")[0]["version"]
    assert doc["pid"] == p.pid
    assert doc["config"] == str(p.config_path)
    assert doc["state"] == "running" and doc["ready"] is True
    assert doc["last_reload"] is None and doc["reloads"] == {"ok": 0, "invalid": 0, "failed": 0}
    assert 0 <= doc["uptime"] < 60
    by_name = {s["name"]: s for s in doc["services"]}
    assert list(by_name) == ["echo", "files"]
    echo, files = by_name["echo"], by_name["files"]
    bound = [r["addr"] for r in p.events("listening", service="echo")]
    assert echo["listeners"] == bound and all(not a.endswith(":0") for a in bound)
    assert files["listeners"] == [f"unix:{sock}"]
    assert echo["mode"] == "accept" and echo["state"] == "serving" and not echo["paused"]
    assert {k: echo["pool"][k] for k in ("min_spare", "max_spare", "max_workers")} == \
        {"min_spare": 2, "max_spare": 3, "max_workers": 9}
    assert echo["limits"]["max_per_source"] == 4 and echo["limits"]["timeout"] == 30
    assert files["limits"]["rate"] == 50 and files["limits"]["rate_burst"] == 7
    assert files["limits"]["on_overload"] == "reject"
    assert echo["backoff"] == {"active": False, "failures": 0, "delay": 0, "next_start_in": 0}
    wait_for(lambda: status_doc(admin_addr(p))["services"][0]["pool"]["idle"] == 2, 10, "2 idle")


def test_livez_and_readyz_answer_get_and_head(psup):
    p = psup(with_admin(service("echo")))
    admin = admin_addr(p)
    assert get(admin, "/livez") == (200, "ok\n")
    assert get(admin, "/readyz") == (200, "ok\n")
    status, headers, body = http(admin, "/readyz", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "3"
    status, text = get(admin, "/readyz?verbose")
    assert status == 200 and text == "[+] psup: running\n[+] service echo: serving\nready\n"


def test_readyz_through_backoff_and_reloads(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(with_admin(service("broken", command=[str(script)], pool={"min_spare": 2}),
                        service("fine")))
    p.expect_errors = True
    admin = admin_addr(p)
    assert get(admin, "/readyz")[0] == 200
    script.rename(tmp_path / "gone.sh")
    for _ in range(3):  # idle workers that checked the program fail at exec
        try:
            talk(p.addr("broken"), timeout=1)
        except OSError:
            pass
    p.wait_event("backoff", service="broken")
    status, text = get(admin, "/readyz")
    assert status == 503
    assert text.startswith("service broken is backing off (") and text.count("\n") == 1, text
    assert get(admin, "/livez")[0] == 200
    doc = status_doc(admin)
    broken = doc["services"][0]
    assert broken["state"] == "backoff" and broken["backoff"]["active"] and not broken["ready"]
    assert broken["last_error"]["errno"] == "ENOENT"
    assert doc["ready"] is False and doc["services"][1]["ready"] is True
    fams = families(admin)
    assert sample(fams, "psup_backoff_seconds", service="broken") > 0
    assert sample(fams, "psup_worker_failures", service="broken") >= 1
    assert sample(fams, "psup_ready") == 0

    # An invalid file: rejected, counted, still not ready.
    good = json.loads(p.config_path.read_text())
    p.write_config("{")
    p.send(signal.SIGHUP)
    p.wait_event("reload_rejected")
    doc = status_doc(admin)
    assert doc["last_reload"]["result"] == "invalid" and doc["last_reload"]["problems"] == 1
    assert doc["reloads"]["invalid"] == 1
    assert get(admin, "/readyz")[0] == 503
    # Fixed and reloaded: a reload ends the backoff at once.
    (tmp_path / "gone.sh").rename(script)
    p.write_config(good)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    wait_for(lambda: get(admin, "/readyz") == (200, "ok\n"), 10, "ready after the reload")
    doc = status_doc(admin)
    assert doc["last_reload"]["result"] == "ok" and doc["reloads"] == {"ok": 1, "invalid": 1, "failed": 0}
    assert sample(families(admin), "psup_reloads", result="invalid") == 1


def test_readyz_is_503_from_sigterm_while_handlers_finish(psup):
    p = psup(with_admin(service("hold", command=HOLD)))
    admin = admin_addr(p)
    client = connect(p.addr("hold"))
    client.sendall(b"a")
    assert client.recv(1) == b"a"
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    try:
        assert get(admin, "/readyz") == (503, "psup is shutting down\n")
        assert get(admin, "/livez") == (200, "ok\n")
        assert status_doc(admin)["state"] == "stopping"
    finally:
        client.close()
    assert p.wait_exit() == 0


# --------------------------------------------------------------------------
# Requests and limits


def test_requests_are_read_strictly(psup):
    p = psup(with_admin(service("echo")))
    admin = admin_addr(p)
    assert get(admin, "/nothing")[0] == 404
    status, headers, _ = http(admin, "/metrics", method="PUT")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, _ = http(admin, "/status", method="POST", body=b"{}")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert http(admin, "/", raw=b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 501
    assert http(admin, "/", raw=b"GET / HTTP/1.1\r\n\r\n")[0] == 400  # no Host
    assert http(admin, "/", raw=b"GET / HTTP/1.1\nHost: x\n\n")[0] == 400  # bare LF
    assert http(admin, "/", raw=b"GET /%2e%2e/status HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 400
    assert http(admin, "/", raw=b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")[0] == 505
    assert http(admin, "/", raw=b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")[0] == 400
    assert http(admin, "/livez", version="1.0", raw=b"GET /livez HTTP/1.0\r\n\r\n")[0] == 200
    status, headers, body = http(admin, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body.startswith(b"<!DOCTYPE html>") and "default-src 'none'" in headers["content-security-policy"]
    for _, h, _ in [http(admin, "/livez"), http(admin, "/nothing")]:
        assert h["connection"] == "close" and h["cache-control"] == "no-store"


def test_a_request_in_pieces_or_half_closed_is_answered(psup):
    p = psup(with_admin(service("echo")))
    admin = admin_addr(p)
    # The client shuts its sending side after the request.
    assert talk(admin, b"GET /livez HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n")
    # A byte at a time, each sent on its own.
    with connect(admin) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n":
            s.sendall(bytes([byte]))
        assert read_all(s).endswith(b"\r\n\r\nok\n")
    # A body in two parts: the head first.
    with connect(admin) as s:
        s.sendall(b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
        s.sendall(b"cd")
        assert read_all(s).startswith(b"HTTP/1.1 405 ")


def test_an_oversized_head_gets_431_and_is_closed(psup):
    p = psup(with_admin(service("echo")))
    admin = admin_addr(p)
    s = connect(admin)
    with s:
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)
        start = time.monotonic()
        data = read_all(s)  # the end of file comes without the test closing
        assert time.monotonic() - start < 4
    assert data.startswith(b"HTTP/1.1 431 "), data[:80]
    # Still serving.
    assert get(admin, "/livez")[0] == 200


def test_a_client_that_does_not_finish_its_request_is_closed(psup):
    p = psup(with_admin(service("echo")))
    admin = admin_addr(p)
    s = connect(admin, timeout=15)
    with s:
        s.sendall(b"GET /status HTTP/1.1\r\n")
        start = time.monotonic()
        assert read_all(s) == b""
        took = time.monotonic() - start
    assert 4 <= took <= 8, took


def test_hanging_admin_clients_do_not_slow_a_service(psup):
    p = psup(with_admin(service("echo")))
    admin, echo = admin_addr(p), p.addr("echo")
    before = sample(families(admin), "process_open_fds")
    hanging, started = [], time.monotonic()
    try:
        for _ in range(200):
            hanging.append(connect(admin, timeout=10))
        # A client of the service is answered promptly all the while.
        for i in range(20):
            t0 = time.monotonic()
            assert talk(echo, b"ping%d" % i) == b"ping%d" % i
            assert time.monotonic() - t0 < 1.0
        # Beyond max_clients (32) each one was answered 503 at once and
        # closed; the 32 held are closed after the 5 s head timeout.
        answers = []
        for s in hanging:
            s.settimeout(max(0.1, started + 9 - time.monotonic()))
            answers.append(read_all(s))
        closed_after = time.monotonic() - started
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
        silent = [a for a in answers if a == b""]
        assert len(busy) == 168 and len(silent) == 32, (len(busy), len(silent))
        assert 4.5 <= closed_after <= 9, closed_after
    finally:
        for s in hanging:
            s.close()
    admin_fds = lambda: sample(families(admin), "process_open_fds")
    wait_for(lambda: admin_fds() <= before, 5, "psup's descriptors back to what they were")
    assert get(admin, "/livez")[0] == 200


def test_max_clients_is_configurable(psup):
    p = psup(config(service("echo"), admin={"listen": ["127.0.0.1:0"], "max_clients": 2}))
    admin = admin_addr(p)
    held = [connect(admin), connect(admin)]
    try:
        # Wait until psup holds both (a third is refused only then).
        def refused():
            try:
                with connect(admin, timeout=1) as s:
                    return read_all(s).startswith(b"HTTP/1.1 503 ")
            except OSError:
                return False  # taken as one of the two: it waits for its request
        wait_for(refused, 10, "a third client refused")
    finally:
        for s in held:
            s.close()
    def served():
        try:
            return get(admin, "/livez")[0] == 200
        except OSError:
            return False  # refused while the probes still hold both places
    wait_for(served, 10, "served again")


# --------------------------------------------------------------------------
# Listeners


def test_unix_admin_socket_is_0600_and_serves(psup, tmp_path):
    sock = tmp_path / "admin.sock"
    p = psup(config(service("echo"), admin={"listen": [f"unix:{sock}"]}))
    assert admin_addr(p) == str(sock)
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
    assert get(str(sock), "/livez") == (200, "ok\n")
    # A new socket_mode applies to the kept socket on a reload.
    p.write_config(config(service("echo"), admin={"listen": [f"unix:{sock}"], "socket_mode": "0660"}))
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    assert len(p.events("admin_listening")) == 1
    assert p.stop() == 0
    assert not sock.exists()


def test_admin_listeners_are_kept_across_reloads(psup, tmp_path):
    p = psup(config(service("echo"), admin={"listen": ["127.0.0.1:0"]}))
    first = admin_addr(p)
    s = connect(first)  # a client in the middle of its request
    s.sendall(b"GET /livez HTTP/1.1\r\n")
    cfg = json.loads(p.config_path.read_text())
    cfg["services"].append(service("more"))
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    assert len(p.events("admin_listening")) == 1, "the unchanged listener was kept"
    s.sendall(b"Host: x\r\n\r\n")
    assert read_all(s).startswith(b"HTTP/1.1 200 ")
    s.close()
    assert [x["name"] for x in status_doc(first)["services"]] == ["echo", "more"]
    # A new address is bound, the old one closed.
    sock = tmp_path / "admin.sock"
    cfg["admin"]["listen"] = [f"unix:{sock}"]
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded", count=2)
    assert get(str(sock), "/livez")[0] == 200
    with pytest.raises(OSError):
        connect(first, timeout=2)


@contextlib.contextmanager
def taken_port():
    """A loopback port another socket listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_an_admin_address_that_cannot_be_bound_rejects_the_reload(psup):
    with taken_port() as port:
        p = psup(with_admin(service("echo")))
        p.expect_errors = True
        admin = admin_addr(p)
        cfg = json.loads(p.config_path.read_text())
        cfg["admin"]["listen"].append(f"127.0.0.1:{port}")
        p.write_config(cfg)
        p.send(signal.SIGHUP)
        rejected = p.wait_event("reload_rejected")[0]
        assert rejected["reason"] == "an admin listener could not be bound"
        failed = p.events("admin_bind_failed")[0]
        assert failed["errno"] == "EADDRINUSE" and failed["step"] == "bind"
        doc = status_doc(admin)
        assert doc["last_reload"]["result"] == "failed" and doc["reloads"]["failed"] == 1
        assert get(admin, "/livez")[0] == 200


def test_an_admin_address_in_use_at_start_is_exit_3(psup):
    with taken_port() as port:
        p = psup(config(service("echo"), admin={"listen": [f"127.0.0.1:{port}"]}), wait=False)
        p.expect_errors = True
        assert p.wait_exit() == 3
        assert p.events("admin_bind_failed")[0]["addr"] == f"127.0.0.1:{port}"


def test_check_accepts_an_admin_object(psup_bin, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(with_admin(service("echo"))))
    r = subprocess.run([psup_bin, "--check", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "admin: listen 127.0.0.1:0; at most 32 clients\n" in r.stdout
    path.write_text(json.dumps(config(service("echo"), admin={"listen": []})))
    r = subprocess.run([psup_bin, "--check", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "admin.listen: expected a non-empty array of addresses, got an empty array" in r.stderr


# --------------------------------------------------------------------------
# The status page, in a real browser


CHROMIUM = shutil.which("chromium")


class PageFields(html.parser.HTMLParser):
    """{service: {field: [texts]}} from the page's data-service sections."""

    def __init__(self):
        super().__init__()
        self.services, self.current, self.field, self.text = {}, None, None, ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-service" in a:
            self.current = self.services.setdefault(a["data-service"], {})
        key = a.get("data-field") or a.get("data-counter")
        if key and self.current is not None:
            self.field, self.text = key, ""

    def handle_data(self, data):
        if self.field:
            self.text += data

    def handle_endtag(self, tag):
        if self.field:
            self.current.setdefault(self.field, []).append(self.text)
            self.field = None


def chromium(tmp_path, *args, timeout=90):
    """Run headless Chromium in a session of its own, ended by its id."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its zygote and renderers, if any are left
        except ProcessLookupError:
            pass
        proc.wait()
    return out.decode()


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (apt-get install chromium)")
def test_status_page_renders_in_a_browser(psup, tmp_path):
    sock = tmp_path / "files.sock"
    p = psup(with_admin(service("echo", pool={"min_spare": 2, "max_spare": 2, "max_workers": 5}),
                        service("files", listen=[f"unix:{sock}"], command=["/bin/true"],
                                pool={"min_spare": 1, "max_spare": 1, "max_workers": 3})))
    admin = admin_addr(p)
    for _ in range(3):
        assert talk(p.addr("echo"), b"hi") == b"hi"
    wait_for(lambda: [(s["pool"]["idle"], s["counters"]["connections"]["ok"])
                      for s in status_doc(admin)["services"]] == [(2, 3), (1, 0)], 10, "a quiet pool")
    url = "http://%s:%d/" % admin
    page = PageFields()
    page.feed(chromium(tmp_path, "--dump-dom", url))
    assert sorted(page.services) == ["echo", "files"], page.services
    echo, files = page.services["echo"], page.services["files"]
    assert echo["name"] == ["echo"] and echo["state"] == ["serving"]
    assert echo["listener"] == [r["addr"] for r in p.events("listening", service="echo")]
    assert files["listener"] == [f"unix:{sock}"]
    assert (echo["idle"], echo["busy"], echo["max_workers"]) == (["2"], ["0"], ["5"])
    assert (files["idle"], files["max_workers"]) == (["1"], ["3"])
    assert echo["connections ok"] == ["3"] and files["connections ok"] == ["0"]

    # What a person sees, on a phone's screen: kept with the test's files,
    # and in the build's artifacts when CTest says where.
    shot = tmp_path / "status-page.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=412,915", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("PSUP_TEST_ARTIFACTS")
    if artifacts:
        pathlib.Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, pathlib.Path(artifacts) / shot.name)
