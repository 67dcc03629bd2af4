# SPDX-License-Identifier: MIT
"""SIGHUP reload (spec/pool.md, "Reload"): unchanged listeners keep their
socket, services are added, changed and removed without refusing a
connection, and a bad file or an address that cannot be bound leaves the
running configuration in place."""

import signal
import socket
import threading
import time

import pytest

from conftest import config, connect, read_all, service, talk, wait_for


def listener_inode(port):
    """The inode of the listening socket on 127.0.0.1:port (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return int(inode)
    return None


def reload(p, cfg, count=None):
    """Write cfg, send SIGHUP, wait for the outcome event."""
    before = len(p.events("reloaded")) + len(p.events("reload_rejected"))
    p.write_config(cfg)
    p.send(signal.SIGHUP)
    wait_for(lambda: len(p.events("reloaded")) + len(p.events("reload_rejected")) > before,
             10, "the reload to finish")


def test_unchanged_reload_keeps_socket_and_workers(psup):
    cfg = config(service("a", pool={"min_spare": 2, "max_spare": 2}))
    p = psup(cfg)
    port = p.addr("a")[1]
    inode = listener_inode(port)
    workers = wait_for(lambda: len(p.workers()) == 2 and sorted(p.workers()), 5, "workers")
    reload(p, cfg)
    rec = p.events("reloaded")[-1]
    assert (rec["unchanged"], rec["changed"], rec["listeners_opened"]) == (1, "", 0)
    assert listener_inode(port) == inode
    assert sorted(p.workers()) == workers
    assert talk(("127.0.0.1", port), b"same") == b"same"


def test_changed_service_gets_new_workers_and_running_handlers_keep_old_settings(psup):
    script = 'echo "first $GREETING"; read line; echo "second $GREETING"'
    p = psup(config(service("g", command=script, env={"GREETING": "old"},
                            pool={"min_spare": 2, "max_spare": 2})))
    port = p.addr("g")[1]
    old_workers = set(wait_for(lambda: len(p.workers()) == 2 and p.workers(), 5, "workers"))
    held = connect(("127.0.0.1", port))
    assert held.recv(100) == b"first old\n"
    reload(p, config(service("g", command=script, env={"GREETING": "new"},
                             pool={"min_spare": 2, "max_spare": 2})))
    assert p.events("reloaded")[-1]["changed"] == "g"
    wait_for(lambda: len(p.workers()) == 2 and not set(p.workers()) & old_workers, 5,
             "old idle workers retired, new ones idle")
    with connect(("127.0.0.1", port)) as s:
        assert s.recv(100) == b"first new\n"
    held.sendall(b"go\n")
    assert read_all(held) == b"second old\n", "a running handler keeps its settings"
    held.close()


def test_added_and_removed_services(psup):
    p = psup(config(service("keep"), service("gone", command="read x; echo bye")))
    gone_port = p.addr("gone")[1]
    running = connect(("127.0.0.1", gone_port))
    wait_for(lambda: p.handlers("sh"), 5, "the handler of the removed service")
    reload(p, config(service("keep"), service("new")))
    rec = p.events("reloaded")[-1]
    assert (rec["added"], rec["removed"], rec["listeners_opened"], rec["listeners_closed"]) == \
        ("new", "gone", 1, 1)
    assert talk(p.addr("new"), b"hi") == b"hi"
    with pytest.raises(ConnectionRefusedError):
        connect(("127.0.0.1", gone_port))
    running.sendall(b"x\n")
    assert read_all(running) == b"bye\n", "the removed service's handler finishes"
    running.close()


def test_invalid_file_keeps_running_configuration(psup):
    cfg = config(service("a"))
    p = psup(cfg)
    p.expect_errors = True
    reload(p, '{"services": [{"name": "a", "listen": ["127.0.0.1:0"], "comand": ["/bin/cat"]}],'
              ' "shutdown_timeout": -1}')
    problems = [r["problem"] for r in p.events("reload_failed")]
    assert problems == ['services[0].comand: unknown key; did you mean "command"?',
                        "services[0].command: missing (required)",
                        "shutdown_timeout: must be >= 0, got -1"]
    assert p.events("reload_rejected")[0]["problems"] == 3
    assert talk(p.addr("a"), b"still") == b"still"
    p.write_config(cfg)
    assert p.stop() == 0


def test_unbindable_address_keeps_running_configuration(psup):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        p = psup(config(service("a")))
        p.expect_errors = True
        reload(p, config(service("a"), service("b", [f"127.0.0.1:{taken.getsockname()[1]}"])))
        assert p.events("bind_failed")[0]["errno"] == "EADDRINUSE"
        assert "reloaded" not in [r["event"] for r in p.records()]
        assert talk(p.addr("a"), b"ok") == b"ok"
    finally:
        taken.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_changing_a_port_and_a_unix_path(psup, tmp_path):
    old_sock, new_sock = tmp_path / "old.sock", tmp_path / "new.sock"
    port = free_port()
    p = psup(config(service("a", [f"127.0.0.1:{port}", f"unix:{old_sock}"])))
    new_port = free_port()
    reload(p, config(service("a", [f"127.0.0.1:{new_port}", f"unix:{new_sock}"])))
    assert talk(("127.0.0.1", new_port), b"new port") == b"new port"
    assert talk(str(new_sock), b"new path") == b"new path"
    with pytest.raises(ConnectionRefusedError):
        connect(("127.0.0.1", port))
    assert not old_sock.exists()


class Load:
    """Client threads doing round trips until stopped, counting failures."""

    def __init__(self, addr, threads=4):
        self.addr, self.stop_flag = addr, threading.Event()
        self.ok, self.failed, self.errors = 0, 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def run(self, n):
        i = 0
        while not self.stop_flag.is_set():
            payload = f"{n}:{i}".encode()
            try:
                reply = talk(self.addr, payload, timeout=10)
                good = reply.endswith(payload)
            except OSError as e:
                good, reply = False, repr(e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(reply)
            i += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


def test_twenty_reloads_under_load_refuse_nothing(psup):
    port = free_port()

    def cfg(n):
        # Every reload changes the service (a new generation each time).
        return config(service("a", [f"127.0.0.1:{port}"], command=f"printf 'gen{n} '; cat",
                              pool={"min_spare": 3, "max_spare": 6}))

    p = psup(cfg(0))
    with Load(("127.0.0.1", port)) as load:
        wait_for(lambda: load.ok > 20, 10, "load running")
        for n in range(1, 21):
            reload(p, cfg(n))
            seen = load.ok
            wait_for(lambda: load.ok > seen + 3, 10, "traffic after the reload")
    assert load.failed == 0, load.errors[:5]
    assert len(p.events("reloaded")) == 20
    assert load.ok > 100
    assert talk(("127.0.0.1", port), b"x") == b"gen20 x"
    wait_for(lambda: not p.zombies(), 5, "no zombies")


def test_broken_file_under_load_refuses_nothing(psup):
    port = free_port()
    good = config(service("a", [f"127.0.0.1:{port}"]))
    p = psup(good)
    p.expect_errors = True
    with Load(("127.0.0.1", port)) as load:
        wait_for(lambda: load.ok > 20, 10, "load running")
        for _ in range(5):
            reload(p, '{"services": [')
            seen = load.ok
            wait_for(lambda: load.ok > seen + 3, 10, "traffic after the reload")
    assert load.failed == 0, load.errors[:5]
    assert len(p.events("reload_rejected")) == 5
    p.write_config(good)
