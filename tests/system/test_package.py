# SPDX-License-Identifier: MIT
"""What ships around the binary (debian/, Dockerfile, examples/kubernetes):
the files agree with each other and with psup. Building and installing the
package is slower and needs root: .ci/run does it. Docker and Kubernetes do
not run here, so their files are read and cross-checked instead."""

import fnmatch
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEBIAN = ROOT / "debian"
K8S = ROOT / "examples" / "kubernetes"
CONTAINER_CONFIG = ROOT / "examples" / "container" / "services.json"


def run(*args, timeout=30, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


def unit_settings(path):
    """{key: [values]} of a systemd unit file (every section together)."""
    settings = {}
    for line in path.read_text().splitlines():
        if line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(value):
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, f"unexpected time span {value!r}"
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def stop_budget(cfg):
    """psup's longest graceful stop for a configuration (spec/config.md)."""
    return cfg.get("shutdown_delay", 0) + cfg.get("shutdown_timeout", 7) + cfg.get("kill_grace", 2)


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


# --------------------------------------------------------------------------
# The Debian package.


def test_sample_configuration_passes_check(psup_bin):
    if os.geteuid() != 0:
        pytest.skip("the sample runs its handler as nobody: checking that needs root")
    r = run(psup_bin, "--check", str(DEBIAN / "services.json"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith("OK, 1 service")


def test_sample_configuration_serves_only_loopback():
    # The package starts psup on install: nothing may reach the network.
    cfg = json.loads((DEBIAN / "services.json").read_text())
    for svc in cfg["services"]:
        for addr in svc["listen"]:
            assert addr.startswith(("127.", "[::1]:", "unix:")), addr
        assert svc.get("user") not in (None, "root", 0), "the sample handler must not run as root"


def test_sample_is_installed_as_the_units_configuration():
    install = (DEBIAN / "psup.install").read_text().split()
    assert install == ["debian/services.json", "etc/psup/"]
    exec_start = unit_settings(DEBIAN / "psup.service")["ExecStart"]
    assert exec_start == ["/usr/bin/psup /etc/psup/services.json"]


def test_unit_stops_psup_gracefully_within_its_timeout():
    unit = unit_settings(DEBIAN / "psup.service")
    assert unit["Type"] == ["notify"]
    assert unit["KillMode"] == ["mixed"]
    # The reload checks the file first, then signals psup.
    assert unit["ExecReload"] == ["/usr/bin/psup --check /etc/psup/services.json",
                                  "/bin/kill -HUP $MAINPID"]
    sample = json.loads((DEBIAN / "services.json").read_text())
    assert seconds(unit["TimeoutStopSec"][0]) > stop_budget(sample) + 1
    # psup pings at half the watchdog period; a second is far too short.
    assert seconds(unit["WatchdogSec"][0]) >= 10
    assert unit["RestartPreventExitStatus"] == ["1 2"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_file_verifies(psup_bin, tmp_path):
    # Verified against the built binary (/usr/bin/psup exists only once the
    # package is installed; .ci/run verifies the installed unit as well).
    unit = tmp_path / "psup.service"
    unit.write_text((DEBIAN / "psup.service").read_text().replace("/usr/bin/psup", psup_bin))
    r = run("systemd-analyze", "verify", "--man=no", str(unit))
    # verify exits 0 after settings it ignores, with a warning: any output fails.
    assert r.returncode == 0 and not r.stdout and not r.stderr, r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_package_build_products_are_ignored_by_git():
    # dpkg-buildpackage in the tree leaves these behind until `debian/rules clean`.
    products = ["obj-x86_64-linux-gnu/CMakeCache.txt", "debian/.debhelper/x", "debian/psup/usr/bin/psup",
                "debian/files", "debian/psup.substvars", "debian/debhelper-build-stamp",
                "debian/tmp/x", "debian/psup.postrm.debhelper", "debian/psup.debhelper.log"]
    r = run("git", "-C", str(ROOT), "check-ignore", "--no-index", *products)
    if r.returncode == 128:
        pytest.skip("not a git checkout")
    assert sorted(r.stdout.split()) == sorted(products)
    r = run("git", "-C", str(ROOT), "check-ignore", "--no-index", "debian/rules", "debian/psup.service",
            "debian/services.json")
    assert r.stdout == ""


# --------------------------------------------------------------------------
# The container image and the Kubernetes example.


def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] of the Dockerfile, continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_psup_as_pid_1_with_a_health_check():
    ins = dockerfile_instructions()
    final = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    get = lambda word: [rest for w, rest in final if w == word]  # noqa: E731
    assert get("FROM") == ["debian:bookworm-slim"]
    assert [json.loads(x) for x in get("ENTRYPOINT")] == [["psup"]]
    assert [json.loads(x) for x in get("CMD")] == [["/etc/psup/services.json"]]
    assert get("STOPSIGNAL") == ["SIGTERM"]
    assert re.fullmatch(r"\d+:\d+", get("USER")[0]), "a numeric USER, for runAsNonRoot"
    health = get("HEALTHCHECK")[0]
    command = json.loads(health[health.index("CMD") + 3:])
    admin = command[command.index("--admin") + 1]
    cfg = json.loads(CONTAINER_CONFIG.read_text())
    ports = {listen_port(a) for a in cfg["admin"]["listen"] if not a.startswith("unix:")}
    assert admin.startswith("127.0.0.1:") and listen_port(admin) in ports
    config = json.loads(get("CMD")[0])[0]
    assert f"examples/container/services.json {config}" in get("COPY")


def dockerignored(src, patterns):
    """Whether .dockerignore's patterns leave src (or a folder above it) out
    of the build context."""
    parts = pathlib.PurePath(src).parts
    for prefix in ("/".join(parts[:i]) for i in range(1, len(parts) + 1)):
        for pattern in patterns:
            if pattern.startswith("**/"):
                if fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], pattern[3:]):
                    return True
            elif fnmatch.fnmatchcase(prefix, pattern):
                return True
    return False


def test_dockerfile_copies_only_what_the_context_has():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p and not p.startswith("#")]
    assert dockerignored("build-test/cmd/psup/psup", patterns)
    assert dockerignored(".git/HEAD", patterns)
    for word, rest in dockerfile_instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        for src in shlex.split(rest)[:-1]:
            assert (ROOT / src).exists(), src
            assert src == "." or not dockerignored(src, patterns), src


@pytest.fixture(scope="module")
def kubernetes():
    yaml = pytest.importorskip("yaml")
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}
    return docs


def test_kubernetes_grace_period_covers_the_drain(kubernetes):
    cfg = json.loads(kubernetes["ConfigMap"]["data"]["services.json"])
    assert cfg["shutdown_delay"] > 0, "the drain comes from shutdown_delay"
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    # At least a second to spare for reaping and the last log lines.
    assert pod["terminationGracePeriodSeconds"] >= stop_budget(cfg) + 1
    for container in pod["containers"]:
        assert "preStop" not in container.get("lifecycle", {})


def test_kubernetes_probes_reach_the_admin_listener(kubernetes):
    cfg = json.loads(kubernetes["ConfigMap"]["data"]["services.json"])
    container = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    admin_ports = {listen_port(a) for a in cfg["admin"]["listen"] if a.startswith("0.0.0.0:")}
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) in admin_ports
    service_ports = {p["targetPort"] for p in kubernetes["Service"]["spec"]["ports"]}
    assert service_ports <= set(ports)


def test_kubernetes_mounts_the_configuration_the_image_runs(kubernetes):
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_volume = next(v["name"] for v in pod["volumes"]
                         if v.get("configMap", {}).get("name") == kubernetes["ConfigMap"]["metadata"]["name"])
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == config_volume)
    key = next(iter(kubernetes["ConfigMap"]["data"]))
    assert container["args"] == [f"{mount}/{key}"]
    user = next(rest for w, rest in dockerfile_instructions() if w == "USER")
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user


# --------------------------------------------------------------------------
# The example configurations themselves. They use the admin endpoint and
# shutdown_delay, which psup learns with issue 12: checked once the schema
# (spec/, the contract) has them.


def schema_knows(*keys):
    schema = json.loads((ROOT / "spec" / "services.schema.json").read_text())
    return set(keys) <= set(schema["properties"])


@pytest.mark.skipif(not schema_knows("admin", "shutdown_delay"),
                    reason="admin and shutdown_delay are not in spec/services.schema.json yet")
@pytest.mark.parametrize("source", ["container", "kubernetes"])
def test_example_configurations_pass_check(psup_bin, tmp_path, source, request):
    if source == "container":
        text = CONTAINER_CONFIG.read_text()
    else:
        text = request.getfixturevalue("kubernetes")["ConfigMap"]["data"]["services.json"]
    # The admin socket's directory exists in the image, not necessarily here.
    cfg = json.loads(text.replace("unix:/run/psup/", f"unix:{tmp_path}/"))
    path = tmp_path / "services.json"
    path.write_text(json.dumps(cfg))
    r = run(psup_bin, "--check", str(path))
    assert r.returncode == 0, r.stderr
