# SPDX-License-Identifier: MIT
"""Fixtures for system tests: start the real psup binary on loopback with a
configuration written to the test's temporary directory, wait for conditions
with deadlines (never a bare sleep), and always end every process a test
started, by pid."""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest


def pytest_addoption(parser):
    parser.addoption("--psup", required=True, help="path to the psup binary")
    parser.addoption("--helpers", required=True, help="directory of the helper programs")


@pytest.fixture(scope="session")
def psup_bin(request):
    return os.path.abspath(request.config.getoption("--psup"))


@pytest.fixture(scope="session")
def helpers(request):
    return pathlib.Path(request.config.getoption("--helpers")).resolve()


# --------------------------------------------------------------------------
# Waiting and processes.


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Poll cond() until it returns something true, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class LogTail:
    """Reads a growing JSON log from where it last stopped. A handler's
    stderr records are not parsed: a flood makes tens of megabytes of them,
    too many to parse while waiting for something else. They are counted,
    checked with a cheap predicate on the raw line, and the last one kept."""

    def __init__(self, path, stderr_ok=None):
        self.f = open(path, "rb")
        self.partial = b""
        self.kept = []
        self.stderr_count = 0
        self.stderr_bad = 0
        self.last_stderr = None
        self.stderr_ok = stderr_ok

    def poll(self):
        """Every record that is not a handler's stderr, so far."""
        data = self.partial + self.f.read()
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            if b'"event":"stderr"' in line:
                self.stderr_count += 1
                if self.stderr_ok and self.last_stderr is not None and \
                        not self.stderr_ok(self.last_stderr):
                    self.stderr_bad += 1
                self.last_stderr = line
            else:
                self.kept.append(json.loads(line))
        return self.kept

    def events(self, event, **match):
        return [r for r in self.poll()
                if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]

    def close(self):
        self.f.close()


def proc_stat(pid):
    """(state, ppid, pgid, comm) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), comm


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants_of(pid):
    out, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def zombies_of(pid):
    return [c for c in children_of(pid) if (proc_stat(c) or ("?",))[0] == "Z"]


def public_dir(prefix):
    """A new directory under /tmp that every user may enter (pytest's
    tmp_path is private to root). The caller removes it."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def public_copy(path, directory):
    """path copied into a public directory, executable by every user: a
    program run as nobody cannot reach a build tree in a private directory
    (a clone under /root, as on a CI machine)."""
    copy = pathlib.Path(directory) / pathlib.Path(path).name
    shutil.copy2(path, copy)
    copy.chmod(0o755)
    return copy


SPAWN_MODES = ["clone_vm", "fork"]


def spawn_env(mode):
    """psup's environment for one way of creating workers (docs/design.md):
    "clone_vm", the default, or "fork" (PSUP_SPAWN=fork)."""
    env = dict(os.environ)
    env.pop("PSUP_SPAWN", None)
    if mode == "fork":
        env["PSUP_SPAWN"] = "fork"
    return env


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# Clients.


def connect(addr, timeout=10.0):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def read_line(s, timeout=5.0):
    """The first line the server sends (or everything before EOF)."""
    s.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_all(s):
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def talk(addr, data=b"", timeout=10.0):
    """Connect, send data, half-close, read to EOF."""
    with connect(addr, timeout) as s:
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


def make_script(path, body="echo fine", interpreter="/bin/sh"):
    """An executable script at path: a handler a test can remove or break."""
    path.write_text(f"#!{interpreter}\n{body}\n")
    path.chmod(0o755)
    return path


def parse_report(text):
    """The output of tests/helpers/report: key=value lines, env:NAME=value."""
    report, env = {}, {}
    for line in text.decode(errors="replace").splitlines():
        if line.startswith("env:"):
            name, _, value = line[4:].partition("=")
            env[name] = value
        elif "=" in line:
            key, _, value = line.partition("=")
            report[key] = value
    report["env"] = env
    return report


# --------------------------------------------------------------------------
# psup.


class Psup:
    """One psup process started by a test."""

    def __init__(self, binary, tmp, config, args=(), env=None, preexec_fn=None,
                 wrapper=(), stdin=subprocess.DEVNULL, name="psup", pass_fds=()):
        self.binary = binary
        self.tmp = pathlib.Path(tmp)
        self.config_path = self.tmp / f"{name}.json"
        self.log_path = self.tmp / f"{name}.log"
        self.args = list(args)
        self.env = env
        self.preexec_fn = preexec_fn
        self.wrapper = list(wrapper)
        self.stdin = stdin
        self.pass_fds = tuple(pass_fds)
        self.proc = None
        self.expect_errors = False
        self.write_config(config)

    # configuration -------------------------------------------------------
    def write_config(self, config):
        text = config if isinstance(config, str) else json.dumps(config, indent=1)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    # process -------------------------------------------------------------
    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        cmd = self.wrapper + [self.binary, "--log-format", "json"] + self.args + [str(self.config_path)]
        self.proc = subprocess.Popen(cmd, stdin=self.stdin, stdout=self.log_file, stderr=self.log_file,
                                     env=self.env, preexec_fn=self.preexec_fn, cwd=self.tmp,
                                     pass_fds=self.pass_fds)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        """The supervisor's pid (the child of a wrapper such as unshare)."""
        if not self.wrapper:
            return self.proc.pid
        return wait_for(lambda: (children_of(self.proc.pid) or [None])[0], 5, "psup under wrapper")

    def exited(self):
        return self.proc.poll() is not None

    def wait_ready(self, timeout=15):
        def ready():
            if self.events("ready"):
                return True
            if self.exited():
                raise AssertionError(f"psup exited with {self.proc.returncode}:\n{self.log_text()}")
            return False
        wait_for(ready, timeout, "psup to be ready")

    def send(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout=20):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"psup did not exit within {timeout}s:\n{self.log_text()[-3000:]}")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        self.send(sig)
        return self.wait_exit(timeout)

    def cleanup(self):
        """End psup and everything below it, whatever state the test left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for pid in reversed(descendants_of(self.proc.pid)):
                kill_quietly(pid)
            kill_quietly(self.proc.pid)
            self.proc.wait(10)
        self.log_file.close()

    # log -------------------------------------------------------------------
    def sanitizer_report(self):
        """The log's tail if a sanitizer reported something, else None."""
        text = self.log_text()
        if "Sanitizer" in text or "runtime error:" in text:
            return f"sanitizer report in {self.log_path}:\n{text[-4000:]}"
        return None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def records(self):
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def events(self, event, **match):
        return [r for r in self.records()
                if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]

    def wait_event(self, event, count=1, timeout=10, **match):
        return wait_for(lambda: len(self.events(event, **match)) >= count and self.events(event, **match),
                        timeout, f"{count} x event={event} {match}")

    def addr(self, service, index=0):
        """The address of a service's listener as bound (port 0 resolved)."""
        addrs = [r["addr"] for r in self.events("listening", service=service)]
        text = addrs[index]
        if text.startswith("unix:"):
            return text[5:]
        host, _, port = text.rpartition(":")
        return (host.strip("[]").replace("*", "127.0.0.1"), int(port))

    # processes ---------------------------------------------------------------
    def children_named(self, comm):
        """Live children whose command is comm ((state, comm) read once: a
        child may exit between two reads of /proc)."""
        out = []
        for c in children_of(self.pid):
            st = proc_stat(c)
            if st is not None and st[0] != "Z" and st[3] == comm:
                out.append(c)
        return out

    def workers(self):
        """Live children that are still psup workers (not yet a handler)."""
        return self.children_named("psup")

    def handlers(self, comm):
        return self.children_named(comm)

    def zombies(self):
        return zombies_of(self.pid)


@pytest.fixture
def psup(psup_bin, tmp_path):
    """psup(config, **kw) starts psup (an instance of cls); every instance is
    ended at teardown, and its log must hold no error unless the test set
    expect_errors."""
    started = []

    def start(config, wait=True, cls=Psup, **kw):
        p = cls(psup_bin, tmp_path, config, name=f"psup{len(started)}", **kw)
        started.append(p)
        return p.start(wait)

    yield start
    problems = []
    for p in started:
        p.cleanup()
        if p.sanitizer_report():
            problems.append(p.sanitizer_report())
        errors = [r for r in p.records() if r.get("level") == "error"]
        if errors and not p.expect_errors:
            problems.append(f"unexpected error events: {errors[:5]}")
    assert not problems, "\n".join(problems)


def service(name="svc", listen=("127.0.0.1:0",), command=("/bin/cat",), **kw):
    """A service object for a configuration."""
    svc = {"name": name, "listen": list(listen), "command": command if isinstance(command, str) else list(command)}
    svc.update(kw)
    return svc


def config(*services, **top):
    cfg = {"services": list(services)}
    cfg.update(top)
    return cfg
