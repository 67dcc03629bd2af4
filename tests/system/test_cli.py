# SPDX-License-Identifier: MIT
"""The command line (spec/signals.md, "Exit status"): --check, --version,
--help, usage errors, and every invalid example configuration, each
rejected with exit 1 naming the right JSON paths, before anything is bound."""

import json
import os
import pathlib
import socket
import subprocess

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "spec" / "examples"
INVALID = sorted(EXAMPLES.glob("invalid-*.json"))
VALID = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.startswith("invalid-"))


def run(psup_bin, *args, timeout=20, **kw):
    return subprocess.run([psup_bin, *args], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.stem)
def test_check_rejects_invalid_example_with_every_error(psup_bin, example):
    expected = example.with_suffix(".errors").read_text().splitlines()
    r = run(psup_bin, "--check", example.name, cwd=EXAMPLES)
    assert r.returncode == 1
    assert r.stdout == ""
    assert [line.removeprefix("psup: ") for line in r.stderr.splitlines()] == expected


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.stem)
def test_starting_with_an_invalid_file_exits_1_before_binding(psup_bin, example):
    expected = example.with_suffix(".errors").read_text().splitlines()
    r = run(psup_bin, "--log-format", "json", example.name, cwd=EXAMPLES)
    assert r.returncode == 1
    records = [json.loads(line) for line in r.stderr.splitlines()]
    assert [rec["problem"] for rec in records if rec["event"] == "config_invalid"] == expected
    assert not [rec for rec in records if rec["event"] in ("listening", "ready", "start")]


@pytest.mark.parametrize("example", VALID, ids=lambda p: p.stem)
def test_check_accepts_valid_examples(psup_bin, example):
    if example.name == "full.json" and os.geteuid() != 0:
        pytest.skip("full.json switches to user nobody: needs root")
    r = run(psup_bin, "--check", str(example))
    assert r.returncode == 0, r.stderr
    services = json.loads(example.read_text())["services"]
    lines = r.stdout.splitlines()
    assert len(lines) == len(services) + 1
    for svc, line in zip(services, lines):
        assert line.startswith(svc["name"] + ": listen ")
    assert lines[-1].endswith(f"OK, {len(services)} service" + ("s" if len(services) > 1 else ""))


def test_check_binds_nothing(psup_bin, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"services": [
        {"name": "x", "listen": [f"127.0.0.1:{port}"], "command": ["/bin/cat"]}]}))
    try:
        assert run(psup_bin, "--check", str(cfg)).returncode == 0
    finally:
        taken.close()


def test_missing_file_is_a_configuration_error(psup_bin, tmp_path):
    r = run(psup_bin, "--check", str(tmp_path / "nope.json"))
    assert r.returncode == 1
    assert "cannot read" in r.stderr and "No such file" in r.stderr


def test_missing_program_is_an_error_at_load(psup_bin, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"services": [
        {"name": "x", "listen": ["127.0.0.1:0"], "command": ["/nonexistent/handler"]},
        {"name": "y", "listen": ["127.0.0.1:0"], "command": ["no-such-program-anywhere"]}]}))
    r = run(psup_bin, "--check", str(cfg))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith("psup: services[0].command[0]: ")
    assert lines[1].startswith('psup: services[1].command[0]: program "no-such-program-anywhere" not found')


def test_version(psup_bin):
    r = run(psup_bin, "--version")
    assert r.returncode == 0 and r.stdout.startswith("psup ")


def test_help(psup_bin):
    r = run(psup_bin, "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: psup")


@pytest.mark.parametrize("args", [[], ["--bogus", "x.json"], ["--log-format", "xml", "x.json"],
                                  ["a.json", "b.json"]], ids=["none", "unknown", "format", "two"])
def test_usage_errors_exit_2(psup_bin, args):
    r = run(psup_bin, *args)
    assert r.returncode == 2
    assert r.stderr.startswith("psup: ") and "--help" in r.stderr
