"""Test bed for the integration tests: servers started under the shim through
the real wrapper, the load client, and bounded waits on readiness signals
(the pid file the shim writes once the server accepts, process exit)."""

import os
import re
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
WRAPPER = os.path.join(ROOT, "scripts", "hotrestart")
LOADCLIENT = os.path.join(BUILD, "loadclient")
# Every wait scales with this, for slow or sanitized runs.
SCALE = float(os.environ.get("HOTRESTART_TEST_SCALE", "1"))


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def server_bin(name):
    return os.path.join(BUILD, "servers", name)


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls predicate until true; a bounded wait on an observable state."""
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TestFailure("timed out after %.1f s waiting for %s" % (timeout * SCALE, what))


def free_port(family=socket.AF_INET):
    """A port that was free a moment ago, from a range we own."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_range(n):
    """n consecutive ports that were free a moment ago, below the kernel's
    ephemeral range (where free_port's and the clients' ports come from)."""
    import random
    for _ in range(50):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise TestFailure("no %d consecutive free ports" % n)


def pid_alive(pid):
    """Alive and not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None
    except FileNotFoundError:
        return None


def proc_children(pid):
    """Direct children of pid, with their state letter."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return out


def descendants(pid):
    """Every process below pid in the process tree."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def count_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


class Env:
    """Where things are and how servers are preloaded (plain or sanitized)."""

    def __init__(self, lib, sanitized=False):
        self.lib = os.path.abspath(lib)
        self.sanitized = sanitized
        self.tmp = tempfile.mkdtemp(prefix="hotrestart-it-")
        os.chmod(self.tmp, 0o755)  # daemons' workers run as another user
        self.servers = []

    def preload_env(self, extra=None):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env["HOTRESTART_LIBRARY"] = self.lib
        if self.sanitized:
            # The sanitizer runtimes must come first in the preload list.
            runtimes = []
            for name in ("libasan.so", "libubsan.so"):
                path = subprocess.run(["gcc", "-print-file-name=" + name],
                                      capture_output=True, text=True).stdout.strip()
                runtimes.append(os.path.realpath(path))
            env["LD_PRELOAD"] = ":".join(runtimes)
            env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0:abort_on_error=0"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=0"
        env.update(extra or {})
        return env

    def path(self, name):
        return os.path.join(self.tmp, name)

    def cleanup(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Server:
    """A server run as `hotrestart run --pidfile P -- cmd`, in its own session
    so every generation it starts can be found and killed at the end."""

    def __init__(self, env, name, cmd, drain_timeout=10, ready_timeout=10, extra_env=None,
                 cwd=None, run_args=(), app_log=None):
        pidfile = env.path(name + ".pid")
        args = [WRAPPER, "run", "--pidfile", pidfile, "--drain-timeout", str(drain_timeout),
                "--ready-timeout", str(ready_timeout)] + list(run_args) + ["--"] + list(cmd)
        self.launch(env, name, args, env.preload_env(extra_env), pidfile, cwd, app_log)

    def launch(self, env, name, argv, penv, pidfile, cwd=None, app_log=None):
        """Starts argv as given (the constructor goes through the wrapper;
        tests of other launchers call this on Server.__new__(Server))."""
        self.env = env
        self.name = name
        self.pidfile = pidfile
        self.log = env.path(name + ".log")
        self.app_log = app_log  # where the app redirects stderr (nginx's error_log)
        self.known = set()
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=penv,
                                         cwd=cwd or env.tmp, start_new_session=True)
        self.known.add(self.proc.pid)
        env.servers.append(self)
        return self

    def wait_ready(self, timeout=15):
        """Waits for the pid file; returns the live generation's main PID."""
        def ready():
            pid = read_pid(self.pidfile)
            return pid if pid and pid_alive(pid) else None
        pid = wait_for(ready, timeout, "%s to write its pid file (log: %s)" %
                       (self.name, self.tail()))
        self.known.add(pid)
        main = self.pid
        if main:
            self.known.add(main)
        return main or pid

    def connections(self):
        """Open connections the service reports, asked on its control socket
        directly: a wait on it must not spend its time starting wrappers."""
        info = control_status(read_pid(self.pidfile) or 0)
        return info.get("connections", 0) if info else 0

    @property
    def keeper(self):
        """The service's PID: what the pid file names (the keeper's)."""
        return read_pid(self.pidfile)

    @property
    def pid(self):
        """The live generation's main PID (the pid file's own PID for a
        server run without a keeper)."""
        keeper = read_pid(self.pidfile)
        if not keeper:
            return None
        info = control_status(keeper)
        if info is None:
            return keeper if pid_alive(keeper) else None
        return int(info.get("main_pid") or keeper)

    def tail(self, lines=15):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_text(self):
        text = b""
        for path in filter(None, (self.log, self.app_log)):
            try:
                with open(path, "rb") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text.decode(errors="replace")

    def restart(self, timeout=30):
        """Runs `hotrestart restart`; returns (exit status, stdout, stderr)."""
        r = subprocess.run([WRAPPER, "restart", "--pidfile", self.pidfile, "--timeout",
                            str(timeout * SCALE)], capture_output=True, text=True,
                           timeout=timeout * SCALE + 10, env=self.env.preload_env())
        m = re.search(r"new pid (\d+)", r.stdout)
        if m:
            self.known.add(int(m.group(1)))
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def restart_ok(self, timeout=30):
        old = self.pid
        rc, out, err = self.restart(timeout)
        check(rc == 0, "restart of %s failed (%d): %s %s\nlog:\n%s" %
              (self.name, rc, out, err, self.tail()))
        m = re.search(r"new pid (\d+), handover ([0-9.]+) ms", out)
        check(m, "unexpected restart output: %r" % out)
        new = int(m.group(1))
        check(new != old, "restart kept pid %s" % old)
        check(self.pid == new, "pid file says %s, restart said %s" % (self.pid, new))
        check(pid_alive(new), "new pid %d is not running" % new)
        return old, new, float(m.group(2))

    def stop(self, timeout=30):
        return subprocess.run([WRAPPER, "stop", "--pidfile", self.pidfile, "--timeout",
                               str(timeout * SCALE)], capture_output=True, text=True,
                              timeout=timeout * SCALE + 10, env=self.env.preload_env())

    def wait_gone(self, pid, timeout):
        wait_for(lambda: not pid_alive(pid), timeout, "pid %d to exit" % pid)

    def kill(self):
        keeper = read_pid(self.pidfile)
        for pid in descendants(keeper) if keeper else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in list(self.known) + [keeper or 0]:
            if pid > 0:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Load:
    """The load client in the background; result() parses its summary."""

    def __init__(self, duration, port=None, host="127.0.0.1", unix=None, connections=8,
                 keepalive=False, path="/", extra=()):
        args = [LOADCLIENT, "--duration", str(duration), "--connections", str(connections),
                "--path", path, "--timeout-ms", str(int(5000 * SCALE))]
        if unix:
            args += ["--unix", unix]
        else:
            args += ["--host", host, "--port", str(port)]
        if keepalive:
            args.append("--keepalive")
        args += list(extra)
        self.duration = duration
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def finish(self, at):
        """Ends the load at monotonic time `at` (it prints its summary on
        SIGTERM) and returns its result: a load sized for the schedule
        would end early whenever a slow machine delays a restart."""
        time.sleep(max(0.0, at - time.monotonic()))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.result()

    def result(self):
        out, err = self.proc.communicate(timeout=self.duration + 30 * SCALE)
        line = out.strip().splitlines()[-1] if out.strip() else ""
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        check("ok" in fields, "load client printed no summary: %r %r" % (out, err))
        res = {k: (float(v) if "." in v else int(v)) for k, v in fields.items()
               if k != "pids"}
        res["pids"] = [int(p) for p in fields.get("pids", "").split(",") if p]
        res["stderr"] = err
        return res


class OpenLoad:
    """The load client, run until stopped (SIGTERM ends it with its summary):
    for tests whose schedule has no fixed length."""

    def __init__(self, **spec):
        self.load = Load(600, **spec)

    def running(self):
        return self.load.proc.poll() is None

    def stop(self):
        return self.load.finish(0)


ERROR_KINDS = ("refused", "reset", "timeout", "bad", "other")


def check_no_errors(res, what):
    errors = {k: res[k] for k in ERROR_KINDS if res[k]}
    check(res["ok"] > 0, "%s: no successful request at all (%s) %s" %
          (what, errors, res["stderr"][:300]))
    check(not errors, "%s: client-visible errors %s (ok=%d) %s" %
          (what, errors, res["ok"], res["stderr"][:300]))


def http_get(port, path="/", host="127.0.0.1", timeout=10):
    """One request on a fresh connection; returns (status, headers, body)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout * SCALE)
        s.connect((host, port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def deploy(src, dest):
    """Installs a binary by rename, as deploys do (never over the running file)."""
    tmp = dest + ".new"
    shutil.copy(src, tmp)
    os.replace(tmp, dest)


def control_request(name, line, timeout):
    """One command line on the control socket called name (abstract); the
    answer up to its first newline. Raises OSError when nothing listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(name)
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def keeper_request(keeper, line, timeout):
    """One command on a keeper's control socket; its one-line answer."""
    return control_request("\0hotrestart-keeper.%d.%d" % (os.stat("/proc/self/ns/pid").st_ino,
                                                          keeper), line, timeout)


def control_status(pid):
    """The status object straight from a control socket (no wrapper process:
    cheap enough to ask under load), or None when nothing answers."""
    ns = os.stat("/proc/self/ns/pid").st_ino
    for name in ("\0hotrestart-keeper.%d.%d" % (ns, pid), "\0hotrestart-ctl.%d.%d" % (ns, pid)):
        try:
            data = control_request(name, "status", 10 * SCALE)
        except (ConnectionRefusedError, FileNotFoundError):
            continue
        try:
            return json.loads(data)
        except ValueError:
            return None
    return None


def status_json(target):
    """`hotrestart status --json` for a pid (int) or a pid file (str)."""
    args = ["status", "--json"] + (["--pidfile", target] if isinstance(target, str)
                                   else [str(target)])
    r = subprocess.run([WRAPPER] + args, capture_output=True, text=True, timeout=10 * SCALE + 10)
    check(r.returncode == 0, "status %s failed (%d): %s" % (target, r.returncode, r.stderr))
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise TestFailure("status --json printed no JSON (%s): %r" % (e, r.stdout))


def start_slow_request(port):
    """A /slow request (answered after 2 s) in a thread; result["r"] is
    http_get's answer, or (0, {}, error) if the connection failed."""
    result = {}

    def run():
        try:
            result["r"] = http_get(port, "/slow")
        except OSError as e:
            result["r"] = (0, {}, str(e).encode())
    t = threading.Thread(target=run)
    t.start()
    return t, result


def stat_cpu_s(path):
    """CPU seconds (user + system) in a /proc stat file."""
    with open(path) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def held_slow_request(port, connections, limit_s=5):
    """A /slow request, returned as start_slow_request's (thread, result)
    once connections() counted it held. A count can come back later than
    the request's 2 s on a loaded machine: one answered before it was seen
    held is sent again (three tries)."""
    for _ in range(3):
        thread, result = start_slow_request(port)
        wait_for(lambda: "r" in result or connections() >= 1, limit_s,
                 "the slow request to be accepted")
        if "r" not in result:
            return thread, result
        thread.join(5)
    raise TestFailure("the server was never seen holding a slow request")
