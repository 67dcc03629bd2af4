# SPDX-License-Identifier: MIT
"""psup import (docs/psup.1, IMPORT; docs/migrating.md).

Golden files: each directory of tests/import with a `command` file is a
case; `psup import` runs there with that command line and its standard
output, standard error and exit status must equal expected.json,
expected.stderr and expected.status. The inputs are the files Debian's
xinetd package installs (xinetd.conf, xinetd.d, the examples) and files
written in the forms found in the wild. PSUP_UPDATE_GOLDEN=1 rewrites the
expected files instead of comparing (then review the diff).

Every configuration the cases produce must pass `psup --check` once the
programs and users it names exist here (missing ones are swapped for
/bin/cat and nobody in a copy).

Then the whole chain, import -> --check -> psup -> a real client: a
monitoring agent's TCP service with only_from, served and reached with nc
(refused from an address only_from leaves out); xinetd's internal services
over TCP; and, once psup accepts UDP and wait mode (today --check rejects
them, and those tests skip saying so), the tftp service of a typical
xinetd.d directory, fetched with tftp, and the internal UDP services."""

import grp
import json
import os
import pathlib
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import time

import pytest

from conftest import public_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "tests" / "import"
CASES = sorted(p.parent for p in CASES_DIR.glob("*/command"))
UPDATE = os.environ.get("PSUP_UPDATE_GOLDEN") == "1"


def run(psup_bin, *args, cwd=None, timeout=30):
    return subprocess.run([psup_bin, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def run_case(psup_bin, case):
    args = shlex.split(case.joinpath("command").read_text())
    return run(psup_bin, "import", *args, cwd=case)


# --------------------------------------------------------------------------
# Golden files.


def test_the_corpus_is_there():
    names = {c.name for c in CASES}
    assert {"debian-xinetd", "debian-examples", "wild-xinetd", "debian-inetd"} <= names, names
    # Debian's own files, as its xinetd package installs them.
    assert len(list((CASES_DIR / "debian-xinetd" / "xinetd.d").iterdir())) == 12


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_golden(psup_bin, case):
    r = run_case(psup_bin, case)
    if UPDATE:
        case.joinpath("expected.json").write_text(r.stdout)
        case.joinpath("expected.stderr").write_text(r.stderr)
        case.joinpath("expected.status").write_text(f"{r.returncode}\n")
        pytest.skip("expected files rewritten")
    assert r.stderr == case.joinpath("expected.stderr").read_text()
    assert r.stdout == case.joinpath("expected.json").read_text()
    assert r.returncode == int(case.joinpath("expected.status").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_status_says_what_stderr_says(case):
    """0 with no "not imported" line, 1 with one, 2 with nothing on stdout."""
    status = int(case.joinpath("expected.status").read_text())
    stderr = case.joinpath("expected.stderr").read_text()
    stdout = case.joinpath("expected.json").read_text()
    if status == 2:
        assert stdout == "" and stderr.count("\n") == 1
        return
    lost = " not imported: " in stderr or "psup import: no service" in stderr
    assert status == (1 if lost else 0)
    json.loads(stdout)
    for line in stderr.splitlines():
        assert re.match(r"^(psup import: |[^:]+(:\d+)?: [^:]+: (not imported|note): )", line), line


# --------------------------------------------------------------------------
# The output passes psup --check.


def psup_rejects(psup_bin, tmp_path, svc):
    """Why psup --check rejects a one-service file, or None if it accepts it."""
    cfg = tmp_path / "probe.json"
    cfg.write_text(json.dumps({"services": [svc]}))
    r = run(psup_bin, "--check", str(cfg))
    return None if r.returncode == 0 else r.stderr.strip()


@pytest.fixture(scope="module")
def unsupported(psup_bin, tmp_path_factory):
    """What this psup does not accept yet, by feature: {"udp": reason,
    "wait": reason}, without the ones it accepts."""
    tmp = tmp_path_factory.mktemp("probe")
    probes = {
        "udp": {"name": "u", "listen": ["udp://127.0.0.1:0"], "command": ["/bin/cat"]},
        "wait": {"name": "w", "listen": ["127.0.0.1:0"], "mode": "wait", "command": ["/bin/cat"]},
    }
    out = {}
    for feature, svc in probes.items():
        why = psup_rejects(psup_bin, tmp, svc)
        if why:
            out[feature] = why
    return out


def user_exists(name):
    try:
        pwd.getpwuid(name) if isinstance(name, int) else pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrgid(name) if isinstance(name, int) else grp.getgrnam(name)
        return True
    except KeyError:
        return False


def runnable_here(svc):
    """The service with missing programs, users and groups swapped for ones
    that exist, so that --check judges what the importer wrote."""
    svc = dict(svc)
    if isinstance(svc["command"], list) and not os.access(svc["command"][0], os.X_OK) \
            and not shutil.which(svc["command"][0]):
        svc["command"] = ["/bin/cat"] + svc["command"][1:]
    if "user" in svc and not user_exists(svc["user"]):
        svc["user"] = "nobody"
    if "group" in svc and not group_exists(svc["group"]):
        svc["group"] = "nogroup"
    return svc


def needs(svc):
    features = set()
    if any(a.startswith("udp://") for a in svc["listen"]):
        features.add("udp")
    if svc.get("mode") == "wait":
        features.add("wait")
    return features


def expected_status(case):
    path = case.joinpath("expected.status")
    return int(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("case", [c for c in CASES if expected_status(c) != 2],
                         ids=lambda p: p.name)
def test_output_passes_check(psup_bin, tmp_path, case, unsupported):
    if os.geteuid() != 0:
        pytest.skip("the imported services switch users: --check needs root")
    cfg = json.loads(case.joinpath("expected.json").read_text())
    if not cfg["services"]:
        pytest.skip("the case imports no service")
    services = [runnable_here(s) for s in cfg["services"] if not needs(s) & set(unsupported)]
    if not services:
        pytest.skip(f"no service left to check without {sorted(unsupported)}")
    cfg["services"] = services
    path = tmp_path / "imported.json"
    path.write_text(json.dumps(cfg, indent=2))
    r = run(psup_bin, "--check", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith(f"OK, {len(services)} service"
                                              + ("s" if len(services) > 1 else ""))


# --------------------------------------------------------------------------
# Usage.


def test_usage_errors_exit_2(psup_bin, tmp_path):
    for args, message in [
        ([], "expected xinetd or inetd"),
        (["inetd.conf"], "expected xinetd or inetd, not inetd.conf"),
        (["xinetd"], "expected a file or directory"),
        (["inetd"], "expected a file"),
        (["inetd", "a", "b"], "unexpected argument b"),
        (["xinetd", "--bogus", "x"], "unknown option --bogus"),
        (["inetd", "--include-disabled", "x"], "--include-disabled is for xinetd"),
    ]:
        r = run(psup_bin, "import", *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == ""
        assert r.stderr.splitlines()[0] == f"psup import: {message}", args


def test_help(psup_bin):
    r = run(psup_bin, "import", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: psup import xinetd")
    assert "--include-disabled" in r.stdout and "--services=FILE" in r.stdout
    assert "psup import xinetd|inetd" in run(psup_bin, "--help").stdout


def test_an_input_that_cannot_be_read_exits_2(psup_bin, tmp_path):
    r = run(psup_bin, "import", "xinetd", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == f"{tmp_path}/nope: cannot read {tmp_path}/nope: No such file or directory\n"


# --------------------------------------------------------------------------
# The chain: import -> --check -> psup -> a real client.


def import_file(psup_bin, tmp_path, kind, text, name="xinetd.conf", expect_status=0):
    src = tmp_path / name
    src.write_text(text)
    r = run(psup_bin, "import", kind, str(src))
    assert r.returncode == expect_status, r.stderr
    out = tmp_path / f"{name}.json"
    out.write_text(r.stdout)
    check = run(psup_bin, "--check", str(out))
    assert check.returncode == 0, check.stderr
    return json.loads(r.stdout), r.stderr


def nc(host, port, data=b"", timeout=10):
    """A real client: netcat, sending data, then reading to the end."""
    if not shutil.which("nc"):
        pytest.skip("nc (netcat-openbsd) is not installed")
    r = subprocess.run(["nc", "-N", "-w", "5", host, str(port)], input=data,
                       capture_output=True, timeout=timeout)
    return r.stdout


def listening_port(p, service):
    text = [r["addr"] for r in p.events("listening", service=service)][0]
    return int(text.rpartition(":")[2])


def current_user():
    return pwd.getpwuid(os.getuid()).pw_name


AGENT = """#!/bin/sh
echo '<<<check_mk>>>'
echo 'Version: 2.2.0'
echo 'AgentOS: linux'
echo "RemoteHost: $REMOTE_ADDR"
"""


def test_monitoring_agent_with_only_from(psup_bin, psup, tmp_path):
    """check_mk's xinetd file, as its agent package installs it, with the
    port made ephemeral: only_from lets 127.0.0.1 in and no one else."""
    agent = tmp_path / "check_mk_agent"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    cfg, stderr = import_file(psup_bin, tmp_path, "xinetd", f"""
service check_mk
{{
	type           = UNLISTED
	port           = 0
	socket_type    = stream
	protocol       = tcp
	wait           = no
	user           = {current_user()}
	server         = {agent}
	only_from      = 127.0.0.1 10.0.20.1
	log_on_success =
	disable        = no
}}
""")
    assert cfg["services"][0]["allow"] == ["127.0.0.1", "10.0.20.1"]
    assert cfg["services"][0]["listen"] == ["*:0"]
    p = psup(cfg)
    port = listening_port(p, "check_mk")
    out = nc("127.0.0.1", port)
    assert out.decode().splitlines() == ["<<<check_mk>>>", "Version: 2.2.0", "AgentOS: linux",
                                         "RemoteHost: 127.0.0.1"]
    p.wait_event("conn_end", service="check_mk")
    # ::1 is not in only_from: refused, and nothing runs for it.
    assert nc("::1", port) == b""
    p.wait_event("denied", service="check_mk", remote_ip="::1")
    assert len(p.events("conn_end", service="check_mk")) == 1
    assert p.stop() == 0


def internal_services(kind, port_word, bind):
    return "".join(f"""
service {name}
{{
	type        = INTERNAL UNLISTED
	id          = {name}-{kind}
	socket_type = {"stream" if kind == "stream" else "dgram"}
	protocol    = {"tcp" if kind == "stream" else "udp"}
	wait        = {"no" if kind == "stream" else "yes"}
	port        = {port_word}
	bind        = {bind}
}}
""" for name in ("echo", "discard", "daytime", "time", "chargen"))


def assert_time_reply(data):
    assert len(data) == 4
    since_1900 = int.from_bytes(data, "big")
    assert abs(since_1900 - 2208988800 - time.time()) < 10


DAYTIME = re.compile(rb"^\d\d [A-Z]{3} \d{4} \d\d:\d\d:\d\d \S+\r\n$")


def chargen_line(i):
    ring = "".join(chr(c) for c in range(32, 127)) * 2
    return ring[i % 95:i % 95 + 72] + "\r\n"


def test_internal_services_over_tcp(psup_bin, psup, tmp_path):
    cfg, stderr = import_file(psup_bin, tmp_path, "xinetd",
                              internal_services("stream", 0, "127.0.0.1"))
    assert stderr == ""
    p = psup(cfg)
    port = {s: listening_port(p, f"{s}-stream")
            for s in ("echo", "discard", "daytime", "time", "chargen")}
    assert nc("127.0.0.1", port["echo"], b"hello\nworld\n") == b"hello\nworld\n"
    assert nc("127.0.0.1", port["discard"], b"into the void\n") == b""
    assert DAYTIME.match(nc("127.0.0.1", port["daytime"]))
    assert_time_reply(nc("127.0.0.1", port["time"]))
    with socket.create_connection(("127.0.0.1", port["chargen"]), timeout=10) as s:
        data = b""
        while data.count(b"\n") < 3:
            chunk = s.recv(4096)
            assert chunk, "chargen closed the connection"
            data += chunk
    assert data.decode().split("\n")[:3] == [chargen_line(i).rstrip("\n") for i in range(3)]
    # The client left: chargen dies of SIGPIPE, as it did under xinetd.
    p.wait_event("conn_end", service="chargen-stream")
    assert p.stop() == 0


def skip_unless(unsupported, *features):
    missing = [f for f in features if f in unsupported]
    if missing:
        pytest.skip("psup --check rejects " + " and ".join(missing) + " (not landed yet: "
                    + "; ".join(unsupported[f] for f in missing) + ")")


def udp_port(p, service):
    return listening_port(p, service)


def test_internal_services_over_udp(psup_bin, psup, tmp_path, unsupported):
    skip_unless(unsupported, "udp")
    cfg, stderr = import_file(psup_bin, tmp_path, "xinetd",
                              internal_services("dgram", 0, "127.0.0.1"))
    assert stderr == ""
    assert all(s["listen"][0].startswith("udp://") and "mode" not in s for s in cfg["services"])
    p = psup(cfg)

    def ask(service, data=b"x"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(data, ("127.0.0.1", udp_port(p, service)))
            return s.recvfrom(65536)[0]
    assert ask("echo-dgram", b"ping") == b"ping"
    assert DAYTIME.match(ask("daytime-dgram"))
    assert_time_reply(ask("time-dgram"))
    assert p.stop() == 0


TFTP_XINETD = """# default: off
# description: The tftp server serves files using the trivial file transfer \\
#	protocol.
service tftp
{{
	socket_type		= dgram
	protocol		= udp
	wait			= yes
	user			= root
	server			= /usr/sbin/in.tftpd
	server_args		= -s {root} -t 5
	disable			= no
	flags			= IPv4
	type			= UNLISTED
	port			= 0
	bind			= 127.0.0.1
}}
"""


def test_tftp_in_wait_mode(psup_bin, psup, tmp_path, unsupported):
    """The tftp file of a typical xinetd.d, run by in.tftpd in wait mode
    (it gets the bound UDP socket), fetched with tftp-hpa's client."""
    skip_unless(unsupported, "udp", "wait")
    if not (shutil.which("in.tftpd") or os.path.exists("/usr/sbin/in.tftpd")) \
            or not shutil.which("tftp"):
        pytest.skip("tftpd-hpa and tftp-hpa are not installed")
    if os.geteuid() != 0:
        pytest.skip("in.tftpd -s chroots: needs root")
    root = public_dir("psup-tftp-")
    try:
        payload = os.urandom(20000)
        (root / "boot.img").write_bytes(payload)
        (root / "boot.img").chmod(0o644)
        cfg, stderr = import_file(psup_bin, tmp_path, "xinetd", TFTP_XINETD.format(root=root))
        svc = cfg["services"][0]
        assert svc["mode"] == "wait" and svc["listen"] == ["udp://127.0.0.1:0"]
        p = psup(cfg)
        port = udp_port(p, "tftp")
        out = tmp_path / "fetched"
        r = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get",
                            "boot.img", str(out)], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == payload
        assert p.stop() == 0
    finally:
        shutil.rmtree(root)
