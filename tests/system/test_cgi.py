# SPDX-License-Identifier: MIT
""""protocol": "cgi" services (spec/cgi.md), end to end: psup runs the
service's command through its relay, psup-cgi, and real clients talk to it:
curl, Python's http.client, headless Chromium (when installed) and raw
sockets. Checked: the relay's argv as psup builds it from the service, every
meta-variable from inside a shell script, GET with a query, POST with a body
(by length and chunked), HEAD, 100-continue, the exact status of malformed,
slow and oversized requests (and that the script never ran), scripts that
print garbage, nothing, or run past the timeout (504 from the relay, psup's
own timer only a backstop), response translation (Status, redirects), stderr
kept from the client, the seeds' WSGI app through wsgiref's CGIHandler on
IPv4 and IPv6, SIGTERM, and a psup whose relay is missing."""

import concurrent.futures
import http.client
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import alive, children_of, config, connect, proc_stat, read_all, service, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"

ENV_SCRIPT = """#!/bin/sh
# The environment, NUL-separated, then the body the script read.
printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'
env -0
printf 'BODY\\0'
cat
"""


def relay_path(psup_bin):
    """Where psup will look for the relay: beside its binary, as installed
    (bin/psup and lib/psup/psup-cgi) and as built (cmd/psup, cmd/lib/psup)."""
    return pathlib.Path(psup_bin).parent.parent / "lib" / "psup" / "psup-cgi"


@pytest.fixture
def cgi(psup, tmp_path):
    """cgi(script_text, listen, command, top, **service_keys) starts psup with
    one service "cgi" with "protocol": "cgi" that runs the script (or
    command); http={...} sets the service's http object."""
    count = [0]

    def start(script_text=ENV_SCRIPT, listen=("127.0.0.1:0",), command=None, top=None, **svc):
        count[0] += 1
        script = tmp_path / f"script{count[0]}"
        script.write_text(script_text)
        script.chmod(0o755)
        program = command or [str(script)]
        marker = tmp_path / f"ran{count[0]}"
        svc.setdefault("env", {})["MARKER"] = str(marker)
        p = psup(config(service("cgi", list(listen), program, protocol="cgi", **svc),
                        **(top or {})))
        p.script = script
        p.marker = marker
        return p

    return start


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, f"connection closed after {out!r}"
        out += chunk
    return out


def parse_env(body):
    env_part, _, rest = body.partition(b"BODY\0")
    env = {}
    for item in env_part.split(b"\0"):
        name, eq, value = item.decode(errors="replace").partition("=")
        if eq:
            env[name] = value
    return env, rest


def raw(addr, data, half_close=True, timeout=10.0):
    """Sends data on a fresh connection and returns everything read until
    the relay closes."""
    with connect(addr, timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_all(s)


def dechunk(body):
    """The content of a complete chunked body."""
    out = b""
    while True:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            assert body == b"\r\n", body
            return out
        out += body[:n]
        assert body[n:n + 2] == b"\r\n"
        body = body[n + 2:]


def status_of(response):
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response[:200]
    return int(line.split()[1])


def request(addr, method="GET", target="/", body=None, headers=None, encode_chunked=False):
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {},
                     encode_chunked=encode_chunked)
        local_port = conn.sock.getsockname()[1]
        resp = conn.getresponse()
        return resp, resp.read(), local_port
    finally:
        conn.close()


def curl(*args):
    out = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    return out


# --------------------------------------------------------------------------
# Meta-variables and bodies.


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_get_with_query_sets_every_meta_variable(cgi, family):
    host = "127.0.0.1" if family == "ipv4" else "::1"
    listen = "127.0.0.1:0" if family == "ipv4" else "[::1]:0"
    p = cgi(listen=[listen])
    addr = p.addr("cgi")
    resp, body, client_port = request(addr, "GET", "/a%20b/c.txt?x=1&y=%41",
                                      headers={"X-Custom": "v1", "Proxy": "http://evil",
                                               "X_Forged": "no", "Cookie": "a=1"})
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert resp.getheader("Server").startswith("psup/")
    assert resp.getheader("Connection") == "close"
    assert resp.getheader("Date").endswith(" GMT")
    env, rest = parse_env(body)
    server_name = "127.0.0.1" if family == "ipv4" else "[::1]"
    expected = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(addr[1]),
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/a%20b/c.txt?x=1&y=%41",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a b/c.txt",
        "QUERY_STRING": "x=1&y=%41",
        "REMOTE_ADDR": host,
        "REMOTE_PORT": str(client_port),
        "TCPREMOTEIP": host,
        "TCPLOCALPORT": str(addr[1]),
        "PROTO": "TCP",
        "PSUP_SERVICE": "cgi",
        "HTTP_HOST": f"{server_name}:{addr[1]}",
        "HTTP_X_CUSTOM": "v1",
        "HTTP_COOKIE": "a=1",
    }
    for name, value in expected.items():
        assert env.get(name) == value, (name, env.get(name))
    assert env["SERVER_SOFTWARE"].startswith("psup/")
    assert env["PSUP_CONN_ID"].isdigit()
    for absent in ("CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_PROXY", "HTTP_X_FORGED",
                   "AUTH_TYPE", "REMOTE_USER"):
        assert absent not in env, absent
    assert rest == b""
    end = p.wait_event("conn_end", service="cgi")[0]
    assert end["status"] == 0


def test_unix_socket_request_names_the_host_it_asked_for(cgi, tmp_path):
    p = cgi(listen=[f"unix:{tmp_path}/cgi.sock"])
    response = raw(p.addr("cgi"), b"GET /u HTTP/1.1\r\nHost: app.example:8443\r\n\r\n")
    assert status_of(response) == 200
    env, _ = parse_env(dechunk(response.split(b"\r\n\r\n", 1)[1]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["PROTO"]) == ("app.example", "8443", "UNIX")
    assert "REMOTE_ADDR" not in env and "TCPLOCALPORT" not in env


def test_post_body_by_length_reaches_stdin(cgi):
    p = cgi()
    payload = os.urandom(200_000)
    resp, body, _ = request(p.addr("cgi"), "POST", "/upload", body=payload,
                            headers={"Content-Type": "application/x-test"})
    assert resp.status == 200
    env, rest = parse_env(body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_LENGTH"] == str(len(payload))
    assert env["CONTENT_TYPE"] == "application/x-test"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert rest == payload


def test_concurrent_posts_each_get_their_own_body(cgi):
    p = cgi("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ncat\n")

    def one_client(n):
        for i in range(8):
            payload = f"client {n} request {i} ".encode() * (1 + 97 * i)
            resp, body, _ = request(p.addr("cgi"), "POST", "/", body=payload)
            assert (resp.status, body) == (200, payload)
        return 8

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert sum(pool.map(one_client, range(6))) == 48
    ends = p.wait_event("conn_end", count=48, service="cgi")
    assert all(e["status"] == 0 for e in ends)


def test_chunked_post_is_decoded_with_its_length(cgi):
    p = cgi()
    pieces = [b"hello ", b"chunked ", b"world" * 1000]
    resp, body, _ = request(p.addr("cgi"), "POST", "/c", body=iter(pieces),
                            headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    assert resp.status == 200
    env, rest = parse_env(body)
    assert env["CONTENT_LENGTH"] == str(sum(map(len, pieces)))
    assert "HTTP_TRANSFER_ENCODING" not in env
    assert rest == b"".join(pieces)


def test_curl_get_post_head_and_http10(cgi):
    p = cgi()
    host, port = p.addr("cgi")
    url = f"http://{host}:{port}/p?q=1"
    env, _ = parse_env(curl(url).stdout)
    assert env["QUERY_STRING"] == "q=1" and env["REQUEST_METHOD"] == "GET"
    env, rest = parse_env(curl("--data-binary", "a=1&b=2", url).stdout)
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert rest == b"a=1&b=2"
    head = curl("-I", url).stdout
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/octet-stream\r\n" in head
    assert b"Transfer-Encoding" not in head
    env, _ = parse_env(curl("--http1.0", url).stdout)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_head_has_headers_and_no_body(cgi):
    p = cgi()
    resp, body, _ = request(p.addr("cgi"), "HEAD", "/x")
    assert resp.status == 200 and body == b""
    response = raw(p.addr("cgi"), b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.endswith(b"\r\n\r\n") and b"Content-Type:" in response


def test_expect_100_continue(cgi):
    p = cgi()
    host, port = p.addr("cgi")
    out = curl("-v", "-H", "Expect: 100-continue", "--data-binary", "x" * 5000,
               f"http://{host}:{port}/e")
    assert b"HTTP/1.1 100 Continue" in out.stderr
    env, rest = parse_env(out.stdout)
    assert rest == b"x" * 5000 and env["HTTP_EXPECT"] == "100-continue"

    # The interim answer comes before any byte of the body is sent.
    with connect((host, port)) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert recv_exact(s, 25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"body")
        response = read_all(s)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"0\r\n\r\n")


# --------------------------------------------------------------------------
# Requests the relay refuses without running the script.

REFUSED = [
    (b"GARBAGE\x16\x03\r\n\r\n", 400),
    (b"GET / HTTP/1.1\n\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400),
    (b"GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nshort", 400),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 1\r\n" * 101 + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", 417),
]


def test_refused_requests_get_their_status_and_never_run_the_script(cgi):
    p = cgi("#!/bin/sh\n: > \"$MARKER\"\nprintf 'Content-Type: text/plain\\n\\nran\\n'\n")
    for data, status in REFUSED:
        response = raw(p.addr("cgi"), data)
        assert status_of(response) == status, (data[:80], response[:200])
        assert response.split(b"\r\n\r\n", 1)[1].startswith(b"%d " % status)
        assert b"Connection: close\r\n" in response
    assert not p.marker.exists(), "the script ran for a refused request"
    ends = p.wait_event("conn_end", count=len(REFUSED), service="cgi")
    assert all(e["status"] == 0 for e in ends)


def test_chunked_body_over_the_limit_is_413(cgi):
    p = cgi(http={"max_body": 1000})
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    response = raw(p.addr("cgi"), b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    assert status_of(response) == 413
    response = raw(p.addr("cgi"), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n")
    assert status_of(response) == 413


def test_413_reaches_a_client_still_sending_its_body(cgi):
    """The relay answers at once and reads what keeps coming for a while,
    so the client gets the 413 instead of a reset."""
    p = cgi(http={"max_body": 1000})
    with connect(p.addr("cgi")) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 500000\r\n\r\n")
        s.sendall(b"y" * 200_000)
        response = read_all(s)
    assert status_of(response) == 413


def test_slow_head_is_408_after_the_head_timeout(cgi):
    p = cgi(http={"head_timeout": 1})
    with connect(p.addr("cgi")) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        started = time.monotonic()
        response = read_all(s)
        elapsed = time.monotonic() - started
    assert status_of(response) == 408
    assert 0.8 < elapsed < 5, elapsed
    assert not p.marker.exists()


def test_slow_body_is_408_after_the_idle_timeout(cgi):
    p = cgi(http={"idle_timeout": 1})
    with connect(p.addr("cgi")) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        response = read_all(s)
        elapsed = time.monotonic() - started
    assert status_of(response) == 408
    assert 0.8 < elapsed < 5, elapsed


def test_relay_options_are_the_service_settings(cgi):
    """While a request runs, the relay's command line is what psup built
    from the service: the http object, timeout and kill_grace as the
    relay's options, then the command with its program as resolved."""
    p = cgi(f"#!/bin/sh\n: > \"$MARKER\"\nsleep 2\nprintf 'Content-Type: text/plain\\n\\nok'\n",
            http={"max_body": 1000, "head_timeout": 0.25, "server_name": "app.example"},
            timeout=5, top={"kill_grace": 0.5})
    result = {}
    t = threading.Thread(target=lambda: result.update(r=raw(p.addr("cgi"),
                                                           b"GET / HTTP/1.0\r\n\r\n")))
    t.start()
    wait_for(p.marker.exists, 10, "the script to start")
    relays = [c for c in children_of(p.pid) if (proc_stat(c) or "????")[3] == "psup-cgi"]
    assert len(relays) == 1, relays
    argv = pathlib.Path(f"/proc/{relays[0]}/cmdline").read_bytes().split(b"\0")[:-1]
    t.join(15)
    assert [a.decode() for a in argv] == [
        "psup-cgi", "--max-body=1000", "--head-timeout=0.250", "--server-name=app.example",
        "--timeout=5.000", "--kill-grace=0.500", "--", str(p.script)]
    assert status_of(result["r"]) == 200


def test_server_name_is_used_when_the_request_names_no_host(cgi):
    p = cgi(http={"server_name": "www.example"})
    env, _ = parse_env(raw(p.addr("cgi"), b"GET /n HTTP/1.0\r\n\r\n").split(b"\r\n\r\n", 1)[1])
    assert env["SERVER_NAME"] == "www.example"


def test_relay_refuses_invalid_options_itself(psup, psup_bin):
    """psup's configuration never gives the relay invalid options; run on its
    own (as a raw handler), the relay answers 500 and exits 2."""
    cmd = [str(relay_path(psup_bin)), "--max-head", "1", "--", "/bin/true"]
    p = psup(config(service("relay", ["127.0.0.1:0"], cmd, stderr="log")))
    assert status_of(raw(p.addr("relay"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")) == 500
    assert p.wait_event("conn_end", service="relay")[0]["status"] == 2
    assert p.wait_event("stderr", service="relay")[0]["line"] == \
        "psup-cgi: invalid value for --max-head: 1"


def test_a_psup_without_its_relay_refuses_cgi_services(psup_bin, tmp_path):
    """psup finds psup-cgi beside its own binary (../lib/psup/psup-cgi); a
    copy of psup without it loads raw services but no cgi one."""
    bindir = tmp_path / "prefix" / "bin"
    bindir.mkdir(parents=True)
    alone = bindir / "psup"
    shutil.copy2(psup_bin, alone)
    cfg = tmp_path / "cgi.json"
    cfg.write_text('{"services": [{"name": "c", "listen": ["127.0.0.1:0"], '
                   '"protocol": "cgi", "command": ["/bin/true"]}]}')
    out = subprocess.run([str(alone), "--check", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    relay = tmp_path / "prefix" / "lib" / "psup" / "psup-cgi"
    assert out.returncode == 1, out
    assert out.stderr == (f'psup: services[0].protocol: "cgi" needs psup\'s CGI relay, and '
                          f"{relay} does not exist\n")
    relay.parent.mkdir(parents=True)
    shutil.copy2(relay_path(psup_bin), relay)
    out = subprocess.run([str(alone), "--check", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr


def test_client_that_connects_and_leaves_gets_nothing(cgi):
    p = cgi()
    with connect(p.addr("cgi")) as s:
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b""
    assert p.wait_event("conn_end", service="cgi")[0]["status"] == 0


# --------------------------------------------------------------------------
# What the script answers.


def test_script_printing_garbage_is_502(cgi):
    p = cgi("#!/bin/sh\necho 'this is not a CGI header'\necho\necho body\n", stderr="log")
    response = raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(response) == 502
    p.wait_event("stderr", service="cgi")
    assert any("502" in r["line"] for r in p.events("stderr", service="cgi"))


def test_script_printing_nothing_is_502_and_its_status_is_logged(cgi):
    p = cgi("#!/bin/sh\nexit 3\n")
    assert status_of(raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")) == 502
    assert p.wait_event("conn_end", service="cgi")[0]["status"] == 3


def test_script_past_the_timeout_is_504_and_its_group_is_stopped(cgi, tmp_path):
    pidfile = tmp_path / "sleeper.pid"
    p = cgi(f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n", timeout=1)
    started = time.monotonic()
    response = raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(response) == 504
    assert time.monotonic() - started < 5
    end = p.wait_event("conn_end", service="cgi")[0]
    assert end["status"] == 128 + signal.SIGTERM
    assert "outcome" not in end and not p.events("timeout"), "psup's backstop fired"
    sleeper = int(pidfile.read_text())
    wait_for(lambda: not alive(sleeper), 5, "the script's child to be stopped with it")


def test_psup_timeout_is_a_backstop_behind_the_relay(cgi):
    """A script that ignores SIGTERM: the relay answers 504 at the timeout
    and kills it kill_grace later; psup's own timer, kill_grace + 1 s after
    the relay's, never has to act, so the client never sees a 503."""
    p = cgi("#!/bin/sh\ntrap '' TERM\nsleep 30\n", timeout=1, top={"kill_grace": 0.5})
    started = time.monotonic()
    response = raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(response) == 504
    end = p.wait_event("conn_end", service="cgi")[0]
    assert time.monotonic() - started < 2.5 + 2
    assert end["status"] == 128 + signal.SIGKILL, end
    assert "outcome" not in end and not p.events("timeout"), "psup's backstop fired"


def test_timeout_after_the_header_cuts_the_chunked_body_short(cgi):
    p = cgi("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\npart one\\n'\nexec sleep 60\n",
            timeout=1)
    response = raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(response) == 200
    assert b"Transfer-Encoding: chunked" in response and b"part one" in response
    assert not response.endswith(b"0\r\n\r\n"), "a cut response must lack the last chunk"
    conn = http.client.HTTPConnection(*p.addr("cgi"), timeout=10)
    conn.request("GET", "/")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()


def test_status_and_redirects_are_translated(cgi):
    script = """#!/bin/sh
case "$PATH_INFO" in
/missing) printf 'Status: 404 Not Here\\nContent-Type: text/plain\\n\\nno\\n' ;;
/away) printf 'Location: http://example.com/there\\n\\n' ;;
/local) printf 'Location: /final?from=local\\n\\n' ;;
/loop) printf 'Location: /loop\\n\\n' ;;
/length) printf 'Content-Type: text/plain\\nContent-Length: 3\\nConnection: keep-alive\\n\\nabc' ;;
*) printf 'Content-Type: text/plain\\n\\n%s %s %s %s\\n' "$PATH_INFO" "$QUERY_STRING" "$REQUEST_METHOD" "${CONTENT_LENGTH-none}" ;;
esac
"""
    p = cgi(script)
    addr = p.addr("cgi")
    resp, body, _ = request(addr, "GET", "/missing")
    assert (resp.status, resp.reason, body) == (404, "Not Here", b"no\n")
    resp, body, _ = request(addr, "GET", "/away")
    assert resp.status == 302 and resp.getheader("Location") == "http://example.com/there"
    resp, body, _ = request(addr, "POST", "/local", body=b"data")
    assert (resp.status, body) == (200, b"/final from=local GET none\n")
    resp, body, _ = request(addr, "GET", "/loop")
    assert resp.status == 502
    response = raw(addr, b"GET /length HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.endswith(b"\r\n\r\nabc")
    assert b"Content-Length: 3\r\n" in response and b"keep-alive" not in response
    assert b"Transfer-Encoding" not in response


def test_stderr_never_reaches_the_client(cgi):
    p = cgi("#!/bin/sh\necho secret-diagnostic >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
            stderr="log")
    response = raw(p.addr("cgi"), b"GET / HTTP/1.0\r\n\r\n")
    assert status_of(response) == 200 and response.endswith(b"\r\n\r\nok\n")
    assert b"secret" not in response
    assert p.wait_event("stderr", service="cgi")[0]["line"] == "secret-diagnostic"


def test_example_shell_script(cgi):
    p = cgi(command=[str(ROOT / "examples" / "cgi" / "hello.sh")], stderr="log")
    resp, body, port = request(p.addr("cgi"), "GET", "/hi?lang=de")
    assert resp.status == 200
    assert body.decode().startswith(f'Hello from psup! You asked for /hi (query "lang=de"); '
                                    f"you are 127.0.0.1:{port} (connection ")
    resp, body, _ = request(p.addr("cgi"), "POST", "/form", body=b"a=1",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert body == b"You sent 3 bytes of application/x-www-form-urlencoded:\na=1\n"
    resp, body, _ = request(p.addr("cgi"), "GET", "/old")
    assert (resp.status, resp.getheader("Location")) == (301, "/")
    assert p.wait_event("stderr", service="cgi")[0]["line"] == "hello.sh: GET /hi?lang=de from 127.0.0.1"


# --------------------------------------------------------------------------
# The seeds' WSGI application, and stopping psup.


def test_example_configuration_passes_check(psup_bin):
    """examples/services.json (run from the source tree) with its cgi
    services: the shell script and the WSGI app."""
    out = subprocess.run([psup_bin, "--check", "examples/services.json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    cgi_lines = [line for line in out.stdout.splitlines() if line.endswith("; cgi")]
    assert [line.split(":")[0] for line in cgi_lines] == ["hello-cgi", "wsgi"]


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "[::1]:0"])
def test_wsgi_app_through_cgihandler(cgi, listen):
    p = cgi(command=[PYTHON, str(ROOT / "examples" / "cgi" / "wsgi_app.py")], listen=[listen])
    resp, body, _ = request(p.addr("cgi"), "GET", "/")
    assert (resp.status, body) == (200, b"Hallo Welt!")
    assert resp.getheader("Content-Type") == "text/plain"
    host, port = p.addr("cgi")
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    assert curl("-g", url).stdout == b"Hallo Welt!"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE_SCRIPT = """#!/bin/sh
printf 'Content-Type: text/html; charset=utf-8\\n\\n'
printf '<!doctype html><html><body><p id="who">%s %s</p>' "$REMOTE_ADDR" "$QUERY_STRING"
printf '<script>document.getElementById("who").textContent += " (scripted)"</script>'
printf '</body></html>\\n'
"""


def chromium_dom(url, tmp_path):
    """The DOM headless Chromium renders for url (its own process group,
    ended by pid whatever happens)."""
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             f"--user-data-dir={profile}", "--dump-dom", url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0
    return out.decode()


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed")
def test_a_browser_renders_a_shell_script_page_and_the_wsgi_app(cgi, tmp_path):
    p = cgi(PAGE_SCRIPT)
    host, port = p.addr("cgi")
    dom = chromium_dom(f"http://{host}:{port}/page?from=chromium", tmp_path)
    assert '<p id="who">127.0.0.1 from=chromium (scripted)</p>' in dom, dom
    w = cgi(command=[PYTHON, str(ROOT / "examples" / "cgi" / "wsgi_app.py")], listen=["[::1]:0"])
    host, port = w.addr("cgi")
    dom = chromium_dom(f"http://[{host}]:{port}/", tmp_path)
    assert "Hallo Welt!" in dom, dom


def request_across_sigterm(p, started):
    """A request on a thread; once the script has started, psup gets
    SIGTERM. Returns the response, psup's exit status."""
    result = {}

    def client():
        result["response"] = raw(p.addr("cgi"), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")

    t = threading.Thread(target=client)
    t.start()
    wait_for(started.exists, 10, "the script to start")
    p.send(signal.SIGTERM)
    t.join(15)
    assert not t.is_alive()
    return result["response"], p.wait_exit()


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "[::1]:0"])
def test_graceful_sigterm_lets_a_slow_request_finish(cgi, tmp_path, listen):
    started = tmp_path / "started"
    p = cgi(f"#!/bin/sh\n: > {started}\nsleep 1\nprintf 'Content-Type: text/plain\\n\\nfinished\\n'\n",
            listen=[listen])
    response, status = request_across_sigterm(p, started)
    assert status_of(response) == 200
    assert response.endswith(b"finished\n\r\n0\r\n\r\n")
    assert status == 0


def test_sigterm_at_shutdown_timeout_reaches_the_script_and_gives_503(cgi, tmp_path):
    started = tmp_path / "started"
    p = cgi(f"#!/bin/sh\n: > {started}\nexec sleep 60\n", top={"shutdown_timeout": 0.5})
    response, status = request_across_sigterm(p, started)
    assert status_of(response) == 503
    assert status == 0
    end = p.wait_event("conn_end", service="cgi")[0]
    assert end["status"] == 128 + signal.SIGTERM
