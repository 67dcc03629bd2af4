# SPDX-License-Identifier: MIT
"""The handler's process (spec/config.md 4.3-4.4, spec/handler.md): user,
group and supplementary groups seen from inside the handler, HOME/USER/
LOGNAME of the target user, cwd, umask, rlimits, nice, clear_env and
pass_env, psup's control variables never reaching a handler, and settings
psup cannot apply rejected at load (exit 1 with the JSON path), never per
connection."""

import grp
import json
import os
import pathlib
import pwd
import resource
import shutil
import signal
import subprocess

import pytest

from conftest import config, parse_report, public_copy, public_dir, service, talk, wait_for

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

NOBODY = pwd.getpwnam("nobody")
NOBODY_GROUP = grp.getgrgid(NOBODY.pw_gid).gr_name  # "nogroup" on Debian
EXTRA_GROUPS = [4242, 4343]  # given to psup (as root) to see that they do not leak

ROOT_ENV = {"HOME": "/root", "USER": "root", "LOGNAME": "root"}


def psup_env(**extra):
    env = dict(os.environ, **ROOT_ENV)
    env.update(extra)
    return env


def with_extra_groups():
    os.setgroups([os.getegid(), *EXTRA_GROUPS])


@pytest.fixture(scope="module")
def helpers(request):
    """The helper handlers, copied where nobody can run them: the build tree
    may be in a private directory (a clone under /root)."""
    built = pathlib.Path(request.config.getoption("--helpers")).resolve()
    public = public_dir("psup-helpers-")
    for f in built.iterdir():
        if f.is_file() and os.access(f, os.X_OK):
            public_copy(f, public)
    yield public
    shutil.rmtree(public, ignore_errors=True)


def report(p, name="r"):
    r = parse_report(talk(p.addr(name)))
    assert r.get("end") == "1", f"the report did not run to the end: {r}"
    return r


def groups_of(r):
    return sorted(int(g) for g in r["groups"].split(",") if g)


def reporter(helpers, name="r", **kw):
    return service(name, command=[str(helpers / "report")], **kw)


def user_with_supplementary_groups():
    """A user of the system that is a member of a group other than its
    primary one, or None."""
    for g in grp.getgrall():
        for member in g.gr_mem:
            try:
                pw = pwd.getpwnam(member)
            except KeyError:
                continue
            if pw.pw_gid != g.gr_gid and pw.pw_uid != 0:
                return pw
    return None


# --------------------------------------------------------------------------
# Credentials (root).


@ROOT
def test_user_nobody_ids_and_groups_from_inside(psup, helpers):
    p = psup(config(reporter(helpers, user="nobody")), env=psup_env(), preexec_fn=with_extra_groups)
    r = report(p)
    assert (r["uid"], r["euid"]) == (str(NOBODY.pw_uid),) * 2
    assert (r["gid"], r["egid"]) == (str(NOBODY.pw_gid),) * 2
    expected = sorted(os.getgrouplist("nobody", NOBODY.pw_gid))
    assert groups_of(r) == expected
    assert 0 not in groups_of(r) and not set(EXTRA_GROUPS) & set(groups_of(r)), "psup's groups leaked"


@ROOT
def test_id_inside_the_handler_and_saved_ids(psup):
    ids = 'id -u; id -g; id -G; grep -E "^(Uid|Gid):" /proc/self/status'
    p = psup(config(service("id", command=ids, user="nobody")), preexec_fn=with_extra_groups)
    out = talk(p.addr("id")).decode().splitlines()
    assert out[0] == str(NOBODY.pw_uid) and out[1] == str(NOBODY.pw_gid)
    assert sorted(int(g) for g in out[2].split()) == sorted(os.getgrouplist("nobody", NOBODY.pw_gid))
    status = {line.split(":")[0]: line.split(":", 1)[1].split() for line in out[3:]}
    assert status["Uid"] == [str(NOBODY.pw_uid)] * 4, "real, effective, saved and fs uid"
    assert status["Gid"] == [str(NOBODY.pw_gid)] * 4, "real, effective, saved and fs gid"


@ROOT
def test_user_gets_home_user_logname_of_the_user_not_roots(psup, helpers):
    p = psup(config(reporter(helpers, user="nobody"),
                    reporter(helpers, "cleared", user="nobody", clear_env=True),
                    reporter(helpers, "overridden", user="nobody", env={"HOME": "/srv/elsewhere"}),
                    reporter(helpers, "passed", user="nobody", clear_env=True, pass_env=["HOME", "USER"])),
             env=psup_env())
    for name in ("r", "cleared", "passed"):
        env = report(p, name)["env"]
        assert (env["HOME"], env["USER"], env["LOGNAME"]) == (NOBODY.pw_dir, "nobody", "nobody"), name
    env = report(p, "overridden")["env"]
    assert env["HOME"] == "/srv/elsewhere", "env wins over the user's entry"
    assert (env["USER"], env["LOGNAME"]) == ("nobody", "nobody")


@ROOT
def test_user_as_a_number(psup, helpers):
    p = psup(config(reporter(helpers, user=NOBODY.pw_uid)), env=psup_env())
    r = report(p)
    assert (r["uid"], r["gid"]) == (str(NOBODY.pw_uid), str(NOBODY.pw_gid))
    assert (r["env"]["HOME"], r["env"]["USER"]) == (NOBODY.pw_dir, "nobody")


@ROOT
def test_supplementary_groups_false_keeps_only_the_gid(psup, helpers):
    p = psup(config(reporter(helpers, user="nobody", supplementary_groups=False)),
             preexec_fn=with_extra_groups)
    r = report(p)
    assert r["uid"] == str(NOBODY.pw_uid)
    assert groups_of(r) == [NOBODY.pw_gid]


@ROOT
def test_supplementary_groups_of_a_member_user(psup, helpers):
    pw = user_with_supplementary_groups()
    if pw is None:
        pytest.skip("no user on this system is a member of a group other than its own")
    p = psup(config(reporter(helpers, "with", user=pw.pw_name),
                    reporter(helpers, "without", user=pw.pw_name, supplementary_groups=False)))
    memberships = sorted(os.getgrouplist(pw.pw_name, pw.pw_gid))
    assert len(memberships) > 1
    assert groups_of(report(p, "with")) == memberships
    assert groups_of(report(p, "without")) == [pw.pw_gid]


@ROOT
def test_user_with_another_group(psup, helpers):
    try:
        daemon = grp.getgrnam("daemon")
    except KeyError:
        pytest.skip("no group daemon")
    p = psup(config(reporter(helpers, user="nobody", group="daemon")), preexec_fn=with_extra_groups)
    r = report(p)
    assert (r["uid"], r["gid"], r["egid"]) == (str(NOBODY.pw_uid), str(daemon.gr_gid), str(daemon.gr_gid))
    assert groups_of(r) == sorted(os.getgrouplist("nobody", daemon.gr_gid))


@ROOT
@pytest.mark.parametrize("group", [NOBODY_GROUP, NOBODY.pw_gid], ids=["name", "number"])
def test_group_alone_changes_only_the_gid(psup, helpers, group):
    p = psup(config(reporter(helpers, group=group)), env=psup_env(), preexec_fn=with_extra_groups)
    r = report(p)
    assert (r["uid"], r["euid"]) == ("0", "0"), "the uid stays psup's"
    assert (r["gid"], r["egid"]) == (str(NOBODY.pw_gid),) * 2
    assert groups_of(r) == [NOBODY.pw_gid], "only the gid"
    assert r["env"]["HOME"] == "/root" and r["env"]["USER"] == "root", "no user: psup's HOME and USER"


@ROOT
def test_neither_user_nor_group_changes_nothing(psup, helpers):
    p = psup(config(reporter(helpers)), preexec_fn=with_extra_groups)
    r = report(p)
    assert (r["uid"], r["gid"]) == ("0", str(os.getegid()))
    assert groups_of(r) == sorted({os.getegid(), *EXTRA_GROUPS})


# --------------------------------------------------------------------------
# Process settings (no root needed).


def test_cwd(psup, helpers, tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    p = psup(config(reporter(helpers, cwd=str(work)), reporter(helpers, "default")))
    assert report(p)["cwd"] == str(work)
    assert report(p, "default")["cwd"] == str(tmp_path), "without cwd: psup's working directory"


@ROOT
def test_cwd_and_user_together(psup, helpers, tmp_path):
    work = tmp_path / "pub"
    work.mkdir()
    work.chmod(0o777)
    p = psup(config(service("w", command="pwd; touch made-here; ls -ln made-here", cwd=str(work),
                            user="nobody", umask="077")))
    # The parents of tmp_path are not searchable by nobody, but the
    # directory itself is: chdir happens before the uid changes.
    out = talk(p.addr("w")).decode().splitlines()
    assert out[0] == str(work)
    assert out[1].startswith("-rw-------") and f" {NOBODY.pw_uid} " in out[1], out


def test_umask(psup, helpers):
    def psup_umask():
        os.umask(0o077)

    p = psup(config(reporter(helpers, umask="027"), reporter(helpers, "octal4", umask="0002"),
                    reporter(helpers, "default")), preexec_fn=psup_umask)
    assert report(p)["umask"] == "0027"
    assert report(p, "octal4")["umask"] == "0002"
    assert report(p, "default")["umask"] == "0077", "without umask: psup's"


def test_rlimits_and_nice(psup, helpers):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want_soft = min(256, soft if soft != resource.RLIM_INFINITY else 256)
    want_hard = min(512, hard if hard != resource.RLIM_INFINITY else 512)
    want_soft = min(want_soft, want_hard)
    base_nice = os.getpriority(os.PRIO_PROCESS, 0)
    p = psup(config(reporter(helpers, rlimits={"nofile": [want_soft, want_hard], "core": 0},
                             nice=min(base_nice + 5, 19)),
                    reporter(helpers, "default")))
    r = report(p)
    assert r["rlimit_nofile"] == f"{want_soft}:{want_hard}"
    assert r["rlimit_core"] == "0:0"
    assert r["nice"] == str(min(base_nice + 5, 19))
    d = report(p, "default")
    assert d["nice"] == str(base_nice), "without nice: psup's"
    own = resource.getrlimit(resource.RLIMIT_CORE)
    fmt = lambda v: str(v if v != resource.RLIM_INFINITY else 2**64 - 1)
    assert d["rlimit_core"] == f"{fmt(own[0])}:{fmt(own[1])}", "without rlimits: psup's limits"


@ROOT
def test_negative_nice_as_root(psup, helpers):
    p = psup(config(reporter(helpers, nice=-5, rlimits={"core": [0, "unlimited"]})))
    r = report(p)
    assert r["nice"] == "-5"
    assert r["rlimit_core"] == f"0:{2**64 - 1}"


def has_capability(bit):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


CAP_SYS_RESOURCE = 24


@ROOT
def test_raising_a_hard_limit_is_applied_or_refused_at_load(psup, helpers):
    """Root may raise a hard limit only with CAP_SYS_RESOURCE. Either way
    the setting must not turn into a failure per connection: it is applied,
    or the file is refused at load."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    if hard == resource.RLIM_INFINITY or hard >= nr_open:
        pytest.skip("the hard nofile limit leaves no room above it")
    want = min(hard * 2, nr_open)
    p = psup(config(reporter(helpers, rlimits={"nofile": want})), wait=False)
    p.expect_errors = True
    wait_for(lambda: p.exited() or p.events("ready"), 15, "psup to start or refuse")
    if p.exited():
        assert p.proc.returncode == 1
        assert [r["problem"].split(":")[0] for r in p.records() if r.get("event") == "config_invalid"] == \
            ["services[0].rlimits.nofile"]
        return
    r = report(p)
    assert r["rlimit_nofile"] == f"{want}:{want}"
    assert not p.events("exec_failed")


# --------------------------------------------------------------------------
# Environment hygiene.


def test_clear_env_hides_a_secret_of_psups_environment(psup, helpers):
    env = psup_env(PSUP_TEST_SECRET="s3cr3t-value", KEEP_ME="kept")
    p = psup(config(reporter(helpers, clear_env=True, pass_env=["KEEP_ME", "NOT_SET_ANYWHERE"],
                             env={"ADDED": "a"}),
                    reporter(helpers, "inherit")), env=env)
    r = report(p)
    text = json.dumps(r)
    assert "s3cr3t-value" not in text and "PSUP_TEST_SECRET" not in r["env"]
    assert r["env"]["KEEP_ME"] == "kept" and r["env"]["ADDED"] == "a"
    assert "NOT_SET_ANYWHERE" not in r["env"]
    for inherited in ("HOME", "PATH", "USER"):
        assert inherited not in r["env"], inherited
    # Without clear_env psup's environment is passed (but not PSUP_*).
    other = report(p, "inherit")["env"]
    assert other["KEEP_ME"] == "kept" and other["HOME"] == "/root"


CONTROL = {"NOTIFY_SOCKET": "/run/systemd/notify-psup-test", "LISTEN_FDS": "2",
           "LISTEN_PID": "1", "LISTEN_FDNAMES": "a:b", "WATCHDOG_USEC": "30000000",
           "WATCHDOG_PID": "1"}


def test_control_variables_never_reach_a_handler(psup, helpers):
    lookups = {"TCPREMOTEHOST": "evil.example", "TCPLOCALHOST": "local.example", "TCPREMOTEINFO": "ident"}
    p = psup(config(reporter(helpers), reporter(helpers, "cleared", clear_env=True, pass_env=["PATH"])),
             env=psup_env(**CONTROL, **lookups))
    for name in ("r", "cleared"):
        env = report(p, name)["env"]
        for var in [*CONTROL, *lookups]:
            assert var not in env, f"{var} reached the handler of {name}"


def test_control_variables_are_not_passed_even_when_named_in_pass_env(psup, helpers):
    p = psup(config(reporter(helpers, clear_env=True, pass_env=["PATH", *CONTROL])),
             env=psup_env(**CONTROL), wait=False)
    p.wait_ready()
    env = report(p)["env"]
    for var in CONTROL:
        assert var not in env, f"{var} reached the handler through pass_env"
    assert env["PATH"] == os.environ["PATH"]


# --------------------------------------------------------------------------
# Settings psup cannot apply: errors at load.


def problems(p):
    return [r["problem"] for r in p.records() if r.get("event") == "config_invalid"]


def test_unknown_user_is_an_error_at_load(psup, helpers):
    p = psup(config(reporter(helpers), reporter(helpers, "bad", user="psup-no-such-user")), wait=False)
    p.expect_errors = True
    assert p.wait_exit() == 1
    assert problems(p) == ['services[1].user: no such user "psup-no-such-user"']
    assert not p.events("listening") and not p.events("ready")


def test_unknown_group_is_an_error_at_load(psup, helpers):
    p = psup(config(reporter(helpers, group="psup-no-such-group")), wait=False)
    p.expect_errors = True
    assert p.wait_exit() == 1
    assert problems(p) == ['services[0].group: no such group "psup-no-such-group"']


def test_unknown_user_on_reload_keeps_the_running_configuration(psup, helpers):
    p = psup(config(reporter(helpers)))
    p.expect_errors = True
    p.write_config(config(reporter(helpers, user="psup-no-such-user")))
    p.send(signal.SIGHUP)
    failed = p.wait_event("reload_failed")
    assert failed[0]["problem"] == 'services[0].user: no such user "psup-no-such-user"'
    p.wait_event("reload_rejected")
    assert report(p)["uid"] == str(os.geteuid()), "still serving with the old settings"
    assert not p.exited()


# Running psup unprivileged: setpriv (util-linux) drops to nobody. The file
# is read relative to a world-searchable working directory, since the
# parents of the test's directory are private.


def as_nobody(psup_bin, tmp_path, cfg, *args, groups="--init-groups"):
    pub = tmp_path / "pub"
    pub.mkdir(exist_ok=True)
    pub.chmod(0o755)
    (pub / "c.json").write_text(json.dumps(cfg))
    (pub / "c.json").chmod(0o644)
    cmd = [shutil.which("setpriv"), f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", groups,
           psup_bin, "--log-format", "json", *args, "c.json"]
    proc = subprocess.Popen(cmd, cwd=pub, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # psup started instead of refusing: end it by pid
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode, out, err


def load_problems(err):
    out = []
    for line in err.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line.removeprefix("psup: "))
            continue
        if rec.get("event") == "config_invalid":
            out.append(rec["problem"])
    return out


@pytest.fixture
def unprivileged(psup_bin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to start psup as nobody")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    code, out, err = as_nobody(psup_bin, tmp_path, config(service()), "--check")
    if code != 0:
        pytest.skip(f"psup cannot run as nobody here ({err.strip()[:200]})")
    return lambda cfg, *args, **kw: as_nobody(psup_bin, tmp_path, cfg, *args, **kw)


def test_unprivileged_psup_with_user_is_an_error_at_load(unprivileged):
    cfg = config(service("a"), service("b", user="root"))
    code, out, err = unprivileged(cfg)
    assert code == 1, err
    assert load_problems(err) == [
        f'services[1].user: psup runs as uid {NOBODY.pw_uid} and cannot switch to uid 0 ("root"); '
        "run psup as root or remove user"]
    assert '"event":"listening"' not in err.replace(" ", "")


def test_unprivileged_psup_with_group_is_an_error_at_load(unprivileged):
    code, out, err = unprivileged(config(service(group=0)))
    assert code == 1, err
    root_group = grp.getgrgid(0).gr_name
    assert load_problems(err) == [
        f'services[0].group: psup runs as gid {NOBODY.pw_gid} and cannot switch to gid 0 ("{root_group}"); '
        "run psup as root or remove group"]


def test_unprivileged_check_reports_the_same_errors(unprivileged):
    code, out, err = unprivileged(config(service(user="root")), "--check")
    assert code == 1
    assert load_problems(err) == [
        f'services[0].user: psup runs as uid {NOBODY.pw_uid} and cannot switch to uid 0 ("root"); '
        "run psup as root or remove user"]


def test_unprivileged_psup_naming_itself_is_valid(unprivileged):
    code, out, err = unprivileged(config(service(user="nobody", group=NOBODY.pw_gid)), "--check")
    assert code == 0, err


def test_unprivileged_limits_are_checked_at_load(unprivileged):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard + 1 > 1048576:
        pytest.skip("psup's hard nofile limit leaves no room above it")
    code, out, err = unprivileged(config(service(rlimits={"nofile": hard + 1}, nice=-1)), "--check")
    assert code == 1
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert load_problems(err) == [
        f"services[0].rlimits.nofile: cannot raise the hard limit above {hard} without root",
        f"services[0].nice: cannot lower the nice value below {nice} without root",
    ]
