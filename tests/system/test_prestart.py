# SPDX-License-Identifier: MIT
"""Prestart (spec/prestart.md): the handler's program exec'd before its
connection with psup's library, which takes the connection in the program's
process. The handler contract of spec/handler.md, checked from inside
prestarted handlers (a C program and a shell script); what is refused at
load; the handshake; reloads, shutdown, workers killed from outside; the end
of a reply."""

import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import (SPAWN_MODES, config, connect, parse_report, public_copy, public_dir,
                      read_all, service, spawn_env, talk, wait_for)

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def hostile_parent():
    """Ignored and blocked signals psup may inherit (as in test_handler.py),
    and a session of its own, without a terminal."""
    os.setsid()
    for sig in (signal.SIGPIPE, signal.SIGUSR2, signal.SIGTTOU, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM, signal.SIGCHLD})


def prestarted(p):
    """psup's children that are prestarted workers waiting for a connection:
    they still hold the plan's memfd, which a handler never does."""
    out = []
    for pid in p.children_named_any():
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith("/memfd:psup-plan") for link in links):
            out.append(pid)
    return sorted(out)


def wait_prestarted(p, n, timeout=10):
    return wait_for(lambda: len(prestarted(p)) >= n and prestarted(p), timeout,
                    f"{n} prestarted workers")


@pytest.fixture(autouse=True)
def live_children(monkeypatch):
    """Psup.children_named_any: every live child, whatever its command."""
    from conftest import Psup, children_of, proc_stat

    def children_named_any(self):
        return [c for c in children_of(self.pid) if (proc_stat(c) or ("Z",))[0] != "Z"]

    monkeypatch.setattr(Psup, "children_named_any", children_named_any, raising=False)


SHELL_REPORT = ('echo "pid=$$"; echo "ppid=$PPID"; echo "pgid=$(ps -o pgid= -p $$ | tr -d \' \')"; '
                'echo "fds=$(ls /proc/$$/fd | tr \'\\n\' \',\')"; '
                'grep -E "^(SigBlk|SigIgn|SigCgt):" /proc/$$/status | tr -d "\\t" | tr ":" "="; '
                'env | sed "s/^/env:/"; echo "child_env=$(env | grep -c -e ^LD_PRELOAD= -e ^PSUP_PRESTART=)"; '
                'echo end=1')


@pytest.fixture(params=["program", "shell"])
def kind(request):
    return request.param


def contract_service(helpers, kind, name="r", **kw):
    command = [str(helpers / "report"), "child"] if kind == "program" else SHELL_REPORT
    return service(name, ["127.0.0.1:0", "[::1]:0"], command, prestart=True,
                   pool={"min_spare": 2, "max_spare": 4}, **kw)


def report(p, name="r", index=0):
    with connect(p.addr(name, index)) as s:
        s.shutdown(socket.SHUT_WR)
        port = s.getsockname()[1]
        r = parse_report(read_all(s))
    assert r.get("end") == "1", f"the report did not run to its end: {r}"
    r["client_port"] = port
    return r


# --------------------------------------------------------------------------
# The handler contract, from inside a prestarted handler.


@pytest.mark.parametrize("mode", SPAWN_MODES)
def test_the_handler_is_the_process_that_was_prestarted(psup, helpers, kind, mode):
    p = psup(config(contract_service(helpers, kind)), env=spawn_env(mode),
             preexec_fn=hostile_parent)
    before = wait_prestarted(p, 2)
    r = report(p)
    assert int(r["pid"]) in before, "the handler is a worker that was waiting, exec'd already"
    # Its own group, psup its parent; fds 0 and 1 the connection, 2 psup's
    # stderr, nothing else; default signals and an empty mask at main.
    assert int(r["pgid"]) == int(r["pid"]) and int(r["ppid"]) == p.pid
    if kind == "program":
        fds = dict(item.split(":", 1) for item in r["fds"].strip(",").split(","))
        assert sorted(fds) == ["0", "1", "2"], r["fds"]
        assert fds["0"].startswith("socket:") and fds["0"] == fds["1"]
        assert fds["2"] == str(p.log_path)
        assert r["main_envp"] == "environ", "main's third argument is the connection's environment"
    else:
        # The shell's fds: 0-2, and the pipe of the $(...) that listed them.
        fds = sorted(int(fd) for fd in r["fds"].strip(",").split(","))
        assert fds[:3] == [0, 1, 2] and len(fds) <= 4, r["fds"]
    assert r["child_env"] == "0", "the handler's children see neither LD_PRELOAD nor psup's"
    assert (r["SigBlk"], r["SigIgn"]) == ("0000000000000000",) * 2
    if kind == "program":
        # (A shell catches SIGCHLD and SIGINT itself once it runs commands.)
        assert r["SigCgt"] == "0000000000000000"


def test_every_connection_gets_its_own_environment(psup, helpers, kind):
    p = psup(config(contract_service(helpers, kind)))
    wait_prestarted(p, 2)
    first, second = report(p), report(p, index=1)
    for r, local in ((first, "127.0.0.1"), (second, "::1")):
        env = r["env"]
        assert env["PROTO"] == "TCP" and env["TCPLOCALIP"] == local
        assert env["TCPREMOTEPORT"] == str(r["client_port"]) == env["REMOTE_PORT"]
        assert env["TCPCONNNUM"] == "1" and env["PSUP_SERVICE"] == "r"
        end = p.wait_event("conn_end", remote_port=r["client_port"])[0]
        assert env["PSUP_CONN_ID"] == str(end["conn"])
        for gone in ("LD_PRELOAD", "LD_BIND_NOW", "PSUP_PRESTART"):
            assert gone not in env, f"{gone} reached the handler"
    assert first["env"]["PSUP_CONN_ID"] != second["env"]["PSUP_CONN_ID"]


def test_a_users_own_ld_preload_is_kept(psup, helpers, kind):
    libm = "libm.so.6"
    p = psup(config(contract_service(helpers, kind, env={"LD_PRELOAD": libm})))
    r = report(p)
    assert r["env"]["LD_PRELOAD"] == libm
    # Its children: the user's value, and psup's nowhere.
    assert r["child_env"] == "1"


# What the process report of a shell handler prints, in report.c's keys.
SHELL_PROCESS = ('echo "uid=$(id -ru)"; echo "euid=$(id -u)"; echo "gid=$(id -g)"; '
                 'echo "cwd=$(pwd)"; echo "umask=$(umask)"; echo "nice=$(nice)"; '
                 'echo "rlimit_nofile=$(ulimit -S -n):$(ulimit -H -n)"; '
                 'echo "rlimit_core=$(ulimit -S -c):$(ulimit -H -c)"; '
                 'env | sed "s/^/env:/"; echo end=1')


@ROOT
def test_credentials_cwd_umask_limits_and_nice(psup, helpers, kind):
    public = public_dir("psup-prestart-")
    try:
        command = ([str(public_copy(helpers / "report", public))] if kind == "program"
                   else SHELL_PROCESS)
        p = psup(config(service("r", command=command, prestart=True, user="nobody",
                                cwd=str(public), umask="027", nice=5,
                                rlimits={"nofile": [512, 1024], "core": 0})))
        wait_prestarted(p, 1)
        r = report(p)
        assert p.stop() == 0
    finally:
        shutil.rmtree(public, ignore_errors=True)
    import pwd
    nobody = pwd.getpwnam("nobody")
    assert (r["uid"], r["euid"], r["gid"]) == (str(nobody.pw_uid),) * 2 + (str(nobody.pw_gid),)
    assert r["cwd"] == str(public) and r["umask"] == "0027" and r["nice"] == "5"
    assert r["rlimit_nofile"] == "512:1024" and r["rlimit_core"] == "0:0"
    assert r["env"]["USER"] == "nobody"


def test_stderr_log_null_and_a_verdict(psup, tmp_path):
    p = psup(config(service("log", command='echo out; echo "oops $PSUP_CONN_ID" >&2',
                            prestart=True, stderr="log", max_per_source=4),
                    service("null", command='ls -l /proc/$$/fd/2', prestart=True,
                            stderr="null")))
    assert talk(p.addr("log")) == b"out\n"
    rec = p.wait_event("stderr", service="log")[0]
    assert rec["line"] == f"oops {rec['conn']}"
    assert b"/dev/null" in talk(p.addr("null"))


def test_tcpconnnum_counts_prestarted_handlers(psup):
    p = psup(config(service("n", command='echo "$TCPCONNNUM"; read x', prestart=True,
                            pool={"min_spare": 3, "max_spare": 6})))
    held = []
    try:
        for expected in (b"1\n", b"2\n", b"3\n"):
            s = connect(p.addr("n"))
            held.append(s)
            assert s.recv(16) == expected
    finally:
        for s in held:
            s.close()


def test_a_denied_client_costs_the_prestarted_worker_nothing(psup):
    p = psup(config(service("d", command="echo served", prestart=True, allow=["10.0.0.0/8"],
                            deny_message="no\n", pool={"min_spare": 1, "max_spare": 1})))
    before = wait_prestarted(p, 1)
    assert talk(p.addr("d")) == b"no\n"
    p.wait_event("denied")
    assert prestarted(p) == before, "the same worker waits again"


# --------------------------------------------------------------------------
# timeout, reload, shutdown, workers killed from outside.


def test_timeout_counts_from_the_connection_not_from_the_exec(psup):
    p = psup(config(service("t", command='read d; sleep "$d"; echo done',
                            prestart=True, timeout=1, pool={"min_spare": 1, "max_spare": 1})))
    first = wait_prestarted(p, 1)
    # Idle longer than the timeout: not counted.
    time.sleep(1.5)
    assert prestarted(p) == first
    assert talk(p.addr("t"), b"0.3\n") == b"done\n"
    assert not p.events("timeout")
    start = time.monotonic()
    assert talk(p.addr("t"), b"5\n") == b""
    assert time.monotonic() - start < 4
    p.wait_event("timeout")


def test_reload_retires_prestarted_workers_of_a_changed_service_only(psup, helpers):
    def cfg(greeting):
        return config(service("a", command=[str(helpers / "report")], prestart=True,
                              env={"GREETING": greeting}, pool={"min_spare": 2, "max_spare": 2}),
                      service("b", command=["/bin/cat"], prestart=True,
                              pool={"min_spare": 2, "max_spare": 2}))
    p = psup(cfg("old"))
    wait_prestarted(p, 4)
    cats = sorted(p.handlers("cat"))
    old = set(prestarted(p)) - set(cats)
    p.write_config(cfg("new"))
    p.send(signal.SIGHUP)
    rec = p.wait_event("reloaded")[0]
    assert rec["changed"] == "a" and rec["unchanged"] == 1
    wait_for(lambda: len(prestarted(p)) == 4 and not old & set(prestarted(p)), 10,
             "the changed service's idle workers replaced")
    assert sorted(p.handlers("cat")) == cats, "the unchanged service's workers stay"
    assert report(p, "a")["env"]["GREETING"] == "new"


def test_reload_sees_a_program_replaced_on_disk(psup, tmp_path):
    program = tmp_path / "echo-prog"
    shutil.copy2("/bin/cat", program)
    cfg = config(service("c", command=[str(program)], prestart=True,
                         pool={"min_spare": 1, "max_spare": 1}))
    p = psup(cfg)
    old = wait_prestarted(p, 1)
    p.send(signal.SIGHUP)
    assert p.wait_event("reloaded")[0]["unchanged"] == 1
    assert prestarted(p) == old
    # An upgrade: a new file under the same name.
    shutil.copy2("/bin/cat", tmp_path / "new")
    os.replace(tmp_path / "new", program)
    p.send(signal.SIGHUP)
    assert p.wait_event("reloaded", count=2)[1]["changed"] == "c"
    wait_for(lambda: prestarted(p) and not set(old) & set(prestarted(p)), 10,
             "the worker running the old file replaced")
    assert talk(p.addr("c"), b"new") == b"new"


def test_shutdown_stops_prestarted_workers(psup):
    p = psup(config(service("c", command=["/bin/cat"], prestart=True)))
    workers = wait_prestarted(p, 4)
    assert p.stop() == 0
    assert not [w for w in workers if os.path.exists(f"/proc/{w}")]


def test_a_worker_killed_from_outside_is_replaced(psup):
    p = psup(config(service("c", command=["/bin/cat"], prestart=True,
                            pool={"min_spare": 2, "max_spare": 2})))
    victim = wait_prestarted(p, 2)[0]
    os.kill(victim, signal.SIGKILL)
    p.wait_event("worker_lost", pid=victim)
    wait_for(lambda: len(prestarted(p)) == 2 and victim not in prestarted(p), 10,
             "a replacement")
    assert talk(p.addr("c"), b"still") == b"still"
    assert not p.events("worker_failed")


# --------------------------------------------------------------------------
# Refused at load, and the handshake.


def check(psup_bin, tmp_path, svc):
    path = tmp_path / "check.json"
    import json
    path.write_text(json.dumps(config(svc)))
    return subprocess.run([psup_bin, "--check", str(path)], capture_output=True, text=True,
                          timeout=30)


def test_a_static_program_is_refused_at_load(psup_bin, helpers, tmp_path):
    static = str(helpers / "static_idle")
    r = check(psup_bin, tmp_path, service("s", command=[static], prestart=True))
    assert r.returncode == 1
    assert f"services[0].prestart: {static} is statically linked" in r.stderr
    # Without prestart it is a fine handler.
    assert check(psup_bin, tmp_path, service("s", command=[static])).returncode == 0


def test_without_its_library_psup_refuses_prestart(psup_bin, tmp_path):
    """psup finds its library relative to its own binary: a copy of the
    binary elsewhere has none."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    copy = bindir / "psup"
    shutil.copy2(psup_bin, copy)
    env = dict(os.environ)
    env.pop("PSUP_TEST_PRESTART_LIBRARY", None)
    path = tmp_path / "c.json"
    import json
    path.write_text(json.dumps(config(service("s", command=["/bin/cat"], prestart=True))))
    r = subprocess.run([str(copy), "--check", str(path)], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 1
    assert (f"services[0].prestart: psup's library {bindir}/../lib/psup/libpsup-prestart.so "
            "cannot be used (No such file or directory)") in r.stderr, r.stderr


def test_a_script_whose_interpreter_is_static_is_refused(psup_bin, helpers, tmp_path):
    script = tmp_path / "script"
    script.write_text(f"#!{helpers / 'static_idle'} -x\n")
    script.chmod(0o755)
    r = check(psup_bin, tmp_path, service("s", command=[str(script)], prestart=True))
    assert r.returncode == 1 and f"{helpers / 'static_idle'} is statically linked" in r.stderr
    # A script run by /bin/sh is fine.
    script.write_text("#!/bin/sh\necho hi\n")
    assert check(psup_bin, tmp_path, service("s", command=[str(script)],
                                             prestart=True)).returncode == 0


def refused_directly_and_as_interpreter(psup_bin, tmp_path, prog, what):
    """prog, and a script whose interpreter it is, are each refused with
    the one line that says why."""
    r = check(psup_bin, tmp_path, service("s", command=[str(prog)], prestart=True))
    assert r.returncode == 1 and f"services[0].prestart: {prog} {what}" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    script = tmp_path / f"script-via-{prog.name}"
    script.write_text(f"#!{prog}\n")
    script.chmod(0o755)
    r = check(psup_bin, tmp_path, service("s", command=[str(script)], prestart=True))
    assert r.returncode == 1 and f"services[0].prestart: {prog} {what}" in r.stderr, r.stderr


@ROOT
def test_set_id_and_file_capability_programs_are_refused(psup_bin, tmp_path):
    for mode, what in ((0o4755, "is set-user-ID"), (0o2755, "is set-group-ID")):
        prog = tmp_path / f"cat-{mode:o}"
        shutil.copy2("/bin/cat", prog)
        prog.chmod(mode)
        refused_directly_and_as_interpreter(psup_bin, tmp_path, prog, what)
    prog = tmp_path / "cat-caps"
    shutil.copy2("/bin/cat", prog)
    # struct vfs_cap_data, revision 2, effective: CAP_NET_RAW permitted.
    try:
        os.setxattr(prog, "security.capability",
                    struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0))
    except OSError as e:
        pytest.skip(f"cannot set file capabilities here: {e}")
    refused_directly_and_as_interpreter(psup_bin, tmp_path, prog, "has file capabilities")


def test_a_program_that_ignores_the_library_is_a_failure(psup, helpers, tmp_path):
    """The file checked at load replaced by a static one before a worker
    execs it: one that exits at once and one that would wait for ever are
    each a failure of the service, with the reason."""
    program = tmp_path / "prog"
    shutil.copy2("/bin/cat", program)
    env = dict(os.environ, PSUP_TEST_PRESTART_TIMEOUT_MS="500")
    pool = {"min_spare": 1, "max_spare": 1}
    p = psup(config(service("x", command=[str(program), "exit"], prestart=True, pool=pool),
                    service("y", command=[str(program)], prestart=True, pool=pool)),
             env=env)
    p.expect_errors = True
    wait_prestarted(p, 2)
    shutil.copy2(helpers / "static_idle", tmp_path / "new")
    os.replace(tmp_path / "new", program)
    # The waiting workers still run the old program; their replacements
    # exec the new one.
    talk(p.addr("x"))
    rec = p.wait_event("worker_failed", service="x")[0]
    assert (rec["step"], rec["errno"]) == ("prestart", "ELIBACC"), rec
    assert talk(p.addr("y"), b"old") == b"old"
    rec = p.wait_event("worker_failed", service="y", timeout=15)[0]
    assert (rec["step"], rec["errno"]) == ("prestart", "ETIMEDOUT"), rec
    assert not p.events("worker_lost")


def test_a_program_cannot_speak_for_another_worker(psup, helpers, tmp_path):
    """A library of the program, run before psup's, sends a failure that
    claims to come from another service's idle worker: psup takes it as the
    sender's own (SO_PASSCRED), so that worker, killed from outside, is
    lost, not failed."""
    forge = tmp_path / "forge"
    p = psup(config(service("victim", command=["/bin/cat"], prestart=True,
                            pool={"min_spare": 1, "max_spare": 1}),
                    service("forger", command=[str(helpers / "late_exit")], prestart=True,
                            env={"FORGE_FILE": str(forge)},
                            pool={"min_spare": 1, "max_spare": 1})))
    victim = wait_for(lambda: p.handlers("cat"), 10, "the victim")[0]
    forge.write_text(f"{victim}\n")
    wait_for(lambda: pathlib.Path(f"{forge}.sent").exists(), 10, "the forged message")
    wait_prestarted(p, 2)
    os.kill(victim, signal.SIGKILL)
    p.wait_event("worker_lost", pid=victim)
    assert not p.events("worker_failed")


# --------------------------------------------------------------------------
# The end of a reply.


def test_output_of_exit_handlers_and_destructors_reaches_the_client(psup, helpers, tmp_path):
    report_file = tmp_path / "late"
    p = psup(config(service("l", command=[str(helpers / "late_exit")], prestart=True,
                            env={"LATE_REPORT": str(report_file)})))
    with connect(p.addr("l")) as s:
        assert read_all(s) == b"main\natexit\ndestructor\n"
        pathlib.Path(f"{report_file}.eof").touch()
    p.wait_event("conn_end")
    late = dict(line.split("=", 1) for line in report_file.read_text().split())
    # The library let go of the connection after the program's last word
    # and before its last exit handler: the client saw the end while the
    # process was still there.
    assert late == {"fd0": "null", "fd1": "null", "eof_seen_before_exit": "1"}


def test_without_prestart_the_end_comes_with_the_exit(psup, helpers, tmp_path):
    """The same handler, exec'd per connection: the control of the test
    above (its last exit handler gives up waiting after 0.5 s)."""
    report_file = tmp_path / "late"
    p = psup(config(service("l", command=[str(helpers / "late_exit")],
                            env={"LATE_REPORT": str(report_file), "LATE_WAIT_MS": "500"})))
    assert talk(p.addr("l")) == b"main\natexit\ndestructor\n"
    p.wait_event("conn_end")
    late = dict(line.split("=", 1) for line in report_file.read_text().split())
    assert late == {"fd0": "socket", "fd1": "socket", "eof_seen_before_exit": "0"}


def test_a_child_that_shares_the_connection_is_not_cut(psup):
    p = psup(config(service("bg", command="echo first; (sleep 0.3; echo late) & exit 0",
                            prestart=True)))
    assert talk(p.addr("bg")) == b"first\nlate\n"


# --------------------------------------------------------------------------
# The modes: a wait-mode server is not prestarted; datagrams are.


def test_prestart_in_wait_mode_is_a_configuration_error(psup_bin, tmp_path):
    for value in (True, False):
        r = check(psup_bin, tmp_path, service("w", command=["/bin/cat"], mode="wait",
                                              prestart=value))
        assert r.returncode == 1
        assert ("services[0].prestart: does not apply in wait mode: a server is one "
                "long-running program, exec'd before any connection already") in r.stderr, r.stderr


def test_a_prestarted_worker_reads_the_proxy_header(psup, helpers, kind):
    """spec/proxy.md behind a prestarted worker: the library checks
    proxy_from, says READING (the worker is busy meanwhile) and takes the
    header off the connection; the handler sees the header's client."""
    p = psup(config(contract_service(helpers, kind, proxy_protocol="v1",
                                     proxy_from=["127.0.0.1"])))
    wait_prestarted(p, 2)
    with connect(p.addr("r")) as s:
        s.sendall(b"PROXY TCP4 192.0.2.7 192.0.2.9 4321 80\r\n")
        s.shutdown(socket.SHUT_WR)
        r = parse_report(read_all(s))
        proxy_port = s.getsockname()[1]
    assert r.get("end") == "1", r
    env = r["env"]
    assert (env["TCPREMOTEIP"], env["TCPREMOTEPORT"]) == ("192.0.2.7", "4321")
    assert (env["REMOTE_ADDR"], env["TCPLOCALIP"], env["TCPLOCALPORT"]) == \
        ("192.0.2.7", "192.0.2.9", "80")
    assert (env["PROXYREMOTEIP"], env["PROXYREMOTEPORT"]) == ("127.0.0.1", str(proxy_port))
    for gone in ("LD_PRELOAD", "PSUP_PRESTART"):
        assert gone not in env
    end = p.wait_event("conn_end", service="r")[0]
    assert (end["remote_ip"], end["proxy_ip"]) == ("192.0.2.7", "127.0.0.1")
    # From outside proxy_from (the IPv6 listener, ::1): closed unread.
    assert talk(p.addr("r", 1)) == b""
    assert p.wait_event("proxy_refused", service="r")[0]["reason"] == "proxy_from"


def test_prestart_is_refused_for_a_cgi_service(psup_bin, tmp_path):
    r = check(psup_bin, tmp_path, service("c", command=["/bin/true"], protocol="cgi",
                                          prestart=True))
    assert r.returncode == 1
    assert ('services[0].prestart: does not apply to a "cgi" service: psup\'s relay, which it '
            'execs, is not prestarted; the script runs for each request either way') in r.stderr, \
        r.stderr
    r = check(psup_bin, tmp_path, service("c", command=["/bin/true"], protocol="cgi",
                                          prestart=False))
    assert r.returncode == 0, r.stderr


def udp_service(helpers, kind, **kw):
    command = ([str(helpers / "report"), "read", "child"] if kind == "program"
               else "cat >/dev/null; " + SHELL_REPORT)
    return service("u", ["udp://127.0.0.1:0", "udp://[::1]:0"], command, prestart=True,
                   pool={"min_spare": 2, "max_spare": 4}, **kw)


def udp_report(p, index):
    from test_udp import report_from, udp_addr
    return report_from(udp_addr(p, "u", index))


def test_a_prestarted_datagram_handler_gets_the_datagram_contract(psup, helpers, kind):
    """spec/udp.md's handler, from inside a prestarted program and shell:
    the datagram on a pipe (fd 0), the reply socket (fd 1), the UDP
    variables of each datagram, nothing of psup's."""
    p = psup(config(udp_service(helpers, kind)))
    before = wait_prestarted(p, 2)
    seen = []
    for index, local in ((0, "127.0.0.1"), (1, "::1")):
        r = udp_report(p, index)
        assert int(r["pid"]) in before, "the handler was waiting, exec'd already"
        seen.append(int(r["pid"]))
        env = r["env"]
        assert env["PROTO"] == "UDP" and env["UDPLOCALIP"] == local
        assert (env["UDPREMOTEIP"], env["UDPREMOTEPORT"]) == (r["client"][0], str(r["client"][1]))
        assert not {"TCPREMOTEIP", "TCPCONNNUM", "LD_PRELOAD", "LD_BIND_NOW",
                    "PSUP_PRESTART"} & set(env)
        assert r["child_env"] == "0"
        assert (r["SigBlk"], r["SigIgn"]) == ("0000000000000000",) * 2
        assert int(r["pgid"]) == int(r["pid"]) and int(r["ppid"]) == p.pid
        if kind == "program":
            fds = dict(item.split(":", 1) for item in r["fds"].strip(",").split(","))
            assert sorted(fds) == ["0", "1", "2"], r["fds"]
            assert fds["0"].startswith("pipe:") and fds["1"].startswith("socket:")
    assert seen[0] != seen[1]
    end = p.wait_event("conn_end", service="u", count=2)
    assert all(e["replies"] >= 1 for e in end), end
    assert not p.events("worker_failed")


def test_a_prestarted_datagram_handlers_late_replies_are_not_cut(psup, helpers, tmp_path):
    """Replies written by exit handlers and destructors reach the client;
    the library lets go of the pipe and the reply socket after them (a
    datagram's client sees no end of a reply: only psup's end of the
    reply socket learns it sooner)."""
    report_file = tmp_path / "late"
    p = psup(config(service("l", ["udp://127.0.0.1:0"], [str(helpers / "late_exit")],
                            prestart=True,
                            env={"LATE_REPORT": str(report_file), "LATE_WAIT_MS": "0"})))
    from test_udp import client, udp_addr
    with client(udp_addr(p, "l")) as s:
        s.send(b"go")
        replies = b""
        while replies.count(b"\n") < 3:
            replies += s.recv(70000)
    assert replies == b"main\natexit\ndestructor\n"
    assert p.wait_event("conn_end", service="l")[0]["replies"] >= 1
    late = dict(line.split("=", 1) for line in report_file.read_text().split())
    assert (late["fd0"], late["fd1"]) == ("null", "null"), late


# --------------------------------------------------------------------------
# The admin endpoint and control: prestarted workers are workers.


def test_status_and_metrics_count_prestarted_workers_as_idle(psup):
    from test_admin import admin_addr, families, sample, status_doc
    p = psup(config(service("c", command=["/bin/cat"], prestart=True,
                            pool={"min_spare": 3, "max_spare": 3}),
                    admin={"listen": ["127.0.0.1:0"]}))
    wait_prestarted(p, 3)
    admin = admin_addr(p)

    def pool():
        return next(s for s in status_doc(admin)["services"] if s["name"] == "c")["pool"]
    wait_for(lambda: pool()["idle"] == 3, 10, "three idle in /status")
    assert sample(families(admin), "psup_workers_idle", service="c") == 3
    # One becomes a handler; its replacement is a spare like the others.
    held = connect(p.addr("c"))
    try:
        held.sendall(b"x")
        assert held.recv(1) == b"x"
        wait_for(lambda: pool()["busy"] == 1 and pool()["idle"] == 3 and len(prestarted(p)) == 3,
                 10, "one busy, three idle again")
        fams = families(admin)
        assert sample(fams, "psup_handlers", service="c") == 1
        assert sample(fams, "psup_workers_idle", service="c") == 3
    finally:
        held.close()


def test_scale_and_pause_apply_to_a_prestarted_pool(psup, psup_bin, tmp_path):
    from test_admin import admin_addr
    from test_control import ctl, service_doc, unix, with_unix_admin
    p = psup(with_unix_admin(tmp_path, service("c", command=["/bin/cat"], prestart=True,
                                                pool={"min_spare": 1, "max_spare": 1,
                                                      "max_workers": 8})))
    sock = unix(admin_addr(p))
    first = wait_prestarted(p, 1)
    assert ctl(psup_bin, sock, "scale", "c", "--min-spare", "3", "--max-spare", "3").returncode == 0
    wait_for(lambda: len(prestarted(p)) == 3, 10, "three prestarted workers")
    assert set(first) <= set(prestarted(p))

    out = ctl(psup_bin, sock, "pause", "c")
    assert (out.returncode, out.stdout) == (0, "c: paused\n"), out.stderr
    wait_for(lambda: not prestarted(p), 10, "the prestarted workers retired")
    assert service_doc(admin_addr(p), "c")["pool"]["idle"] == 0
    # A client waits in the backlog, and a prestarted worker serves it on
    # resume.
    waiting = connect(p.addr("c"))
    try:
        waiting.sendall(b"later")
        waiting.shutdown(socket.SHUT_WR)
        assert ctl(psup_bin, sock, "resume", "c").returncode == 0
        assert read_all(waiting) == b"later"
    finally:
        waiting.close()
    wait_for(lambda: len(prestarted(p)) == 3, 10, "three prestarted workers again")
    assert not p.events("worker_failed")
