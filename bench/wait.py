#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""psup's wait mode against systemd-socket-activate: the same persistent
server, given its listening socket by psup ("mode": "wait", LISTEN_FDS) or
by systemd's reference launcher, under the same load from psup-load.

psup is not on the data path in wait mode: the server accepts by itself.
So the two rows should be the same within the noise; the target is psup
within 3% of systemd-socket-activate. Servers:

  hello     bench-listenserver: accept, "hello\\n", close, in -p processes
            (a C server: the most sensitive to anything in its way)
  gunicorn  gunicorn with sync workers serving a WSGI "hello" over HTTP/1.0

Both launchers run side by side on their own ports; for every concurrency
the rounds alternate which goes first, and the ratio psup / ssa is taken
per round (runs seconds apart) and its median shown.

Standard library only; run with /usr/bin/python3. docs/performance.md has
the results and the method.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import c_escape, free_port  # noqa: E402 (the runner's helpers)

HTTP_REQUEST = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"
HTTP_REPLY_PREFIX = b"HTTP/1.0 200 OK\r\n"
WSGI_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\\n"]
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def probe(port, payload, prefix, deadline):
    """Wait until the server answers one request as expected."""
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if payload:
                    s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            if data.startswith(prefix):
                return
            last = "got %r" % data[:80]
        except OSError as e:
            last = str(e)
        time.sleep(0.05)  # polling for readiness, with a deadline
    raise RuntimeError("no answer: %s" % last)


class Launched:
    """A server started by one launcher on its own port."""

    def __init__(self, launcher, server, argv, tmp):
        self.launcher, self.server, self.tmp = launcher, server, tmp
        self.port = free_port()
        self.log = os.path.join(tmp, "%s-%s.log" % (launcher, server))
        if launcher == "psup":
            cfg = {"services": [{"name": "bench", "listen": ["127.0.0.1:%d" % self.port],
                                 "mode": "wait", "start": "always", "command": argv}]}
            path = os.path.join(tmp, "psup-%s.json" % server)
            with open(path, "w") as f:
                json.dump(cfg, f)
            cmd = [ARGS.psup, path]
        else:
            cmd = [ARGS.ssa, "-l", "127.0.0.1:%d" % self.port, "--fdname=bench"] + argv
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         cwd=tmp, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def cpu_ns(pid):
    """On-CPU time of a process (its threads' schedstat), or None."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except OSError:
        return None
    return total


def load(port, conc, spec):
    cmd = [ARGS.load, "-a", "127.0.0.1:%d" % port, "-c", str(conc), "-d", str(ARGS.duration),
           "-w", str(ARGS.warmup), "--json"] + spec
    r = subprocess.run(cmd, capture_output=True, timeout=ARGS.duration + ARGS.warmup + 60)
    if r.returncode not in (0, 1):
        raise RuntimeError("psup-load: %s" % r.stderr.decode(errors="replace"))
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def servers(tmp):
    out = {}
    hello = os.path.join(ARGS.bin_dir, "bench-listenserver")
    if os.access(hello, os.X_OK):
        out["hello"] = ([hello, "-p", str(ARGS.procs)], b"", b"hello\n",
                        ["-e", c_escape(b"hello\n")])
    gunicorn = shutil.which("gunicorn")
    if gunicorn:
        with open(os.path.join(tmp, "benchapp.py"), "w") as f:
            f.write(WSGI_APP)
        out["gunicorn"] = ([gunicorn, "--chdir", tmp, "--workers", str(ARGS.procs),
                            "--log-level", "warning", "benchapp:app"],
                           HTTP_REQUEST, HTTP_REPLY_PREFIX,
                           ["-p", c_escape(HTTP_REQUEST), "-e", c_escape(HTTP_REPLY_PREFIX),
                            "--expect-prefix"])
    return {k: v for k, v in out.items() if k in ARGS.servers}


def run(tmp):
    results = []
    for name, (argv, payload, prefix, spec) in servers(tmp).items():
        runs = {}
        try:
            for l in ("psup", "ssa"):
                runs[l] = Launched(l, name, argv, tmp)
            deadline = time.monotonic() + 60
            for r in runs.values():
                probe(r.port, payload, prefix, deadline)
            for conc in ARGS.conc:
                for rnd in range(ARGS.rounds):
                    order = ["psup", "ssa"] if rnd % 2 == 0 else ["ssa", "psup"]
                    got = {}
                    for l in order:
                        before = cpu_ns(runs["psup"].proc.pid)
                        got[l] = load(runs[l].port, conc, spec)
                        after = cpu_ns(runs["psup"].proc.pid)
                        # psup's own CPU while its server was loaded: not
                        # on the data path, it should have none.
                        if l == "psup" and before is not None and after is not None:
                            got[l]["psup_cpu_ns"] = after - before
                    results.append({"server": name, "conc": conc, "round": rnd,
                                    **{l: got[l] for l in got}})
                    log("%-8s c=%-3d round %d: psup %8.0f/s  ssa %8.0f/s  errors %d/%d" %
                        (name, conc, rnd, got["psup"]["conns_per_s"],
                         got["ssa"]["conns_per_s"], got["psup"]["errors"]["total"],
                         got["ssa"]["errors"]["total"]))
        finally:
            for r in runs.values():
                r.stop()
    return results


def summary(results):
    rows = []
    keys = sorted({(r["server"], r["conc"]) for r in results}, key=lambda k: (k[0], k[1]))
    for server, conc in keys:
        rs = [r for r in results if r["server"] == server and r["conc"] == conc]
        med = lambda xs: statistics.median(xs)
        row = {"server": server, "conc": conc, "rounds": len(rs)}
        for l in ("psup", "ssa"):
            row[l] = {"rate": med([r[l]["conns_per_s"] for r in rs]),
                      "p50_ms": med([r[l]["latency_us"]["p50"] for r in rs]) / 1000.0,
                      "p99_ms": med([r[l]["latency_us"]["p99"] for r in rs]) / 1000.0,
                      "errors": sum(r[l]["errors"]["total"] for r in rs)}
        ratios = [r["psup"]["conns_per_s"] / r["ssa"]["conns_per_s"] for r in rs
                  if r["ssa"]["conns_per_s"]]
        row["ratio"] = med(ratios) if ratios else None
        row["psup_cpu_ms"] = sum(r["psup"].get("psup_cpu_ns", 0) for r in rs) / 1e6
        row["psup_conns"] = sum(r["psup"]["done"] for r in rs)
        row["ratio_min"] = min(ratios) if ratios else None
        row["ratio_max"] = max(ratios) if ratios else None
        rows.append(row)
    return rows


def markdown(rows):
    out = ["| server | conc | psup conn/s | ssa conn/s | psup / ssa (median, min-max) | "
           "p50 ms psup / ssa | p99 ms psup / ssa | errors | psup's own CPU |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| %s | %d | %.0f | %.0f | %.3f (%.3f-%.3f) | %.2f / %.2f | %.2f / %.2f "
                   "| %d / %d | %.1f ms for %d conns |" %
                   (r["server"], r["conc"], r["psup"]["rate"], r["ssa"]["rate"], r["ratio"],
                    r["ratio_min"], r["ratio_max"], r["psup"]["p50_ms"], r["ssa"]["p50_ms"],
                    r["psup"]["p99_ms"], r["ssa"]["p99_ms"], r["psup"]["errors"],
                    r["ssa"]["errors"], r["psup_cpu_ms"], r["psup_conns"]))
    return "\n".join(out)


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--psup", default=os.path.join(ROOT, "build", "cmd", "psup", "psup"))
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bench"))
    p.add_argument("--servers", default="hello,gunicorn")
    p.add_argument("--conc", default="8,64")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--procs", type=int, default=2, help="server processes (gunicorn workers)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--smoke", action="store_true", help="1 round of 1 s at concurrency 8")
    ARGS = p.parse_args()
    ARGS.servers = ARGS.servers.split(",")
    ARGS.conc = [int(c) for c in ARGS.conc.split(",")]
    if ARGS.smoke:
        ARGS.rounds, ARGS.duration, ARGS.warmup, ARGS.conc = 1, 1, 0.2, [8]
    ARGS.psup = os.path.abspath(ARGS.psup)
    ARGS.bin_dir = os.path.abspath(ARGS.bin_dir)
    ARGS.load = os.path.join(ARGS.bin_dir, "psup-load")
    ARGS.ssa = shutil.which("systemd-socket-activate")
    if not ARGS.ssa:
        log("systemd-socket-activate (Debian systemd) is not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="psup-bench-wait-")
    try:
        rows = summary(run(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not rows:
        log("no server to run (bench-listenserver, gunicorn)")
        return 77
    print(markdown(rows))
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(rows, f, indent=1)
    errors = sum(r["psup"]["errors"] + r["ssa"]["errors"] for r in rows)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
