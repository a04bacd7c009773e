#!/usr/bin/env python3
"""Side-by-side benchmarks of hotrestart against the usual ways to restart a
server, all on loopback (run by `make bench`, `make bench QUICK=1`).

Sections (each prints a markdown table; all go to build/bench/results.md,
the key figures to build/bench/summary.json, plots to build/bench/*.png):
  1. client-visible errors while a server is restarted R times under load
     (naive stop/start, SO_REUSEPORT overlap with net.ipv4.tcp_migrate_req 0
     and 1, hotrestart, and nginx's own binary upgrade as the reference), with
     wrk and with the project's load client, connection-per-request and
     keep-alive;
  2. accept-path overhead of the preloaded library: user-space instructions
     per request (callgrind, exact), threads per server process in steady
     state, and throughput and server CPU time per request (pairs of runs,
     alternated);
  3. handover time: restart request -> first response of the new generation,
     -> exit of the old generation (from the runs of section 1);
  4. spawn cost versus server size (0.1, 1, 4 GiB touched), with a plain
     fork()+exec() for contrast;
  5. 10,000 idle keep-alive connections and 64 listeners;
  6. accept-path cost of the seccomp filter (a static server with and without
     it, pairs of runs, alternated).

Benchmark helpers (C, scripts/bench/*.c) are built into build/bench/.
Everything is time-bounded; every process started here is killed at the end.
"""

import argparse
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The keeper's status, read as the integration tests read it.
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import control_status  # noqa: E402
BUILD = os.path.join(ROOT, "build")
OUT = os.path.join(BUILD, "bench")
LOGS = os.path.join(OUT, "logs")
WRAPPER = os.path.join(ROOT, "scripts", "hotrestart")
LOADCLIENT = os.path.join(BUILD, "loadclient")
EPOLL_LT = os.path.join(BUILD, "servers", "epoll_lt")
STATIC_EPOLL_LT = os.path.join(BUILD, "servers-static", "epoll_lt")
PREFORK = os.path.join(BUILD, "servers", "prefork")
# The wrapper is run by this interpreter rather than through its
# "#!/usr/bin/env python3", which may find a slow shim (pyenv: +0.1 s a call).
PY_WRAPPER = [sys.executable, WRAPPER]
MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
GNUPLOT = shutil.which("gnuplot") or "/usr/bin/gnuplot"
VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"
CALLGRIND_ANNOTATE = shutil.which("callgrind_annotate") or "/usr/bin/callgrind_annotate"
CALLGRIND_CONTROL = shutil.which("callgrind_control") or "/usr/bin/callgrind_control"
KEEPER = os.path.join(BUILD, "hotrestart-keeper")
CLK_TCK = os.sysconf("SC_CLK_TCK")

TOOLS = {  # name: (source, extra cc flags)
    "reuseport.so": ("reuseport.c", ["-shared", "-fPIC", "-ldl"]),
    "probe": ("probe.c", []),
    "forkcost": ("forkcost.c", []),
    "scaleserver": ("scaleserver.c", []),
    "idleclient": ("idleclient.c", []),
    "tslog": ("tslog.c", []),
}

# load_s/restarts/first_s/every_s: section 1's runs (concurrent: wrk and the
# load client in the same run); pairs/pair_s/warmup_s: section 2;
# cg_requests: the two loads (requests) of section 2's callgrind runs;
# spawn_*/fork_iters: section 4; scale_*: section 5. budget_s: no section
# starts work it cannot finish by then (reserve_s of it kept for sections 4
# and 5); hard_s: the run is stopped (make adds a few seconds).
FULL = dict(load_s=8, restarts=10, first_s=1.0, every_s=0.6, conns=8, bucket_ms=50,
            concurrent=False, pairs=5, pair_s=3, warmup_s=1, cg_requests=(200, 1200),
            spawn_samples=10,
            spawn_restarts=2, fork_iters=5, spawn_s=100, scale_conns=10000,
            scale_listeners=64, scale_restarts=3, budget_s=540, hard_s=585, reserve_s=60)
QUICK = dict(load_s=2, restarts=3, first_s=0.25, every_s=0.5, conns=8, bucket_ms=50,
             concurrent=True, pairs=3, pair_s=1, warmup_s=0, cg_requests=(50, 250),
             spawn_samples=5,
             spawn_restarts=1, fork_iters=3, spawn_s=24, scale_conns=10000,
             scale_listeners=64, scale_restarts=2, budget_s=125, hard_s=140, reserve_s=30)

METHOD_LABEL = {
    "naive": "naive stop/start",
    "reuseport0": "SO_REUSEPORT overlap, tcp_migrate_req=0",
    "reuseport1": "SO_REUSEPORT overlap, tcp_migrate_req=1",
    "hotrestart": "hotrestart",
    "nginx": "nginx binary upgrade (USR2, WINCH, QUIT)",
}
METHOD_COLOR = {"naive": "#d62728", "reuseport0": "#ff7f0e", "reuseport1": "#9467bd",
                "hotrestart": "#2ca02c", "nginx": "#1f77b4"}
METHOD_SHORT = {"naive": "naive", "reuseport0": "SO_REUSEPORT, migrate=0",
                "reuseport1": "SO_REUSEPORT, migrate=1", "hotrestart": "hotrestart",
                "nginx": "nginx USR2 upgrade"}
ERROR_KINDS = ("refused", "reset", "timeout", "bad", "other")


class BenchError(Exception):
    pass


class OutOfTime(Exception):
    pass


class HardTimeout(BaseException):
    """The whole run's hard limit: not caught by a section, ends the run."""


def now():
    return time.monotonic()


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def vmax(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    return "%.*f" % (digits, v)


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the benchmark starts, each in a session of its own, so
    that a server and all the generations it spawns can be killed together."""

    def __init__(self):
        self.popens = []
        self.lock = threading.Lock()

    def popen(self, args, **kw):
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(args, **kw)
        with self.lock:
            self.popens.append(p)
        return p

    def kill(self, p):
        """Kills p's session (its process group: every generation it spawned)."""
        for target in (lambda: os.killpg(p.pid, signal.SIGKILL),
                       lambda: os.kill(p.pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def kill_all(self):
        with self.lock:
            ps = list(self.popens)
            self.popens = []
        # SIGTERM first, so that keepers stop the generations they started
        # in sessions of their own (SIGKILL would orphan those).
        for p in ps:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = now() + 10
        for p in ps:
            try:
                p.wait(timeout=max(0.1, deadline - now()))
            except subprocess.TimeoutExpired:
                pass
            self.kill(p)


PROCS = Procs()


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return None


def cpu_ns(pid):
    """CPU time used so far by every thread of pid (schedstat: ns, exact)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return total


def server_of(keeper):
    """The main process of the keeper's (only) generation."""
    kids = wait_until(lambda: children(keeper), 15, "the keeper's generation")
    return kids[0]


def family(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def boost(tid, nice):
    """Raise the priority of one of our measuring threads (or helper processes)
    so that its timestamps do not wait for a loaded CPU; needs root, else no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        pass


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def wait_until(pred, timeout, what, interval=0.001):
    deadline = now() + timeout
    while now() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise BenchError("timed out after %.0f s waiting for %s" % (timeout, what))


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_ports(n=1):
    """n consecutive free ports below the ephemeral range, so that neither the
    clients' nor other programs' automatically chosen ports collide."""
    for _ in range(500):
        base = random.randrange(20000, 32000 - n)
        if all(port_free(base + i) for i in range(n)):
            return base
    raise BenchError("no %d free consecutive ports" % n)


def accepting(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ExitWatch:
    """Records when processes exit, from a pidfd per process (works for
    processes that are not our children, such as later generations)."""

    def __init__(self):
        self.times = {}
        self.cond = threading.Condition()

    def watch(self, pid):
        with self.cond:
            if pid in self.times:
                return
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._done(pid)
            return
        threading.Thread(target=self._wait, args=(pid, fd), daemon=True).start()

    def _done(self, pid):
        t = now()
        with self.cond:
            self.times.setdefault(pid, t)
            self.cond.notify_all()

    def _wait(self, pid, fd):
        boost(threading.get_native_id(), -15)
        try:
            select.select([fd], [], [], 900)
            self._done(pid)
        finally:
            os.close(fd)

    def wait(self, pid, timeout):
        deadline = now() + timeout
        with self.cond:
            while pid not in self.times:
                left = deadline - now()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.times[pid]


EXITS = ExitWatch()


class LogPipe:
    """A pipe for a server's stdout and stderr. build/bench/tslog (real-time
    priority when allowed) stamps each line with the CLOCK_MONOTONIC time it
    arrived; a thread collects the lines and copies them to a log file."""

    def __init__(self, path):
        self.path = path
        r, self.w = os.pipe()
        self.lines = []
        self.cond = threading.Condition()
        self.file = open(path, "w")
        self.stamper = PROCS.popen([os.path.join(OUT, "tslog")], stdin=r,
                                   stdout=subprocess.PIPE)
        os.close(r)
        try:
            os.sched_setscheduler(self.stamper.pid, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError):
            boost(self.stamper.pid, -15)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.stamper.stdout:
            stamp, _, text = raw.decode(errors="replace").rstrip("\n").partition(" ")
            try:
                t = float(stamp)
            except ValueError:
                t = now()
            with self.cond:
                self.lines.append((t, text))
                self.file.write("%.6f %s\n" % (t, text))
                self.file.flush()
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def find(self, regex, start=0, timeout=2.0):
        """First line from index start that matches: (time, match, index) or None."""
        rx = re.compile(regex)
        deadline = now() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return self.lines[i][0], m, i
                    i += 1
                left = deadline - now()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        if self.w is not None:
            os.close(self.w)
            self.w = None

    def tail(self, n=10):
        with self.cond:
            return "\n".join(t for _, t in self.lines[-n:])


# ---------------------------------------------------------------- servers

class Target:
    """A server program: how to start it on a port."""

    def __init__(self, name, workdir):
        self.name = name
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.www = os.path.join(workdir, "www")
        os.makedirs(self.www, exist_ok=True)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("hello from %s\n" % name)

    def argv(self, port):
        if self.name == "epoll_lt":
            return [EPOLL_LT, "--port", str(port)]
        if self.name == "prefork":
            return [PREFORK, "--port", str(port), "--workers", "2"]
        if self.name == "lighttpd":
            conf = os.path.join(self.workdir, "lighttpd-%d.conf" % port)
            with open(conf, "w") as f:
                f.write('server.document-root = "%s"\nserver.port = %d\n'
                        'server.bind = "127.0.0.1"\nindex-file.names = ("index.html")\n'
                        'mimetype.assign = (".html" => "text/html")\n' % (self.www, port))
            return [LIGHTTPD, "-D", "-f", conf]
        raise BenchError("unknown target " + self.name)


class Method:
    """One way of restarting a server; start(), restart() -> dict, stop()."""

    key = None

    def __init__(self, target, port, logpipe, env=None):
        self.target = target
        self.port = port
        self.logp = logpipe
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("LD_PRELOAD", None)
        self.procs = []

    def spawn(self, argv, env=None):
        p = PROCS.popen(argv, stdout=self.logp.w, stderr=self.logp.w, env=env or self.env,
                        cwd=self.target.workdir)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            PROCS.kill(p)


class Naive(Method):
    key = "naive"

    def start(self):
        self.p = self.spawn(self.target.argv(self.port))
        wait_until(lambda: accepting(self.port), 15, "%s to accept" % self.target.name)
        return self.p.pid

    def restart(self):
        old = self.p
        t0 = now()
        old.send_signal(signal.SIGTERM)
        try:
            old.wait(timeout=10)
        except subprocess.TimeoutExpired:
            old.kill()
            old.wait(timeout=5)
        t_exit = now()
        self.p = self.spawn(self.target.argv(self.port))
        wait_until(lambda: accepting(self.port), 15, "%s to accept" % self.target.name)
        return dict(t0=t0, t_done=now(), t_old_exit=t_exit, old_pid=old.pid, new_pid=self.p.pid)


class ReusePort(Method):
    """Start the new process (SO_REUSEPORT set by the preload helper), wait
    until it listens, then SIGTERM the old one and wait for it to exit."""

    def __init__(self, target, port, logpipe, migrate):
        self.key = "reuseport%d" % migrate
        self.marks = os.path.join(OUT, "marks-%d" % port)
        shutil.rmtree(self.marks, ignore_errors=True)
        os.makedirs(self.marks)
        super().__init__(target, port, logpipe,
                         env={"BENCH_REUSEPORT": "1", "BENCH_LISTEN_MARK": self.marks})
        self.env["LD_PRELOAD"] = os.path.join(OUT, "reuseport.so")

    def stop(self):
        super().stop()
        shutil.rmtree(self.marks, ignore_errors=True)

    def _listening(self, pid):
        return os.path.exists(os.path.join(self.marks, str(pid)))

    def start(self):
        self.p = self.spawn(self.target.argv(self.port))
        wait_until(lambda: self._listening(self.p.pid), 15, "%s to listen" % self.target.name)
        return self.p.pid

    def restart(self):
        old = self.p
        t0 = now()
        self.p = self.spawn(self.target.argv(self.port))
        wait_until(lambda: self._listening(self.p.pid), 15, "%s to listen" % self.target.name)
        t_ready = now()
        old.send_signal(signal.SIGTERM)
        try:
            old.wait(timeout=10)
        except subprocess.TimeoutExpired:
            old.kill()
            old.wait(timeout=5)
        return dict(t0=t0, t_ready=t_ready, t_done=now(), t_old_exit=now(), old_pid=old.pid,
                    new_pid=self.p.pid)


class HotRestart(Method):
    key = "hotrestart"

    def __init__(self, target, port, logpipe, argv=None, ready_timeout=30, run_args=()):
        super().__init__(target, port, logpipe)
        self.run_args = list(run_args)
        self.pidfile = os.path.join(target.workdir, "hotrestart-%d.pid" % port)
        self.argv = argv or target.argv(port)
        self.ready_timeout = ready_timeout
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass

    def start(self):
        self.launch()
        return self.wait_ready()

    def stop(self):
        # Each generation runs in a session of its own: only the keeper's
        # graceful stop ends them (killing the keeper would orphan them).
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        super().stop()

    def launch(self):
        self.p = self.spawn(PY_WRAPPER + ["run", "--pidfile", self.pidfile, "--drain-timeout", "10",
                             "--ready-timeout", str(self.ready_timeout)] + self.run_args +
                            ["--"] + self.argv)

    def wait_ready(self):
        def ready():
            pid = read_pid(self.pidfile)
            if self.p.poll() is not None:
                raise BenchError("server exited: " + self.logp.tail())
            return pid if pid and pid_alive(pid) else None
        return wait_until(ready, self.ready_timeout + 5, "hotrestart pid file", interval=0.005)

    def main_pid(self):
        """The live generation's main process (the pid file names the
        keeper, which stays)."""
        keeper = read_pid(self.pidfile)
        info = control_status(keeper) if keeper else None
        return int(info["main_pid"]) if info and info.get("main_pid") else keeper

    def restart(self):
        keeper = read_pid(self.pidfile)
        old = self.main_pid()
        EXITS.watch(old)
        mark = self.logp.mark()
        t_cmd = now()
        r = subprocess.run(PY_WRAPPER + ["restart", "--pidfile", self.pidfile, "--timeout",
                            str(self.ready_timeout)], capture_output=True, text=True,
                           timeout=self.ready_timeout + 15, env=self.env)
        t_done = now()
        m = re.search(r"new pid (\d+), handover ([0-9.]+) ms", r.stdout)
        if r.returncode != 0 or not m:
            raise BenchError("hotrestart restart failed (%d): %s %s\n%s" %
                             (r.returncode, r.stdout.strip(), r.stderr.strip(), self.logp.tail()))
        new = int(m.group(1))
        res = dict(t_cmd=t_cmd, t_done=t_done, old_pid=old, new_pid=new,
                   wrapper_ms=float(m.group(2)))
        req = self.logp.find(r"hotrestart\[%d\]: restart (requested|signal)" % keeper, mark)
        res["t0"] = req[0] if req else t_cmd
        # The keeper forks itself, not the server: its spawn has no "exec
        # after" of its own; the time from the request to its line stands in.
        up = self.logp.find(r"hotrestart\[%d\]: upgrade: started generation \d+ as pid %d "
                            % (keeper, new), mark)
        if up:
            res["exec_ms"] = (up[0] - res["t0"]) * 1e3
            res["t_exec_line"] = up[0]
        ho = self.logp.find(r"hotrestart\[%d\]: handover to generation \d+ \(pid %d\) after "
                            r"(\d+) ms; generation \d+ drains (\d+)" % (keeper, new), mark)
        if ho:
            res["handover_log_ms"] = float(ho[1].group(1))
            res["draining"] = int(ho[1].group(2))
            res["t_handover_line"] = ho[0]
        return res


class NginxUpgrade(Method):
    """nginx's own binary upgrade: USR2 to the master starts a new master from
    argv[0]; once it has its workers, WINCH then QUIT to the old master."""

    key = "nginx"

    def __init__(self, target, port, logpipe):
        super().__init__(target, port, logpipe)
        d = os.path.join(target.workdir, "nginx-%d" % port)
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        self.prefix = d
        self.pidfile = os.path.join(d, "nginx.pid")
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""master_process on;
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 65;
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        root %(www)s;
        location / { add_header X-Pid $pid; }
    }
}
""" % dict(d=d, port=port, www=target.www))

    def _serving(self, old=None):
        pid = read_pid(self.pidfile)
        if pid and pid != old and pid_alive(pid) and children(pid):
            return pid
        return None

    def start(self):
        # nginx re-executes argv[0] on USR2: give it the absolute path. nginx
        # ignores USR2 while its parent is the process that started it (it
        # takes itself for a new binary whose old master still runs), as
        # under any supervisor with "daemon off": a shell starts it in the
        # background and exits a little later (nginx must see the shell as its
        # parent first), so that it is reparented like a daemon.
        self.p = self.spawn(["/bin/sh", "-c", '"$0" "$@" & sleep 0.2', NGINX, "-p",
                             self.prefix + "/",
                             "-c", self.conf, "-e", os.path.join(self.prefix, "error.log")])
        self.p.wait(timeout=10)
        pid = wait_until(self._serving, 15, "nginx workers")
        wait_until(lambda: accepting(self.port), 15, "nginx to accept")
        return pid

    def restart(self):
        old = read_pid(self.pidfile)
        EXITS.watch(old)
        t0 = now()
        os.kill(old, signal.SIGUSR2)
        new = wait_until(lambda: self._serving(old), 15, "the new nginx master and workers")
        t_ready = now()
        os.kill(old, signal.SIGWINCH)
        os.kill(old, signal.SIGQUIT)
        t_exit = EXITS.wait(old, 30)
        if t_exit is None:
            raise BenchError("old nginx master %d did not exit" % old)
        return dict(t0=t0, t_ready=t_ready, t_done=now(), t_old_exit=t_exit, old_pid=old,
                    new_pid=new)


# ---------------------------------------------------------------- clients

def parse_loadclient(out):
    line = out.strip().splitlines()[-1] if out.strip() else ""
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "ok" not in fields:
        raise BenchError("load client printed no summary: %r" % out[-300:])
    res = {}
    for k, v in fields.items():
        if k == "pids":
            res[k] = [int(x) for x in v.split(",") if x.isdigit()]
        else:
            res[k] = float(v) if "." in v else int(v)
    return res


def latency_ms(text):
    m = re.match(r"([0-9.]+)(us|ms|s)$", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def parse_wrk(out):
    res = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"(\d+) requests in ([0-9.]+)(\w+)", out)
    if not m:
        raise BenchError("wrk printed no summary: %r" % out[-400:])
    res["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    res["rps"] = float(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        for i, k in enumerate(("connect", "read", "write", "timeout")):
            res[k] = int(m.group(i + 1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        res["p" + pct] = latency_ms(m.group(1)) if m else None
    res["errors"] = res["connect"] + res["read"] + res["write"] + res["timeout"] + res["non2xx"]
    return res


def start_loadclient(port, duration, conns, keepalive, timeline=None, bucket_ms=50):
    args = [LOADCLIENT, "--host", "127.0.0.1", "--port", str(port), "--duration", str(duration),
            "--connections", str(conns), "--timeout-ms", "5000"]
    if keepalive:
        args.append("--keepalive")
    if timeline:
        args += ["--timeline", timeline, "--bucket-ms", str(bucket_ms)]
    return PROCS.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_wrk(port, duration, conns, keepalive):
    args = [WRK, "-t1", "-c%d" % conns, "-d%ds" % duration, "--timeout", "5s", "--latency"]
    if not keepalive:
        args += ["-H", "Connection: close"]
    args.append("http://127.0.0.1:%d/" % port)
    return PROCS.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCS.kill(p)
        out, err = p.communicate()
        raise BenchError("%s did not finish in time" % p.args[0])
    return out, err


def start_probe(port, duration):
    p = PROCS.popen([os.path.join(OUT, "probe"), "--port", str(port), "--duration",
                     "%.3f" % duration, "--interval-us", "500"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    boost(p.pid, -10)
    return p


def parse_probe(out):
    """First time (monotonic s) each X-Pid value answered the probe."""
    first = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "pid" and parts[2].isdigit():
            first.setdefault(int(parts[2]), int(parts[1]) / 1e9)
    return first


def first_new_response(first_seen, t0, t_limit):
    """Earliest first answer, in (t0, t_limit), from a process that had not
    answered before t0: the new generation's first accepted connection."""
    cands = [t for pid, t in first_seen.items() if t0 < t < t_limit]
    return min(cands) if cands else None


# ---------------------------------------------------------------- callgrind

CG_WARMUP = 20  # requests served before either load of a callgrind pair

def serve_requests(port, n):
    """n requests, one connection each, one after the other (so the server
    does the same work for each: nothing queues, nothing batches)."""
    req = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(req)
            while s.recv(65536):
                pass


def callgrind_totals(path):
    """(cmd, {event: total}) of one callgrind output file."""
    cmd, events, total = "", [], {}
    with open(path) as f:
        for line in f:
            if line.startswith("cmd:"):
                cmd = line[4:].strip()
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                total = dict(zip(events, (int(x) for x in line.split()[1:])))
    return cmd, total


def callgrind_events(path):
    return callgrind_totals(path)[1]


def callgrind_functions(path):
    """({function: self Ir}, self Ir of the library's own code) of one
    callgrind output file: the library's code is what was compiled from
    shim/ (named relative to the root as make builds it, absolute, or with
    part of the checkout's path: callgrind_annotate shortens some)."""
    r = subprocess.run([CALLGRIND_ANNOTATE, "--inclusive=no", "--auto=no", "--threshold=100",
                        path],
                       capture_output=True, text=True, timeout=120)
    out, library = {}, 0
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if m and ":" in m.group(2) and not m.group(2).startswith("PROGRAM TOTALS"):
            # "file:function (calls) [object]": the function names the row.
            source, rest = m.group(2).split(":", 1)
            name = re.sub(r"\s*(\([0-9,]+x\)|\[[^]]*\])", "", rest)
            name = name.split("@", 1)[0].strip()
            ir = int(m.group(1).replace(",", ""))
            out[name] = out.get(name, 0) + ir
            if os.path.basename(os.path.dirname(source.split()[-1])) == "shim":
                library += ir
    return out, library


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, quick):
        self.quick = quick
        self.cfg = QUICK if quick else FULL
        self.t_start = now()
        self.md = []
        self.summary = {"mode": "quick" if quick else "full"}
        self.migrate_orig = None
        self.migrate_writable = False
        self.notes = []
        self.runs = []
        self.written = False

    # -- helpers

    def check_time(self, need=0.0):
        if now() - self.t_start + need > self.cfg["budget_s"]:
            raise OutOfTime("time budget of %d s used up" % self.cfg["budget_s"])

    def emit(self, text, section=0):
        print(text)
        print()
        sys.stdout.flush()
        self.md.append((section, len(self.md), text))

    def build_tools(self):
        os.makedirs(OUT, exist_ok=True)
        os.makedirs(LOGS, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        for out, (src, extra) in TOOLS.items():
            src = os.path.join(HERE, src)
            dst = os.path.join(OUT, out)
            if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
                continue
            cmd = [cc, "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-o", dst,
                   src] + extra
            log(" ".join(cmd))
            subprocess.run(cmd, check=True, timeout=120)
        for p in (LOADCLIENT, EPOLL_LT, PREFORK, KEEPER, WRAPPER,
                  os.path.join(BUILD, "libhotrestart.so"), NGINX, LIGHTTPD, WRK):
            if not os.path.exists(p):
                raise BenchError("missing %s (run make all / make deps)" % p)

    def machine(self):
        model = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        try:
            with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
                thp = re.search(r"\[(\w+)\]", f.read()).group(1)
        except (OSError, AttributeError):
            thp = "?"
        versions = []
        for cmd in ([NGINX, "-v"], [LIGHTTPD, "-v"], [WRK, "-v"]):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
                text = (r.stdout + r.stderr).strip().splitlines()[0]
                versions.append(text.replace("nginx version: ", "").split(" - ")[0]
                                .split(" [")[0].split(" Copyright")[0])
            except (OSError, IndexError, subprocess.TimeoutExpired):
                pass
        line = ("%d cores (%s), %.0f GiB RAM, Linux %s, THP %s, %s; %s; %s" %
                (os.cpu_count(), model, mem, platform.release(), thp,
                 time.strftime("%Y-%m-%d %H:%M:%S %Z"), ", ".join(versions),
                 "quick mode" if self.quick else "full mode"))
        self.summary["machine"] = line
        return line

    def label(self, method):
        text = METHOD_LABEL[method]
        if method.startswith("reuseport") and self.migrate_orig == int(method[-1]):
            text += " (as found)"
        return text

    # -- tcp_migrate_req

    def migrate_setup(self):
        try:
            with open(MIGRATE) as f:
                self.migrate_orig = int(f.read().strip())
        except (OSError, ValueError):
            self.migrate_orig = None
            return [None]
        try:
            with open(MIGRATE, "w") as f:
                f.write(str(self.migrate_orig))
            self.migrate_writable = True
        except OSError:
            self.migrate_writable = False
        return [0, 1] if self.migrate_writable else [self.migrate_orig]

    def migrate_set(self, value):
        if value is None or not self.migrate_writable:
            return
        with open(MIGRATE, "w") as f:
            f.write(str(value))

    def migrate_restore(self):
        if self.migrate_writable and self.migrate_orig is not None:
            try:
                with open(MIGRATE, "w") as f:
                    f.write(str(self.migrate_orig))
            except OSError as e:
                log("could not restore %s: %s" % (MIGRATE, e))

    # -- section 1 (and 3): restarts under load

    def clients(self):
        c = self.cfg
        if c["concurrent"]:
            # Quick mode: wrk and the load client share each run (half the
            # connections each), so every restart is seen by both.
            return [("close", [("lc", c["conns"] // 2), ("wrk", c["conns"] // 2)]),
                    ("keepalive", [("lc", c["conns"] // 2), ("wrk", c["conns"] // 2)])]
        return [("close", [("lc", c["conns"])]), ("close", [("wrk", c["conns"])]),
                ("keepalive", [("lc", c["conns"])]), ("keepalive", [("wrk", c["conns"])])]

    def restart_runs(self):
        c = self.cfg
        migrates = self.migrate_setup()
        self.summary["tcp_migrate_req"] = {"found": self.migrate_orig,
                                           "writable": self.migrate_writable,
                                           "measured": migrates}
        configs = []
        for tname in ("epoll_lt", "lighttpd"):
            configs.append((tname, "naive", None))
            for mv in migrates:
                configs.append((tname, "reuseport%d" % (mv if mv is not None else 0), mv))
            configs.append((tname, "hotrestart", None))
        configs.append(("nginx", "nginx", None))

        results = self.runs
        n_runs = len(configs) * len(self.clients())
        per_run = c["load_s"] + 0.6
        log("section 1: %d runs of %d s" % (n_runs, c["load_s"]))
        for tname, mkey, mv in configs:
            target = Target(tname, os.path.join(OUT, "www-" + tname))
            port = pick_ports()
            logp = LogPipe(os.path.join(LOGS, "restarts-%s-%s.log" % (tname, mkey)))
            if mkey == "naive":
                method = Naive(target, port, logp)
            elif mkey.startswith("reuseport"):
                method = ReusePort(target, port, logp, mv if mv is not None else 0)
                method.key = mkey
            elif mkey == "hotrestart":
                method = HotRestart(target, port, logp)
            else:
                method = NginxUpgrade(target, port, logp)
            try:
                self.migrate_set(mv)
                method.start()
                for mode, clients in self.clients():
                    # keep time for sections 5 and 4, which come later
                    self.check_time(per_run + c["reserve_s"])
                    time.sleep(0.3)  # let a draining generation finish
                    results.append(self.one_run(tname, method, port, mode, clients))
            except BenchError as e:
                self.notes.append("section 1, %s/%s failed: %s" % (tname, mkey, e))
                log("%s/%s failed: %s" % (tname, mkey, e))
            finally:
                method.stop()
                logp.close()
                if mv is not None:
                    self.migrate_restore()

    def one_run(self, tname, method, port, mode, clients):
        c = self.cfg
        keep = mode == "keepalive"
        tag = "%s-%s-%s-%s" % (tname, method.key, mode, "+".join(k for k, _ in clients))
        timeline = None
        procs = {}
        t_launch = now()
        probe = start_probe(port, c["load_s"] + 0.3)
        for kind, conns in clients:
            if kind == "lc":
                timeline = os.path.join(OUT, "timeline-%s.csv" % tag)
                procs["lc"] = start_loadclient(port, c["load_s"], conns, keep, timeline,
                                               c["bucket_ms"])
            else:
                procs["wrk"] = start_wrk(port, c["load_s"], conns, keep)
        launch_ms = (now() - t_launch) * 1e3
        restarts = []
        error = None
        for i in range(c["restarts"]):
            at = t_launch + c["first_s"] + i * c["every_s"]
            if at < now():
                at = now()
            if at > t_launch + c["load_s"] - 0.25:
                break
            time.sleep(max(0.0, at - now()))
            try:
                restarts.append(method.restart())
            except BenchError as e:
                error = str(e)
                log("%s: restart %d failed: %s" % (tag, i + 1, e))
                break
        run = dict(server=tname, method=method.key, mode=mode, clients=[k for k, _ in clients],
                   restarts=len(restarts), t_launch=t_launch, error=error, raw=restarts,
                   marks=[r["t0"] - t_launch for r in restarts], timeline=timeline)
        for kind, p in procs.items():
            out, err = finish(p, c["load_s"] + 30)
            run[kind] = parse_loadclient(out) if kind == "lc" else parse_wrk(out)
            run[kind]["stderr"] = err.strip()[-400:]
        out, _ = finish(probe, c["load_s"] + 30)
        first_seen = parse_probe(out)
        m = re.search(r"probe ok=(\d+) err=(\d+)", out)
        run["probe"] = dict(ok=int(m.group(1)), err=int(m.group(2))) if m else None
        # Section 3 figures from this run.
        hand = []
        for i, r in enumerate(restarts):
            limit = restarts[i + 1]["t0"] if i + 1 < len(restarts) else float("inf")
            # The new process's own answers when it sends X-Pid (epoll_lt);
            # else (nginx: the workers' pids) the first unseen pid.
            t_first = first_seen.get(r["new_pid"]) or first_new_response(first_seen, r["t0"],
                                                                          limit)
            t_exit = r.get("t_old_exit") or EXITS.wait(r["old_pid"], 0.5)
            h = dict(first_ms=(t_first - r["t0"]) * 1e3 if t_first else None,
                     exit_ms=(t_exit - r["t0"]) * 1e3 if t_exit else None,
                     done_ms=(r["t_done"] - r["t0"]) * 1e3)
            for k in ("wrapper_ms", "exec_ms", "handover_log_ms"):
                if k in r:
                    h[k] = r[k]
            if "t_cmd" in r:
                h["cmd_ms"] = (r["t_done"] - r["t_cmd"]) * 1e3
            hand.append(h)
        run["handover"] = hand
        desc = []
        if "lc" in run:
            desc.append("lc ok=%d err=%d gap=%dms" % (run["lc"]["ok"], run["lc"]["errors"],
                                                     run["lc"]["max_gap_ms"]))
        if "wrk" in run:
            desc.append("wrk req=%d err=%d" % (run["wrk"]["requests"], run["wrk"]["errors"]))
        log("%-40s restarts=%d %s (launch %.0f ms; restarts at %s s took %s ms)" %
            (tag, len(restarts), " ".join(desc), launch_ms,
             ",".join("%.2f" % (r["t0"] - t_launch) for r in restarts),
             ",".join("%.0f" % ((r["t_done"] - r.get("t_cmd", r["t0"])) * 1e3) for r in restarts)))
        return run

    def report_restarts(self, runs):
        c = self.cfg
        order = []
        for r in runs:
            if (r["server"], r["method"]) not in order:
                order.append((r["server"], r["method"]))

        def find(server, method, mode, kind):
            for r in runs:
                if (r["server"], r["method"], r["mode"]) == (server, method, mode) and kind in r:
                    return r
            return None

        wrapper_start = median((x["t0"] - x["t_cmd"]) * 1e3 for r in runs for x in r["raw"]
                               if "t_cmd" in x)
        how = ("wrk and the load client together, %d connections each" % (c["conns"] // 2)
               if c["concurrent"] else "one client at a time, %d connections" % c["conns"])
        self.emit(section=1, text="## 1. Client-visible errors during restarts under load\n\n"
                  "Each row: one server restarted %d times (every %.1f s from t=%.2f s) during "
                  "a %d s load on 127.0.0.1 (%s; a paced probe adds ~1 connection/0.5 ms). "
                  "lc = the project's load client (errors by kind, retried = keep-alive "
                  "requests retried once on a fresh connection after the server closed an idle "
                  "connection, max gap = longest time without a successful response); wrk "
                  "counts are raw (wrk counts each keep-alive connection closed by the server "
                  "as a read error, even graceful closes). Methods: naive = SIGTERM, wait for the "
                  "exit, start again (until it accepts); SO_REUSEPORT = start the new process "
                  "with scripts/bench/reuseport.c preloaded (sets SO_REUSEPORT), once it "
                  "listens SIGTERM the old one; hotrestart = `hotrestart run`, then `hotrestart "
                  "restart` per restart (a Python program: its start-up, %s ms median from "
                  "launch to its request reaching the shim, competes with the load for the "
                  "CPUs); nginx = USR2, new master and workers up, WINCH, QUIT, wait for the "
                  "old master's exit. Each restart starts when the previous one is done." %
                  (c["restarts"], c["every_s"], c["first_s"], c["load_s"], how,
                   fmt(wrapper_start, 0)))
        overview = []
        for server, method in order:
            row = [server, self.label(method)]
            rs = [r for r in runs if (r["server"], r["method"]) == (server, method)]
            row.append(min(r["restarts"] for r in rs))
            for mode in ("close", "keepalive"):
                lc = find(server, method, mode, "lc")
                wk = find(server, method, mode, "wrk")
                row.append("%d / %d ms" % (lc["lc"]["errors"], lc["lc"]["max_gap_ms"])
                           if lc else "n/a")
                row.append(str(wk["wrk"]["errors"]) if wk else "n/a")
            overview.append(row)
        self.emit(section=1, text="### Overview\n\n" + md_table(
            ["server", "method", "restarts", "lc close: errors / max gap",
             "wrk close: errors (raw)", "lc keep-alive: errors / max gap",
             "wrk keep-alive: errors (raw)"], overview))
        for mode in ("close", "keepalive"):
            rows = []
            for server, method in order:
                r = find(server, method, mode, "lc")
                if not r:
                    continue
                lc = r["lc"]
                rows.append([server, self.label(method), r["restarts"], lc["ok"],
                             fmt(lc["rps"], 0)] + [lc[k] for k in ERROR_KINDS] +
                            [lc["retried"], lc["max_gap_ms"]])
            title = "connection per request" if mode == "close" else "keep-alive"
            self.emit(section=1, text="### Load client, %s\n\n" % title +
                      md_table(["server", "method", "restarts", "ok", "req/s"] +
                               list(ERROR_KINDS) + ["retried", "max gap ms"], rows))
        for mode in ("close", "keepalive"):
            rows = []
            for server, method in order:
                r = find(server, method, mode, "wrk")
                if not r:
                    continue
                w = r["wrk"]
                rows.append([server, self.label(method), r["restarts"], w["requests"],
                             fmt(w["rps"], 0), w["connect"], w["read"], w["write"], w["timeout"],
                             w["non2xx"]])
            title = "`-H 'Connection: close'`" if mode == "close" else "keep-alive"
            self.emit(section=1, text="### wrk, %s (raw counts)\n\n" % title +
                      md_table(["server", "method", "restarts", "requests", "req/s",
                                "connect err", "read err", "write err", "timeouts", "non-2xx"],
                               rows))
        failed = [r for r in runs if r["error"]]
        if failed:
            self.emit(section=1, text="Restart failures: " + "; ".join(
                "%s/%s/%s: %s" % (r["server"], r["method"], r["mode"], r["error"][:200])
                for r in failed))
        self.summary["restarts"] = [
            {k: v for k, v in r.items()
             if k in ("server", "method", "mode", "clients", "restarts", "error")}
            | {kind: {k: v for k, v in r[kind].items() if k != "stderr"}
               for kind in ("lc", "wrk") if kind in r}
            for r in runs]

    def report_handover(self, runs):
        rows = []
        summ = {}
        for (server, method, t0_desc), mode in ((m, mode) for m in (
                ("epoll_lt", "hotrestart", "shim logs the restart request"),
                ("epoll_lt", "naive", "SIGTERM sent"),
                ("epoll_lt", "reuseport0", "new process started"),
                ("epoll_lt", "reuseport1", "new process started"),
                ("nginx", "nginx", "USR2 sent")) for mode in ("close", "keepalive")):
            hs = [h for r in runs if (r["server"], r["method"], r["mode"]) ==
                  (server, method, mode) for h in r["handover"]]
            if not hs:
                continue
            first = [h["first_ms"] for h in hs]
            exit_ = [h["exit_ms"] for h in hs]
            extra = "n/a"
            if method == "hotrestart":
                extra = "%s / %s" % (fmt(median(h.get("wrapper_ms") for h in hs)),
                                     fmt(vmax(h.get("wrapper_ms") for h in hs)))
            rows.append([server, self.label(method), mode, t0_desc, len(hs),
                         "%s / %s" % (fmt(median(first)), fmt(vmax(first))),
                         "%s / %s" % (fmt(median(exit_)), fmt(vmax(exit_))), extra,
                         sum(1 for f in first if f is None)])
            summ["%s/%s/%s" % (server, method, mode)] = dict(
                n=len(hs), first_response_ms_median=median(first),
                first_response_ms_max=vmax(first),
                old_exit_ms_median=median(exit_), old_exit_ms_max=vmax(exit_),
                wrapper_handover_ms_median=median(h.get("wrapper_ms") for h in hs),
                wrapper_cmd_ms_median=median(h.get("cmd_ms") for h in hs))
        self.summary["handover"] = summ
        hr_cmd = median(h.get("cmd_ms") for r in runs if r["method"] == "hotrestart"
                        and r["server"] == "epoll_lt" for h in r["handover"])
        self.emit(section=3, text="## 3. Handover time\n\n"
                  "All restarts of section 1 with the epoll test server (and nginx), by load "
                  "mode (connection per request or keep-alive; wrk and load-client runs "
                  "pooled). t0 = the restart signal: for hotrestart the moment the old "
                  "process's shim log line 'restart requested on the control socket' arrived "
                  "(stderr pipe, stamped by scripts/bench/tslog.c at real-time priority; "
                  "`hotrestart restart` itself took %s ms median including its Python "
                  "start-up); for the others as listed. First response = the first response "
                  "carrying the new process's pid (X-Pid; for nginx, the first from a worker "
                  "that had not answered before t0), seen by a probe that opens a connection "
                  "every 0.5 ms and stamps the first response byte: an upper bound (by ~0.5 ms) "
                  "on the new generation's first accepted connection. Old exit = the old "
                  "process's pidfd became readable. Wrapper = the `handover X ms` that "
                  "`hotrestart restart` prints (the shim's own time from the request to the "
                  "successor's readiness). "
                  "Values: median / max ms.\n\n" % fmt(hr_cmd, 0) +
                  md_table(["server", "method", "load", "t0", "restarts",
                            "t0 -> first response of new generation",
                            "t0 -> old generation exited", "wrapper handover",
                            "no new response seen"], rows))

    # -- section 2: overhead

    def overhead(self):
        c = self.cfg
        target = Target("epoll_lt", os.path.join(OUT, "www-epoll_lt"))
        p_plain = pick_ports()
        logp = LogPipe(os.path.join(LOGS, "overhead.log"))
        plain = Naive(target, p_plain, logp)
        p_shim = pick_ports()
        shim = HotRestart(target, p_shim, logp)
        pairs = []
        try:
            plain.start()
            shim.start()
            pid = {"without": plain.p.pid, "with": server_of(shim.p.pid)}
            if c["warmup_s"]:
                for port in (p_plain, p_shim):
                    finish(start_wrk(port, c["warmup_s"], c["conns"], False), 30)
            for i in range(c["pairs"]):
                self.check_time(2 * c["pair_s"] + 1)
                order = [("without", p_plain), ("with", p_shim)]
                if i % 2:
                    order.reverse()
                pair = {}
                for name, port in order:
                    cpu = cpu_ns(pid[name])
                    out, _ = finish(start_wrk(port, c["pair_s"], c["conns"], False),
                                    c["pair_s"] + 30)
                    pair[name] = parse_wrk(out)
                    pair[name]["cpu_us"] = ((cpu_ns(pid[name]) - cpu) / 1e3 /
                                            max(1, pair[name]["requests"]))
                pairs.append(pair)
                log("overhead pair %d: without %.0f req/s, with %.0f req/s" %
                    (i + 1, pair["without"]["rps"], pair["with"]["rps"]))
        finally:
            plain.stop()
            shim.stop()
            logp.close()

        def ratio(k):
            return [p["with"][k] / p["without"][k] for p in pairs
                    if p["with"].get(k) and p["without"].get(k)]
        rows = []
        summ = {"pairs": len(pairs)}
        for k, label, digits in (("rps", "requests/s", 0),
                                 ("cpu_us", "server CPU time per request (us)", 2),
                                 ("p50", "latency p50 (ms)", 3),
                                 ("p99", "latency p99 (ms)", 3)):
            wo = median(p["without"][k] for p in pairs)
            wi = median(p["with"][k] for p in pairs)
            rat = median(ratio(k))
            errs = sum(p["with"]["errors"] + p["without"]["errors"] for p in pairs)
            rows.append([label, fmt(wo, digits), fmt(wi, digits), fmt(rat, 3),
                         ", ".join(fmt(x, 3) for x in ratio(k))])
            summ[k] = dict(without=wo, with_=wi, ratio_median=rat)
        summ["errors"] = errs
        self.summary["overhead"] = summ
        self.emit(section=2, text="### Throughput and CPU time\n\n"
                  "epoll_lt without LD_PRELOAD vs. under `hotrestart run` (no restart), wrk "
                  "-t1 -c%d -H 'Connection: close' (one connection per request), %d pairs of "
                  "%d s runs taken alternately (order swapped every pair). Server CPU time: "
                  "/proc/PID/task/*/schedstat over the run / wrk's request count. Medians; "
                  "ratio = with/without, per pair, then the median. wrk errors in all runs: "
                  "%d.\n\n" %
                  (c["conns"], len(pairs), c["pair_s"], errs) +
                  md_table(["metric", "without", "with hotrestart", "ratio (median)",
                            "per-pair ratios"], rows))

    # -- section 6: cost of the seccomp filter

    def filter_cost(self):
        """A static epoll_lt under the keeper, with and without the seccomp
        filter (bind/listen notified, every other call allowed after a few
        BPF instructions): accept-path throughput, pairs as in section 2."""
        c = self.cfg
        target = Target("epoll_lt", os.path.join(OUT, "www-epoll_lt"))
        logp = LogPipe(os.path.join(LOGS, "filter.log"))
        servers = {}
        for name, flag in (("without", "--no-seccomp"), ("with", "--seccomp")):
            port = pick_ports()
            # Without the filter nothing tells the keeper the static server
            # is ready: it writes the pid file at the (short) ready timeout.
            servers[name] = (port, HotRestart(target, port, logp, run_args=[flag], ready_timeout=2,
                                              argv=[STATIC_EPOLL_LT, "--port", str(port)]))
        pairs = []
        try:
            for _port, srv in servers.values():
                srv.start()
            for i in range(c["pairs"]):
                self.check_time(2 * c["pair_s"] + 1)
                order = ["without", "with"] if i % 2 == 0 else ["with", "without"]
                pair = {}
                for name in order:
                    out, _ = finish(start_wrk(servers[name][0], c["pair_s"], c["conns"], False),
                                    c["pair_s"] + 30)
                    pair[name] = parse_wrk(out)
                pairs.append(pair)
                log("filter pair %d: without %.0f req/s, with %.0f req/s" %
                    (i + 1, pair["without"]["rps"], pair["with"]["rps"]))
        finally:
            for _port, srv in servers.values():
                srv.stop()
            logp.close()
        ratios = [p["with"]["rps"] / p["without"]["rps"] for p in pairs
                  if p["with"].get("rps") and p["without"].get("rps")]
        summ = dict(pairs=len(pairs), without=median(p["without"]["rps"] for p in pairs),
                    with_=median(p["with"]["rps"] for p in pairs), ratio_median=median(ratios))
        self.summary["seccomp_filter"] = summ
        self.emit(section=6, text="## 6. Cost of the seccomp filter\n\n"
                  "Static (musl) epoll_lt under `hotrestart run --no-seccomp` vs. `--seccomp`, wrk "
                  "-t1 -c%d -H 'Connection: close', %d pairs of %d s runs taken alternately. "
                  "Ratio = with/without per pair, then the median.\n\n" %
                  (c["conns"], len(pairs), c["pair_s"]) +
                  md_table(["metric", "without filter", "with filter", "ratio (median)",
                            "per-pair ratios"],
                           [["requests/s", fmt(summ["without"], 0), fmt(summ["with_"], 0),
                             fmt(summ["ratio_median"], 3), ", ".join(fmt(x, 3) for x in ratios)]]))

    def thread_counts(self):
        """Threads of every server process in steady state (serving, no
        restart), without the library and under `hotrestart run`."""
        rows, summ = [], {}
        for tname in ("epoll_lt", "prefork"):
            target = Target(tname, os.path.join(OUT, "www-" + tname))
            logp = LogPipe(os.path.join(LOGS, "threads-%s.log" % tname))
            plain = Naive(target, pick_ports(), logp)
            shim = HotRestart(target, pick_ports(), logp)
            try:
                plain.start()
                shim.start()
                roots = {"without": (plain.port, plain.p.pid),
                         "with": (shim.port, server_of(shim.p.pid))}
                counts = {}
                for key, (port, root) in roots.items():
                    serve_requests(port, 50)
                    time.sleep(0.2)
                    counts[key] = [threads(p) for p in family(root)]
            finally:
                plain.stop()
                shim.stop()
                logp.close()
            summ[tname] = counts
            rows.append([tname, ", ".join(map(str, counts["without"])),
                         ", ".join(map(str, counts["with"]))])
        self.summary["threads"] = summ
        self.emit(section=2, text="### Threads per server process\n\n"
                  "After 50 requests, no restart: /proc/PID/task of the server's main "
                  "process and each of its children (prefork: the parent and 2 workers); "
                  "with the library, the generation under `hotrestart run` (the keeper is "
                  "not counted: it is not the app's process).\n\n" +
                  md_table(["server", "threads without", "threads with hotrestart"], rows))

    # -- section 2: instructions per request (callgrind)

    def callgrind_load(self, target, with_lib, n):
        """Runs target under callgrind, serves n requests and has callgrind
        dump the server's counts right then (callgrind_control, so that the
        stop, whose work varies with timing, is left out); returns that
        file. With the library the server runs under
        `hotrestart run` (the keeper, through HOTRESTART_KEEPER, is a script
        that execs the real keeper under callgrind with --trace-children=yes):
        the generation gets exactly the environment, fds and spawn of a real
        run, and only its own file is counted."""
        d = os.path.join(OUT, "callgrind", "%s-%s-%d" % (target.name, "with" if with_lib else
                                                         "without", n))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        vg = [VALGRIND, "--tool=callgrind", "--collect-systime=yes",
              "--callgrind-out-file=" + os.path.join(d, "callgrind.%p")]
        port = pick_ports()
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        pidfile = os.path.join(d, "hotrestart.pid")
        if with_lib:
            script = os.path.join(d, "keeper-under-callgrind")
            with open(script, "w") as f:
                f.write("#!/bin/sh\nexec %s --trace-children=yes %s \"$@\"\n" %
                        (" ".join(vg), KEEPER))
            os.chmod(script, 0o755)
            env["HOTRESTART_KEEPER"] = script
            argv = PY_WRAPPER + ["run", "--pidfile", pidfile, "--"] + target.argv(port)
        else:
            argv = vg + target.argv(port)
        with open(os.path.join(d, "output.log"), "w") as out:
            p = PROCS.popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: accepting(port) or p.poll() is not None, 120,
                       "%s under callgrind to accept" % target.name, interval=0.05)
            if with_lib:  # the keeper writes it once the generation is ready
                wait_until(lambda: read_pid(pidfile) or p.poll() is not None, 120,
                           "the generation under callgrind to be ready", interval=0.05)
            if p.poll() is not None:
                raise BenchError("%s under callgrind exited (see %s)" % (target.name, d))
            # The same warm-up in both loads: one-time work (first calls,
            # readiness) falls out of the difference.
            serve_requests(port, CG_WARMUP + n)
            server = server_of(p.pid) if with_lib else p.pid
            r = subprocess.run([CALLGRIND_CONTROL, "--dump", str(server)], capture_output=True,
                               text=True, timeout=60)
            dump = os.path.join(d, "callgrind.%d.1" % server)
            if r.returncode != 0 or not os.path.exists(dump):
                raise BenchError("callgrind_control could not dump %d: %s" %
                                 (server, (r.stdout + r.stderr).strip()[-300:]))
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=120)
        finally:
            PROCS.kill(p)
        return dump

    def instructions(self):
        c = self.cfg
        n1, n2 = c["cg_requests"]
        for tool in (VALGRIND, CALLGRIND_ANNOTATE, CALLGRIND_CONTROL):
            if not os.path.exists(tool):
                raise BenchError("missing %s (apt-get install valgrind)" % tool)
        target = Target("epoll_lt", os.path.join(OUT, "www-epoll_lt"))
        per_req, funcs, library = {}, {}, {}
        for with_lib in (False, True):
            self.check_time(30)
            files = [self.callgrind_load(target, with_lib, n) for n in (n1, n2)]
            totals = [callgrind_events(f) for f in files]
            key = "with" if with_lib else "without"
            per_req[key] = {ev: (totals[1][ev] - totals[0][ev]) / (n2 - n1)
                            for ev in totals[0] if ev in totals[1]}
            (fa, la), (fb, lb) = (callgrind_functions(f) for f in files)
            funcs[key] = {fn: (fb.get(fn, 0) - fa.get(fn, 0)) / (n2 - n1)
                          for fn in set(fa) | set(fb)}
            library[key] = (lb - la) / (n2 - n1)
            log("callgrind %s: %.1f instructions, %.2f system calls per request" %
                (key, per_req[key]["Ir"], per_req[key].get("sysCount", float("nan"))))
        wo, wi = per_req["without"], per_req["with"]
        added = {fn: funcs["with"].get(fn, 0) - funcs["without"].get(fn, 0)
                 for fn in set(funcs["with"]) | set(funcs["without"])}
        top = sorted(((v, fn) for fn, v in added.items() if abs(v) >= 1), reverse=True)[:12]
        self.summary["instructions"] = dict(
            requests=[n1, n2], without=wo["Ir"], with_=wi["Ir"], added=wi["Ir"] - wo["Ir"],
            library=library["with"],
            syscalls_without=wo.get("sysCount"), syscalls_with=wi.get("sysCount"),
            functions={fn: round(v, 1) for v, fn in top})
        rows = [["user-space instructions (Ir)", fmt(wo["Ir"], 1), fmt(wi["Ir"], 1),
                 fmt(wi["Ir"] - wo["Ir"], 1)],
                ["of which the library's own code (shim/)", "0", fmt(library["with"], 1),
                 fmt(library["with"], 1)]]
        if "sysCount" in wo and "sysCount" in wi:
            rows.append(["system calls", fmt(wo["sysCount"], 2), fmt(wi["sysCount"], 2),
                         fmt(wi["sysCount"] - wo["sysCount"], 2)])
        self.emit(section=2, text="## 2. Accept-path overhead of the preloaded library\n\n"
                  "### Instructions per request (callgrind)\n\n"
                  "epoll_lt under valgrind --tool=callgrind, without the library, and under "
                  "`hotrestart run` (its keeper exec'd under callgrind with "
                  "--trace-children=yes, so the generation runs with the keeper's own "
                  "environment and fds; only the server's counts are used). Two loads of %d "
                  "and %d requests, one connection each, sent one after the other; per "
                  "request = (count at %d - count at %d) / %d, which removes start-up and "
                  "exit. Exact counts, not timings. The server's own work varies by a "
                  "few dozen instructions between runs (malloc trimming its heap, the "
                  "digits of its PID in each response), so the instructions compiled "
                  "from shim/ are also counted on their own: that is what the library "
                  "adds.\n\n" % (n1, n2, n2, n1, n2 - n1) +
                  md_table(["per request", "without", "with hotrestart", "added"], rows) +
                  "\n\nWhere the added instructions go (self cost per request, with minus "
                  "without, largest first):\n\n" +
                  md_table(["function", "added Ir/request"],
                           [["`%s`" % fn, fmt(v, 1)] for v, fn in top]))

    # -- section 4: spawn cost versus size

    def spawn_cost(self):
        c = self.cfg
        sizes = [100, 1024, 4096]
        rows, plot = [], []
        summ = {}
        self.check_time(15)
        t_section = now()
        target = Target("epoll_lt", os.path.join(OUT, "www-epoll_lt"))
        servers = {}
        recs = {mib: [] for mib in sizes}
        hand = {mib: [] for mib in sizes}
        rss = {}
        try:
            # The three servers run side by side and the spawn samples go
            # round-robin over them, so that the machine's noise of the
            # moment hits every size alike.
            for mib in sizes:
                port = pick_ports()
                logp = LogPipe(os.path.join(LOGS, "spawn-%d.log" % mib))
                servers[mib] = HotRestart(target, port, logp, ready_timeout=150,
                                          argv=[EPOLL_LT, "--port", str(port), "--touch-mib",
                                                str(mib)])
                servers[mib].launch()
            for mib in sizes:
                servers[mib].wait_ready()
                rss[mib] = rss_mib(servers[mib].main_pid())
            start_s = now() - t_section
            s_per_gib = start_s / (sum(sizes) / 1024.0)
            # Spawn samples: each successor is killed right after its exec,
            # the shim reports the upgrade failed and keeps serving, and the
            # next sample needs no wait for a successor to touch N MiB.
            for i in range(c["spawn_samples"]):
                for mib in sizes:
                    recs[mib].append(self.signal_restart(servers[mib], kill_successor=True))
                    time.sleep(0.05)
            # Real restarts, waited for until the old generation exited: each
            # costs the successor's touching of N MiB; keep time for forkcost.
            fork_s = s_per_gib * sum(sizes) / 1024.0
            for mib in sizes:
                for i in range(c["spawn_restarts"]):
                    cost = 1.5 * s_per_gib * mib / 1024.0 + 1
                    if (now() - t_section + cost + fork_s > c["spawn_s"] or
                            now() - self.t_start + cost + fork_s > c["budget_s"]):
                        break
                    hand[mib].append(self.signal_restart(servers[mib], kill_successor=False))
        finally:
            for m in servers.values():
                m.stop()
                m.logp.close()
        for mib in sizes:
            if now() - self.t_start + s_per_gib * mib / 1024.0 + 2 > c["budget_s"]:
                forks, vforks = [], []
                self.notes.append("section 4: no fork+exec contrast at %d MiB (time budget)" %
                                  mib)
            else:
                forks, vforks = self.forkcost(mib)
            ex = [r.get("exec_ms") for r in recs[mib] + hand[mib]]
            se = [r.get("sig_exec_ms") for r in recs[mib] + hand[mib]]
            ho = [r.get("handover_ms") for r in hand[mib]]
            summ[str(mib)] = dict(rss_mib=rss.get(mib), spawns=len(ex), exec_ms_median=median(ex),
                                  exec_ms_max=vmax(ex), signal_to_exec_line_ms_median=median(se),
                                  handovers=len(ho), handover_ms_median=median(ho),
                                  fork_exec_ms_median=median(forks), fork_exec_ms_max=vmax(forks),
                                  vfork_exec_ms_median=median(vforks))
            rows.append(["%.1f" % (mib / 1024), fmt(rss.get(mib), 0), len(ex),
                         "%s / %s" % (fmt(median(ex), 3), fmt(vmax(ex), 3)),
                         fmt(median(se), 2),
                         "%s (%d)" % (fmt(median(ho), 0), len(ho)) if ho else "n/a",
                         "%s / %s" % (fmt(median(forks), 2), fmt(vmax(forks), 2)),
                         fmt(median(vforks), 3)])
            exs = [x for x in ex if x is not None]
            plot.append((rss.get(mib) or mib, median(exs), min(exs) if exs else None, vmax(exs),
                         median(forks), min(forks) if forks else None, vmax(forks),
                         median(vforks)))
            log("spawn %d MiB: exec after %s ms (median), fork+exec %s ms" %
                (mib, fmt(median(ex), 3), fmt(median(forks), 2)))
        small, big = summ.get("100", {}), summ.get("4096", {})
        ratio = (big["exec_ms_median"] / small["exec_ms_median"]
                 if big.get("exec_ms_median") and small.get("exec_ms_median") else None)
        summ["ratio_4GiB_to_0.1GiB"] = ratio
        summ["target_met"] = ratio is not None and ratio <= 2.0
        self.summary["spawn"] = summ
        self.emit(section=4, text="## 4. Spawn cost versus server size\n\n"
                  "epoll_lt --touch-mib N under hotrestart, restarted with the shim's restart "
                  "signal (SIGUSR2); the three servers run side by side and the samples go "
                  "round-robin over the sizes, 50 ms apart. %d spawn samples per size: the "
                  "successor is SIGKILLed as soon as the shim logs its spawn (the shim then "
                  "reports the upgrade failed and keeps serving), so that a sample does not wait "
                  "for a successor to touch N MiB; then up to %d real restarts per size while "
                  "the time lasts (count in brackets), each waited for until the old generation "
                  "exited; their spawns count as samples too. 'exec after' = "
                  "from kill(SIGUSR2) to the keeper to the arrival of its 'upgrade: started' "
                  "log line (the keeper forks itself, a small process, whatever the server's "
                  "size, so it has no exec time of its own to log); signal -> exec line = the "
                  "same measure; handover = the shim's 'handover ... after X "
                  "ms' of the real restarts, which includes the successor touching its N MiB "
                  "before it is ready. fork+exec / vfork+exec: scripts/bench/forkcost.c holding "
                  "the same memory, from fork() in the parent to the exec in the child (CLOEXEC "
                  "pipe closing), %d runs each. Median / max ms. Ratio of hotrestart's median "
                  "spawn at 4 GiB to 0.1 GiB: **%s** (target <= 2).\n\n" %
                  (c["spawn_samples"], c["spawn_restarts"], c["fork_iters"], fmt(ratio, 2)) +
                  md_table(["GiB touched", "RSS MiB", "spawns", "hotrestart exec after",
                            "signal -> exec line", "handover (restarts)", "fork+exec",
                            "vfork+exec"], rows))
        self.plot_spawn(plot)

    def signal_restart(self, m, kill_successor):
        """Restart with the shim's restart signal (SIGUSR2): t0 is when it was
        sent. Either kills the successor once it has exec'd and waits for the
        shim to report the failed upgrade, or waits for the handover and the
        old generation's exit."""
        keeper = read_pid(m.pidfile)
        old = m.main_pid()
        EXITS.watch(old)
        mark = m.logp.mark()
        t0 = now()
        os.kill(keeper, signal.SIGUSR2)
        up = m.logp.find(r"hotrestart\[%d\]: upgrade: started generation \d+ as pid (\d+) "
                         % keeper, mark, timeout=30)
        if not up:
            raise BenchError("no 'upgrade: started' line after the restart signal:\n" +
                             m.logp.tail())
        new = int(up[1].group(1))
        # The keeper's spawn forks the keeper, whatever the server's size.
        res = dict(t0=t0, old_pid=old, new_pid=new, exec_ms=(up[0] - t0) * 1e3,
                   sig_exec_ms=(up[0] - t0) * 1e3)
        if kill_successor:
            try:
                os.kill(new, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not m.logp.find(r"hotrestart\[%d\]: upgrade failed" % keeper, mark, timeout=15):
                raise BenchError("the shim did not report the killed successor:\n" +
                                 m.logp.tail())
        else:
            ho = m.logp.find(r"hotrestart\[%d\]: handover to generation \d+ \(pid %d\) after "
                             r"(\d+) ms" % (keeper, new), mark, timeout=m.ready_timeout + 10)
            if not ho:
                raise BenchError("no handover after the restart signal:\n" + m.logp.tail())
            res["handover_ms"] = float(ho[1].group(1))
            if EXITS.wait(old, 120) is None:
                raise BenchError("old generation %d did not exit" % old)
        return res

    def forkcost(self, mib):
        r = subprocess.run([os.path.join(OUT, "forkcost"), "--mib", str(mib), "--iterations",
                            str(self.cfg["fork_iters"]), "--mode", "both"],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise BenchError("forkcost failed: " + r.stderr.strip())
        out = {"fork": [], "vfork": []}
        for line in r.stdout.splitlines():
            kind, _, ms = line.partition(" ")
            if kind in out:
                out[kind].append(float(ms))
        return out["fork"], out["vfork"]

    # -- section 5: scale

    def scale(self):
        c = self.cfg
        n, nl = c["scale_conns"], c["scale_listeners"]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = n + nl + 200
        if hard != resource.RLIM_INFINITY and hard < need:
            n = max(100, hard - nl - 200)
            self.notes.append("RLIMIT_NOFILE hard limit %d: scale test with %d connections" %
                              (hard, n))
        new_soft = need if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        limits = "RLIMIT_NOFILE raised from %d to %d (hard limit %s)" % (
            soft, new_soft, "unlimited" if hard == resource.RLIM_INFINITY else hard)
        base = pick_ports(nl)
        target = Target("scaleserver", os.path.join(OUT, "www-scale"))
        logp = LogPipe(os.path.join(LOGS, "scale.log"))
        m = HotRestart(target, base, logp,
                       argv=[os.path.join(OUT, "scaleserver"), "--port", str(base),
                             "--listeners", str(nl)], ready_timeout=60)
        status = []
        st_cond = threading.Condition()

        def reader(p):
            for line in p.stdout:
                mm = re.match(r"st (\d+) idle=(\d+) pending=(\d+) closed=(\d+) failed=(\d+)", line)
                if mm:
                    with st_cond:
                        status.append(tuple(int(x) for x in mm.groups()))
                        st_cond.notify_all()

        def wait_full(timeout):
            deadline = now() + timeout
            with st_cond:
                while not status or status[-1][1] < n or status[-1][2] != 0:
                    left = deadline - now()
                    if left <= 0:
                        raise BenchError("idle connections not all open: %s" %
                                         (status[-1:] or "no status"))
                    st_cond.wait(left)
                return status[-1]

        recs = []
        client = probe = None
        try:
            m.start()
            t_open = now()
            client = PROCS.popen([os.path.join(OUT, "idleclient"), "--port", str(base),
                                  "--listeners", str(nl), "--connections", str(n),
                                  "--duration", "240", "--concurrency", "512"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            threading.Thread(target=reader, args=(client,), daemon=True).start()
            wait_full(60)
            open_s = now() - t_open
            probe = start_probe(base, 240)
            for _ in range(c["scale_restarts"]):
                if now() - self.t_start + 8 > c["budget_s"]:
                    self.notes.append("section 5: fewer restarts (time budget)")
                    break
                st = wait_full(60)
                time.sleep(0.2)
                closed0 = st[3]
                r = m.restart()
                t_exit = EXITS.wait(r["old_pid"], 60)
                wait_full(60)
                with st_cond:
                    t_closed = next((s[0] / 1e9 for s in status if s[3] >= closed0 + n), None)
                    t_back = next((s[0] / 1e9 for s in status
                                   if s[0] / 1e9 > r["t0"] and s[1] >= n and s[2] == 0
                                   and s[3] >= closed0 + n), None)
                r["exit_ms"] = (t_exit - r["t0"]) * 1e3 if t_exit else None
                r["closed_ms"] = (t_closed - r["t0"]) * 1e3 if t_closed else None
                r["back_ms"] = (t_back - r["t0"]) * 1e3 if t_back else None
                recs.append(r)
                log("scale restart: handover %s ms, old exit %s ms, draining %s" %
                    (fmt(r.get("wrapper_ms")), fmt(r["exit_ms"]), r.get("draining")))
            PROCS.kill(probe)
            out, _ = probe.communicate()
            first_seen = parse_probe(out)
            for i, r in enumerate(recs):
                limit = recs[i + 1]["t0"] if i + 1 < len(recs) else float("inf")
                t_first = first_seen.get(r["new_pid"]) or first_new_response(
                    first_seen, r["t0"], limit)
                r["first_ms"] = (t_first - r["t0"]) * 1e3 if t_first else None
        finally:
            if probe:
                PROCS.kill(probe)
            if client:
                PROCS.kill(client)
            m.stop()
            logp.close()
        summ = dict(connections=n, listeners=nl, open_s=open_s, restarts=len(recs))
        for k in ("wrapper_ms", "first_ms", "exit_ms", "closed_ms", "back_ms", "draining"):
            summ[k + "_median"] = median(r.get(k) for r in recs)
            summ[k + "_max"] = vmax(r.get(k) for r in recs)
        self.summary["scale"] = summ
        rows = [["handover (`hotrestart restart` value)", fmt(summ["wrapper_ms_median"]),
                 fmt(summ["wrapper_ms_max"])],
                ["t0 -> first response of the new generation", fmt(summ["first_ms_median"]),
                 fmt(summ["first_ms_max"])],
                ["t0 -> the client saw all %d idle connections closed by the old generation" % n,
                 fmt(summ["closed_ms_median"]), fmt(summ["closed_ms_max"])],
                ["t0 -> old generation exited", fmt(summ["exit_ms_median"]),
                 fmt(summ["exit_ms_max"])],
                ["t0 -> all %d connections re-established on the new generation" % n,
                 fmt(summ["back_ms_median"]), fmt(summ["back_ms_max"])]]
        self.emit(section=5, text="## 5. Scale: %d idle keep-alive connections, %d listeners\n\n"
                  "scripts/bench/scaleserver.c (one epoll thread, %d listeners on consecutive "
                  "ports) under hotrestart; scripts/bench/idleclient.c holds %d connections "
                  "spread over the listeners, each after one request/response, and replaces any "
                  "the server closes (opening all took %.1f s). %d restarts with `hotrestart "
                  "restart`; t0 = the shim's 'restart requested' log line; the old generation "
                  "reported %s connections to drain at handover. Idle-client times come from "
                  "its status lines (5 ms resolution). %s for the server and the client.\n\n" %
                  (n, nl, nl, n, open_s, len(recs), fmt(summ["draining_median"], 0), limits) +
                  md_table(["", "median ms", "max ms"], rows))

    # -- plots

    def gnuplot(self, script, name, height):
        path = os.path.join(OUT, name + ".gp")
        term = "pngcairo noenhanced size 1000,%d font 'sans,10'"
        r = subprocess.run([GNUPLOT, "-e", "set terminal pngcairo"], capture_output=True,
                           timeout=20)
        if r.returncode != 0:
            term = "png noenhanced size 1000,%d"
        with open(path, "w") as f:
            f.write(script.replace("@TERM@", term % height))
        r = subprocess.run([GNUPLOT, path], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.notes.append("gnuplot failed for %s: %s" % (name, r.stderr.strip()[:300]))
            return None
        return os.path.join(OUT, name + ".png")

    def plot_timelines(self, runs):
        c = self.cfg
        made = []
        for mode in ("close", "keepalive"):
            servers = [s for s in ("epoll_lt", "lighttpd", "nginx")
                       if any(r["server"] == s and r["mode"] == mode and r["timeline"]
                              for r in runs)]
            if not servers:
                continue
            height = 330 * len(servers) + 60
            lines = ["set terminal @TERM@",
                     "set output '%s/timeline-%s.png'" % (OUT, mode),
                     "set datafile separator ','",
                     "set multiplot layout %d,1 title 'Load client, %s: successful requests/s "
                     "(%d ms buckets); bars: failed requests (right axis); dashed: restarts' "
                     "font ',11'" %
                     (len(servers), "connection per request" if mode == "close" else "keep-alive",
                      c["bucket_ms"]),
                     "set key outside bottom center horizontal", "set grid",
                     "set yrange [0:*]", "set y2range [0:*]", "set y2tics",
                     "set y2label 'errors'",
                     "set xrange [0:%g]" % c["load_s"], "set ylabel 'req/s'"]
            for s in servers:
                rs = [r for r in runs if r["server"] == s and r["mode"] == mode and r["timeline"]]
                lines.append("unset arrow")
                for r in rs:
                    for t in r["marks"]:
                        lines.append("set arrow from %.3f, graph 0 to %.3f, graph 1 nohead "
                                     "lc rgb '%s' dt 2 lw 1" % (t, t, METHOD_COLOR[r["method"]]))
                lines.append("set title '%s'" % s)
                lines.append("set xlabel 'time (s)'" if s == servers[-1] else "unset xlabel")
                # The last bucket is partial (the run's end): left out.
                plots = ["'%s' every ::1 using ($1/1000+%g):($1 < %d ? $2*%g : NaN) with lines "
                         "lw 1.5 lc rgb '%s' title '%s'" %
                         (r["timeline"], c["bucket_ms"] / 2000.0,
                          c["load_s"] * 1000 - c["bucket_ms"],
                          1000.0 / c["bucket_ms"], METHOD_COLOR[r["method"]],
                          METHOD_SHORT[r["method"]]) for r in rs]
                plots += ["'%s' every ::1 using ($1/1000+%g):($3 > 0 ? $3 : NaN) axes x1y2 with "
                          "impulses lw 3 lc rgb '%s' notitle" %
                          (r["timeline"], c["bucket_ms"] / 2000.0, METHOD_COLOR[r["method"]])
                          for r in rs]
                lines.append("plot " + ", \\\n     ".join(plots))
            lines.append("unset multiplot")
            png = self.gnuplot("\n".join(lines) + "\n", "timeline-%s" % mode, height)
            if png:
                made.append(png)
        return made

    def plot_spawn(self, pts):
        data = os.path.join(OUT, "spawn.dat")
        with open(data, "w") as f:
            f.write("# rss_mib exec_med exec_min exec_max fork_med fork_min fork_max vfork_med\n")
            for p in pts:
                f.write(" ".join("nan" if v is None else "%g" % v for v in p) + "\n")
        script = "\n".join([
            "set terminal @TERM@",
            "set output '%s/spawn.png'" % OUT,
            "set title 'Spawn cost versus server RSS (median, min-max bars)'",
            "set logscale y", "set grid", "set key left top",
            "set xlabel 'server RSS (GiB)'", "set ylabel 'ms until the child exec()s'",
            "set xrange [0:*]",
            "plot '%s' using ($1/1024):2:3:4 with yerrorlines lw 2 lc rgb '#2ca02c' "
            "title 'hotrestart spawn (shim: exec after)', \\" % data,
            "     '%s' using ($1/1024):5:6:7 with yerrorlines lw 2 lc rgb '#d62728' "
            "title 'plain fork()+exec()', \\" % data,
            "     '%s' using ($1/1024):8 with linespoints lw 2 lc rgb '#1f77b4' "
            "title 'vfork()+exec()'" % data, ""])
        self.gnuplot(script, "spawn", 500)

    # -- main

    def clean(self):
        """Removes the previous run's results (keeps the built helpers)."""
        if not os.path.isdir(OUT):
            return
        for name in os.listdir(OUT):
            path = os.path.join(OUT, name)
            if name in TOOLS:
                continue
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    def section(self, name, fn):
        """Runs one section; a failure or the time budget ends only that section."""
        t = now()
        try:
            fn()
        except OutOfTime as e:
            self.notes.append("%s cut short: %s" % (name, e))
        except (BenchError, subprocess.SubprocessError, OSError) as e:
            self.notes.append("%s failed: %s" % (name, e))
            log("%s failed: %s" % (name, e))
        finally:
            self.migrate_restore()
        self.summary.setdefault("section_s", {})[name] = round(now() - t, 1)
        log("%s took %.1f s" % (name, now() - t))

    def report_section1(self):
        if not self.runs:
            return
        self.report_restarts(self.runs)
        self.report_handover(self.runs)
        pngs = self.plot_timelines(self.runs)
        if pngs:
            self.emit(section=1, text="Timelines: " +
                      ", ".join(os.path.relpath(p, ROOT) for p in pngs))

    def run(self):
        self.clean()
        self.summary["loadavg_start"] = loadavg()
        self.build_tools()
        machine = self.machine()
        self.emit("# hotrestart benchmarks\n\nMachine: %s" % machine)
        self.section("section 2 (instructions)", self.instructions)
        self.section("section 2 (threads)", self.thread_counts)
        self.section("section 2 (overhead)", self.overhead)
        self.section("section 1 (restarts under load)", self.restart_runs)
        self.section("sections 1 and 3 (report)", self.report_section1)
        self.section("section 5 (scale)", self.scale)
        self.section("section 4 (spawn cost)", self.spawn_cost)
        self.section("section 6 (seccomp filter)", self.filter_cost)
        return self.write_results()

    def write_results(self):
        if self.written:
            return 1 if any("failed" in n for n in self.notes) else 0
        self.written = True
        if os.path.exists(os.path.join(OUT, "spawn.png")):
            self.emit("Spawn plot: build/bench/spawn.png", section=4)
        elapsed = now() - self.t_start
        self.summary["elapsed_s"] = round(elapsed, 1)
        self.summary["notes"] = self.notes
        self.summary["loadavg_end"] = loadavg()
        self.emit(section=9, text="Benchmark time: %.1f s (without make); load average at "
                  "start %s, at end %s.%s" %
                  (elapsed, self.summary["loadavg_start"], self.summary["loadavg_end"],
                   "".join("\n\nNote: " + n for n in self.notes)))
        with open(os.path.join(OUT, "results.md"), "w") as f:
            f.write("\n\n".join(text for _, _, text in sorted(self.md)) + "\n")
        with open(os.path.join(OUT, "summary.json"), "w") as f:
            json.dump(self.summary, f, indent=1, default=str)
            f.write("\n")
        # Every run of section 1 with each restart's timings, for digging.
        with open(os.path.join(OUT, "raw.json"), "w") as f:
            json.dump(self.runs, f, indent=1, default=str)
            f.write("\n")
        return 1 if any("failed" in n for n in self.notes) else 0


def main():
    # Threads that stamp times hand the interpreter lock on sooner.
    sys.setswitchinterval(0.0005)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (under 2.5 minutes)")
    args = ap.parse_args()
    bench = Bench(args.quick)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    # A hard bound on the whole run, whatever happens.
    hard = bench.cfg["hard_s"]

    def on_alarm(sig, frame):
        raise HardTimeout("benchmark stopped at its hard time limit of %d s" % hard)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(hard)
    status = 0
    try:
        status = bench.run()
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        log("error: %s" % e)
        status = 1
    except HardTimeout as e:
        log("error: %s" % e)
        bench.notes.append(str(e))
        status = 1
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    finally:
        signal.alarm(0)
        PROCS.kill_all()
        bench.migrate_restore()
    if status and bench.md:
        try:
            bench.write_results()
        except (OSError, BenchError) as e:
            log("could not write the results: %s" % e)
    return status


if __name__ == "__main__":
    sys.exit(main())
