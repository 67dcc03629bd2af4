# SPDX-License-Identifier: MIT
"""Defects of the supervisor's loop and its log found in review (issue 9):
nothing a handler leaves behind stalls the loop; a failed start exits at
once whatever else runs beside psup; the last burst of refusals reports its
suppressed count; psup logs an exit record on every exit path."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import Psup, alive, config, connect, read_all, service, talk, wait_for


class Tail:
    """Reads a growing log from where it last stopped, keeping only the
    records that are not a handler's stderr (a flood would make the whole
    log too big to re-read at every poll)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.partial = b""
        self.kept = []

    def poll(self):
        data = self.partial + self.f.read()
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            if b'"event":"stderr"' not in line:
                self.kept.append(json.loads(line))
        return self.kept

    def events(self, event, **match):
        return [r for r in self.poll()
                if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]

    def close(self):
        self.f.close()


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
    tail = Tail(p.log_path)
    try:
        assert talk(bg, timeout=5) == b"started\n"
        wait_for(lambda: tail.events("conn_end", service="bg"), 10, "the handler's conn_end")
        wait_for(lambda: os.path.getsize(p.log_path) > 1 << 20, 10, "the background flood in the log")
        rtts = []
        for i in range(5):
            start = time.monotonic()
            assert talk(echo, f"ping {i}".encode(), timeout=5) == f"ping {i}".encode()
            rtts.append(time.monotonic() - start)
        # A shared machine may make one round trip slow; a stalled loop makes all.
        assert sorted(rtts)[len(rtts) // 2] < 0.1, f"round trips {rtts}"
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
