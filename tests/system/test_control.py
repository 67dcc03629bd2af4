# SPDX-License-Identifier: MIT
"""Control (spec/control.md) against a running psup: psup ctl's status,
metrics and reload (a broken file's problems printed, exit 1), pause and
resume seen through /status, /readyz and real clients (a client waits in
the backlog and is served on resume), scale until the next reload, the
strict reading of the requests, 403 on a TCP admin listener, 409 once a
stop has begun, /readyz through shutdown_delay, and the log of each
action."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import config, connect, read_all, service, talk, wait_for
from test_admin import admin_addr, get, http, status_doc

LINE = "read x; echo \"served $x\""


def with_unix_admin(tmp_path, *services, tcp=False, **top):
    listen = [f"unix:{tmp_path}/admin.sock"] + (["127.0.0.1:0"] if tcp else [])
    return config(*services, admin={"listen": listen}, **top)


def ctl(psup_bin, admin, *args, timeout=30):
    env = dict(os.environ)
    env.pop("PSUP_ADMIN", None)
    if admin is not None:
        env["PSUP_ADMIN"] = admin if isinstance(admin, str) else f"{admin[0]}:{admin[1]}"
    return subprocess.run([psup_bin, "ctl", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def unix(path):
    return f"unix:{path}"


def service_doc(addr, name):
    return next(s for s in status_doc(addr)["services"] if s["name"] == name)


# --------------------------------------------------------------------------
# status, metrics


def test_ctl_status_and_metrics(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("echo"), service("other", pool={"max_workers": 3})))
    sock = admin_addr(p)
    out = ctl(psup_bin, unix(sock), "status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"psup ") and f"pid {p.pid}," in lines[0] and lines[0].endswith(", running, ready")
    table = [l.split() for l in lines[3:]]
    assert table[0][:3] == ["SERVICE", "STATE", "IDLE"]
    assert [row[0] for row in table[1:]] == ["echo", "other"]
    assert table[2][1] == "serving" and table[2][4] == "3"
    assert table[1][-1] == "{}:{}".format(*p.addr("echo"))

    out = ctl(psup_bin, unix(sock), "status", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["pid"] == p.pid

    out = ctl(psup_bin, unix(sock), "metrics")
    assert out.returncode == 0
    assert 'psup_build_info{version="' in out.stdout


def test_status_works_on_tcp_and_control_is_refused_there(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("echo"), tcp=True))
    tcp = admin_addr(p, 1)
    assert ctl(psup_bin, tcp, "status").returncode == 0
    for args in (["reload"], ["pause", "echo"], ["resume", "echo"], ["scale", "echo", "--min-spare", "1"]):
        out = ctl(psup_bin, tcp, *args)
        assert out.returncode == 1, args
        assert "403" in out.stderr and "unix: admin listeners only" in out.stderr, out.stderr
    status, _, _ = http(tcp, "/pause?service=echo", method="POST")
    assert status == 403
    assert not p.events("paused") and not p.events("reload_requested")
    assert service_doc(tcp, "echo")["paused"] is False


# --------------------------------------------------------------------------
# reload


def test_ctl_reload_applies_and_a_broken_file_prints_its_problems(psup, psup_bin, tmp_path):
    cfg = with_unix_admin(tmp_path, service("echo"))
    p = psup(cfg)
    p.expect_errors = True  # the rejected reload
    sock = admin_addr(p)
    cfg["services"].append(service("added"))
    p.write_config(cfg)
    out = ctl(psup_bin, unix(sock), "reload")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == [f"reloaded {p.config_path}", "added: added"]
    assert p.events("reloaded", added="added")
    requested = p.events("reload_requested")[0]
    assert requested["remote_uid"] == os.getuid()

    broken = dict(cfg)
    broken["services"] = cfg["services"] + [service("bad", command=["/nonexistent/prog"]),
                                            service("bad2", pool={"min_spare": 5, "max_spare": 2})]
    p.write_config(broken)
    out = ctl(psup_bin, unix(sock), "reload")
    assert out.returncode == 1
    assert out.stdout == ""
    err = out.stderr.splitlines()
    assert "is invalid" in err[0]
    assert any(l.startswith("services[2].command") for l in err[1:]), err
    assert any(l == "services[3].pool.max_spare: must be >= min_spare (5)" for l in err[1:]), err
    assert p.events("reload_rejected")
    # psup runs on with what it had.
    assert talk(p.addr("added"), b"x") == b"x"

    p.write_config("{ nope")
    status, headers, body = http(sock, "/reload", method="POST")
    assert status == 422 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["result"] == "invalid" and len(doc["problems"]) == 1
    assert "invalid JSON" in doc["problems"][0]


def test_a_control_reload_is_announced_to_notify_socket(psup, psup_bin, tmp_path):
    from test_notify import Receiver, notify_env
    r = Receiver(str(tmp_path / "notify.sock"))
    try:
        p = psup(with_unix_admin(tmp_path, service("echo")), env=notify_env(r))
        r.wait_states(1)
        assert ctl(psup_bin, unix(admin_addr(p)), "reload").returncode == 0
        states = r.wait_states(3)
        assert states[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert states[2].startswith("READY=1\nSTATUS=Reloaded: ")
    finally:
        r.close()


# --------------------------------------------------------------------------
# pause, resume


def test_a_paused_service_keeps_its_clients_waiting_until_resumed(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("svc", command=LINE), service("other")))
    sock = admin_addr(p)
    assert get(sock, "/readyz") == (200, "ok\n")
    out = ctl(psup_bin, unix(sock), "pause", "svc")
    assert (out.returncode, out.stdout) == (0, "svc: paused\n"), out.stderr
    wait_for(lambda: service_doc(sock, "svc")["pool"]["idle"] == 0, 5, "the idle workers to retire")
    doc = service_doc(sock, "svc")
    assert doc["paused"] is True and doc["ready"] is False
    assert get(sock, "/readyz") == (503, "service svc is paused\n")
    table = ctl(psup_bin, unix(sock), "status").stdout
    assert any(l.split()[:2] == ["svc", "paused"] for l in table.splitlines())
    paused = p.events("paused", service="svc")[0]
    assert paused["changed"] is True and paused["remote_uid"] == os.getuid()
    p.send(signal.SIGUSR1)
    assert p.wait_event("status", service="svc")[0]["paused"] is True
    assert "paused" not in p.wait_event("status", service="other")[0]

    # A client connects (the kernel queues it) and is not served...
    client = connect(p.addr("svc"))
    client.sendall(b"waited\n")
    client.settimeout(0.5)
    with pytest.raises(socket.timeout):
        client.recv(100)
    # ...while the other service serves on.
    assert talk(p.addr("other"), b"o") == b"o"
    assert ctl(psup_bin, unix(sock), "pause", "svc").stdout == "svc: already paused\n"

    out = ctl(psup_bin, unix(sock), "resume", "svc")
    assert (out.returncode, out.stdout) == (0, "svc: serving\n")
    client.settimeout(10)
    assert read_all(client) == b"served waited\n"
    client.close()
    assert get(sock, "/readyz") == (200, "ok\n")
    assert p.events("resumed", service="svc", changed=True)


def test_a_pause_lasts_through_a_reload(psup, psup_bin, tmp_path):
    cfg = with_unix_admin(tmp_path, service("svc", pool={"min_spare": 1, "max_spare": 1}))
    p = psup(cfg)
    sock = admin_addr(p)
    assert ctl(psup_bin, unix(sock), "pause", "svc").returncode == 0
    cfg["services"][0]["pool"] = {"min_spare": 2, "max_spare": 2}
    p.write_config(cfg)
    assert ctl(psup_bin, unix(sock), "reload").returncode == 0
    doc = service_doc(sock, "svc")
    assert doc["paused"] is True and doc["pool"]["min_spare"] == 2
    time.sleep(0.3)  # a bounded "must not happen": no spare starts
    assert service_doc(sock, "svc")["pool"]["idle"] == 0


def test_a_paused_service_is_not_served_at_the_stop(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("svc", command=LINE)))
    assert ctl(psup_bin, unix(admin_addr(p)), "pause", "svc").returncode == 0
    wait_for(lambda: not p.workers(), 5, "the idle workers to retire")
    client = connect(p.addr("svc"))
    client.sendall(b"x\n")
    p.send(signal.SIGTERM)
    assert p.wait_exit() == 0
    client.settimeout(5)
    try:
        assert read_all(client) == b""
    except ConnectionResetError:
        pass  # reset as the listener closed: documented
    client.close()
    assert not p.events("conn_end")


# --------------------------------------------------------------------------
# scale


def test_scale_holds_until_the_next_reload(psup, psup_bin, tmp_path):
    cfg = with_unix_admin(tmp_path, service("svc", pool={"min_spare": 1, "max_spare": 1, "max_workers": 4}))
    p = psup(cfg)
    sock = admin_addr(p)
    out = ctl(psup_bin, unix(sock), "scale", "svc", "--min-spare", "3", "--max-spare", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "svc: min_spare 3, max_spare 3, max_workers 4 until the next reload\n"
    wait_for(lambda: service_doc(sock, "svc")["pool"]["idle"] == 3, 5, "three idle workers")
    assert service_doc(sock, "svc")["pool"]["min_spare"] == 3
    assert p.events("scaled", service="svc", min_spare=3, max_spare=3, max_workers=4)

    out = ctl(psup_bin, unix(sock), "scale", "svc", "--max-workers", "2")
    assert out.returncode == 1
    assert out.stderr == "psup ctl: 400: max_workers: must be >= max_spare (3), got 2\n"
    out = ctl(psup_bin, unix(sock), "scale", "nope", "--max-workers", "2")
    assert (out.returncode, out.stderr) == (1, "psup ctl: 404: no service named \"nope\"\n")

    assert ctl(psup_bin, unix(sock), "reload").returncode == 0
    wait_for(lambda: service_doc(sock, "svc")["pool"]["idle"] == 1, 5, "the file's bounds again")
    assert service_doc(sock, "svc")["pool"]["min_spare"] == 1


def test_scale_max_workers_is_the_concurrency(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("svc", command=LINE,
                                               pool={"min_spare": 1, "max_spare": 1, "max_workers": 4})))
    sock = admin_addr(p)
    assert ctl(psup_bin, unix(sock), "scale", "svc", "--max-workers", "1").returncode == 0
    first = connect(p.addr("svc"))
    wait_for(lambda: service_doc(sock, "svc")["pool"]["busy"] == 1, 5, "one busy")
    second = connect(p.addr("svc"))
    second.sendall(b"2\n")
    second.settimeout(0.5)
    with pytest.raises(socket.timeout):
        second.recv(100)  # waits: one handler at most
    first.sendall(b"1\n")
    assert read_all(first) == b"served 1\n"
    second.settimeout(10)
    assert read_all(second) == b"served 2\n"
    first.close()
    second.close()


# --------------------------------------------------------------------------
# The requests themselves.


@pytest.mark.parametrize("target,body,status,error", [
    ("/pause", b"", 400, "service: missing (required)"),
    ("/pause?service=svc&bogus=1", b"", 400, "unknown parameter \"bogus\""),
    ("/pause?service=svc&service=svc", b"", 400, "service: given twice"),
    ("/pause?service", b"", 400, "service: needs a value"),
    ("/pause?service=s%76c", b"", 400, "service: expected a service name"),
    ("/pause?service=svc&", b"", 400, "an empty parameter"),
    ("/pause?service=svc", b"x", 400, "control requests take their parameters in the query string"),
    ("/scale?service=svc", b"", 400, "scale needs min_spare, max_spare or max_workers"),
    ("/scale?service=svc&max_workers=-1", b"", 400, "max_workers: expected a number"),
    ("/scale?service=svc&max_workers=0", b"", 400, "max_workers: must be between 1 and 65536, got 0"),
    ("/scale?service=svc&max_workers=1234567890", b"", 400, "max_workers: expected a number up to 65536"),
    ("/reload?now=1", b"", 400, "unknown parameter \"now\""),
    ("/pause?service=nope", b"", 404, "no service named \"nope\""),
])
def test_requests_are_read_strictly(psup, tmp_path, target, body, status, error):
    p = psup(with_unix_admin(tmp_path, service("svc")))
    got, headers, answer = http(admin_addr(p), target, method="POST", body=body)
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    assert json.loads(answer)["error"].startswith(error), answer
    assert not p.events("paused") and not p.events("scaled") and not p.events("reloaded")


def test_get_on_a_control_path_is_405(psup, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("svc")))
    status, headers, _ = http(admin_addr(p), "/reload")
    assert status == 405 and headers["allow"] == "POST"


# --------------------------------------------------------------------------
# The stop.


def test_readyz_and_control_through_shutdown_delay(psup, psup_bin, tmp_path):
    p = psup(with_unix_admin(tmp_path, service("echo"), service("held", command=LINE),
                             shutdown_delay=2))
    sock = admin_addr(p)
    held = connect(p.addr("held"))  # keeps psup in its stop after the delay
    wait_for(lambda: service_doc(sock, "held")["pool"]["busy"] == 1, 5, "the held handler")
    p.send(signal.SIGTERM)
    p.wait_event("shutdown")
    assert get(sock, "/readyz") == (503, "psup is draining before it shuts down\n")
    assert status_doc(sock)["state"] == "draining"
    assert talk(p.addr("echo"), b"still") == b"still"
    for args in (["reload"], ["pause", "echo"], ["scale", "echo", "--max-workers", "9"]):
        out = ctl(psup_bin, unix(sock), *args)
        assert out.returncode == 1 and "409: psup is shutting down" in out.stderr, out.stderr
    p.wait_event("shutdown_delay_over")
    assert get(sock, "/readyz") == (503, "psup is shutting down\n")
    held.sendall(b"bye\n")
    assert read_all(held) == b"served bye\n"
    held.close()
    assert p.wait_exit() == 0
