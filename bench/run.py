#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""psup benchmark runner: psup against tcpserver, tcpsvd, socat and xinetd.

Every server runs the same handler on loopback and gets the same load from
psup-load. The udp handler (cat, one datagram per request) runs on the
servers that fork per datagram: psup in datagram mode and socat
UDP-RECVFROM with fork; its ratios are against socat. Servers are interleaved: for each handler all servers are started
side by side (each on its own port), and for every concurrency the rounds run
the servers in rotating order, so slow drifts of a noisy shared machine hit
every server alike. Ratios (x tcpserver, x limit) are computed per round,
from runs taken minutes apart at most, and the median over rounds is shown.

The "limit" row is bench-spawnloop: min(concurrency, nproc) processes each
posix_spawn()ing the handler and waiting for it in a loop. No server that
runs a process per connection can exceed it.

Server CPU is that of the server's main process only (for psup: the
supervisor; not its workers, not the handlers): the sum over its threads of
/proc/PID/task/TID/schedstat (on-CPU nanoseconds; equals utime+stime without
the 10 ms tick granularity), falling back to utime+stime of /proc/PID/stat.
It is sampled before and after each run and divided by the connections of
that run (warm-up and drain included on both sides).

Standard library only; run with /usr/bin/python3. See bench/README.md and
docs/performance.md.
"""

import argparse
import datetime
import json
import os
import platform
import pwd
import re
import shlex
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

ALL_SERVERS = ["psup", "psup-prestart", "psup-cgi", "tcpserver", "tcpsvd", "socat",
               "socat-relay", "xinetd", "spawn-server", "limit"]
DEFAULT_SERVERS = ["psup", "psup-prestart", "psup-cgi", "tcpserver", "tcpsvd", "socat", "xinetd",
                   "limit"]
ALL_HANDLERS = ["hello", "cat", "http", "udp"]
DEFAULT_CONC = [1, 8, 64, 256]
UDP_DEFAULT_CONC = [1, 8, 64]

CAT_PAYLOAD = b"the quick brown fox jumps over the lazy dog 0123456789\n"
HTTP_REQUEST = (b"GET / HTTP/1.0\r\nHost: bench\r\nUser-Agent: psup-load\r\n"
                b"Accept: */*\r\n\r\n")
HTTP_REPLY = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
              b"Connection: close\r\n\r\nhello\n")
# What psup's CGI relay answers for bench/cgi.sh: its head carries a Date,
# so the load generator checks the status line and the probe the body too.
CGI_REPLY_PREFIX = b"HTTP/1.1 200 OK\r\n"
CGI_REPLY_SUFFIX = b"\r\n\r\nhello\n"

# (handler, server) pairs a server cannot run (a static handler prestarted).
UNSUPPORTED = set()

READY_RE = re.compile(r'event=ready\b|"event"\s*:\s*"ready"')


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------
# helpers


def c_escape(data):
    """bytes -> the C-escaped text psup-load's -p/-e decode."""
    out = []
    for b in data:
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def free_port(proto="tcp"):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_first_line(path):
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def clk_tck():
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


CLK_TCK = clk_tck()


def proc_cpu_ns(pid):
    """On-CPU time of process pid (all its threads, not its children), ns.

    Returns (schedstat_ns or None, stat_ns or None)."""
    sched = None
    try:
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        sched = total
    except (OSError, ValueError, IndexError):
        sched = None
    stat = None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15
        stat = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK
    except (OSError, ValueError, IndexError):
        stat = None
    if sched == 0 and stat:
        sched = None  # schedstat present but not accounting
    return sched, stat


def children_cpu_ns(pid):
    """CPU time of the reaped children of pid and of their reaped
    descendants (cutime + cstime): for a server, the processes that served
    its connections, handlers included (for psup: worker, relay, script)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # cutime is field 16, cstime field 17
        return (int(fields[13]) + int(fields[14])) * 1_000_000_000 // CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def proc_mem_kib(pid):
    rss = hwm = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, hwm


def prestarted_pss_kib(pid):
    """The mean PSS of psup's prestarted workers that wait for a connection
    (children still holding psup's plan memfd), and how many there are."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return None, 0
    pss = []
    for c in children:
        try:
            fds = os.listdir("/proc/%d/fd" % c)
            if not any(os.readlink("/proc/%d/fd/%s" % (c, fd)).startswith("/memfd:psup-plan")
                       for fd in fds):
                continue
            with open("/proc/%d/smaps_rollup" % c) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss.append(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return (sum(pss) / len(pss) if pss else None), len(pss)


def system_busy():
    """(busy jiffies, total jiffies) of all CPUs from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        total = sum(v[:8])
        return total - idle, total
    except (OSError, ValueError):
        return 0, 0


def probe_udp(port, payload, expect, deadline):
    """Send a datagram to 127.0.0.1:port until one is answered (the server
    may not be bound yet); check the reply. Returns None or a reason."""
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", port))
                s.send(payload)
                data = s.recv(65536)
            except (socket.timeout, ConnectionRefusedError):
                continue  # not listening yet: polling a condition, with a deadline
            except OSError as e:
                return "request: %s" % e
        if data != expect:
            return "wrong reply %r (expected %r)" % (data[:200], expect)
        return None
    return "no reply before the deadline"


def probe(port, handler, deadline):
    """Wait until 127.0.0.1:port accepts, then do one request and check the
    reply. Returns None when correct, else a reason."""
    if handler.proto == "udp":
        return probe_udp(port, handler.payload, handler.expect, deadline)
    payload = handler.payload
    last = "no attempt"
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "not ready before the deadline (%s)" % last
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(max(0.1, min(5.0, deadline - now)))
        try:
            s.connect(("127.0.0.1", port))
        except (ConnectionRefusedError, socket.timeout) as e:
            s.close()
            last = "connect: %s" % (e.strerror or e)
            time.sleep(0.02)  # polling a condition, with a deadline
            continue
        except OSError as e:
            s.close()
            return "connect: %s" % e
        try:
            if payload:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            return "request: %s" % e
        finally:
            s.close()
        if not handler.matches(data):
            return "wrong reply %r (expected %s)" % (data[:200], handler.expected_text())
        return None


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
        return "".join(lines[-n:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------
# servers


class Server:
    """One server process on its own port with one handler."""

    name = "?"
    binary = None  # program looked up in PATH to decide availability
    protos = ("tcp",)  # the handlers' protocols it serves

    def __init__(self, ctx, handler, tmpdir):
        self.ctx = ctx
        self.handler = handler
        self.tmpdir = tmpdir
        self.proc = None
        self.port = None
        self.logpath = None
        self.dead_reason = None
        self.idle_pss_kib = None

    def supports(self):
        """Whether this server can run the handler at all."""
        return True

    @classmethod
    def available(cls, ctx):
        return shutil.which(cls.binary) is not None

    @classmethod
    def has_row(cls, handler):
        """Whether the server has a row in handler's tables at all."""
        return True

    def argv(self):
        raise NotImplementedError

    def prepare(self):
        pass

    def wait_ready(self, deadline):
        pass

    def start(self):
        self.port = free_port(self.handler.proto)
        self.prepare()
        self.logpath = os.path.join(self.tmpdir, "%s-%s-%d.log" %
                                    (self.name, self.handler.name, self.port))
        logf = open(self.logpath, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=self.tmpdir, start_new_session=True, close_fds=True)
        finally:
            logf.close()
        self.ctx.track(self.proc)
        deadline = time.monotonic() + self.ctx.ready_timeout
        try:
            self.wait_ready(deadline)
            if self.proc.poll() is not None:
                raise BenchError("exited with status %s" % self.proc.returncode)
            err = probe(self.port, self.handler, deadline)
            if err:
                raise BenchError(err)
        except BenchError as e:
            msg = "%s (%s handler) did not start: %s" % (self.name, self.handler.name, e)
            t = tail(self.logpath)
            if t:
                msg += "\n  log %s:\n%s" % (self.logpath, t)
            self.stop()
            raise BenchError(msg) from None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return None
        rc = self.ctx.stop_proc(self.proc)
        self.proc = None
        return rc

    @property
    def pid(self):
        return self.proc.pid


class Psup(Server):
    name = "psup"
    protos = ("tcp", "udp")

    @classmethod
    def available(cls, ctx):
        return ctx.psup is not None and os.access(ctx.psup, os.X_OK)

    def prepare(self):
        scheme = "udp://" if self.handler.proto == "udp" else ""
        svc = {"name": "bench", "listen": ["%s127.0.0.1:%d" % (scheme, self.port)],
               "command": self.handler.argv}
        if self.handler.protocol != "raw":
            svc["protocol"] = self.handler.protocol
        svc.update(self.ctx.psup_service)
        conf = {"services": [svc]}
        conf.update(self.ctx.psup_top)
        self.conf = os.path.join(self.tmpdir, "psup-%s.json" % self.handler.name)
        with open(self.conf, "w") as f:
            json.dump(conf, f, indent=2)

    def argv(self):
        return [self.ctx.psup] + self.ctx.psup_args + [self.conf]

    def wait_ready(self, deadline):
        # psup logs a line with event=ready once every listener is bound.
        while True:
            try:
                with open(self.logpath, errors="replace") as f:
                    if any(READY_RE.search(line) for line in f):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise BenchError("exited with status %s before event=ready" %
                                 self.proc.returncode)
            if time.monotonic() >= deadline:
                raise BenchError("no event=ready line within %.0f s" %
                                 self.ctx.ready_timeout)
            time.sleep(0.01)  # polling the log for a condition, with a deadline


class PsupCgi(Psup):
    """psup with "protocol": "cgi", in the http handler's tables: the same
    answer from bench/cgi.sh, a CGI script, through psup's relay (the one
    process between the script and the socket), so the row next to psup's
    shows what the HTTP translation costs."""

    name = "psup-cgi"

    @classmethod
    def has_row(cls, handler):
        return handler.name == "http"

    def __init__(self, ctx, handler, tmpdir):
        super().__init__(ctx, ctx.cgi_handler, tmpdir)


class Tcpserver(Server):
    name = "tcpserver"
    binary = "tcpserver"

    def argv(self):
        # -R -H -l0: no ident, no reverse DNS, no local name lookup;
        # -c 1000: concurrency limit well above 256; -b 1024: listen backlog.
        return ["tcpserver", "-R", "-H", "-l0", "-c", "1000", "-b", "1024",
                "127.0.0.1", str(self.port)] + self.handler.argv


class Tcpsvd(Server):
    name = "tcpsvd"
    binary = "tcpsvd"

    def argv(self):
        # -l localhost: no DNS lookup of the local name (it would wait on
        # DNS otherwise); -c 1000 concurrency, -b 1024 backlog. It does no
        # remote DNS without -h.
        return ["tcpsvd", "-l", "localhost", "-c", "1000", "-b", "1024",
                "127.0.0.1", str(self.port)] + self.handler.argv


class Socat(Server):
    name = "socat"
    binary = "socat"
    protos = ("tcp", "udp")

    def argv(self):
        for a in self.handler.argv:
            if re.search(r"[\s,:!'\"\\]", a):
                raise BenchError("socat cannot take %r in EXEC" % a)
        if self.handler.proto == "udp":
            # A child per datagram (socat peeks at the sender, forks, the
            # child reads the datagram); the child relays between the
            # socket and the handler's pipes: EXEC cannot give a handler
            # a datagram socket to read one datagram from.
            return ["socat", "UDP4-RECVFROM:%d,bind=127.0.0.1,fork" % self.port,
                    "EXEC:%s" % " ".join(self.handler.argv)]
        # nofork: the forked child execs the handler on the socket itself
        # (as inetd does) instead of relaying through a socketpair.
        return ["socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=1024" % self.port,
                "EXEC:%s,nofork" % " ".join(self.handler.argv)]


class SocatRelay(Socat):
    """socat's default EXEC (no nofork): the child forks again and relays
    between the connection and the handler through a socketpair. Not in the
    default set; shows what a plain `socat ... EXEC:prog` costs."""

    name = "socat-relay"
    protos = ("tcp",)

    def argv(self):
        a = super().argv()
        a[-1] = a[-1][:-len(",nofork")]
        return a


class Xinetd(Server):
    name = "xinetd"
    binary = "xinetd"

    @classmethod
    def available(cls, ctx):
        return shutil.which("xinetd") is not None or os.access("/usr/sbin/xinetd", os.X_OK)

    def prepare(self):
        user = pwd.getpwuid(os.geteuid()).pw_name
        argv = self.handler.argv
        for a in argv:
            if re.search(r"\s", a):
                raise BenchError("xinetd cannot take %r in server/server_args" % a)
        lines = [
            "defaults",
            "{",
            "\tlog_on_success =",
            "\tlog_on_failure =",
            "}",
            "service psupbench",
            "{",
            "\ttype = UNLISTED",
            "\tid = psupbench",
            "\tsocket_type = stream",
            "\tprotocol = tcp",
            "\tport = %d" % self.port,
            "\tbind = 127.0.0.1",
            "\twait = no",
            "\tuser = %s" % user,
            "\tserver = %s" % argv[0],
        ]
        if len(argv) > 1:
            lines.append("\tserver_args = %s" % " ".join(argv[1:]))
        lines += [
            "\tinstances = UNLIMITED",
            "\tcps = 100000 1",
            "\tper_source = UNLIMITED",
            "\tlog_on_success =",
            "\tlog_on_failure =",
            "}",
            "",
        ]
        self.conf = os.path.join(self.tmpdir, "xinetd-%s.conf" % self.handler.name)
        self.pidfile = os.path.join(self.tmpdir, "xinetd-%s.pid" % self.handler.name)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))

    def argv(self):
        exe = shutil.which("xinetd") or "/usr/sbin/xinetd"
        return [exe, "-dontfork", "-f", self.conf, "-pidfile", self.pidfile]


class SpawnServer(Server):
    """bench-spawnserver: accept, posix_spawn the handler on the socket,
    accept again; the kernel reaps. The cheapest way to fork on the client's
    path, with no supervision at all. Not in the default set."""

    name = "spawn-server"

    @classmethod
    def available(cls, ctx):
        return os.access(ctx.spawnserver, os.X_OK)

    def argv(self):
        return [self.ctx.spawnserver, "127.0.0.1", str(self.port)] + self.handler.argv


class PsupPrestart(Psup):
    """psup with "prestart": true (spec/prestart.md): each idle worker has
    exec'd the handler already. Not for a static handler (hello), which
    psup refuses to prestart."""

    name = "psup-prestart"

    def supports(self):
        return not self.handler.static

    def prepare(self):
        super().prepare()
        with open(self.conf) as f:
            conf = json.load(f)
        conf["services"][0]["prestart"] = True
        with open(self.conf, "w") as f:
            json.dump(conf, f, indent=2)

    def wait_ready(self, deadline):
        super().wait_ready(deadline)
        # The spares are exec'd after event=ready: wait for them, then
        # measure what one costs while it waits.
        want = self.ctx.psup_service.get("pool", {}).get("min_spare", 4)
        while prestarted_pss_kib(self.proc.pid)[1] < want and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for a condition, with a deadline
        self.idle_pss_kib = prestarted_pss_kib(self.proc.pid)[0]


SERVER_CLASSES = {c.name: c for c in (Psup, PsupPrestart, PsupCgi, Tcpserver, Tcpsvd, Socat,
                                      SocatRelay,                                      Xinetd, SpawnServer)}


# ----------------------------------------------------------------------------
# handlers


class Handler:
    """A handler and the reply it must give: exactly expect, or (for the
    cgi handler, whose reply has a Date) a prefix and a suffix; proto is
    the protocol its servers listen on, reference the server its ratio
    columns compare with; static: statically linked, so no prestart."""

    def __init__(self, name, argv, payload, expect, load_args, proto="tcp",
                 reference="tcpserver", static=False, protocol="raw", prefix=None, suffix=None):
        self.name = name
        self.argv = argv
        self.payload = payload
        self.expect = expect
        self.load_args = load_args
        self.proto = proto
        self.reference = reference
        self.static = static
        self.protocol = protocol
        self.prefix = prefix
        self.suffix = suffix

    def matches(self, data):
        if self.expect is not None:
            return data == self.expect
        return data.startswith(self.prefix) and data.endswith(self.suffix)

    def expected_text(self):
        if self.expect is not None:
            return repr(self.expect)
        return "%r ... %r" % (self.prefix, self.suffix)


def make_cgi_handler():
    """http.sh's answer from bench/cgi.sh, a CGI script, as the psup-cgi
    server runs it in place of the http handler."""
    cgi = os.path.join(HERE, "cgi.sh")
    return Handler("cgi", ["/bin/sh", cgi], HTTP_REQUEST, None,
                   ["-p", c_escape(HTTP_REQUEST), "-e", c_escape(CGI_REPLY_PREFIX),
                    "--expect-prefix"], protocol="cgi", prefix=CGI_REPLY_PREFIX,
                   suffix=CGI_REPLY_SUFFIX)


def make_handlers(bindir):
    hello = os.path.join(bindir, "bench-hello")
    http = os.path.join(HERE, "http.sh")
    return {
        "hello": Handler("hello", [hello], b"", b"hello\n",
                         ["-e", c_escape(b"hello\n")], static=True),
        "cat": Handler("cat", ["/bin/cat"], CAT_PAYLOAD, CAT_PAYLOAD,
                       ["-p", c_escape(CAT_PAYLOAD), "--echo"]),
        "http": Handler("http", ["/bin/sh", http], HTTP_REQUEST, HTTP_REPLY,
                        ["-p", c_escape(HTTP_REQUEST), "-e", c_escape(HTTP_REPLY)]),
        "udp": Handler("udp", ["/bin/cat"], CAT_PAYLOAD, CAT_PAYLOAD,
                       ["--udp", "-p", c_escape(CAT_PAYLOAD), "--echo"], "udp", "socat"),
    }


def serves(server, handler):
    """Whether server takes part in handler's tables (the limit always;
    psup-cgi in the http handler's only)."""
    if server == "limit":
        return True
    cls = SERVER_CLASSES[server]
    return handler.proto in cls.protos and cls.has_row(handler)


# ----------------------------------------------------------------------------
# the run


class Context:
    def __init__(self, args):
        self.args = args
        self.procs = []
        self.psup = args.psup
        self.psup_args = args.psup_arg or []
        self.psup_service = json.loads(args.psup_service) if args.psup_service else {}
        self.psup_top = json.loads(args.psup_top) if args.psup_top else {}
        self.cgi_handler = make_cgi_handler()
        self.ready_timeout = args.ready_timeout

    def track(self, proc):
        self.procs.append(proc)

    def stop_proc(self, proc, grace=10.0):
        """SIGTERM, wait up to grace, then SIGKILL; then clean the process
        group it led (handlers left behind). Returns the exit status."""
        rc = proc.poll()
        if rc is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                rc = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log("warning: pid %d did not exit %.0f s after SIGTERM; SIGKILL" %
                    (proc.pid, grace))
                proc.kill()
                rc = proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its session/group, by its pid
        except (ProcessLookupError, PermissionError):
            pass
        if proc in self.procs:
            self.procs.remove(proc)
        return rc

    def cleanup(self):
        for p in list(self.procs):
            try:
                self.stop_proc(p, grace=3.0)
            except Exception as e:  # keep cleaning the others
                log("warning: cleanup of pid %d: %s" % (p.pid, e))


def run_load(ctx, server, conc):
    """One measurement of server, with the handler it runs (for psup-cgi
    the CGI script, checked by its own reply)."""
    a = ctx.args
    cmd = [ctx.load, "-a", "127.0.0.1:%d" % server.port, "-c", str(conc),
           "-d", str(a.duration), "-w", str(a.warmup), "-t", str(a.timeout),
           "--json"] + server.handler.load_args
    pid = server.pid
    cpu0 = proc_cpu_ns(pid)
    kids0 = children_cpu_ns(pid)
    sys0 = system_busy()
    t0 = time.monotonic()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=a.duration + a.warmup + a.timeout / 1000.0 + 30)
    wall = time.monotonic() - t0
    cpu1 = proc_cpu_ns(pid)
    kids1 = children_cpu_ns(pid)
    sys1 = system_busy()
    rss, hwm = proc_mem_kib(pid)
    if res.returncode not in (0, 1):
        raise BenchError("psup-load failed (%d): %s" %
                         (res.returncode, res.stderr.decode(errors="replace").strip()))
    r = json.loads(res.stdout.decode().strip().splitlines()[-1])
    conns = max(1, r["done"])
    sched = (cpu1[0] - cpu0[0]) if cpu0[0] is not None and cpu1[0] is not None else None
    stat = (cpu1[1] - cpu0[1]) if cpu0[1] is not None and cpu1[1] is not None else None
    cpu_ns = sched if sched is not None else stat
    busy = sys1[0] - sys0[0]
    total = sys1[1] - sys0[1]
    return {
        "rate": r["conns_per_s"],
        "lat": r["latency_us"],
        "eof_us": r.get("eof_after_last_byte_us", {}).get("p50"),
        "errors": r["errors"],
        "wrong_sample": r.get("wrong_sample"),
        "ok": r["ok"],
        "done": r["done"],
        "load_cpu_pct": r["cpu"]["pct_of_core"],
        "load_cpu_us_per_conn": r["cpu"]["us_per_conn"],
        "srv_cpu_us_per_conn": (cpu_ns / 1000.0 / conns) if cpu_ns is not None else None,
        "srv_cpu_source": "schedstat" if sched is not None else "stat",
        "srv_cpu_stat_us_per_conn": (stat / 1000.0 / conns) if stat is not None else None,
        "children_cpu_us_per_conn": ((kids1 - kids0) / 1000.0 / conns
                                     if kids0 is not None and kids1 is not None else None),
        "srv_rss_kib": rss,
        "srv_hwm_kib": hwm,
        "idle_pss_kib": server.idle_pss_kib,
        "machine_busy_pct": (100.0 * busy / total) if total else None,  # of all CPUs
        "wall_s": wall,
        "alive_after": server.alive(),
    }


def run_limit(ctx, handler, jobs):
    a = ctx.args
    cmd = [ctx.spawnloop, "-j", str(jobs), "-d", str(a.duration), "--json"]
    if a.limit_pipe:
        cmd.append("--pipe")
    cmd += handler.argv
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=a.duration + 30)
    if res.returncode not in (0, 1) or not res.stdout.strip():
        raise BenchError("bench-spawnloop failed (%d): %s" %
                         (res.returncode, res.stderr.decode(errors="replace").strip()))
    r = json.loads(res.stdout.decode().strip().splitlines()[-1])
    err_total = r["failures"]
    return {
        "rate": r["spawns_per_s"],
        "lat": {"mean": r["mean_us"], "p50": None, "p90": None, "p99": None, "max": None},
        "errors": {"total": err_total, "refused": 0, "reset": 0, "timeout": 0,
                   "wrong": 0, "other": err_total,
                   "by_errno": ({"spawn:" + r["first_error"]: err_total}
                                if r["first_error"] else
                                ({"exit:status=%d" % r["first_status"]: err_total}
                                 if err_total else {}))},
        "ok": r["spawns"],
        "done": r["spawns"] + r["failures"],
        "jobs": jobs,
        "mean_us": r["mean_us"],
        "load_cpu_pct": None,
        "srv_cpu_us_per_conn": None,
        "children_cpu_us_per_conn": None,
        "srv_rss_kib": None,
    }


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def aggregate(results, servers, handlers, concs, rounds, refs):
    """results[(handler, conc, server)] = [per-round dict or None]; refs:
    the reference server of each handler."""
    agg = {}
    for h in handlers:
        for c in concs:
            for s in servers:
                if (h, c, s) not in results:
                    continue  # the server cannot run this handler
                runs = results[(h, c, s)]
                good = [r for r in runs if r is not None]
                if not good:
                    agg[(h, c, s)] = None
                    continue
                e = {"total": 0, "refused": 0, "reset": 0, "timeout": 0, "wrong": 0,
                     "other": 0, "by_errno": {}}
                for r in good:
                    for k in ("total", "refused", "reset", "timeout", "wrong", "other"):
                        e[k] += r["errors"].get(k, 0)
                    for k, v in r["errors"].get("by_errno", {}).items():
                        e["by_errno"][k] = e["by_errno"].get(k, 0) + v
                rates = [r["rate"] for r in good]
                ratio_ts, ratio_lim, ratio_p50 = [], [], []
                for i, r in enumerate(runs):
                    if r is None:
                        continue
                    ts = results.get((h, c, refs[h]), [])
                    lim = results.get((h, c, "limit"), [])
                    if i < len(ts) and ts[i] and ts[i]["rate"] > 0:
                        ratio_ts.append(r["rate"] / ts[i]["rate"])
                        p, q = r["lat"].get("p50"), ts[i]["lat"].get("p50")
                        if p is not None and q:
                            ratio_p50.append(p / q)
                    if i < len(lim) and lim[i] and lim[i]["rate"] > 0:
                        ratio_lim.append(r["rate"] / lim[i]["rate"])
                med = median(rates)
                agg[(h, c, s)] = {
                    "runs": len(good),
                    "rate": med,
                    "rate_min": min(rates),
                    "rate_max": max(rates),
                    "spread_pct": (100.0 * (max(rates) - min(rates)) / med) if med else None,
                    "x_tcpserver": median(ratio_ts),
                    "x_limit": median(ratio_lim),
                    "p50_x_tcpserver": median(ratio_p50),
                    "p50": median([r["lat"].get("p50") for r in good]),
                    "eof_us": median([r.get("eof_us") for r in good]),
                    "p90": median([r["lat"].get("p90") for r in good]),
                    "p99": median([r["lat"].get("p99") for r in good]),
                    "max": max([r["lat"].get("max") or 0 for r in good]) if s != "limit" else None,
                    "mean": median([r["lat"].get("mean") for r in good]),
                    "errors": e,
                    "srv_cpu_us": median([r.get("srv_cpu_us_per_conn") for r in good]),
                    "children_cpu_us": median([r.get("children_cpu_us_per_conn") for r in good]),
                    "srv_rss_kib": max([r.get("srv_rss_kib") or 0 for r in good]) or None,
                    "idle_pss_kib": median([r.get("idle_pss_kib") for r in good]),
                    "load_cpu_pct": median([r.get("load_cpu_pct") for r in good]),
                    "jobs": good[0].get("jobs"),
                    "wrong_sample": next((r.get("wrong_sample") for r in good
                                          if r.get("wrong_sample")), None),
                }
    return agg


COLUMNS = [
    ("server", "server"),
    ("conns/s", "conns/s"),
    ("spread", "±%"),
    ("x_ts", "×REF"),
    ("x_lim", "×limit"),
    ("p50", "p50 ms"),
    ("p50x", "p50 ×REFS"),
    ("p90", "p90 ms"),
    ("p99", "p99 ms"),
    ("max", "max ms"),
    ("eof", "EOF µs"),
    ("errors", "errors"),
    ("cpu", "srv µs/conn"),
    ("kids", "handler µs/conn"),
    ("rss", "srv RSS KiB"),
    ("idle", "idle PSS KiB"),
    ("load", "load CPU%"),
]


def fmt_ms(us):
    return "-" if us is None else "%.2f" % (us / 1000.0)


def fmt_ratio(x):
    return "-" if x is None else "%.2f" % x


def headers(ref):
    """The column titles, the ratios named after the reference server."""
    short = "ts" if ref == "tcpserver" else ref
    return [t.replace("REFS", short).replace("REF", ref) for _, t in COLUMNS]


def table_rows(agg, h, c, servers, ref="tcpserver"):
    rows = []
    for s in servers:
        a = agg.get((h, c, s))
        if a is None and (h, s) in UNSUPPORTED:
            rows.append([s, "n/a"] + [""] * (len(COLUMNS) - 2))
            continue
        if (h, c, s) not in agg:
            continue  # the server has no row in this handler's tables
        if a is None:
            rows.append([s, "failed"] + [""] * (len(COLUMNS) - 2))
            continue
        name = s if s != "limit" else "limit (%d job%s)" % (a["jobs"], "s" * (a["jobs"] != 1))
        p50 = fmt_ms(a["p50"]) if s != "limit" else "(%s)" % fmt_ms(a["mean"])
        rows.append([
            name,
            "%.0f" % a["rate"],
            "-" if a["spread_pct"] is None else "%.0f" % a["spread_pct"],
            fmt_ratio(a["x_tcpserver"]) if s != ref else "1.00",
            fmt_ratio(a["x_limit"]) if s != "limit" else "1.00",
            p50,
            (fmt_ratio(a["p50_x_tcpserver"]) if s not in (ref, "limit") else
             ("1.00" if s == ref else "-")),
            fmt_ms(a["p90"]),
            fmt_ms(a["p99"]),
            fmt_ms(a["max"]),
            "-" if a.get("eof_us") is None else "%.0f" % a["eof_us"],
            str(a["errors"]["total"]),
            "-" if a["srv_cpu_us"] is None else "%.0f" % a["srv_cpu_us"],
            "-" if a.get("children_cpu_us") is None else "%.0f" % a["children_cpu_us"],
            "-" if a["srv_rss_kib"] is None else str(a["srv_rss_kib"]),
            "-" if a.get("idle_pss_kib") is None else "%.0f" % a["idle_pss_kib"],
            "-" if a["load_cpu_pct"] is None else "%.0f" % a["load_cpu_pct"],
        ])
    return rows


def error_notes(agg, h, c, servers):
    notes = []
    for s in servers:
        a = agg.get((h, c, s))
        if not a or not a["errors"]["total"]:
            continue
        e = a["errors"]
        kinds = ", ".join("%s %d" % (k, e[k]) for k in
                          ("refused", "reset", "timeout", "wrong", "other") if e[k])
        detail = ", ".join("%s ×%d" % kv for kv in sorted(e["by_errno"].items()))
        n = "%s: %d errors over %d round(s) (%s)" % (s, e["total"], a["runs"], kinds)
        if detail:
            n += "; %s" % detail
        if a.get("wrong_sample"):
            n += "; wrong reply e.g. %r" % a["wrong_sample"][:80]
        notes.append(n)
    return notes


def format_text(agg, handlers, concs, servers, args):
    out = []
    for h in handlers:
        for c in concs[h]:
            out.append("")
            out.append("== %s handler, concurrency %d (%d round(s) × %.1f s) ==" %
                       (h.name, c, args.rounds, args.duration))
            srv = [s for s in servers if serves(s, h)]
            rows = [headers(h.reference)] + table_rows(agg, h.name, c, srv, h.reference)
            widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
            for r in rows:
                out.append("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                                     for i, v in enumerate(r)).rstrip())
            for n in error_notes(agg, h.name, c, srv):
                out.append("  ! " + n)
    return "\n".join(out) + "\n"


def format_markdown(agg, handlers, concs, servers, args, machine):
    out = []
    out.append("Measured %s on %s." % (machine["date"], machine["host_summary"]))
    out.append("")
    out.append("| | |")
    out.append("|---|---|")
    for k, v in machine["table"]:
        out.append("| %s | %s |" % (k, v))
    out.append("")
    out.append("Command: `%s`" % machine["command"])
    out.append("")
    for h in handlers:
        for c in concs[h]:
            out.append("#### %s handler, concurrency %d" % (h.name, c))
            out.append("")
            srv = [s for s in servers if serves(s, h)]
            out.append("| " + " | ".join(headers(h.reference)) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|")
            for r in table_rows(agg, h.name, c, srv, h.reference):
                out.append("| " + " | ".join(v if v else " " for v in r) + " |")
            notes = error_notes(agg, h.name, c, srv)
            if notes:
                out.append("")
                for n in notes:
                    out.append("- " + n.replace("|", "\\|"))
            out.append("")
    return "\n".join(out)


def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=10).stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(ctx, servers):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    distro = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    vers = {}
    for pkg in ("ucspi-tcp", "ipsvd", "socat", "xinetd"):
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        vers[pkg] = v if v and "no packages" not in v else "?"
    psup_v = "?"
    if any(s.startswith("psup") for s in servers) and ctx.psup:
        psup_v = sh([ctx.psup, "--version"]).splitlines()[0:1]
        psup_v = psup_v[0] if psup_v else "?"
    sysctl = {k: " ".join(read_first_line("/proc/sys/net/" + k.replace(".", "/")).split())
              for k in ("ipv4.ip_local_port_range", "ipv4.tcp_tw_reuse", "core.somaxconn")}
    nproc = os.cpu_count()
    libc = " ".join(platform.libc_ver())
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = [
        ("CPUs (nproc)", str(nproc)),
        ("CPU model", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("distribution", distro),
        ("libc", libc),
        ("psup", psup_v),
        ("ucspi-tcp (tcpserver)", vers["ucspi-tcp"]),
        ("ipsvd (tcpsvd)", vers["ipsvd"]),
        ("socat", vers["socat"]),
        ("xinetd", vers["xinetd"]),
        ("sysctl", ", ".join("%s = %s" % kv for kv in sysctl.items())),
    ]
    return {
        "date": date,
        "nproc": nproc,
        "cpu": cpu,
        "host_summary": "%d × %s, Linux %s" % (nproc or 0, cpu, platform.release()),
        "table": table,
        "versions": vers,
        "psup_version": psup_v,
        "sysctl": sysctl,
        "command": shlex.join(["bench/run.py"] + sys.argv[1:]),
    }


def check_sysctls():
    somax = read_first_line("/proc/sys/net/core/somaxconn")
    if somax.isdigit() and int(somax) < 1024:
        log("warning: net.core.somaxconn = %s caps every listen backlog below 1024" % somax)
    reuse = read_first_line("/proc/sys/net/ipv4/tcp_tw_reuse")
    if reuse == "0":
        log("warning: net.ipv4.tcp_tw_reuse = 0: payload handlers (cat, http) leave "
            "TIME_WAIT on the client side and may exhaust ephemeral ports "
            "(connect: EADDRNOTAVAIL); `sysctl -w net.ipv4.tcp_tw_reuse=2` fixes it")


def find_bindir(arg):
    cands = [arg] if arg else [os.path.join(ROOT, "build", "bench"),
                               os.path.join(ROOT, "build-bench", "bench"),
                               os.path.join(ROOT, "build", "release", "bench")]
    for d in cands:
        if d and all(os.access(os.path.join(d, b), os.X_OK)
                     for b in ("psup-load", "bench-hello", "bench-spawnloop")):
            return os.path.abspath(d)
    raise BenchError("psup-load, bench-hello and bench-spawnloop not found in %s; build "
                     "them (cmake --build build --target psup-load bench-hello "
                     "bench-spawnloop) or pass --bin-dir" % ", ".join(c for c in cands if c))


def parse_list(s, allowed, what):
    items = [x.strip() for x in s.split(",") if x.strip()]
    for x in items:
        if x not in allowed:
            raise SystemExit("run.py: unknown %s %r (choose from %s)" %
                             (what, x, ", ".join(allowed)))
    return items


def main():
    p = argparse.ArgumentParser(
        description="Benchmark psup against tcpserver, tcpsvd, socat and xinetd.")
    p.add_argument("--psup", help="psup binary (default: build/cmd/psup/psup if present)")
    p.add_argument("--psup-arg", action="append",
                   help="extra psup command-line argument (repeatable)")
    p.add_argument("--psup-service", help="JSON object merged into psup's service, "
                   "e.g. '{\"pool\": {\"min_spare\": 8}}'")
    p.add_argument("--psup-top", help="JSON object merged into psup's top-level config")
    p.add_argument("--bin-dir", help="directory with psup-load, bench-hello, "
                   "bench-spawnloop (default: build/bench)")
    p.add_argument("--servers", help="comma list from %s (default: %s, those "
                   "available)" % (",".join(ALL_SERVERS), ",".join(DEFAULT_SERVERS)))
    p.add_argument("--handlers", help="comma list from %s (default: all)" %
                   ",".join(ALL_HANDLERS))
    p.add_argument("--conc", help="comma list of concurrencies (default 1,8,64,256)")
    p.add_argument("--rounds", type=int, help="rounds (default 3)")
    p.add_argument("--duration", type=float, help="seconds measured per cell and round "
                   "(default 2)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up before each "
                   "measurement (default 0.3)")
    p.add_argument("--timeout", type=int, default=5000,
                   help="per-connection timeout in ms (default 5000)")
    p.add_argument("--ready-timeout", type=float, default=15.0,
                   help="seconds a server may take to become ready (default 15)")
    p.add_argument("--limit-pipe", action="store_true",
                   help="the limit's handlers write to a drained pipe, not /dev/null")
    p.add_argument("--json", metavar="FILE", help="write raw and aggregated results")
    p.add_argument("--markdown", metavar="FILE", help="write the tables and the machine "
                   "description; a file with <!-- bench:begin --> and <!-- bench:end --> "
                   "markers gets only the part between them replaced")
    p.add_argument("--markdown-tag", metavar="TAG", help="use the markers "
                   "<!-- bench:TAG:begin --> and <!-- bench:TAG:end --> instead (a section "
                   "of its own, such as the CGI comparison)")
    p.add_argument("--smoke", action="store_true",
                   help="every server once, ~1 s, concurrency 8, hello handler; exit 0 "
                   "when every server answered correctly (no timing assertions)")
    p.add_argument("--keep-tmp", action="store_true", help="keep configs and logs")
    args = p.parse_args()

    smoke = args.smoke
    if args.rounds is None:
        args.rounds = 1 if smoke else 3
    if args.duration is None:
        args.duration = 1.0 if smoke else 2.0
    if args.warmup is None:
        args.warmup = 0.1 if smoke else 0.3
    # The smoke runs cat too: psup-prestart cannot run the static hello.
    handlers = parse_list(args.handlers or ("hello,cat,udp" if smoke else ",".join(ALL_HANDLERS)),
                          ALL_HANDLERS, "handler")
    try:
        concs = [int(x) for x in (args.conc or ("8" if smoke else "1,8,64,256")).split(",")]
    except ValueError:
        raise SystemExit("run.py: --conc wants a comma list of integers")
    if args.rounds < 1 or args.duration <= 0 or any(c < 1 for c in concs):
        raise SystemExit("run.py: --rounds, --duration and --conc must be positive")
    # UDP: request/reply at 1, 8 and 64 clients unless --conc says otherwise.
    udp_concs = concs if args.conc or smoke else UDP_DEFAULT_CONC

    if args.psup is None:
        d = os.path.join(ROOT, "build", "cmd", "psup", "psup")
        args.psup = d if os.access(d, os.X_OK) else None
    elif not os.access(args.psup, os.X_OK):
        raise SystemExit("run.py: --psup %s is not executable" % args.psup)
    else:
        args.psup = os.path.abspath(args.psup)

    ctx = Context(args)
    explicit = args.servers is not None
    # The smoke keeps every server of the harness working, optional ones too.
    default = ALL_SERVERS if smoke else DEFAULT_SERVERS
    wanted = parse_list(args.servers or ",".join(default), ALL_SERVERS, "server")
    try:
        bindir = find_bindir(args.bin_dir)
    except BenchError as e:
        log("run.py: %s" % e)
        return 2
    ctx.load = os.path.join(bindir, "psup-load")
    ctx.spawnloop = os.path.join(bindir, "bench-spawnloop")
    ctx.spawnserver = os.path.join(bindir, "bench-spawnserver")
    servers = []
    for s in wanted:
        if s == "limit" or SERVER_CLASSES[s].available(ctx):
            servers.append(s)
        elif explicit:
            log("run.py: server %s is not available%s" %
                (s, " (pass --psup PATH)" if s.startswith("psup") else " (apt-get install it)"))
            return 2
        else:
            log("run.py: skipping %s: not available%s" %
                (s, " (pass --psup PATH)" if s.startswith("psup") else ""))
    if "tcpserver" not in servers:
        log("run.py: note: without tcpserver there is no ×tcpserver column")
    all_handlers = make_handlers(bindir)
    check_sysctls()
    hconcs = {all_handlers[h]: (udp_concs if all_handlers[h].proto == "udp" else concs)
              for h in handlers}

    est = 0.0
    for h, hc in hconcs.items():
        nsrv = len([s for s in servers if s != "limit" and serves(s, h)])
        njobs = len({min(c, os.cpu_count() or 1) for c in hc})
        est += args.rounds * (len(hc) * nsrv * (args.duration + args.warmup + 0.15) +
                              ("limit" in servers) * njobs * (args.duration + 0.05)) + nsrv * 0.5
    log("run.py: %s × %s × conc %s × %d round(s) × %.1f s: about %.0f s" %
        ("/".join(servers), "/".join(handlers), ",".join(map(str, concs)), args.rounds,
         args.duration, est))

    tmpdir = tempfile.mkdtemp(prefix="psup-bench-")
    results = {}
    raw = []
    failures = []
    t_begin = time.monotonic()

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    interrupted = False
    try:
        for hname in handlers:
            h = all_handlers[hname]
            hservers = [s for s in servers if serves(s, h)]
            running = {}
            for s in hservers:
                if s == "limit":
                    continue
                srv = SERVER_CLASSES[s](ctx, h, tmpdir)
                if not srv.supports():
                    UNSUPPORTED.add((hname, s))
                    log("run.py: %s cannot run the %s handler: its row says n/a" % (s, hname))
                    continue
                try:
                    srv.start()
                    running[s] = srv
                    log("run.py: %s ready on 127.0.0.1:%d (pid %d, %s handler)" %
                        (s, srv.port, srv.pid, hname))
                except BenchError as e:
                    log("run.py: " + str(e))
                    failures.append("%s/%s: %s" % (s, hname, str(e).splitlines()[0]))
            limit_cache = {}
            for c in hconcs[h]:
                for rnd in range(args.rounds):
                    k = rnd % len(hservers)
                    order = hservers[k:] + hservers[:k]
                    for s in order:
                        key = (hname, c, s)
                        results.setdefault(key, [None] * args.rounds)
                        if s == "limit":
                            jobs = min(c, os.cpu_count() or 1)
                            if (rnd, jobs) not in limit_cache:
                                limit_cache[(rnd, jobs)] = run_limit(ctx, h, jobs)
                            r = limit_cache[(rnd, jobs)]
                        else:
                            srv = running.get(s)
                            if srv is None:
                                continue
                            if not srv.alive():
                                msg = "%s died (status %s) before %s c=%d round %d" % (
                                    s, srv.proc.returncode, hname, c, rnd + 1)
                                log("run.py: " + msg + "\n" + tail(srv.logpath))
                                failures.append(msg)
                                srv.stop()
                                try:
                                    srv.start()
                                except BenchError as e:
                                    log("run.py: restart failed: %s" % e)
                                    running.pop(s)
                                    continue
                            r = run_load(ctx, srv, c)
                            if not r["alive_after"]:
                                failures.append("%s died during %s c=%d round %d" %
                                                (s, hname, c, rnd + 1))
                        results[key][rnd] = r
                        raw.append(dict(handler=hname, conc=c, server=s, round=rnd + 1, **r))
                        log("  %-5s c=%-4d round %d %-10s %8.0f/s  errors %d" %
                            (hname, c, rnd + 1, s, r["rate"], r["errors"]["total"]))
            for s, srv in running.items():
                rc = srv.stop()
                if s.startswith("psup") and rc != 0:
                    failures.append("psup exited with status %s after SIGTERM" % rc)
    except KeyboardInterrupt:
        interrupted = True
        log("run.py: interrupted; stopping every server")
    except BenchError as e:
        failures.append(str(e))
        log("run.py: %s" % e)
    finally:
        ctx.cleanup()
        if args.keep_tmp or failures:
            log("run.py: configs and logs kept in %s" % tmpdir)
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if interrupted:
        return 130

    refs = {h.name: h.reference for h in hconcs}
    agg = aggregate(results, servers, handlers, sorted({c for hc in hconcs.values() for c in hc}),
                    args.rounds, refs)
    sys.stdout.write(format_text(agg, list(hconcs), hconcs, servers, args))
    elapsed = time.monotonic() - t_begin
    log("run.py: done in %.0f s" % elapsed)
    machine = machine_info(ctx, servers)

    if args.json:
        doc = {
            "machine": machine,
            "settings": {"servers": servers, "handlers": handlers, "conc": concs,
                         "udp_conc": udp_concs,
                         "rounds": args.rounds, "duration": args.duration,
                         "warmup": args.warmup, "timeout_ms": args.timeout,
                         "limit_pipe": args.limit_pipe},
            "runs": raw,
            "aggregate": [dict(handler=h, conc=c, server=s, **(a or {"failed": True}))
                          for (h, c, s), a in agg.items()],
            "failures": failures,
            "elapsed_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.markdown:
        md = format_markdown(agg, list(hconcs), hconcs, servers, args, machine)
        tag = "bench:%s:" % args.markdown_tag if args.markdown_tag else "bench:"
        begin, end = "<!-- %sbegin -->" % tag, "<!-- %send -->" % tag
        try:
            with open(args.markdown) as f:
                old = f.read()
        except OSError:
            old = ""
        if begin in old and end in old and old.index(begin) < old.index(end):
            new = old[:old.index(begin) + len(begin)] + "\n" + md + "\n" + old[old.index(end):]
        else:
            new = md + "\n"
        with open(args.markdown, "w") as f:
            f.write(new)

    if smoke:
        bad = list(failures)
        for h, hc in hconcs.items():
            for c in hc:
                for s in servers:
                    if not serves(s, h):
                        continue
                    a = agg.get((h.name, c, s))
                    if a is None and (h.name, s) in UNSUPPORTED:
                        continue
                    if a is None:
                        bad.append("%s/%s c=%d: no result" % (s, h.name, c))
                    elif a["errors"]["total"] or not a["rate"]:
                        bad.append("%s/%s c=%d: %d errors, %s ok/s" %
                                   (s, h.name, c, a["errors"]["total"], a["rate"]))
        for b in bad:
            log("smoke: FAIL %s" % b)
        log("smoke: %s" % ("FAIL" if bad else "OK (%s)" % ", ".join(servers)))
        return 1 if bad else 0
    for f in failures:
        log("run.py: failure: %s" % f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
