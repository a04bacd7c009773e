"""The keeper (issue 12): one stable service identity. `hotrestart run` stays
the service's process for its whole life and starts every generation, so
containers (PID 1 of a PID namespace, tini), supervisors (supervisord, runit)
and servers that drop privileges or signal their process group keep working
across hot restarts.

The contract these tests drive (from the issue):
- `hotrestart run [--pidfile F] ... -- CMD` keeps its PID for the service's
  life; that PID is in F (written once the first generation is ready) and does
  not change across restarts.
- `kill -USR2 $(cat F)` restarts; `kill -TERM $(cat F)` drains and stops, and
  the keeper then exits 0.
- `hotrestart restart --pidfile F` exits 0 printing `restarted: new pid N,
  handover X ms`, N the new generation's main PID; on failure non-zero and a
  one-line reason.
- `hotrestart status --pidfile F --json` has the keys pid (= keeper_pid),
  keeper_pid, generation, main_pid, listeners, connections, upgrading, stopping.
- `hotrestart stop --pidfile F` drains, stops, waits for the keeper's exit and
  removes F.

Every process a test starts carries a unique marker in its environment
(HOTRESTART_TEST_SERVICE), inherited by the keeper and every generation: that
is how "nothing is left" is checked and how cleanup finds what to kill, even
processes that changed session, process group or user."""

import json
import os
import random
import re
import signal
import subprocess
import time
import uuid

from harness import (ERROR_KINDS, ROOT, WRAPPER, Load, Server, TestFailure, check,
                     check_no_errors, free_port, free_port_range, http_get, pid_alive,
                     proc_children, read_pid, server_bin, held_slow_request, wait_for, SCALE)

TAG = "HOTRESTART_TEST_SERVICE"
STATUS_KEYS = ("pid", "keeper_pid", "generation", "main_pid", "listeners", "connections",
               "upgrading", "stopping")
RESTARTED = re.compile(r"restarted: new pid (\d+), handover ([0-9.]+) ms")
LOG_LINES_PER_RESTART = 15
NOBODY = 65534
GO_SOURCE = os.path.join(ROOT, "tests", "go", "httpserver")
# The likely causes the keeper must name when it sees no listener.
STATIC_CAUSE = re.compile(r"static|raw (system )?call|raw syscall", re.I)


# ---- processes, seen from the host through /proc ----

def proc_fields(pid):
    """Fields of /proc/PID/stat after the command name (state is [0]), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def ppid_of(pid):
    f = proc_fields(pid)
    return int(f[1]) if f else None


def start_time(pid):
    """Field 22 of /proc/PID/stat: with the pid, identifies a process."""
    f = proc_fields(pid)
    return int(f[19]) if f else None


def exists(pid, start):
    """The process (pid, start time) still exists, zombie or not."""
    return start is not None and start_time(pid) == start


def all_pids():
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def descendants(pid):
    """pid's children, grandchildren... (a snapshot)."""
    parent = {}
    for p in all_pids():
        pp = ppid_of(p)
        if pp is not None:
            parent[p] = pp
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [p for p, pp in parent.items() if pp == cur]
        out += kids
        todo += kids
    return out


def tagged(tag):
    """Live processes whose environment carries this test's marker."""
    needle = ("%s=%s\0" % (TAG, tag)).encode()
    out = []
    for p in all_pids():
        try:
            with open("/proc/%d/environ" % p, "rb") as f:
                if needle in f.read() and pid_alive(p):
                    out.append(p)
        except OSError:
            pass
    return out


def pidns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:  # gone, or not ours to look at
        return None


def ns_members(ns):
    """Host PIDs of the live processes of a PID namespace."""
    return sorted(p for p in all_pids() if pidns(p) == ns and pid_alive(p))


def ns_local_pid(pid):
    """The PID a process has in its own (innermost) PID namespace."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        pass
    return None


def host_pid(ns, local):
    """Host PID of the process that is `local` inside namespace ns, or None."""
    if not local:
        return None
    for p in all_pids():
        if pidns(p) == ns and ns_local_pid(p) == local:
            return p
    return None


def uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


# ---- the service under test ----

class Service:
    """Any launcher's argv (the wrapper, unshare, tini, supervisord, runsv),
    run in its own session with the test marker in its environment. Has what
    run.py and Env.cleanup use: name, log_text(), tail(), kill()."""

    def __init__(self, env, name, argv, extra_env=None, cwd=None):
        self.env = env
        self.name = name
        self.tag = "%s.%s" % (re.sub(r"\W", "_", name), uuid.uuid4().hex[:12])
        self.log = env.path(name + ".log")
        self.extra_logs = []
        penv = env.preload_env(extra_env)
        penv[TAG] = self.tag
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=penv,
                                         cwd=cwd or env.tmp, start_new_session=True)
        env.servers.append(self)

    def log_text(self):
        text = b""
        for path in [self.log] + self.extra_logs:
            try:
                with open(path, "rb") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text.decode(errors="replace")

    def own_log_lines(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def tail(self, lines=15):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def members(self, exclude=()):
        return [p for p in tagged(self.tag) if p not in exclude]

    def wait_exit(self, timeout, what=None):
        try:
            return self.proc.wait(timeout=timeout * SCALE)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s still running %.0f s later (log:\n%s)" %
                              (what or self.name, timeout * SCALE, self.tail()))

    def kill(self):
        # A whole PID namespace dies with its init; anything else is found by
        # its marker, whatever session, group or user it moved to.
        for _ in range(50):
            pids = self.members()
            if self.proc.poll() is None:
                pids.append(self.proc.pid)
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def keeper_argv(pidfile, cmd, drain=10, ready=10, run_args=()):
    return [WRAPPER, "run", "--pidfile", pidfile, "--drain-timeout", str(drain),
            "--ready-timeout", str(ready)] + list(run_args) + ["--"] + list(cmd)


def hotrestart(env, args, timeout=30, ns_target=None):
    """Runs the wrapper with args; inside the PID and mount namespaces of the
    host process ns_target when given (as `docker exec` would)."""
    argv = [WRAPPER] + list(args)
    if ns_target:
        argv = ["nsenter", "--target", str(ns_target), "--pid", "--mount", "--"] + argv
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env.preload_env(),
                              timeout=timeout * SCALE + 15)
    except subprocess.TimeoutExpired:
        raise TestFailure("`%s` did not return within %.0f s" %
                          (" ".join(argv), timeout * SCALE + 15))


class Target:
    """How a test reaches one service: its pid file, the keeper's host PID,
    and, for a service in its own PID namespace, that namespace (status and
    pid file then hold namespace-local PIDs; the wrapper runs inside it)."""

    def __init__(self, env, svc, pidfile, keeper, ns=None):
        self.env, self.svc, self.pidfile, self.keeper, self.ns = env, svc, pidfile, keeper, ns
        self.local_keeper = ns_local_pid(keeper) if ns else keeper
        self.usr2_pid = None

    def host(self, local):
        return host_pid(self.ns, local) if self.ns else local

    def run(self, args, timeout=30):
        return hotrestart(self.env, args, timeout, self.keeper if self.ns else None)

    def status_try(self):
        r = self.run(["status", "--pidfile", self.pidfile, "--json"], 10)
        if r.returncode != 0:
            return None
        try:
            st = json.loads(r.stdout)
        except ValueError:
            return None
        return st if isinstance(st, dict) else None

    def status(self):
        r = self.run(["status", "--pidfile", self.pidfile, "--json"], 10)
        check(r.returncode == 0, "status --pidfile %s exited %d: %s %s\nlog:\n%s" %
              (self.pidfile, r.returncode, r.stdout.strip(), r.stderr.strip(), self.svc.tail()))
        try:
            st = json.loads(r.stdout)
        except ValueError as e:
            raise TestFailure("status --json printed no JSON (%s): %r" % (e, r.stdout))
        return self.validate(st)

    def validate(self, st):
        missing = [k for k in STATUS_KEYS if k not in st]
        check(not missing, "status --json lacks %s: %s" % (missing, json.dumps(st)))
        check(st["pid"] == st["keeper_pid"] == self.local_keeper,
              "status pid %r / keeper_pid %r, the keeper is %d" %
              (st["pid"], st["keeper_pid"], self.local_keeper))
        return st

    def check_identity(self):
        check(pid_alive(self.keeper), "the keeper %d is gone:\n%s" % (self.keeper, self.svc.tail()))
        check(read_pid(self.pidfile) == self.local_keeper,
              "the pid file says %s, the keeper is %d" % (read_pid(self.pidfile),
                                                         self.local_keeper))

    def restart(self, timeout=30):
        r = self.run(["restart", "--pidfile", self.pidfile, "--timeout", str(timeout * SCALE)],
                     timeout)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def restart_ok(self):
        rc, out, err = self.restart()
        check(rc == 0, "restart exited %d: %s %s\nlog:\n%s" % (rc, out, err, self.svc.tail()))
        m = RESTARTED.fullmatch(out)
        check(m, "unexpected restart output: %r" % out)
        return int(m.group(1)), float(m.group(2))

    def wait_generation(self, after, what, timeout=20):
        """A status whose live generation is newer than `after`'s, whose main
        process exists, and with no upgrade under way."""
        def newer():
            st = self.status_try()
            if not st or st.get("upgrading") or not st.get("main_pid"):
                return None
            if st.get("generation", 0) <= after["generation"]:
                return None
            main = self.host(st["main_pid"])
            return st if main and pid_alive(main) else None
        return self.validate(wait_for(newer, timeout, what + " (log:\n%s)" % self.svc.tail(),
                                      interval=0.1))


def wait_keeper_pidfile(svc, pidfile, timeout=15):
    return wait_for(lambda: read_pid(pidfile), timeout, "%s to write %s (log:\n%s)" %
                    (svc.name, pidfile, svc.tail()))


def generation_members(main):
    """(pid, start time) of a generation's main process and its descendants."""
    return [(p, start_time(p)) for p in [main] + descendants(main)]


def serves_from(port, pids, timeout=5):
    """Waits until a fresh connection is answered by one of pids (X-Pid);
    returns the answering pid."""
    def answered():
        try:
            status, headers, _ = http_get(port, timeout=2)
        except OSError:
            return None
        who = int(headers.get("x-pid", "0") or 0)
        return who if status == 200 and (who in pids) else None
    return wait_for(answered, timeout, "port %d to be served by %s" % (port, sorted(pids)))


def restarts_under_load(t, port, count, gap=1.0, prefork=False, after_each=None):
    """count restarts of target t under load, `gap` s of load before each and
    after the last, alternating `hotrestart restart --pidfile F` and
    `kill -USR2 $(cat F)` (for a container: USR2 from the host to its init).
    Each: the generation number grows by one, the keeper and the pid file
    stay, the new main process serves, the old generation exits. Returns the
    load result and the last status."""
    load = Load(120, port=port)  # ended below, once the restarts are done
    try:
        st = restart_steps(t, port, count, gap, prefork, after_each)
    finally:
        ended_early = load.proc.poll() is not None
        if not ended_early:
            load.proc.terminate()
    res = load.result()
    check(not ended_early, "the load client ended before the restarts did: %s" % res)
    check_no_errors(res, "load across %d restarts" % count)
    return res, st


def restart_steps(t, port, count, gap, prefork, after_each):
    st = t.status()
    for i in range(count):
        time.sleep(gap)  # a schedule: each restart lands inside the load
        before = st
        old_main = t.host(before["main_pid"])
        check(old_main and pid_alive(old_main), "generation %s main pid %s not running" %
              (before["generation"], before["main_pid"]))
        old = generation_members(old_main)
        how = "restart" if i % 2 == 0 else "USR2"
        if how == "restart":
            new_local, _ms = t.restart_ok()
            st = t.status()
            check(st["main_pid"] == new_local, "restart said new pid %d, status says main_pid %s"
                  % (new_local, st["main_pid"]))
        else:
            # kill -USR2 $(cat F); from the host to the namespace's init for a container
            os.kill(t.usr2_pid or read_pid(t.pidfile), signal.SIGUSR2)
            st = t.wait_generation(before, "the USR2 restart %d" % (i + 1))
        check(st["generation"] == before["generation"] + 1,
              "%s %d: generation %s -> %s" % (how, i + 1, before["generation"], st["generation"]))
        t.check_identity()
        new_main = t.host(st["main_pid"])
        check(new_main and pid_alive(new_main), "new main pid %s is not running" % st["main_pid"])
        ok_pids = {st["main_pid"]}
        if prefork:
            ok_pids |= {ns_local_pid(p) if t.ns else p for p, _ in proc_children(new_main)}
        serves_from(port, ok_pids)
        try:
            wait_for(lambda: not [p for p, s in old if exists(p, s)], 16, "")
        except TestFailure:
            raise TestFailure("generation %s: %s still there 16 s after %s %d\n%s" %
                              (before["generation"], [p for p, s in old if exists(p, s)], how,
                               i + 1, t.svc.tail()))
        if after_each:
            after_each(i, st)
    time.sleep(gap)
    return st


def stop_gracefully_with_slow_request(t, port, stop, what):
    """Starts a /slow request, waits until the live generation holds it, runs
    stop(), and checks the request completed on the live generation."""
    last = t.status()
    thread, result = held_slow_request(port, lambda: (t.status_try() or {}).get("connections", 0))
    stop()
    thread.join(15 * SCALE)
    r = result.get("r", (0, {}, b"no answer"))
    check(r[0] == 200, "%s: the in-flight request got %r" % (what, r))
    check(r[1].get("x-pid") == str(last["main_pid"]),
          "%s: the in-flight request was answered by %s, not the live generation %s" %
          (what, r[1].get("x-pid"), last["main_pid"]))


def check_quiet(svc, restarts):
    lines = svc.own_log_lines()
    limit = LOG_LINES_PER_RESTART * (restarts + 1)
    check(len(lines) <= limit, "%d log lines for %d restarts (limit %d); last lines:\n%s" %
          (len(lines), restarts, limit, "\n".join(lines[-20:])))
    return len(lines)


# ---- 1, 2: PID 1 of a PID namespace, alone or under tini ----

def container_case(tini):
    def test(env):
        port = free_port()
        pidfile = env.path("svc.pid")
        inner = keeper_argv(pidfile, [server_bin("epoll_lt"), "--port", str(port)], drain=10)
        # --kill-child: if unshare itself is killed, so is the namespace (cleanup only).
        argv = (["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] +
                (["tini", "--"] if tini else []) + inner)
        svc = Service(env, "tini" if tini else "pid1", argv)
        init = wait_for(lambda: (proc_children(svc.proc.pid) or [(None,)])[0][0], 5,
                        "unshare to fork the namespace's init")
        ns = pidns(init)
        check(ns and ns != pidns(os.getpid()), "unshare made no PID namespace")
        local = wait_keeper_pidfile(svc, pidfile)
        keeper = host_pid(ns, local)
        check(keeper, "the pid file names %d, no process of the namespace has that pid" % local)
        if tini:
            check(ppid_of(keeper) == init and local != 1,
                  "the keeper %d (local %d) is not tini's (%d) child" % (keeper, local, init))
        else:
            check(keeper == init and local == 1,
                  "the pid file names %d (host %d), the namespace's init is %d (host %d)" %
                  (local, keeper, ns_local_pid(init), init))
        t = Target(env, svc, pidfile, keeper, ns)
        t.usr2_pid = init  # from the host, to the namespace's init (docker kill -s USR2)
        first = t.status()
        check(any((":%d" % port) in str(ls.get("address", "")) for ls in first["listeners"]),
              "status listeners %r do not include port %d" % (first["listeners"], port))
        fixed = {init, keeper}

        def only_live_generation(i, st):
            main = t.host(st["main_pid"])
            want = fixed | set([main] + descendants(main))
            try:
                wait_for(lambda: set(ns_members(ns)) == want, 10, "the namespace")
            except TestFailure:
                raise TestFailure("after restart %d the namespace holds %s, want only init, "
                                  "keeper and the live generation %s" %
                                  (i + 1, ns_members(ns), sorted(want)))

        res, _ = restarts_under_load(t, port, 5, after_each=only_live_generation)
        check(ns_local_pid(keeper) == local and read_pid(pidfile) == local,
              "the keeper's identity changed")

        def term():
            os.kill(init, signal.SIGTERM)
        stop_gracefully_with_slow_request(t, port, term, "TERM to the namespace's init")
        rc = svc.wait_exit(25, "the namespace's init after TERM")
        check(rc == 0, "unshare exited %s after TERM to init: the stop was not graceful "
              "(143 / -15: killed by the signal)\n%s" % (rc, svc.tail()))
        check(not ns_members(ns), "processes left in the namespace: %s" % ns_members(ns))
        check(not svc.members(), "processes left: %s" % svc.members())
        check(not os.path.exists(pidfile), "pid file left behind after a graceful stop")
        lines = check_quiet(svc, 5)
        return dict(res, server="epoll_lt as %s, %d log lines" %
                    ("tini -- keeper in a PID ns" if tini else "PID 1 of a PID ns", lines),
                    restarts=5, exit_ms=None)
    return test


# ---- 3: supervisord ----

def supervisord_conf(env, command, stopwaitsecs=30):
    conf = env.path("supervisord.conf")
    with open(conf, "w") as f:
        f.write("""[unix_http_server]
file={tmp}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
user=root
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock

[program:x]
command={command}
stopsignal=TERM
stopwaitsecs={stopwait}
startsecs=1
redirect_stderr=true
stdout_logfile={tmp}/x.log
stdout_logfile_maxbytes=0
""".format(tmp=env.tmp, command=" ".join(command), stopwait=stopwaitsecs))
    return conf


def supervisorctl(conf, *args, timeout=60):
    try:
        return subprocess.run(["supervisorctl", "-c", conf] + list(args), capture_output=True,
                              text=True, timeout=timeout * SCALE + 10)
    except subprocess.TimeoutExpired:
        raise TestFailure("supervisorctl %s did not return" % " ".join(args))


def supervisor_state(conf):
    """(state, pid or None) of program x as supervisorctl status shows it."""
    out = supervisorctl(conf, "status", "x", timeout=10).stdout
    m = re.search(r"^x\s+([A-Z]+)(?:\s+pid (\d+))?", out, re.M)
    return (m.group(1), int(m.group(2)) if m.group(2) else None) if m else (out.strip(), None)


def start_supervisord(env, command):
    conf = supervisord_conf(env, command)
    sup = Service(env, "supervisord", ["supervisord", "-n", "-c", conf])
    sup.extra_logs.append(env.path("x.log"))  # supervisord -n copies its log to stdout
    state = wait_for(lambda: supervisor_state(conf)[0] == "RUNNING" and supervisor_state(conf),
                     15, "supervisord to report x RUNNING (log:\n%s)" % sup.tail())
    return sup, conf, state[1]


def stop_supervisord(sup):
    os.kill(sup.proc.pid, signal.SIGTERM)
    sup.wait_exit(15, "supervisord after TERM")


def test_supervisord(env):
    port = free_port()
    pidfile = env.path("x.pid")
    sup, conf, pid = start_supervisord(env, keeper_argv(
        pidfile, [server_bin("epoll_lt"), "--port", str(port)], drain=10))
    local = wait_keeper_pidfile(sup, pidfile)
    check(local == pid, "the pid file says %d, supervisord runs pid %d" % (local, pid))
    t = Target(env, sup, pidfile, pid)
    seen = []

    def still_running(i, st):
        state = supervisor_state(conf)
        seen.append(state)
        check(state == ("RUNNING", pid), "after restart %d supervisorctl says %s, want RUNNING "
              "pid %d" % (i + 1, state, pid))

    res, _ = restarts_under_load(t, port, 5, after_each=still_running)

    def stop():
        r = supervisorctl(conf, "stop", "x")
        check(r.returncode == 0 and "x: stopped" in r.stdout,
              "supervisorctl stop x: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    stop_gracefully_with_slow_request(t, port, stop, "supervisorctl stop")
    check(supervisor_state(conf)[0] == "STOPPED", "after stop: %s" % (supervisor_state(conf),))
    with open(env.path("supervisord.log")) as f:
        log = f.read()
    check("stopped: x (exit status 0)" in log,
          "supervisord did not see a graceful exit: %s" %
          re.findall(r".*stopped: x.*", log))
    # (supervisord -n may write each line of its log file twice)
    spawned = set(re.findall(r"spawned: 'x' with pid (\d+)", log))
    check(spawned == {str(pid)}, "supervisord spawned x as %s" % sorted(spawned))
    check(not os.path.exists(pidfile), "pid file left behind")
    left = sup.members(exclude={sup.proc.pid})
    check(not left, "processes left after supervisorctl stop: %s" % left)
    stop_supervisord(sup)
    check(not sup.members(), "processes left: %s" % sup.members())
    return dict(res, server="epoll_lt under supervisord: %s before, %s after the restarts" %
                ("RUNNING pid %d" % pid, " ".join("%s pid %s" % s for s in sorted(set(seen)))),
                restarts=5, exit_ms=None)


# ---- 4: runit ----

def runit_service(env, command):
    d = env.path("sv-x")
    os.makedirs(d)
    with open(os.path.join(d, "run"), "w") as f:
        f.write("#!/bin/sh\necho run >> %s\nexec 2>&1\nexec %s\n" %
                (env.path("runit-runs"), " ".join(command)))
    with open(os.path.join(d, "finish"), "w") as f:
        # runsv passes ./run's exit code (-1 if killed) and the signal number
        f.write('#!/bin/sh\necho "$1 $2" >> %s\n' % env.path("runit-finish"))
    for name in ("run", "finish"):
        os.chmod(os.path.join(d, name), 0o755)
    runsv = Service(env, "runsv", ["runsv", d])
    return runsv, d


def sv(d, *args, timeout=40):
    try:
        return subprocess.run(["sv"] + list(args) + [d], capture_output=True, text=True,
                              timeout=timeout * SCALE + 10)
    except subprocess.TimeoutExpired:
        raise TestFailure("sv %s did not return" % " ".join(args))


def runit_state(d):
    out = sv(d, "status", timeout=10).stdout
    m = re.match(r"(\w+): [^ ]*: (?:\(pid (\d+)\))?", out)
    return (m.group(1), int(m.group(2)) if m.group(2) else None) if m else (out.strip(), None)


def stop_runsv(runsv, d):
    sv(d, "exit", timeout=10)
    runsv.wait_exit(15, "runsv after sv exit")


def test_runit(env):
    port = free_port()
    pidfile = env.path("x.pid")
    runsv, d = runit_service(env, keeper_argv(pidfile, [server_bin("epoll_lt"), "--port",
                                                        str(port)], drain=10))
    state = wait_for(lambda: runit_state(d)[0] == "run" and runit_state(d), 15,
                     "runsv to run the service (log:\n%s)" % runsv.tail())
    pid = state[1]
    local = wait_keeper_pidfile(runsv, pidfile)
    check(local == pid, "the pid file says %d, sv status says pid %d" % (local, pid))
    t = Target(env, runsv, pidfile, pid)

    seen = []

    def still_up(i, st):
        state = runit_state(d)
        seen.append(state)
        check(state == ("run", pid), "after restart %d sv status says %s, want run pid %d" %
              (i + 1, state, pid))

    res, _ = restarts_under_load(t, port, 5, after_each=still_up)

    def stop():
        r = sv(d, "-w", "30", "stop")
        check(r.returncode == 0 and r.stdout.startswith("ok: down:"),
              "sv stop: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    stop_gracefully_with_slow_request(t, port, stop, "sv stop")
    check(runit_state(d)[0] == "down", "after sv stop: %s" % (runit_state(d),))
    finish = wait_for(lambda: os.path.exists(env.path("runit-finish")) and
                      open(env.path("runit-finish")).read().strip(), 5, "runsv to run ./finish")
    check(finish == "0 0", "./run ended with (exit code, signal) %r, want '0 0'" % finish)
    runs = open(env.path("runit-runs")).read().split()
    check(len(runs) == 1, "runsv started ./run %d times" % len(runs))
    check(not os.path.exists(pidfile), "pid file left behind")
    left = runsv.members(exclude={runsv.proc.pid})
    check(not left, "processes left after sv stop: %s" % left)
    stop_runsv(runsv, d)
    check(not runsv.members(), "processes left: %s" % runsv.members())
    return dict(res, server="epoll_lt under runsv: %s before, %s after the restarts" %
                ("run pid %d" % pid, " ".join("%s pid %s" % s for s in sorted(set(seen)))),
                restarts=5, exit_ms=None)


# ---- plain keeper services (no supervisor) ----

def keeper_service(env, name, cmd, drain=10, ready=10, run_args=()):
    pidfile = env.path(name + ".pid")
    svc = Service(env, name, keeper_argv(pidfile, cmd, drain, ready, run_args))
    local = wait_keeper_pidfile(svc, pidfile)
    # `hotrestart run` keeps the PID it was started with: the one we started.
    check(local == svc.proc.pid, "the pid file says %d, `hotrestart run` is pid %d" %
          (local, svc.proc.pid))
    return svc, Target(env, svc, pidfile, svc.proc.pid)


def stop_ok(t):
    r = t.run(["stop", "--pidfile", t.pidfile, "--timeout", str(30 * SCALE)], 30)
    check(r.returncode == 0, "stop exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    check(not pid_alive(t.keeper), "the keeper %d still runs after stop returned" % t.keeper)
    check(not os.path.exists(t.pidfile), "stop left the pid file")
    rc = t.svc.wait_exit(5, "the keeper")
    check(rc == 0, "the keeper exited %s after a graceful stop" % rc)
    left = t.svc.members()
    check(not left, "processes left after stop: %s" % left)


# ---- 5: a server that starts as root and drops to nobody ----

def test_drop_privileges(env):
    port = free_port()
    private = env.path("root-only")
    os.mkdir(private, 0o700)
    app_pidfile = os.path.join(private, "app.pid")
    svc, t = keeper_service(env, "dropuid", [server_bin("dropuid"), "--port", str(port),
                                             "--pidfile", app_pidfile])
    check(uids(t.keeper) == [0, 0, 0, 0], "the keeper runs as %s, not root" % uids(t.keeper))

    def dropped_after_root_start(i, st):
        main = st["main_pid"]
        check(uids(main) == [NOBODY] * 4, "generation %s (pid %d) runs as %s, want nobody" %
              (st["generation"], main, uids(main)))
        check(read_pid(app_pidfile) == main,
              "generation %s did not write its root-owned pid file (it says %s)" %
              (st["generation"], read_pid(app_pidfile)))
        log = svc.log_text()
        check("dropuid: pid %d started as uid 0 euid 0" % main in log,
              "generation %s (pid %d) did not start as root:\n%s" %
              (st["generation"], main, svc.tail()))
        status, headers, body = http_get(port)
        check(body.decode().strip() == "pid %d dropuid uid=%d euid=%d started-uid=0" %
              (main, NOBODY, NOBODY), "answer %r" % body)

    dropped_after_root_start(-1, t.status())
    res, _ = restarts_under_load(t, port, 5, after_each=dropped_after_root_start)
    check("must be started as root" not in svc.log_text(),
          "a generation was started without root:\n%s" % svc.tail())
    stop_ok(t)
    return dict(res, server="dropuid (root, then nobody)", restarts=5, exit_ms=None)


# ---- 6: a prefork parent that signals its process group at shutdown ----

def test_pgrp_kill(env):
    port = free_port()
    svc, t = keeper_service(env, "pgkill", [server_bin("pgkill"), "--port", str(port),
                                            "--workers", "2"])
    def survives(i, st):
        main = st["main_pid"]
        workers = sorted(p for p, _ in proc_children(main))
        check(len(workers) == 2, "the new master %d has workers %s" % (main, workers))
        # restarts_under_load waited for the old generation's exit: its
        # kill(-pgrp, SIGTERM) has happened; the new one must be untouched.
        wait_for(lambda: svc.log_text().count("signalling process group") >= i + 1, 5,
                 "the old master's kill(-pgrp)")
        check(pid_alive(main), "the new master %d died with the old generation" % main)
        check(sorted(p for p, _ in proc_children(main)) == workers,
              "the new generation's workers changed after the old one's shutdown")
        serves_from(port, set(workers))

    res, _ = restarts_under_load(t, port, 3, prefork=True, after_each=survives)
    stop_ok(t)
    return dict(res, server="pgkill (kill(-pgrp) at shutdown)", restarts=3, exit_ms=None)


# ---- 7: a static Go server: the library sees no listener ----

def build_go_server(env):
    out = env.path("gohttp")
    genv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": env.path("gohome"),
            "GOCACHE": env.path("gocache"), "GOPATH": env.path("gopath"), "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    try:
        r = subprocess.run(["go", "build", "-o", out, "."], cwd=GO_SOURCE, env=genv,
                           capture_output=True, text=True, timeout=120 * SCALE)
    except FileNotFoundError:
        raise TestFailure("go not found (Debian package golang-go)")
    check(r.returncode == 0, "go build failed: %s" % r.stderr[-2000:])
    with open(out, "rb") as f:
        check(b"\x00.interp" not in f.read(), "the Go server is not a static binary")
    return out


def test_go_static(env):
    """A server the library cannot see, with the seccomp path turned off (as
    where seccomp notification is unavailable): the keeper says why once,
    restart fails with that reason, stop still stops it. (With seccomp,
    cases_seccomp restarts such servers.)"""
    exe = build_go_server(env)
    port = free_port()
    ready = 3
    pidfile = env.path("gohttp.pid")
    svc = Service(env, "gohttp", keeper_argv(pidfile, [exe, "-port", str(port)], ready=ready,
                                             run_args=["--no-seccomp"]))
    keeper = svc.proc.pid
    wait_for(lambda: _serves(port), 15, "the Go server to serve (log:\n%s)" % svc.tail())
    # The generation started before it served: the warning is due at most
    # the ready timeout from now (and a margin for a loaded machine).
    started = time.monotonic()

    def warnings():
        return [ln for ln in svc.own_log_lines()
                if not ln.startswith("gohttp:") and STATIC_CAUSE.search(ln)]
    wait_for(warnings, ready + 3, "the keeper's warning naming the likely cause (log:\n%s)" %
             svc.tail())
    took = time.monotonic() - started
    check(took <= (ready + 3) * SCALE, "the warning came %.1f s after start" % took)
    time.sleep(1.5)  # nothing signals "no repetition": look again a little later
    check(len(warnings()) == 1, "the warning was given %d times:\n%s" %
          (len(warnings()), "\n".join(warnings())))
    check(pid_alive(keeper) and _serves(port), "the server stopped serving after the warning")
    # The pid file is promised once the first generation is ready, which a
    # server the library cannot see never is: use it if written, else the PID.
    if os.path.exists(pidfile):
        check(read_pid(pidfile) == keeper, "the pid file says %s, the keeper is %d" %
              (read_pid(pidfile), keeper))
        target = ["--pidfile", pidfile]
    else:
        target = [str(keeper)]
    r = hotrestart(env, ["restart"] + target + ["--timeout", "20"], 20)
    reason = r.stderr.strip()
    check(r.returncode != 0, "restart of a server with no visible listener exited 0: %r" %
          r.stdout)
    check(STATIC_CAUSE.search(reason), "restart's reason does not name the cause: %r" % reason)
    check("\n" not in reason, "the reason is not one line: %r" % reason)
    check(pid_alive(keeper) and _serves(port), "the server stopped serving after restart")
    r = hotrestart(env, ["stop"] + target + ["--timeout", "20"], 20)
    check(r.returncode == 0, "stop exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    rc = svc.wait_exit(5, "the keeper after stop")
    check(rc == 0, "the keeper exited %s (the Go server exits 0 on TERM)" % rc)
    check(not svc.members(), "processes left after stop: %s" % svc.members())
    check(not os.path.exists(pidfile), "stop left the pid file")


def _serves(port):
    try:
        return http_get(port, timeout=1)[0] == 200
    except OSError:
        return False


# ---- 8: kill -9 of the new generation after the handover, and of the live one ----

def test_kill9_generations(env):
    port = free_port()
    svc, t = keeper_service(env, "kill9", [server_bin("epoll_lt"), "--port", str(port)])
    load = Load(120, port=port)  # ended a second after the last kill
    time.sleep(2)  # a schedule: the load runs before the first kill
    before = t.status()
    new, _ = t.restart_ok()
    os.kill(new, signal.SIGKILL)  # right after the handover
    after_restart = dict(before, generation=before["generation"] + 1)
    st = t.wait_generation(after_restart, "a generation to replace the killed successor")
    check(st["main_pid"] != new, "status still shows the killed pid %d" % new)
    t.check_identity()
    serves_from(port, {st["main_pid"]})
    time.sleep(random.uniform(1.0, 4.0))  # a random moment under load
    victim = st["main_pid"]
    os.kill(victim, signal.SIGKILL)
    st2 = t.wait_generation(st, "a generation to replace the killed live one (%d)" % victim)
    check(st2["main_pid"] != victim and pid_alive(st2["main_pid"]), "no live generation")
    t.check_identity()
    serves_from(port, {st2["main_pid"]})
    check(load.proc.poll() is None, "the load ended before the last kill")
    res = load.finish(time.monotonic() + 1)
    seen = {k: res[k] for k in ERROR_KINDS if res[k]}
    check(res["ok"] > 0 and res["refused"] == 0,
          "refused connections with the keeper holding the listeners: %s (ok=%d) %s" %
          (seen, res["ok"], res["stderr"][:300]))
    stop_ok(t)
    return dict(res, server="epoll_lt, kill -9 successor + live gen (only refused counts)",
                restarts=1, exit_ms=None)


# ---- 9: kill -9 of an old master during its drain ----

def test_kill9_old_master(env):
    port = free_port()
    svc, t = keeper_service(env, "prefork", [server_bin("prefork"), "--port", str(port),
                                             "--workers", "2"], drain=20)
    first = t.status()
    thread, result = held_slow_request(port, lambda: (t.status_try() or {}).get("connections", 0))
    old = generation_members(first["main_pid"])
    check(len(old) == 3, "the first generation is %s, want a master and 2 workers" % old)
    new, _ = t.restart_ok()
    os.kill(first["main_pid"], signal.SIGKILL)
    killed = time.monotonic()
    try:
        wait_for(lambda: not [p for p, s in old if exists(p, s)], 10,
                 "the old generation's processes to be gone")
    except TestFailure:
        raise TestFailure("10 s after kill -9 of the old master %d, left: %s\n%s" %
                          (first["main_pid"], [p for p, s in old if exists(p, s)], svc.tail()))
    gone_s = time.monotonic() - killed
    thread.join(10 * SCALE)
    slow = result.get("r", (0,))[0]
    check(pid_alive(new), "the new generation died")
    serves_from(port, {p for p, _ in proc_children(new)})
    stop_ok(t)
    return dict(ok=1, refused=0, reset=0, timeout=0, bad=0, other=0,
                server="prefork old master kill -9 mid-drain: gone in %.1f s, slow request %s"
                % (gone_s, slow), restarts=1, exit_ms=None)


# ---- 10: two services, each PID 1 of its own PID namespace, one network namespace ----

def test_two_namespaces(env):
    services = {}
    for name in ("a", "b"):
        port = free_port()
        os.mkdir(env.path(name))
        pidfile = os.path.join(env.path(name), "pid")
        argv = (["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] +
                keeper_argv(pidfile, [server_bin("epoll_lt"), "--port", str(port)]))
        svc = Service(env, "ns-" + name, argv)
        services[name] = (svc, pidfile, port)
    targets = {}
    for name, (svc, pidfile, port) in services.items():
        init = wait_for(lambda: (proc_children(svc.proc.pid) or [(None,)])[0][0], 5,
                        "unshare to fork")
        ns = pidns(init)
        local = wait_keeper_pidfile(svc, pidfile)
        check(local == 1, "service %s: the pid file says %d, not 1" % (name, local))
        t = Target(env, svc, pidfile, init, ns)
        t.port = port
        targets[name] = t
    check(targets["a"].ns != targets["b"].ns, "both services are in one PID namespace")

    def snapshot(t):
        st = t.status()
        ports = [ls.get("address", "") for ls in st["listeners"]]
        check(any(a.endswith(":%d" % t.port) for a in ports),
              "status via %s lists %s, not its own port %d" % (t.pidfile, ports, t.port))
        other = [o.port for o in targets.values() if o is not t][0]
        check(not any(a.endswith(":%d" % other) for a in ports),
              "status via %s lists the other service's port %d: %s" % (t.pidfile, other, ports))
        main = t.host(st["main_pid"])
        check(main and pid_alive(main), "%s: main_pid %s is not in its namespace" %
              (t.pidfile, st["main_pid"]))
        check(http_get(t.port)[1].get("x-pid") == str(st["main_pid"]),
              "%s: port %d is not served by main_pid %s" % (t.pidfile, t.port, st["main_pid"]))
        return st, main

    for name, other in (("a", "b"), ("b", "a")):
        t, o = targets[name], targets[other]
        st, main = snapshot(t)
        ost, omain = snapshot(o)
        new, _ = t.restart_ok()  # via nsenter into t's namespaces
        st2, main2 = snapshot(t)
        check(st2["generation"] == st["generation"] + 1 and st2["main_pid"] == new and
              main2 != main, "restart via %s did not restart its service (%s -> %s)" %
              (t.pidfile, st, st2))
        ost2, omain2 = snapshot(o)
        check(ost2["generation"] == ost["generation"] and omain2 == omain,
              "restart via %s changed the other service (%s -> %s)" % (t.pidfile, ost, ost2))
    # From outside: USR2 to b's init restarts b only.
    a0, amain0 = snapshot(targets["a"])
    b0, _ = snapshot(targets["b"])
    os.kill(targets["b"].keeper, signal.SIGUSR2)
    targets["b"].wait_generation(b0, "USR2 from the host to b's init")
    a1, amain1 = snapshot(targets["a"])
    check(a1["generation"] == a0["generation"] and amain1 == amain0,
          "USR2 to b's init changed a")
    # stop via a's namespace stops a only. The stop client runs inside the
    # namespace whose init is the keeper: when the keeper exits, the kernel
    # kills it too, so it may end by SIGKILL instead of returning 0.
    for name, other in (("a", "b"), ("b", None)):
        t = targets[name]
        r = t.run(["stop", "--pidfile", t.pidfile, "--timeout", str(30 * SCALE)], 30)
        check(r.returncode in (0, -9, 137), "stop via %s exited %d: %s %s" %
              (t.pidfile, r.returncode, r.stdout, r.stderr))
        rc = t.svc.wait_exit(10, "service %s after stop" % name)
        check(rc == 0, "service %s: unshare exited %s after stop" % (name, rc))
        check(not ns_members(t.ns), "processes left in %s's namespace" % name)
        check(not os.path.exists(t.pidfile), "stop left %s" % t.pidfile)
        if other:
            snapshot(targets[other])


# ---- checks of the set-up alone, without the keeper (`--only setup`) ----

def test_setup_supervisors(env):
    """supervisord, runsv, unshare/nsenter and go build work here, with a
    plain server and no hotrestart at all: what the keeper tests build on."""
    port = free_port()
    sup, conf, pid = start_supervisord(env, [server_bin("epoll_lt"), "--port", str(port)])
    wait_for(lambda: _serves(port), 5, "the server under supervisord")
    r = supervisorctl(conf, "stop", "x")
    check(r.returncode == 0 and "x: stopped" in r.stdout, "supervisorctl stop: %s" % r.stdout)
    check(not pid_alive(pid), "supervisorctl stop left the server")
    stop_supervisord(sup)
    check(not sup.members(), "left: %s" % sup.members())

    port = free_port()
    runsv, d = runit_service(env, [server_bin("epoll_lt"), "--port", str(port)])
    state = wait_for(lambda: runit_state(d)[0] == "run" and runit_state(d), 10, "runsv")
    wait_for(lambda: _serves(port), 5, "the server under runsv")
    r = sv(d, "-w", "10", "stop")
    check(r.returncode == 0 and r.stdout.startswith("ok: down:"), "sv stop: %s" % r.stdout)
    check(not pid_alive(state[1]), "sv stop left the server")
    stop_runsv(runsv, d)
    check(not runsv.members(), "left: %s" % runsv.members())

    port = free_port()
    svc = Service(env, "ns-plain", ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                                    "tini", "--", server_bin("epoll_lt"), "--port", str(port)])
    init = wait_for(lambda: (proc_children(svc.proc.pid) or [(None,)])[0][0], 5, "unshare")
    wait_for(lambda: _serves(port), 5, "the server in the namespace")
    r = hotrestart(env, ["--version"], 10, ns_target=init)
    check(r.returncode == 0, "the wrapper via nsenter: %s" % r.stderr)
    r = subprocess.run(["nsenter", "--target", str(init), "--pid", "--mount", "--", "cat",
                        "/proc/self/status"], capture_output=True, text=True, timeout=10)
    check(re.search(r"^NSpid:\s+\d+$", r.stdout, re.M) and ns_local_pid(init) == 1,
          "nsenter did not enter the namespace (its /proc)")
    os.kill(init, signal.SIGTERM)  # tini forwards it; epoll_lt dies of it
    rc = svc.wait_exit(10)
    check(rc in (143, -15, 0), "unshare exited %s" % rc)
    check(not svc.members(), "left: %s" % svc.members())
    build_go_server(env)


def test_many_listeners(env):
    """200 listeners, more than the keeper reads of the library's reports in
    one go: every one is taken as the library's (none as a static binary's
    the library never saw), and a restart hands every one over."""
    n = 200
    base = free_port_range(n)
    srv = Server(env, "many", [server_bin("many"), "--port", str(base), "--listeners", str(n)],
                 ready_timeout=30)
    old = srv.wait_ready(30)
    check("never saw" not in srv.log_text(),
          "a listener the library reported was taken for an unseen one:\n%s" % srv.tail())
    old2, new, _ = srv.restart_ok()
    check(old2 == old, "restarted the wrong process")
    for port in (base, base + n // 2, base + n - 1):
        status, headers, _ = http_get(port)
        check(status == 200 and headers.get("x-pid") == str(new),
              "port %d is not served by the new generation" % port)
    srv.wait_gone(old, 15)


TESTS = [
    ("keeper: PID 1 of a PID namespace", container_case(False)),
    ("keeper: tini as PID 1 of a PID namespace", container_case(True)),
    ("keeper: under supervisord", test_supervisord),
    ("keeper: under runit (runsv)", test_runit),
    ("keeper: server drops root after bind", test_drop_privileges),
    ("keeper: prefork kill(-pgrp) at shutdown", test_pgrp_kill),
    ("keeper: static Go server warning", test_go_static),
    ("keeper: 200 listeners, every one seen", test_many_listeners),
    ("keeper: kill -9 of generations", test_kill9_generations),
    ("keeper: kill -9 of an old master mid-drain", test_kill9_old_master),
    ("keeper: two PID namespaces, one netns", test_two_namespaces),
    ("keeper setup: supervisors, namespaces, go", test_setup_supervisors),
]
