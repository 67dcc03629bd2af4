# SPDX-License-Identifier: MIT
"""The configuration loader under hostile or unusual files (issue 9): a
large file reloads without stalling the supervisor, a FIFO is refused at
once, strings are RFC 8259 and UTF-8 and printed escaped, addresses that
can never bind are errors and binds that may fail are warnings, and a
reload looks again at what the file was resolved to (PATH, groups)."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import config, public_dir, service, talk, wait_for


def run(psup_bin, *args, timeout=20, **kw):
    return subprocess.run([psup_bin, *args], capture_output=True, timeout=timeout, **kw)


def check(psup_bin, tmp_path, text, **kw):
    """psup --check on a file holding text (str or bytes)."""
    path = tmp_path / "c.json"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return run(psup_bin, "--check", str(path), **kw)


def reload(p, cfg, timeout=10):
    """Write cfg, send SIGHUP, wait for the outcome; returns it."""
    before = len(p.events("reloaded")) + len(p.events("reload_rejected"))
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    wait_for(lambda: len(p.events("reloaded")) + len(p.events("reload_rejected")) > before,
             timeout, "the reload to finish")
    return (p.events("reloaded") + p.events("reload_rejected"))[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# 14. A large file reloads in time linear in its size, and the supervisor
# answers meanwhile.


def big_env(limit=1 << 20, reserve=400):
    """An env object of as many keys as a file of limit bytes holds."""
    env, size, i = {}, reserve, 0
    while size < limit - 16:
        key = f"K{i:x}"
        env[key] = "v"
        size += len(key) + 7  # "KEY":"v",
        i += 1
    return env


class Client(threading.Thread):
    """Connects again and again, and records when each answer arrived."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.done, self.errors = addr, [], []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                if talk(self.addr, b"", timeout=30) == b"ok\n":
                    self.done.append(time.monotonic())
            except OSError as e:
                self.errors.append(e)

    def longest_gap(self, start, end):
        times = [start] + [t for t in self.done if start < t < end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))


def test_reload_of_a_large_file_keeps_serving(psup, tmp_path):
    # max_per_source: every connection waits for the supervisor's verdict,
    # so a supervisor busy loading stops the service. The bulk of the file
    # is another service's env (a handler with it would be slow to start).
    svc = service("s", command="echo ok", max_per_source=1000)
    p = psup(config(svc))
    client = Client(p.addr("s"))
    client.start()
    try:
        wait_for(lambda: len(client.done) > 5, 10, "the client to be served")
        bulk = service("bulk", listen=[f"unix:{tmp_path}/bulk.sock"], env=big_env(),
                       pool={"min_spare": 1, "max_spare": 1})
        text = json.dumps(config(svc, bulk), separators=(",", ":"))
        assert 1_000_000 < len(text) <= 1 << 20
        sent = time.monotonic()
        rec = reload(p, text, timeout=60)
        assert (rec["event"], rec["added"], rec["unchanged"]) == ("reloaded", "bulk", 1)
        served = len(client.done)
        wait_for(lambda: len(client.done) > served + 5, 10, "the client to be served again")
        end = time.monotonic()
    finally:
        client.stop.set()
        client.join(35)
    assert not client.errors
    # The quadratic loader took over 60 s here; the linear one takes 0.2 s
    # in a release build, up to 3 s under the sanitizers on a busy machine.
    assert client.longest_gap(sent, end) < 15


# --------------------------------------------------------------------------
# 15. A configuration path that is not a regular file.


def test_check_refuses_a_fifo_at_once(psup_bin, tmp_path):
    fifo = tmp_path / "c.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    r = run(psup_bin, "--check", str(fifo), timeout=10)
    assert time.monotonic() - start < 5
    assert r.returncode == 1
    assert r.stderr.decode() == f"psup: cannot read {fifo}: not a regular file (a FIFO)\n"


def test_reload_from_a_fifo_is_rejected_and_psup_keeps_serving(psup):
    p = psup(config(service("s", command="echo ok")))
    addr = p.addr("s")
    p.expect_errors = True
    os.remove(p.config_path)
    os.mkfifo(p.config_path)
    p.send(signal.SIGHUP)
    rec = p.wait_event("reload_failed", timeout=5)[-1]
    assert rec["problem"] == f"cannot read {p.config_path}: not a regular file (a FIFO)"
    p.wait_event("reload_rejected", timeout=5)
    assert talk(addr) == b"ok\n"
    p.send(signal.SIGUSR1)
    p.wait_event("status", timeout=5)


# --------------------------------------------------------------------------
# 17. Strings: RFC 8259, UTF-8, no U+0000, printed escaped.


def test_check_rejects_nul_control_characters_and_invalid_utf8(psup_bin, tmp_path):
    base = '"name": "s", "listen": ["127.0.0.1:0"], "command": ["/bin/true"]'
    text = ('{"services": [{' + base + ', "deny": ["10.0.0.0/8\\u0000junk"], '
            '"user": "root\\u0000x", "cwd": "/tmp\\u0000/x", "env": {"A": "\x1b]0;pwned\x07", '
            '"B": "\xff"}}]}').encode("latin-1")
    r = check(psup_bin, tmp_path, text)
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.decode().splitlines() == [
        "psup: services[0].deny[0]: contains \\u0000, which would cut the string short",
        "psup: services[0].user: contains \\u0000, which would cut the string short",
        "psup: services[0].cwd: contains \\u0000, which would cut the string short",
        "psup: services[0].env.A: unescaped control character U+001B at line 1, column 176 "
        "(write \\u001b)",
        "psup: services[0].env.B: invalid UTF-8 (byte 0xFF) at line 1, column 195",
    ]


def test_check_prints_values_escaped(psup_bin, tmp_path):
    # Escaped in the file, so valid JSON: psup must not print them raw.
    cfg = config(service("s\x1b[2J", command=["/bin/true"]),
                 service("t", command=["/bin/true"], user="\x1b]0;x\x07\"q"))
    r = check(psup_bin, tmp_path, json.dumps(cfg))
    assert r.returncode == 1
    assert b"\x1b" not in r.stderr and b"\x07" not in r.stderr
    assert r.stderr.decode().splitlines() == [
        'psup: services[0].name: must be 1 to 64 characters from A-Z a-z 0-9 _ . -, '
        'got "s\\u001b[2J"',
        'psup: services[1].user: no such user "\\u001b]0;x\\u0007\\"q"',
    ]


def test_check_quotes_a_shell_command_and_odd_arguments(psup_bin, tmp_path):
    cfg = config(service("sh", listen=["127.0.0.1:7999"], command='echo "a b" \\ x'),
                 service("argv", listen=["127.0.0.1:7998"],
                         command=["/bin/echo", "a b", "", 'q"', "tab\there"]))
    r = check(psup_bin, tmp_path, json.dumps(cfg))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == ('sh: listen 127.0.0.1:7999; command /bin/sh -c "echo \\"a b\\" \\\\ x"; '
                        'pool 4..16, max 256')
    assert lines[1] == ('argv: listen 127.0.0.1:7998; command /bin/echo "a b" "" "q\\"" '
                        '"tab\\there"; pool 4..16, max 256')


# --------------------------------------------------------------------------
# 18. Addresses that can never bind are errors; binds that may fail are
# warnings; a reload that cannot move a listener says why.


def test_check_rejects_addresses_that_never_bind(psup_bin, tmp_path):
    port = free_port()
    cfg = config(service("a", listen=["unix:/", f"[::ffff:127.0.0.1]:{port}", "unix:@",
                                      f"unix:{tmp_path}/.."]),
                 service("b", listen=[f"*:{port + 1}", f"127.0.0.1:{port + 1}"]))
    r = check(psup_bin, tmp_path, json.dumps(cfg))
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == [
        'psup: services[0].listen[0]: invalid address "unix:/": the path names a directory, '
        'not a socket file',
        f'psup: services[0].listen[1]: invalid address "[::ffff:127.0.0.1]:{port}": an '
        f'IPv4-mapped IPv6 address cannot be bound; write 127.0.0.1:{port}',
        'psup: services[0].listen[2]: invalid address "unix:@": the abstract socket name after '
        '@ is empty',
        f'psup: services[0].listen[3]: invalid address "unix:{tmp_path}/..": the path names a '
        'directory, not a socket file',
        f'psup: services[1].listen[1]: 127.0.0.1:{port + 1} overlaps services[1].listen[0] '
        f'(*:{port + 1}): the kernel does not bind a wildcard address beside another of its '
        'family on the same port',
    ]
    cfg = config(service("a", listen=[f"unix:{tmp_path}"]))
    r = check(psup_bin, tmp_path, json.dumps(cfg))
    assert r.returncode == 1
    assert r.stderr.decode() == (f"psup: services[0].listen[0]: unix:{tmp_path} exists and is a "
                                 "directory, not a socket; psup removes only a stale socket\n")


def test_check_warns_about_binds_that_may_fail(psup_bin, tmp_path):
    cfg = config(service("a", listen=[f"unix:{tmp_path}/missing/a.sock", "127.0.0.1:80",
                                      f"unix:{tmp_path}/ok.sock"]))
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    # Without CAP_NET_BIND_SERVICE, as a root psup in a container may be.
    wrapper = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"]
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        wrapper = []
    r = subprocess.run(wrapper + [psup_bin, "--check", str(path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    warnings = [f"psup: warning: services[0].listen[0]: the directory {tmp_path}/missing does "
                "not exist: the socket cannot be created"]
    unprivileged = int(pathlib.Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if 80 < unprivileged:
        warnings.append(f"psup: warning: services[0].listen[1]: port 80 is privileged (below "
                        f"{unprivileged}) and psup lacks CAP_NET_BIND_SERVICE: binding it will "
                        "fail unless psup runs as root")
    assert r.stderr.splitlines() == warnings
    assert r.stdout.splitlines()[-1] == (f"{path}: OK, 1 service, {len(warnings)} warning"
                                         + ("s" if len(warnings) > 1 else ""))


def test_reload_that_moves_a_listener_to_a_wildcard_says_why(psup):
    port = free_port()
    p = psup(config(service("s", listen=[f"127.0.0.1:{port}"], command="echo ok")))
    p.expect_errors = True
    rec = reload(p, config(service("s", listen=[f"*:{port}"], command="echo ok")))
    assert rec["event"] == "reload_rejected"
    fail = p.events("bind_failed")[-1]
    assert fail["errno"] == "EADDRINUSE"
    assert fail["hint"] == (f"overlaps 127.0.0.1:{port}, which psup holds for service s until "
                            "the reload is applied: remove it in one reload, add the new address "
                            "in the next")
    assert talk(("127.0.0.1", port)) == b"ok\n"


# --------------------------------------------------------------------------
# 8. A reload looks again at what the file was resolved to.


def test_reload_picks_up_a_new_program_earlier_on_path(psup, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "prog").write_text("#!/bin/sh\necho second\n")
    (second / "prog").chmod(0o755)
    cfg = config(service("s", command=["prog"], env={"PATH": f"{first}:{second}"}))
    p = psup(cfg)
    addr = p.addr("s")
    assert talk(addr) == b"second\n"

    (first / "prog").write_text("#!/bin/sh\necho first\n")
    (first / "prog").chmod(0o755)
    rec = reload(p, cfg)
    assert (rec["event"], rec["changed"], rec["unchanged"]) == ("reloaded", "s", 0)
    # An idle worker of the old generation may take one more connection
    # while it is being retired.
    wait_for(lambda: talk(addr) == b"first\n", 10, "the new program")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                    reason="needs root to add a user and a group")
def test_reload_picks_up_new_supplementary_groups(psup):
    tag = uuid.uuid4().hex[:8]
    user, group = f"psupu{tag}", f"psupg{tag}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        try:
            gid = int(subprocess.run(["getent", "group", group], check=True, capture_output=True,
                                     text=True).stdout.split(":")[2])
            cfg = config(service("s", command=["/usr/bin/id", "-G"], user=user))
            p = psup(cfg)
            addr = p.addr("s")
            assert gid not in map(int, talk(addr).split())

            subprocess.run(["usermod", "-aG", group, user], check=True, capture_output=True)
            rec = reload(p, cfg)
            assert (rec["event"], rec["changed"]) == ("reloaded", "s")
            wait_for(lambda: gid in map(int, talk(addr).split()), 10, "the new group")
        finally:
            subprocess.run(["groupdel", group], capture_output=True)
    finally:
        subprocess.run(["userdel", user], capture_output=True)
