# SPDX-License-Identifier: MIT
"""Defects of the supervisor's loop and its log found in review (issue 9):
nothing a handler leaves behind stalls the loop; a failed start exits at
once whatever else runs beside psup; the last burst of refusals reports its
suppressed count; psup logs an exit record on every exit path."""

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LogTail, alive, config, connect, read_all, service, talk, wait_for


# --------------------------------------------------------------------------
# 1. A handler's background child that floods its stderr pipe.


def test_background_writer_on_a_logged_pipe_does_not_freeze_psup(psup):
    """The handler exits at once, leaving `yes` writing to its stderr pipe
    for ever: the pipe never empties, and psup must still answer verdicts,
    SIGUSR1 and SIGTERM."""
    p = psup(config(service("bg", command="yes >&2 & echo started", stderr="log"),
                    # max_per_source: every connection needs the supervisor's verdict.
                    service("echo", max_per_source=100),
                    kill_grace=1))
    echo, bg = p.addr("echo"), p.addr("bg")
    tail = LogTail(p.log_path)
    try:
        assert talk(bg, timeout=5) == b"started\n"
        wait_for(lambda: tail.events("conn_end", service="bg"), 10, "the handler's conn_end")
        wait_for(lambda: os.path.getsize(p.log_path) > 1 << 20, 10, "the background flood in the log")
        rtts = []
        for i in range(10):
            start = time.monotonic()
            assert talk(echo, f"ping {i}".encode(), timeout=5) == f"ping {i}".encode()
            rtts.append(time.monotonic() - start)
        # A shared machine may make some round trips slow; a loop that is
        # stalled, or turns slowly (64 KiB of "y" lines a turn took 0.4 s),
        # makes every one slow.
        assert min(rtts) < 0.1, f"round trips {rtts}"
        assert sorted(rtts)[len(rtts) // 2] < 0.5, f"round trips {rtts}"
        p.send(signal.SIGUSR1)
        wait_for(lambda: tail.events("status", service="echo"), 5, "status on SIGUSR1")
        p.send(signal.SIGTERM)
        assert p.wait_exit(10) == 0
        assert tail.events("exit", status=0)
    finally:
        tail.close()
        p.log_path.unlink()  # hundreds of megabytes


def test_crlf_lines_are_logged_without_the_carriage_return(psup):
    p = psup(config(service("lg", command="printf 'dos line\\r\\nbare cr\\rinside\\r\\n\\r\\nunix\\n' >&2",
                            stderr="log")))
    assert talk(p.addr("lg")) == b""
    end = p.wait_event("conn_end", service="lg")[0]
    lines = [r["line"] for r in p.events("stderr", conn=end["conn"])]
    assert lines == ["dos line", "bare cr\rinside", "", "unix"]


# --------------------------------------------------------------------------
# 4. A failed start, and the exit record of every exit.


def test_failed_start_does_not_wait_for_children_psup_did_not_make(psup, tmp_path):
    """`sh -c 'sleep ... & exec psup cfg'`: the sleep is psup's child too
    (exec keeps children), and must not hold up exit 3."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    pidfile = tmp_path / "sleeper"
    wrapper = ["sh", "-c", f'sleep 1000 & echo $! > {pidfile}; exec "$0" "$@"']
    sleeper = None
    try:
        begin = time.monotonic()
        p = psup(config(service(listen=[f"127.0.0.1:{holder.getsockname()[1]}"])), wait=False,
                 wrapper=wrapper)
        p.expect_errors = True
        sleeper = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "sleep's pid"))
        assert p.wait_exit(10) == 3
        assert time.monotonic() - begin < 5
        assert alive(sleeper), "psup leaves a child it did not make alone"
        assert p.events("bind_failed")
        assert p.events("exit", status=3), "the last record says how psup exits"
    finally:
        holder.close()
        if sleeper:
            os.kill(sleeper, signal.SIGKILL)


def test_invalid_configuration_logs_an_exit_record(psup_bin, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text('{"services": [{"name": "x"}]}')
    run = subprocess.run([psup_bin, "--log-format", "json", str(cfg)], capture_output=True, timeout=10)
    assert run.returncode == 1
    records = [json.loads(line) for line in run.stderr.decode().splitlines()]
    assert records[0]["event"] == "config_invalid"
    assert records[-1]["event"] == "exit" and records[-1]["status"] == 1


# --------------------------------------------------------------------------
# Orphans at shutdown: an immediate stop, and a kernel without the children
# file.


def test_immediate_stop_kills_an_orphan_that_comes_back_after_it(psup, tmp_path):
    """An escaped process is not psup's child yet when SIGQUIT arrives: it
    comes back when its parent (here a process in a session of its own,
    which outlives the handler by up to a second) exits. It must be killed
    then, not waited for, and the summary logged."""
    pidfile = tmp_path / "escaped"
    chain = f"setsid sh -c 'sleep 1000 & echo $! > {pidfile}; sleep 1' </dev/null >/dev/null 2>&1 &"
    p = psup(config(service(command=f"{chain} echo ok; sleep 1000")))
    s = connect(p.addr("svc"))
    assert s.recv(16) == b"ok\n"
    escaped = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "pid"))
    try:
        assert p.stop(signal.SIGQUIT, timeout=5) == 128 + signal.SIGQUIT
        assert not alive(escaped)
        assert p.events("summary", service="svc")
        assert p.events("exit", status=128 + signal.SIGQUIT)
    finally:
        s.close()
        if alive(escaped):
            os.kill(escaped, signal.SIGKILL)


PID1 = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child"]


def unshare_mount_available():
    try:
        return subprocess.run(PID1 + ["sh", "-c", "mount -t tmpfs none /proc/1/task"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(not unshare_mount_available(),
                                      reason="needs PID and mount namespaces (root)")


def hide_in_proc(p, path):
    """Mount a tmpfs over path in psup's mount namespace, once it runs (the
    sanitizers read /proc at start): /proc/1/task without its children
    file, as on a kernel without CONFIG_PROC_CHILDREN; /proc, no /proc."""
    subprocess.run(["nsenter", "-t", str(p.pid), "-m", "mount", "-t", "tmpfs", "none", path],
                   check=True, timeout=10)


def without_leak_check():
    """LeakSanitizer lists psup's threads in /proc/self/task, hidden here."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    return env


def escaping_service(tmp_path):
    return service(command=f"setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {tmp_path / 'escaped'}; "
                           "echo ok")


def start_hidden(psup, tmp_path, hide):
    """psup as PID 1 with an orphan that left its handler's group."""
    p = psup(config(escaping_service(tmp_path), kill_grace=0.5), wrapper=PID1, env=without_leak_check())
    hide_in_proc(p, hide)
    assert talk(p.addr("svc")) == b"ok\n"
    wait_for(lambda: (tmp_path / "escaped").exists(), 5, "the orphan's pid")
    return p


@needs_namespaces
def test_orphans_are_found_without_the_children_file(psup, tmp_path):
    p = start_hidden(psup, tmp_path, "/proc/1/task")
    begin = time.monotonic()
    assert p.stop(timeout=10) == 0
    assert time.monotonic() - begin < 5
    assert p.events("exit", status=0)
    assert not p.events("orphans_left"), "the orphan was found in /proc/PID/stat"


@needs_namespaces
def test_orphans_psup_cannot_list_are_waited_for_kill_grace(psup, tmp_path):
    p = start_hidden(psup, tmp_path, "/proc")
    begin = time.monotonic()
    assert p.stop(timeout=10) == 0
    elapsed = time.monotonic() - begin
    assert 0.4 < elapsed < 5, elapsed
    assert p.events("orphans_left")
    assert p.events("exit", status=0)


# --------------------------------------------------------------------------
# 18. The suppressed count of the last burst of refusals.


def logged_plus_suppressed(records):
    return len(records) + sum(r.get("suppressed", 0) for r in records)


def refuse(addr, n):
    for _ in range(n):
        assert talk(addr, timeout=5) == b""


def test_the_last_burst_of_denials_reports_its_suppressed_count(psup):
    p = psup(config(service(deny=["127.0.0.1"])))
    refuse(p.addr("svc"), 60)
    # Logged a few at once; the rest when the burst is over (a second later).
    wait_for(lambda: logged_plus_suppressed(p.events("denied")) == 60, 5,
             "denied lines and suppressed counts adding up to 60")
    denied = p.events("denied")
    assert len(denied) < 60 and denied[-1].get("suppressed")
    for d in denied:
        assert d["remote_ip"] == "127.0.0.1" and d["pid"] > 0
    assert p.stop() == 0
    assert logged_plus_suppressed(p.events("denied")) == 60, "no line twice"
    assert p.events("summary")[0]["denied"] == 60


def test_the_last_burst_of_rate_refusals_reports_its_suppressed_count(psup):
    p = psup(config(service(command="echo served", rate=0.1, rate_burst=1)))
    addr = p.addr("svc")
    assert talk(addr) == b"served\n"
    refuse(addr, 40)
    wait_for(lambda: logged_plus_suppressed(p.events("limited", reason="rate")) == 40, 5,
             "limited lines and suppressed counts adding up to 40")
    assert p.stop() == 0
    assert p.events("summary")[0]["limited_rate"] == 40


def test_suppressed_refusals_are_reported_at_exit(psup):
    p = psup(config(service(deny=["127.0.0.1"]), kill_grace=0.5))
    refuse(p.addr("svc"), 60)
    wait_for(lambda: p.events("denied"), 5, "the first denied lines")
    assert p.stop() == 0  # at once: before the burst's second is over
    assert logged_plus_suppressed(p.events("denied")) == 60


# --------------------------------------------------------------------------
# A non-blocking stderr: psup's records are not dropped silently.


def start_on_nonblocking_pipe(psup_bin, tmp_path, cfg):
    """psup with its stderr a pipe whose write end is O_NONBLOCK (as a
    parent sharing it may have set it). Returns (process, read end)."""
    import fcntl
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    r, w = os.pipe()

    def nonblocking_stderr():
        fcntl.fcntl(2, fcntl.F_SETFL, fcntl.fcntl(2, fcntl.F_GETFL) | os.O_NONBLOCK)

    proc = subprocess.Popen([psup_bin, "--log-format", "json", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=w, preexec_fn=nonblocking_stderr)
    os.close(w)
    return proc, r


class PipeLog:
    """Reads the records of a pipe in a thread, all the time but while
    stalled."""

    def __init__(self, fd):
        self.fd, self.partial, self.records = fd, b"", []
        self.reading = threading.Event()
        self.reading.set()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            if not self.reading.wait(0.05):
                continue
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            data = os.read(self.fd, 1 << 16)
            if not data:
                return
            with self.lock:
                *lines, self.partial = (self.partial + data).split(b"\n")
                self.records.extend(json.loads(line) for line in lines)

    def events(self, event):
        with self.lock:
            return [r for r in self.records if r.get("event") == event]

    def stall(self, seconds):
        self.reading.clear()
        time.sleep(seconds)  # the stalled reader is what is tested
        self.reading.set()

    def close(self):
        self.done.set()
        self.thread.join(5)
        os.close(self.fd)


LINES = 2000
FLOOD = f"head -c {LINES * 100} /dev/zero | tr '\\0' x | fold -w 100 >&2"


def run_stalled(psup_bin, tmp_path, stall):
    """A handler writes LINES lines of stderr (far more than a pipe holds)
    while the reader of psup's stderr stops reading for `stall` seconds."""
    proc, r = start_on_nonblocking_pipe(
        psup_bin, tmp_path, config(service("flood", command=FLOOD, stderr="log")))
    log = PipeLog(r)
    try:
        addr = ("127.0.0.1", int(wait_for(lambda: log.events("listening"), 10, "listening")[0]["addr"]
                                 .rpartition(":")[2]))
        wait_for(lambda: log.events("ready"), 10, "ready")
        log.reading.clear()
        s = connect(addr)
        s.shutdown(socket.SHUT_WR)
        log.stall(stall)
        assert read_all(s) == b""  # the handler is done
        s.close()
        if stall < 1:
            wait_for(lambda: log.events("conn_end"), 15, "the conn_end record")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        wait_for(lambda: log.events("exit"), 5, "the exit record")
        return log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_a_short_stall_of_a_nonblocking_stderr_loses_no_record(psup_bin, tmp_path):
    log = run_stalled(psup_bin, tmp_path, 0.3)
    assert len(log.events("stderr")) == LINES
    assert not log.events("log_dropped")
    assert log.events("exit")


def test_records_dropped_on_a_long_stall_are_counted(psup_bin, tmp_path):
    log = run_stalled(psup_bin, tmp_path, 2.5)
    dropped = log.events("log_dropped")
    assert dropped, "the records that could not be written are reported (at the latest at exit)"
    assert len(log.events("stderr")) + sum(d["records"] for d in dropped) >= LINES
    assert log.events("exit")


# --------------------------------------------------------------------------
# Reload reports.


def test_a_draining_service_that_comes_back_is_reported_as_added(psup):
    keep = service("keep")
    back = service("back", command="echo started; sleep 1000")
    p = psup(config(keep, back))
    s = connect(p.addr("back"))
    assert s.recv(16) == b"started\n"
    p.write_config(config(keep))
    p.send(signal.SIGHUP)
    first = p.wait_event("reloaded")[0]
    assert (first["removed"], first["added"], first["changed"]) == ("back", "", "")
    p.send(signal.SIGUSR1)
    assert p.wait_event("status", service="back")[0]["state"] == "draining"
    p.write_config(config(keep, back))
    p.send(signal.SIGHUP)
    second = p.wait_event("reloaded", 2)[1]
    assert (second["added"], second["changed"], second["removed"]) == ("back", "", "")
    assert second["unchanged"] == 1
    s.close()
