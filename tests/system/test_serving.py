# SPDX-License-Identifier: MIT
"""Serving: echo round trips over IPv4, IPv6 and unix sockets with concurrent
clients, several listeners in one pool, port 0, stale unix sockets."""

import concurrent.futures
import os
import socket

from conftest import config, service, talk, wait_for


def echo_many(addr, clients=8, per_client=40):
    def one_client(n):
        for i in range(per_client):
            payload = f"client {n} message {i}\n".encode() * (1 + i % 50)
            assert talk(addr, payload) == payload
        return per_client

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(one_client, range(clients)))


def test_echo_round_trips_over_ipv4_ipv6_and_unix(psup, tmp_path):
    sock = str(tmp_path / "echo.sock")
    p = psup(config(service("echo", ["127.0.0.1:0", "[::1]:0", f"unix:{sock}"])))
    for index in range(3):
        assert echo_many(p.addr("echo", index)) == 320
    assert len(p.events("conn_end", service="echo")) >= 960 - 8
    wait_for(lambda: not p.zombies(), 5, "no zombies")
    assert p.stop() == 0


def test_wildcard_listener_takes_both_families(psup):
    p = psup(config(service("any", ["*:0"])))
    port = p.addr("any")[1]
    assert talk(("127.0.0.1", port), b"v4") == b"v4"
    assert talk(("::1", port), b"v6") == b"v6"
    ends = p.wait_event("conn_end", 2, service="any")
    assert {e["remote_ip"] for e in ends} == {"127.0.0.1", "::1"}


def test_port_zero_is_logged_with_the_real_port(psup):
    p = psup(config(service("a"), service("b")))
    a, b = p.addr("a"), p.addr("b")
    assert a[1] != 0 and b[1] != 0 and a != b
    assert talk(a, b"x") == b"x" and talk(b, b"y") == b"y"


def test_stale_unix_socket_file_is_replaced(psup, tmp_path):
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a crashed run leaves
    p = psup(config(service("u", [f"unix:{path}"])))
    assert talk(path, b"alive") == b"alive"
    assert p.stop() == 0
    assert not os.path.exists(path), "psup removes its socket file at exit"


def test_unix_socket_in_use_by_another_process_is_an_error(psup, tmp_path):
    path = str(tmp_path / "live.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen()
    try:
        p = psup(config(service("u", [f"unix:{path}"])), wait=False)
        p.expect_errors = True
        assert p.wait_exit() == 3
        failure = p.events("bind_failed")[0]
        assert failure["addr"] == f"unix:{path}" and "another process" in failure["step"]
        assert os.path.exists(path)
    finally:
        live.close()


def test_path_that_is_not_a_socket_is_left_alone(psup, tmp_path):
    path = tmp_path / "regular"
    path.write_text("precious")
    p = psup(config(service("u", [f"unix:{path}"])), wait=False)
    p.expect_errors = True
    # Found when the file is loaded (spec/config.md, "listen"); the
    # listener refuses it too, should it appear between load and bind.
    assert p.wait_exit() == 1
    assert p.events("config_invalid")[0]["problem"] == (
        f"services[0].listen[0]: unix:{path} exists and is a regular file, not a socket; "
        "psup removes only a stale socket")
    assert path.read_text() == "precious"


def test_bind_failure_names_address_and_reason(psup):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        p = psup(config(service("x", [f"127.0.0.1:{port}"])), wait=False)
        p.expect_errors = True
        assert p.wait_exit() == 3
        failure = p.events("bind_failed")[0]
        assert failure["addr"] == f"127.0.0.1:{port}"
        assert failure["errno"] == "EADDRINUSE" and failure["step"] == "bind"
        assert not p.events("ready")
    finally:
        taken.close()


def test_large_transfer_both_ways(psup):
    p = psup(config(service("echo")))
    payload = os.urandom(4 * 1024 * 1024)
    assert talk(p.addr("echo"), payload, timeout=30) == payload


def test_text_log_format_is_logfmt(psup_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "c.json"
    cfg.write_text('{"services":[{"name":"t","listen":["127.0.0.1:0"],"command":["/bin/cat"]}]}')
    log = tmp_path / "log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([psup_bin, str(cfg)], stdout=f, stderr=f)
    try:
        wait_for(lambda: "event=ready" in log.read_text(), 10, "ready")
        line = [l for l in log.read_text().splitlines() if "event=listening" in l][0]
        assert line.startswith("ts=") and " level=info event=listening service=t addr=127.0.0.1:" in line
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
