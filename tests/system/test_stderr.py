# SPDX-License-Identifier: MIT
"""The handler's stderr (spec/config.md 4.2, spec/handler.md): inherit,
null and log. In log mode the client never sees stderr; each line becomes an
event=stderr record with service, conn and pid, logged before that
connection's conn_end; long lines are split into numbered parts that
reassemble; concurrent handlers never tear a record; a last line without a
newline is flushed; a handler flooding stderr does not stall psup."""

import json
import os
import socket
import time

import pytest

from conftest import LogTail, config, connect, parse_report, read_all, service, talk, wait_for

PART = 3000  # bytes of a line per record (PSUP_ERRLOG_LINE)


def stderr_records(p, **match):
    return p.events("stderr", **match)


def continued(rec):
    return rec.get("continued") in (True, "true")


def reassemble(records):
    """{conn: [lines]} from stderr records, joining numbered parts. Checks
    that parts of a line are numbered 1, 2, ... and only the last of them
    is not `continued`."""
    lines, pending = {}, {}
    for rec in records:
        conn = rec["conn"]
        if "part" not in rec:
            assert conn not in pending, f"a whole line inside a split one: {rec}"
            assert not continued(rec)
            lines.setdefault(conn, []).append(rec["line"])
            continue
        parts = pending.setdefault(conn, [])
        assert rec["part"] == len(parts) + 1, f"part {rec['part']} after {len(parts)} parts"
        assert len(rec["line"].encode()) <= PART
        parts.append(rec["line"])
        if not continued(rec):
            lines.setdefault(conn, []).append("".join(pending.pop(conn)))
    assert not pending, f"lines left unfinished: {list(pending)}"
    return lines


def index_of(records, event, **match):
    return [i for i, r in enumerate(records)
            if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------
# The three modes.


def test_inherit_writes_to_psups_stderr(psup):
    p = psup(config(service("i", command='echo out; echo "inherited-$PSUP_CONN_ID" >&2'),
                    service("d", command='echo out; echo "default-$PSUP_CONN_ID" >&2', stderr="inherit")))
    assert talk(p.addr("i")) == b"out\n"
    assert talk(p.addr("d")) == b"out\n"
    text = wait_for(lambda: "default-" in p.log_text() and "inherited-" in p.log_text() and p.log_text(),
                    5, "the handlers' lines in psup's stderr")
    raw = text.splitlines()
    assert any(line.startswith("inherited-") for line in raw), "the line as the handler wrote it"
    assert not stderr_records(p), "inherit is not captured"


def test_null_discards(psup, helpers):
    p = psup(config(service("n", command='echo out; echo "discarded-line" >&2', stderr="null"),
                    service("r", command=[str(helpers / "report")], stderr="null")))
    assert talk(p.addr("n")) == b"out\n"
    p.wait_event("conn_end", service="n")
    fds = dict(i.split(":", 1) for i in parse_report(talk(p.addr("r")))["fds"].strip(",").split(","))
    assert fds["2"] == "/dev/null"
    assert "discarded-line" not in p.log_text()
    assert not stderr_records(p)


def test_log_mode_fd2_is_a_pipe_not_the_socket(psup, helpers):
    p = psup(config(service("r", command=[str(helpers / "report")], stderr="log")))
    fds = dict(i.split(":", 1) for i in parse_report(talk(p.addr("r")))["fds"].strip(",").split(","))
    assert sorted(fds) == ["0", "1", "2"]
    assert fds["2"].startswith("pipe:") and fds["2"] != fds["0"]


def test_log_mode_client_never_sees_stderr_and_log_has_service_conn_pid(psup):
    p = psup(config(service("lg", command='echo "conn=$PSUP_CONN_ID pid=$$"; echo "first to stderr" >&2; '
                                          'echo "second to stderr" >&2; echo bye', stderr="log")))
    out = talk(p.addr("lg")).decode()
    assert "stderr" not in out
    first, bye = out.splitlines()
    assert bye == "bye"
    conn, pid = (int(x.split("=")[1]) for x in first.split())
    recs = p.wait_event("stderr", 2, service="lg")
    assert [r["line"] for r in recs] == ["first to stderr", "second to stderr"]
    for r in recs:
        assert (r["service"], r["conn"], r["pid"]) == ("lg", conn, pid)
        assert "part" not in r and not continued(r)
    end = p.wait_event("conn_end", service="lg")[0]
    assert (end["conn"], end["pid"]) == (conn, pid)


def test_stderr_lines_come_before_their_conn_end(psup):
    p = psup(config(service("lg", command='for i in 1 2 3; do echo "line $i of $PSUP_CONN_ID" >&2; done',
                            stderr="log")))
    for _ in range(15):
        assert talk(p.addr("lg")) == b""
    ends = p.wait_event("conn_end", 15, service="lg")
    records = p.records()
    for end in ends:
        conn = end["conn"]
        mine = index_of(records, "stderr", conn=conn)
        assert [records[i]["line"] for i in mine] == [f"line {n} of {conn}" for n in (1, 2, 3)]
        assert max(mine) < index_of(records, "conn_end", conn=conn)[0], f"conn {conn}: stderr after conn_end"


def test_last_line_without_newline_is_flushed(psup):
    p = psup(config(service("lg", command="printf 'complete\\nno newline at the end' >&2", stderr="log")))
    assert talk(p.addr("lg")) == b""
    end = p.wait_event("conn_end", service="lg")[0]
    records = p.records()
    mine = index_of(records, "stderr", conn=end["conn"])
    assert [records[i]["line"] for i in mine] == ["complete", "no newline at the end"]
    assert max(mine) < index_of(records, "conn_end", conn=end["conn"])[0]


def test_empty_lines_and_special_characters(psup):
    p = psup(config(service("lg", command="printf '\\n\\ttab \"quoted\" back\\\\slash caf\\303\\251\\n' >&2",
                            stderr="log")))
    talk(p.addr("lg"))
    end = p.wait_event("conn_end", service="lg")[0]
    lines = reassemble(stderr_records(p, conn=end["conn"]))[end["conn"]]
    assert lines == ["", '\ttab "quoted" back\\slash caf\u00e9']


def test_arbitrary_bytes_still_make_valid_json_lines(psup):
    p = psup(config(service("lg", command="printf 'bin \\001\\033[31m \\377\\376 \\300 end\\n' >&2",
                            stderr="log")))
    talk(p.addr("lg"))
    end = p.wait_event("conn_end", service="lg")[0]
    for text in p.log_text().splitlines():
        json.loads(text)  # records() would skip a line that does not parse
    (rec,) = stderr_records(p, conn=end["conn"])
    assert rec["line"].startswith("bin \x01\x1b[31m ") and rec["line"].endswith(" end")


# --------------------------------------------------------------------------
# Long lines.


def pattern(length, seed):
    """A printable line of `length` bytes whose every part is distinct."""
    out, i = [], 0
    while sum(map(len, out)) < length:
        out.append(f"<{seed}:{i:06d}>")
        i += 1
    return "".join(out)[:length]


def test_long_lines_are_split_into_numbered_parts_and_reassemble(psup, tmp_path):
    lengths = [PART - 1, PART, PART + 1, 2 * PART, 7000, 20000]
    lines = [pattern(n, k) for k, n in enumerate(lengths)]
    (tmp_path / "long.txt").write_text("".join(line + "\n" for line in lines))
    p = psup(config(service("lg", command=f"cat {tmp_path / 'long.txt'} >&2", stderr="log")))
    assert talk(p.addr("lg")) == b""
    end = p.wait_event("conn_end", service="lg")[0]
    recs = stderr_records(p, conn=end["conn"])
    assert reassemble(recs)[end["conn"]] == lines
    # Lines up to PART bytes are one record; longer ones are parts.
    whole = [r for r in recs if "part" not in r]
    assert [len(r["line"]) for r in whole] == [PART - 1, PART]
    parts = [r for r in recs if "part" in r]
    expected_parts = sum(-(-n // PART) for n in lengths if n > PART)
    assert len(parts) == expected_parts
    for r in parts:
        assert r["service"] == "lg" and r["pid"] == end["pid"]
    assert [r["part"] for r in parts if not continued(r)] == [2, 2, 3, 7]


def test_long_line_of_characters_that_need_escaping_reassembles(psup, tmp_path):
    """A JSON-logging handler writes quotes and backslashes: a part of such a
    line must not be cut short by the log record's size."""
    line = ('{"key": "value \\"quoted\\" \\\\ back", "tab": "\t"} ' * 200)[:8000]
    (tmp_path / "esc.txt").write_text(line + "\n")
    p = psup(config(service("lg", command=f"cat {tmp_path / 'esc.txt'} >&2", stderr="log")))
    talk(p.addr("lg"))
    end = p.wait_event("conn_end", service="lg")[0]
    recs = stderr_records(p, conn=end["conn"])
    assert not [r for r in recs if r.get("truncated")], "a record was truncated"
    assert reassemble(recs)[end["conn"]] == [line]


def test_four_concurrent_handlers_never_tear_a_record(psup, tmp_path):
    payloads = {}
    for n in range(4):
        lines = []
        for i in range(24):
            lines.append(pattern(10000, f"h{n}l{i}") if i % 2 == 0 else f"short {n}.{i}")
        payloads[n] = lines
        (tmp_path / f"p{n}.txt").write_text("".join(line + "\n" for line in lines))
    p = psup(config(service("lg", command='echo "$PSUP_CONN_ID"; read name; cat "$name" >&2; echo done',
                            cwd=str(tmp_path), stderr="log", pool={"min_spare": 4, "max_spare": 4})))
    wait_for(lambda: len(p.workers()) == 4, 10, "4 idle workers")
    clients = [connect(p.addr("lg")) for _ in range(4)]
    # Every handler is running (it sent its id) before any of them writes.
    conn_of = {n: int(s.makefile("rb").readline()) for n, s in enumerate(clients)}
    for n, s in enumerate(clients):
        s.sendall(f"p{n}.txt\n".encode())
    for s in clients:
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b"done\n"
        s.close()
    p.wait_event("conn_end", 4, service="lg")
    for text in p.log_text().splitlines():
        json.loads(text)  # every line of the log is one whole JSON record
    lines = reassemble(stderr_records(p))
    assert sorted(lines) == sorted(conn_of.values())
    for n, conn in conn_of.items():
        assert lines[conn] == payloads[n], f"handler {n} (conn {conn})"


# --------------------------------------------------------------------------
# Flooding.


def test_a_handler_flooding_stderr_does_not_stall_psup(psup):
    line = "flooding stderr with a line of some length"
    p = psup(config(service("flood", command=f"yes '{line}' >&2", stderr="log", timeout=2.5),
                    service("echo"), kill_grace=1))
    echo, flood_addr = p.addr("echo"), p.addr("flood")  # before the log grows
    # Every stderr record but the last is the whole line, in one part.
    whole = f'"line":"{line}"'.encode()
    tail = LogTail(p.log_path, stderr_ok=lambda raw: whole in raw and b'"part"' not in raw)
    try:
        flood = connect(flood_addr)
        wait_for(lambda: os.path.getsize(p.log_path) > 1 << 20, 10, "the flood in the log")
        rtts = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            start = time.monotonic()
            payload = f"round trip {len(rtts)}".encode()
            assert talk(echo, payload, timeout=3) == payload
            rtts.append(time.monotonic() - start)
        tail.poll()
        assert tail.stderr_count > 10000, "the flood went on while we measured"
        assert len(rtts) >= 5, f"only {len(rtts)} round trips in 1.5 s"
        # Stalled, the supervisor would answer only once the flood ends
        # (2.5 s); a shared machine can make one round trip slow, not most.
        rtts.sort()
        assert rtts[len(rtts) // 2] < 0.25, f"median round trip {rtts[len(rtts) // 2]:.3f}s"
        assert rtts[-1] < 1.5, f"slowest round trip {rtts[-1]:.3f}s"
        # The flood ends by its timeout; every record of it was whole.
        flood.settimeout(15)
        assert read_all(flood) == b""
        flood.close()
        end = wait_for(lambda: tail.events("conn_end", service="flood"), 30,
                       "the flood's conn_end")[0]
        assert end["outcome"] == "timeout"
        assert tail.stderr_bad == 0
        # Killed in the middle of a write, the last line may be cut short.
        last = json.loads(tail.last_stderr)
        assert "part" not in last and line.startswith(last["line"])
    finally:
        tail.close()
