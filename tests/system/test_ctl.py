# SPDX-License-Identifier: MIT
"""psup ctl as a client (spec/control.md, section 5), against a small
admin endpoint of the test's own that answers what each test says: the
requests it sends, the text it prints, its exit statuses, its address
forms and its deadline. test_control.py runs it against a real psup."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

STATUS_DOC = {
    "version": "0.2.0", "pid": 4242, "started": "2026-01-01T00:00:00.000Z", "uptime": 3725.5,
    "config": "/etc/psup/services.json", "state": "running", "ready": False, "workers": 5,
    "reloads": {"ok": 1, "invalid": 0, "failed": 0},
    "last_reload": {"time": "2026-01-01T00:10:00.000Z", "result": "ok", "problems": 0},
    "services": [
        {"name": "echo", "mode": "accept", "state": "serving", "paused": False, "ready": True,
         "listeners": ["127.0.0.1:7000", "unix:/run/echo.sock"],
         "pool": {"idle": 4, "busy": 1, "retiring": 0, "stopped": 0, "min_spare": 4,
                  "max_spare": 16, "max_workers": 256},
         "counters": {"accepted": 1234, "refused": {"denied": 2, "per_source": 1, "rate": 0,
                                                   "overload": 0},
                      "worker_failures": 0}},
        {"name": "web-long-name", "mode": "accept", "state": "serving", "paused": True,
         "ready": False, "listeners": ["[::1]:8080"],
         "pool": {"idle": 0, "busy": 0, "retiring": 0, "stopped": 0, "min_spare": 1,
                  "max_spare": 2, "max_workers": 8},
         "counters": {"accepted": 7, "refused": {}, "worker_failures": 3}},
    ],
}


class FakeAdmin:
    """Answers each connection with the next canned response (status,
    content type, body), recording the request heads."""

    def __init__(self, family, address):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.requests, self.answers = [], []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        name = self.sock.getsockname()
        if self.sock.family == socket.AF_UNIX:
            return "unix:" + name
        if self.sock.family == socket.AF_INET6:
            return f"[{name[0]}]:{name[1]}"
        return f"{name[0]}:{name[1]}"

    def answer(self, status, body, ctype="application/json", raw=None):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.answers.append(raw if raw is not None else
                            (f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.decode())
                if not self.answers:
                    time.sleep(30)  # never answer: the client's deadline
                    continue
                conn.sendall(self.answers.pop(0))

    def close(self):
        self.sock.close()


@pytest.fixture
def admin(tmp_path):
    fake = FakeAdmin(socket.AF_UNIX, str(tmp_path / "admin.sock"))
    yield fake
    fake.close()


def ctl(psup_bin, *args, env_admin=None, timeout=20):
    env = dict(os.environ)
    env.pop("PSUP_ADMIN", None)
    if env_admin:
        env["PSUP_ADMIN"] = env_admin
    return subprocess.run([psup_bin, "ctl", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def request_line(fake):
    return fake.requests[-1].split("\r\n", 1)[0]


def test_status_is_a_table(psup_bin, admin):
    admin.answer(200, STATUS_DOC)
    out = ctl(psup_bin, "--admin", admin.addr, "status")
    assert out.returncode == 0, out.stderr
    assert request_line(admin) == "GET /status HTTP/1.1"
    assert "Host: " in admin.requests[-1] and "Connection: close" in admin.requests[-1]
    lines = out.stdout.splitlines()
    assert lines[0] == "psup 0.2.0, pid 4242, up 1h02m, running, not ready"
    assert lines[1] == "config /etc/psup/services.json, last reload 2026-01-01T00:10:00.000Z ok"
    table = lines[3:]
    assert table[0].split() == ["SERVICE", "STATE", "IDLE", "BUSY", "MAX", "ACCEPTED", "REFUSED",
                                "FAILURES", "LISTEN"]
    assert table[1].split() == ["echo", "serving", "4", "1", "256", "1234", "3", "0",
                                "127.0.0.1:7000,unix:/run/echo.sock"]
    assert table[2].split() == ["web-long-name", "paused", "0", "0", "8", "7", "0", "3", "[::1]:8080"]
    # Aligned: every column starts at the same offset on every line.
    for word in ("STATE", "LISTEN"):
        col = table[0].index(word)
        assert table[1][col - 1] == " " and table[1][col] != " "
        assert table[2][col - 1] == " " and table[2][col] != " "
    # Numbers right-aligned: ACCEPTED's last digit under the heading's end.
    end = table[0].index("ACCEPTED") + len("ACCEPTED")
    assert table[1][end - 1] == "4" and table[2][end - 1] == "7"


def test_status_json_is_the_document_as_is(psup_bin, admin):
    admin.answer(200, STATUS_DOC)
    out = ctl(psup_bin, "--admin", admin.addr, "status", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout) == STATUS_DOC


def test_metrics_are_printed_as_they_are(psup_bin, admin):
    text = "# HELP psup_x x\n# TYPE psup_x gauge\npsup_x 1\n"
    admin.answer(200, text, "text/plain; version=0.0.4; charset=utf-8")
    out = ctl(psup_bin, "metrics", env_admin=admin.addr)
    assert out.returncode == 0 and out.stdout == text
    assert request_line(admin) == "GET /metrics HTTP/1.1"


def test_reload_ok_and_invalid(psup_bin, admin):
    admin.answer(200, {"result": "ok", "config": "/etc/p.json", "added": ["b"], "removed": [],
                       "changed": ["a", "c"], "unchanged": 2})
    out = ctl(psup_bin, "-a", admin.addr, "reload")
    assert out.returncode == 0, out.stderr
    assert request_line(admin) == "POST /reload HTTP/1.1"
    assert "Content-Length: 0" in admin.requests[-1]
    assert out.stdout == "reloaded /etc/p.json\nadded: b\nchanged: a, c\nunchanged: 2\n"

    problems = ["services[0].command: no such file", "services[1].pool.max_spare: must be >= min_spare (4)"]
    admin.answer(422, {"result": "invalid", "config": "/etc/p.json", "problems": problems})
    out = ctl(psup_bin, "-a", admin.addr, "reload")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines()[1:] == problems
    assert "/etc/p.json is invalid" in out.stderr.splitlines()[0]


def test_pause_resume_scale_requests_and_answers(psup_bin, admin):
    admin.answer(200, {"service": "web", "paused": True, "changed": True})
    out = ctl(psup_bin, "-a", admin.addr, "pause", "web")
    assert (out.returncode, out.stdout) == (0, "web: paused\n")
    assert request_line(admin) == "POST /pause?service=web HTTP/1.1"

    admin.answer(200, {"service": "web", "paused": False, "changed": False})
    out = ctl(psup_bin, "-a", admin.addr, "resume", "web")
    assert (out.returncode, out.stdout) == (0, "web: already serving\n")
    assert request_line(admin) == "POST /resume?service=web HTTP/1.1"

    admin.answer(200, {"service": "web", "pool": {"min_spare": 2, "max_spare": 4, "max_workers": 8},
                       "until": "reload"})
    out = ctl(psup_bin, "-a", admin.addr, "scale", "web", "--max-workers", "8", "--min-spare=2")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "web: min_spare 2, max_spare 4, max_workers 8 until the next reload\n"
    assert request_line(admin) == "POST /scale?service=web&min_spare=2&max_workers=8 HTTP/1.1"


def test_refusals_exit_1_with_the_reason(psup_bin, admin):
    admin.answer(404, {"error": "no service named \"nope\""})
    out = ctl(psup_bin, "-a", admin.addr, "pause", "nope")
    assert out.returncode == 1
    assert out.stderr == "psup ctl: 404: no service named \"nope\"\n"

    admin.answer(403, "403 Forbidden\ncontrol requests are taken on unix: admin listeners only\n",
                 "text/plain; charset=utf-8")
    out = ctl(psup_bin, "-a", admin.addr, "reload")
    assert out.returncode == 1
    assert out.stderr == ("psup ctl: 403 Forbidden: control requests are taken on unix: admin "
                          "listeners only\n")

    admin.answer(503, "", "text/plain")
    out = ctl(psup_bin, "-a", admin.addr, "status")
    assert (out.returncode, out.stderr) == (1, "psup ctl: HTTP status 503\n")


def test_answers_that_are_not_psups(psup_bin, admin):
    admin.answer(0, b"", raw=b"SSH-2.0-OpenSSH\r\n\r\n")
    out = ctl(psup_bin, "-a", admin.addr, "status")
    assert out.returncode == 1 and "not the HTTP psup sends" in out.stderr
    # A body shorter than its Content-Length: cut short.
    admin.answer(0, b"", raw=b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    out = ctl(psup_bin, "-a", admin.addr, "metrics")
    assert out.returncode == 1
    admin.answer(200, "not json", "application/json")
    out = ctl(psup_bin, "-a", admin.addr, "status")
    assert out.returncode == 1 and "not what status expects" in out.stderr


def test_unreachable_and_silent_psup(psup_bin, tmp_path, admin):
    out = ctl(psup_bin, "-a", f"unix:{tmp_path}/none.sock", "status")
    assert out.returncode == 1
    assert "cannot connect" in out.stderr and "No such file" in out.stderr
    t0 = time.monotonic()
    out = ctl(psup_bin, "-a", admin.addr, "--timeout", "0.5", "status")  # never answered
    assert out.returncode == 1 and "timed out" in out.stderr
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_tcp_addresses(psup_bin, family, host):
    fake = FakeAdmin(family, (host, 0))
    try:
        fake.answer(200, STATUS_DOC)
        out = ctl(psup_bin, "--admin", fake.addr, "status")
        assert out.returncode == 0, out.stderr
    finally:
        fake.close()


@pytest.mark.parametrize("args,env,what", [
    ([], "unix:/x", "missing COMMAND"),
    (["frobnicate"], "unix:/x", "unknown command"),
    (["pause"], "unix:/x", "missing the service's NAME"),
    (["pause", "a b"], "unix:/x", "not a service name"),
    (["status", "extra"], "unix:/x", "unexpected argument"),
    (["reload", "--json"], "unix:/x", "--json goes with status only"),
    (["scale", "web"], "unix:/x", "scale needs"),
    (["pause", "web", "--max-workers", "3"], "unix:/x", "go with scale only"),
    (["scale", "web", "--max-workers", "many"], "unix:/x", "must be a number"),
    (["status", "--bogus"], "unix:/x", "unknown option"),
    (["status", "--timeout", "0"], "unix:/x", "--timeout"),
    (["status"], None, "no admin address"),
    (["status"], "*:9100", "invalid admin address"),
    (["status"], "127.0.0.1:0", "invalid admin address"),
    (["status"], "udp://127.0.0.1:9100", "invalid admin address"),
])
def test_usage_errors_exit_2(psup_bin, args, env, what):
    out = ctl(psup_bin, *args, env_admin=env)
    assert out.returncode == 2, out
    assert what in out.stderr, out.stderr


def test_help(psup_bin):
    out = ctl(psup_bin, "--help")
    assert out.returncode == 0 and out.stdout.startswith("Usage: psup ctl")
