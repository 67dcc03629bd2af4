# SPDX-License-Identifier: MIT
"""Failures and backoff (spec/pool.md): a handler that cannot be executed
backs off exponentially without disturbing its siblings, is logged once per
burst, and recovers by itself once fixed, or at once on SIGHUP. Also the
per-service `timeout`."""

import os
import signal
import socket
import time

from conftest import alive, config, connect, make_script, read_all, service, talk, wait_for


def try_talk(addr, data=b"", timeout=10):
    try:
        return talk(addr, data, timeout)
    except OSError as e:
        return e


def test_removed_program_backs_off_and_recovers_by_itself(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(config(service("broken", command=[str(script)], pool={"min_spare": 2}),
                    service("sibling")))
    p.expect_errors = True
    broken, sibling = p.addr("broken"), p.addr("sibling")
    assert talk(broken) == b"fine\n"
    hidden = script.rename(tmp_path / "hidden.sh")
    # Idle workers that already checked the program fail at exec; new ones
    # fail before taking a connection and back off.
    for _ in range(3):
        try_talk(broken, timeout=1)
    p.wait_event("backoff", service="broken")
    begin = time.monotonic()
    while time.monotonic() - begin < 3:
        # The sibling serves promptly all along.
        t0 = time.monotonic()
        assert talk(sibling, b"ok") == b"ok"
        assert time.monotonic() - t0 < 1
        time.sleep(0.05)
    failures = p.events("worker_failed", service="broken") + p.events("exec_failed", service="broken")
    reasons = {(f.get("step"), f.get("errno")) for f in failures}
    assert ("program", "ENOENT") in reasons or ("exec", "ENOENT") in reasons
    assert len(failures) <= 3, "the first failure of each kind is logged, not every one"
    backoffs = p.events("backoff", service="broken")
    assert 1 <= len(backoffs) <= 8, f"{len(backoffs)} backoff lines in 3 s"
    delays = [b["delay"] for b in backoffs]
    assert delays == sorted(delays) and delays[-1] > delays[0]
    # Fixed: served again without any signal, within the capped delay.
    hidden.rename(script)
    wait_for(lambda: try_talk(broken, timeout=2) == b"fine\n", 15, "recovery by itself")
    p.wait_event("recovered", service="broken")
    assert not p.events("backoff", service="sibling")


def test_sighup_ends_the_backoff_at_once(psup, tmp_path):
    script = make_script(tmp_path / "handler.sh")
    p = psup(config(service("b", command=[str(script)], pool={"min_spare": 1, "max_spare": 1})))
    p.expect_errors = True
    hidden = script.rename(tmp_path / "hidden.sh")
    try_talk(p.addr("b"), timeout=1)
    # Wait until the delay is long, so that only the reload can explain a
    # prompt recovery.
    wait_for(lambda: any(b["delay"] >= 1.6 for b in p.events("backoff")), 20, "a long delay")
    hidden.rename(script)
    p.send(signal.SIGHUP)
    p.wait_event("reloaded")
    t0 = time.monotonic()
    assert talk(p.addr("b"), timeout=5) == b"fine\n"
    assert time.monotonic() - t0 < 1.5


def test_bad_interpreter_line_is_an_exec_failure_with_path_and_reason(psup, tmp_path):
    script = make_script(tmp_path / "bad.sh", interpreter="/nonexistent/interpreter")
    p = psup(config(service("bad", command=[str(script)])))
    p.expect_errors = True
    assert try_talk(p.addr("bad"), timeout=5) in (b"",) or isinstance(try_talk(p.addr("bad")), OSError)
    failure = p.wait_event("exec_failed", service="bad")[0]
    assert failure["program"] == str(script) and failure["errno"] == "ENOENT"
    end = p.wait_event("conn_end", service="bad")[0]
    assert end["outcome"] == "exec_failed" and end["status"] == 127


def test_permission_denied_after_start(psup, tmp_path):
    script = make_script(tmp_path / "h.sh")
    p = psup(config(service("perm", command=[str(script)])))
    p.expect_errors = True
    script.chmod(0o644)
    try_talk(p.addr("perm"), timeout=2)
    failures = p.wait_event("worker_failed", service="perm") if not p.events("exec_failed") \
        else p.events("exec_failed")
    assert failures[0]["errno"] == "EACCES"
    script.chmod(0o755)
    wait_for(lambda: try_talk(p.addr("perm"), timeout=2) == b"fine\n", 15, "recovery")


def test_handler_exiting_with_failure_is_not_a_service_failure(psup):
    p = psup(config(service("f", command="echo no; exit 3")))
    for _ in range(10):
        assert talk(p.addr("f")) == b"no\n"
    ends = p.wait_event("conn_end", 10)
    assert {e["status"] for e in ends} == {3}
    assert not p.events("backoff") and not p.events("worker_failed")


def test_timeout_stops_the_handler_group_and_closes_the_connection(psup, tmp_path):
    pidfile = tmp_path / "bg"
    p = psup(config(service("t", command=f"sleep 1000 & echo $! > {pidfile}; sleep 1000",
                            timeout=0.5)))
    s = connect(p.addr("t"))
    begin = time.monotonic()
    bg = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "bg pid"))
    assert read_all(s) == b""
    elapsed = time.monotonic() - begin
    s.close()
    assert 0.4 <= elapsed < 3, elapsed
    event = p.wait_event("timeout", service="t")[0]
    assert event["key"] == "timeout" and event["limit"] == 0.5
    end = p.wait_event("conn_end", service="t")[0]
    assert end["outcome"] == "timeout" and end["signal"] == "TERM"
    wait_for(lambda: not alive(bg), 5, "the handler's background child to die too")
    assert p.events("summary") == [] and p.stop() == 0
    assert p.events("summary")[0]["timed_out"] == 1


def test_timeout_escalates_to_kill(psup):
    p = psup(config(service("t", command="trap '' TERM; sleep 1000", timeout=0.3), kill_grace=0.3))
    with connect(p.addr("t")) as s:
        assert read_all(s) == b""
    end = p.wait_event("conn_end", service="t")[0]
    assert end["signal"] == "KILL" and end["outcome"] == "timeout"
    assert 500 <= end["duration_ms"] < 3000


def test_handler_finishing_in_time_is_not_touched(psup):
    p = psup(config(service("t", command="sleep 0.2; echo done", timeout=5)))
    assert talk(p.addr("t")) == b"done\n"
    assert p.wait_event("conn_end")[0]["status"] == 0
    assert not p.events("timeout")
