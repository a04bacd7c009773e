#!/usr/bin/env python3
"""Soak: 1,000 hot restarts of a fork-per-connection server under load while
PIDs wrap around, with canaries on the PIDs the service leaves behind.

Not part of the normal suite (it is long): `make soak`, or
    python3 tests/integration/soak.py --lib build/libhotrestart.so

What it runs and asserts:
- forkconn (tests/servers/forkconn.c) under `hotrestart run`, the load client
  on it for the whole run, and RESTARTS restarts sent straight to the
  keeper's control socket ("restart" -> "ok pid=N ms=X"). Every restart must
  succeed, and the load client and the soak's own probe requests must see 0
  errors in every category.
- Wrap-around: PIDs of successive generations are watched (one smaller than
  the one before means the PID counter wrapped); so is the machine's
  counter, /proc/sys/kernel/ns_last_pid. Both counts are reported; at least
  --min-wraps generation wraps are required. A loaded machine forks too
  slowly to wrap often in 15 minutes, so after each restart the counter is
  moved --pid-stride PIDs forward (0: only the load's own forks); after each
  wrap the kernel hands out the lowest free PIDs again, those the service's
  exited processes held, exactly as a natural wrap does. PIDs the machine
  allocated and PIDs skipped are reported apart.
- Canaries: processes outside the service (children of this script, never
  descendants of the keeper) that catch every catchable signal and log it
  (build/canary, tests/canary.c). Each is forced onto a PID a process of the
  service held a moment ago (write PID-1 to ns_last_pid, fork, check the
  child got PID; retry when another process raced): an old generation's main
  process after it exited, a forkconn child after it answered, and a
  forkconn child SIGKILLed in the middle of a request (its slot in the
  generation's shared region keeps a connection count of 1: issue 13 item
  14). About --canaries are alive at any time; older ones are retired. No
  canary may ever receive a signal, die or be stopped; no old generation may
  outlive its drain timeout and stop grace, and the keeper's log may never
  show a drain held to its timeout or a generation killed (a stale slot
  counted as a live connection would hold a drain).
- Flat resources: every 100 restarts, once no old generation is left, the fds
  (clients' TCP connections left out) and RSS of the keeper and of the live
  generation's main process; between
  the sample at restart 100 and the last, fds must be equal and RSS within
  10 %.
- Time: the restarts are paced to end after --target-minutes; the soak fails
  if it runs past --limit-minutes. Every wait is bounded.
Everything it started (service, load, canaries) is killed at the end, also
on failure.
"""

import argparse
import faulthandler
import os
import re
import select
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BUILD, ERROR_KINDS, Env, Load, Server, TestFailure, check,  # noqa: E402
                     control_status, descendants, free_port, http_get, keeper_request, pid_alive,
                     proc_status, server_bin, wait_for)

CANARY = os.path.join(BUILD, "canary")
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
PID_MAX = int(open("/proc/sys/kernel/pid_max").read())


STOP_GRACE = 5  # the keeper's default HOTRESTART_STOP_GRACE


def diagnose(pid):
    """State, wait channel, system call and kernel stack of a process."""
    out = ["pid %d:" % pid]
    for name in ("stat", "wchan", "syscall", "stack"):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                out.append("  %s: %s" % (name, f.read().strip().replace("\n", " | ")))
        except OSError as e:
            out.append("  %s: %s" % (name, e.strerror))
    return "\n".join(out)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def proc_exists(pid):
    return os.path.exists("/proc/%d" % pid)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return out
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            out.add(int(m.group(1)))
    return out


def server_side_inode(server_port, client_port):
    """Inode of the accepted socket of our connection (its local port is the
    server's, its remote port ours), from /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (int(local.split(":")[1], 16) == server_port and
                    int(remote.split(":")[1], 16) == client_port and inode):
                return inode
    return None


def socket_tables():
    """Inodes of listening TCP sockets and of every AF_UNIX socket."""
    keep = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fl = line.split()
                if fl[3] == "0A":
                    keep.add(int(fl[9]))
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fl = line.split()
            if len(fl) >= 7:
                keep.add(int(fl[6]))
    return keep


def held_fds(pid):
    """The fds a process holds, leaving out clients' TCP connections (a
    forkconn main holds each accepted one until its fork returns, for long
    on a loaded machine): listeners, AF_UNIX sockets and non-sockets count."""
    keep = socket_tables()
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", link)
        n += not m or int(m.group(1)) in keep
    return n


def fd_kinds(pid):
    """What a process's fds are: 'socket', 'anon_inode:[eventfd]', paths."""
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        out.append("%s=%s" % (fd, re.sub(r":\[\d+\]$", "", link)))
    return " ".join(out)


class Canaries:
    """Processes outside the service, forced onto PIDs it used."""

    def __init__(self, tmp, keep):
        self.tmp = tmp
        self.keep = keep
        self.ns_fd = os.open(NS_LAST_PID, os.O_RDWR)
        self.live = []      # dicts: pid, origin, log, restart
        self.placed = {}    # origin -> count
        self.raced = 0      # forks that did not get the PID (another process was faster)
        self.taken = 0      # PIDs already reused by someone else when we came
        self.retired = 0
        self.signals = []   # (pid, origin, log line)
        self.deaths = []    # (pid, origin, how)
        self.serial = 0

    def _last_pid(self):
        return int(os.pread(self.ns_fd, 32, 0).decode().strip() or "0")

    def place(self, pid, origin, restart, attempts=4):
        """Forks a canary onto pid, which must be free. True once placed."""
        if pid < 2 or pid >= PID_MAX:
            return False
        for _ in range(attempts):
            if proc_exists(pid):
                self.taken += 1
                return False
            self.serial += 1
            path = os.path.join(self.tmp, "canary-%d-%d.log" % (self.serial, pid))
            r, w = os.pipe()
            before = self._last_pid()
            try:
                os.pwrite(self.ns_fd, b"%d" % (pid - 1), 0)
                child = os.fork()
                if child == 0:  # pragma: the canary-to-be
                    try:
                        if os.getpid() == pid:
                            os.close(r)
                            os.set_inheritable(w, True)
                            os.execv(CANARY, [CANARY, str(w), path])
                    finally:
                        os._exit(3)
            finally:
                # Put the counter back, so the machine's PIDs (and the
                # wrap-arounds we count) go on where they were; unless it
                # has moved on from where we put it meanwhile.
                now = self._last_pid()
                if pid - 1 <= now < pid + 64:
                    os.pwrite(self.ns_fd, b"%d" % before, 0)
                os.close(w)
            try:
                if child != pid:
                    self.raced += 1
                    os.waitpid(child, 0)
                    continue
                # Readiness: the canary says so once every handler is in place.
                ready, _, _ = select.select([r], [], [], 10 * harness.SCALE)
                check(ready, "canary %d did not start within 10 s" % pid)
                line = os.read(r, 100).decode()
                check(line.startswith("ready %d " % pid), "canary %d said %r" % (pid, line))
            finally:
                os.close(r)
            self.live.append(dict(pid=pid, origin=origin, log=path, restart=restart))
            self.placed[origin] = self.placed.get(origin, 0) + 1
            while len(self.live) > self.keep:
                self.retire(self.live[0])
            return True
        return False

    def inspect(self, c):
        """Records what happened to canary c; True while it is unharmed."""
        ok = True
        pid, status = os.waitpid(c["pid"], os.WNOHANG)
        if pid:
            how = ("killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
                   else "exited with %d" % os.WEXITSTATUS(status))
            self.deaths.append((c["pid"], c["origin"], how))
            c["dead"] = True
            ok = False
        elif proc_state(c["pid"]) in ("T", "t"):
            self.deaths.append((c["pid"], c["origin"], "stopped"))
            ok = False
        with open(c["log"]) as f:
            for line in f:
                self.signals.append((c["pid"], c["origin"], line.strip()))
                ok = False
        return ok

    def check_all(self):
        for c in self.live:
            if not c.get("reported") and not self.inspect(c):
                c["reported"] = True
        return not self.signals and not self.deaths

    def retire(self, c):
        if not c.get("reported"):
            try:
                self.inspect(c)
            finally:
                self._end(c)
        else:
            self._end(c)
        self.live.remove(c)
        self.retired += 1

    def _end(self, c):
        if not c.get("dead"):
            # Our own unreaped child: its PID cannot have been reused.
            os.kill(c["pid"], signal.SIGKILL)
            os.waitpid(c["pid"], 0)
            c["dead"] = True

    def close(self):
        """Kills every canary still alive (after a last look at it)."""
        for c in list(self.live):
            try:
                self.retire(c)
            except OSError as e:
                log("canary %d: %s" % (c["pid"], e))
                if c in self.live:
                    self.live.remove(c)
        os.close(self.ns_fd)


class Soak:
    def __init__(self, args, env):
        self.args = args
        self.env = env
        self.canaries = Canaries(env.tmp, args.canaries)
        self.candidates = []     # (pid, origin, since): PIDs of the service, to reuse
        self.pending = {}        # pidfd -> (restart number, pid, t_ok): old generations
        self.exit_ms = []        # old generation exit times after handover
        self.stale_exit_ms = []  # the same, for generations with a killed child's stale slot
        self.stale_gens = set()  # main PIDs of generations holding such a slot
        self.handover_ms = []
        self.gen_pids = []
        self.gen_wraps = 0
        self.wrap_at = []        # (restart, previous generation PID, new PID)
        self.steps_back = []     # the same, for steps back that are not wraps
        self.ns_wraps = 0
        self.ns_last = None
        self.ns_advanced = 0
        self.skipped = 0
        self.probes = self.probe_errors = 0
        self.samples = []
        self.phases = []
        self.slow = []
        self.result = None
        self.duration = None
        self.start = time.monotonic()
        self.load = None
        self.srv = None

    # ---- PIDs ----

    def watch_ns(self):
        last = self.canaries._last_pid()
        if self.ns_last is not None:
            if last < self.ns_last - PID_MAX // 2:
                self.ns_wraps += 1
                self.ns_advanced += PID_MAX - self.ns_last + last
            elif last > self.ns_last:
                self.ns_advanced += last - self.ns_last
        self.ns_last = last

    def advance(self):
        """Moves the PID counter --pid-stride forward (to pid_max - 1 at
        most: the next PID then wraps)."""
        if not self.args.pid_stride:
            return
        last = self.canaries._last_pid()
        target = min(last + self.args.pid_stride, PID_MAX - 1)
        if target > last:
            os.pwrite(self.canaries.ns_fd, b"%d" % target, 0)
            self.skipped += target - last

    def new_generation(self, pid):
        # A wrap takes the counter from the top of the range to its bottom.
        # Smaller steps back are other writers of ns_last_pid on this machine
        # (tests that place a child on a PID; they do not put it back).
        if self.gen_pids and pid < self.gen_pids[-1]:
            if self.gen_pids[-1] > PID_MAX * 3 // 4 and pid < PID_MAX // 4:
                self.gen_wraps += 1
                self.wrap_at.append((len(self.gen_pids), self.gen_pids[-1], pid))
            else:
                self.steps_back.append((len(self.gen_pids), self.gen_pids[-1], pid))
        self.gen_pids.append(pid)

    # ---- restarts ----

    def restart(self, n):
        old = self.gen_pids[-1]
        old_fd = os.pidfd_open(old)
        t0 = time.monotonic()
        reply = keeper_request(self.keeper, "restart", 30 * harness.SCALE)
        t_ok = time.monotonic()
        m = re.match(r"ok pid=(\d+) ms=(\d+)$", reply)
        if not m:
            os.close(old_fd)
            raise TestFailure("restart %d failed: %r\nlog:\n%s" % (n, reply, self.srv.tail()))
        new = int(m.group(1))
        check(new != old, "restart %d kept pid %d" % (n, old))
        self.handover_ms.append((t_ok - t0) * 1000)
        self.pending[old_fd] = (n, old, t_ok)
        self.new_generation(new)

    def reap_old(self, timeout):
        """Waits up to timeout for old generations' main processes to exit
        (their pidfds become readable); each one's PID becomes a candidate."""
        if not self.pending:
            if timeout > 0:
                time.sleep(timeout)  # the pace of restarts, nothing to wait for
            return
        ready, _, _ = select.select(list(self.pending), [], [], max(0.0, timeout))
        now = time.monotonic()
        for fd in ready:
            n, pid, t_ok = self.pending.pop(fd)
            os.close(fd)
            ms = (now - t_ok) * 1000
            self.exit_ms.append(ms)
            if pid in self.stale_gens:
                self.stale_gens.discard(pid)
                self.stale_exit_ms.append(ms)
            self.candidates.append((pid, "generation", now))

    def old_overdue(self):
        """An old generation past its drain timeout plus the stop grace plus
        a margin: the keeper did not end it as it should."""
        now = time.monotonic()
        bound = self.args.drain_timeout + STOP_GRACE + 5
        late = [(n, pid, (now - t) * 1000) for n, pid, t in self.pending.values()
                if now - t > bound]
        if late:
            raise TestFailure("old generations still running %.0f s after their handover: %s\n"
                              "%s\nlast iteration: %s\nlog:\n%s" %
                              (bound, late, "\n".join(diagnose(p) for _, p, _ in late) + "\n" +
                               diagnose(self.keeper), self.phases, self.srv.tail(30)))

    def keeper_verdicts(self):
        """Lines of the keeper's log that must never appear in this soak: a
        drain held to its timeout (forkconn's requests take milliseconds)
        and any SIGKILL of a generation."""
        bad = re.compile(r"reached the drain timeout|killing it|killed by signal|exited unasked|"
                         r"starting a new generation")
        return [line for line in self.srv.log_text().splitlines()
                if line.startswith("hotrestart[") and bad.search(line)]

    # ---- sources of PIDs ----

    def probe(self):
        """One request of our own; the forkconn child that served it will
        exit, and its PID is a candidate."""
        self.probes += 1
        try:
            status, headers, _ = http_get(self.port, timeout=10)
        except OSError as e:
            self.probe_errors += 1
            log("probe failed: %s" % e)
            return
        if status != 200:
            self.probe_errors += 1
            log("probe got status %d" % status)
            return
        if headers.get("x-pid", "").isdigit():
            self.candidates.append((int(headers["x-pid"]), "child", time.monotonic()))

    def stale_slot(self, n):
        """A forkconn child SIGKILLed in the middle of a request: its slot in
        the live generation's region keeps a connection count of 1 and its
        PID, which a canary then takes. The next restart drains this
        generation: the canary's count must not hold it, nor may the canary
        be signalled."""
        main = self.gen_pids[-1]
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            client_port = s.getsockname()[1]

            def holder():
                ino = server_side_inode(self.port, client_port)
                if not ino:
                    return None
                for pid in descendants(main):
                    if ppid_of(pid) == main and ino in socket_inodes(pid):
                        return pid
                return None
            child = wait_for(holder, 10, "the forkconn child serving /slow")
            fd = os.pidfd_open(child)
            try:
                # Proven ours just now: a child of the live main holding our connection.
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                ready, _, _ = select.select([fd], [], [], 10 * harness.SCALE)
                check(ready, "killed forkconn child %d did not exit" % child)
            finally:
                os.close(fd)
        finally:
            s.close()
        # forkconn reaps it from its SIGCHLD handler: then the PID is free.
        wait_for(lambda: not proc_exists(child), 10, "forkconn to reap %d" % child, 0.002)
        if self.canaries.place(child, "stale", n):
            self.stale_gens.add(main)
        else:
            log("stale slot %d: PID taken before a canary could get it" % child)

    def place_canaries(self, n, budget=3):
        """Puts canaries on candidates whose process is gone (reaped)."""
        now = time.monotonic()
        keep = []
        for pid, origin, since in self.candidates:
            if budget and not proc_exists(pid):
                budget -= 1
                self.canaries.place(pid, origin, n)
            elif now - since < 5:
                keep.append((pid, origin, since))
        self.candidates = keep[-50:]

    # ---- resources ----

    def sample(self, n):
        def settled():
            self.reap_old(0)
            return not self.pending and not (control_status(self.keeper) or {}).get(
                "draining", True)
        wait_for(settled, 30, "old generations to be gone before sampling")
        main = self.gen_pids[-1]
        probes = dict(keeper_fds=lambda: held_fds(self.keeper),
                      keeper_rss=lambda: proc_status(self.keeper, "VmRSS"),
                      main_fds=lambda: held_fds(main),
                      main_rss=lambda: proc_status(main, "VmRSS"),
                      main_threads=lambda: proc_status(main, "Threads"))
        # Readings spread over half a second (a sampling interval, not a
        # synchronisation): the smallest leaves out a connection forkconn
        # accepted at that moment and a control client of the keeper.
        seen = {k: [] for k in probes}
        for _ in range(25):
            for k, fn in probes.items():
                try:
                    seen[k].append(fn())
                except (FileNotFoundError, ProcessLookupError):
                    pass
            time.sleep(0.02)
        check(all(seen.values()), "the keeper or the live main process vanished")
        row = dict(restart=n, keeper_fd_kinds=fd_kinds(self.keeper), main_fd_kinds=fd_kinds(main),
                   **{k: min(v) for k, v in seen.items()})
        self.samples.append(row)
        log("sample %(restart)d: keeper fds=%(keeper_fds)d rss=%(keeper_rss)d kB; "
            "main fds=%(main_fds)d rss=%(main_rss)d kB threads=%(main_threads)d" % row)

    def phase(self, name, fn, *args):
        t0 = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.phases.append((name, (time.monotonic() - t0) * 1000))

    # ---- the run ----

    def run(self):
        a = self.args
        start = time.monotonic()
        limit = start + a.limit_minutes * 60
        self.port = free_port()
        self.srv = Server(self.env, "forkconn", [server_bin("forkconn"), "--port",
                                                 str(self.port)],
                          drain_timeout=a.drain_timeout, ready_timeout=30)
        first = self.srv.wait_ready(30)
        self.keeper = self.srv.keeper
        self.new_generation(first)
        self.load = Load(a.limit_minutes * 60 + 120, port=self.port,
                         connections=a.connections)
        self.watch_ns()
        pace = a.target_minutes * 60 / a.restarts
        log("forkconn on 127.0.0.1:%d, keeper %d, generation 1 pid %d; %d restarts, one "
            "every %.2f s" % (self.port, self.keeper, first, a.restarts, pace))
        for n in range(1, a.restarts + 1):
            check(time.monotonic() < limit, "past the %d-minute limit after %d restarts" %
                  (a.limit_minutes, n - 1))
            if self.load.proc.poll() is not None:
                raise TestFailure("the load client ended early: %s" % self.load.proc.stderr.read())
            self.phases = []
            self.phase("restart", self.restart, n)
            self.phase("probe", self.probe)
            if n % a.stale_every == 0:
                self.phase("stale", self.stale_slot, n)
            self.phase("canaries", self.place_canaries, n)
            self.watch_ns()
            self.advance()
            self.watch_ns()
            check(self.canaries.check_all(), "a canary was harmed: signals %s, deaths %s" %
                  (self.canaries.signals[:5], self.canaries.deaths[:5]))
            self.old_overdue()
            spent = sum(ms for _, ms in self.phases)
            if spent > 3000:
                self.slow.append((n, self.phases))
                log("restart %d: a slow iteration (%s ms)" %
                    (n, ", ".join("%s %.0f" % p for p in self.phases)))
            if n % 100 == 0:
                self.sample(n)
                log("restart %d: %d generation wraps, %d machine wraps, %d canaries placed "
                    "%s, %.0f s" % (n, self.gen_wraps, self.ns_wraps,
                                    sum(self.canaries.placed.values()), self.canaries.placed,
                                    time.monotonic() - start))
            # A schedule, not a synchronisation; behind it, no wait at all.
            self.reap_old(start + n * pace - time.monotonic())
        wait_for(lambda: (self.reap_old(0.1), not self.pending)[1], 30,
                 "the last old generations to exit")
        self.place_canaries(a.restarts, budget=100)
        # The load ends a second after the last restart.
        res = self.load.finish(time.monotonic() + 1)
        self.result = res
        self.watch_ns()
        check(self.canaries.check_all(), "a canary was harmed: signals %s, deaths %s" %
              (self.canaries.signals[:5], self.canaries.deaths[:5]))
        alive = [c["pid"] for c in self.canaries.live if pid_alive(c["pid"])]
        check(len(alive) == len(self.canaries.live), "canaries gone at the end: %s" %
              sorted(set(c["pid"] for c in self.canaries.live) - set(alive)))
        self.duration = time.monotonic() - start
        self.report()
        verdicts = self.keeper_verdicts()
        check(not verdicts, "the keeper held a drain or killed a generation:\n%s" %
              "\n".join(verdicts[:20]))
        errors = {k: res[k] for k in ERROR_KINDS}
        check(res["ok"] > 0 and not any(errors.values()),
              "client-visible errors %s (ok=%d) %s" % (errors, res["ok"], res["stderr"][:300]))
        check(not self.probe_errors, "%d of %d probe requests failed" %
              (self.probe_errors, self.probes))
        check(self.gen_wraps >= a.min_wraps, "PIDs wrapped %d times, fewer than --min-wraps %d"
              % (self.gen_wraps, a.min_wraps))
        first_s, last_s = self.samples[0], self.samples[-1]
        for who in ("keeper", "main"):
            check(last_s[who + "_fds"] == first_s[who + "_fds"],
                  "%s fds went from %d (restart %d: %s) to %d (restart %d: %s)" %
                  (who, first_s[who + "_fds"], first_s["restart"], first_s[who + "_fd_kinds"],
                   last_s[who + "_fds"], last_s["restart"], last_s[who + "_fd_kinds"]))
            check(last_s[who + "_rss"] <= first_s[who + "_rss"] * 1.10,
                  "%s RSS went from %d kB to %d kB" % (who, first_s[who + "_rss"],
                                                      last_s[who + "_rss"]))
        check(last_s["main_threads"] == first_s["main_threads"], "main threads grew")

    def report(self):
        res, c = self.result, self.canaries
        if res is None:  # a failure: what the load saw up to here
            res = self.load.finish(time.monotonic()) if self.load else None
            self.result = res
        if self.duration is None:
            self.duration = time.monotonic() - self.start
        hs = sorted(self.handover_ms) or [0]
        ex = sorted(self.exit_ms) or [0]
        print()
        print("soak: %d restarts in %.0f s (%.2f s each)" %
              (len(self.handover_ms), self.duration, self.duration / max(1, len(hs))))
        print("  restart round trip ms: median %.0f, p99 %.0f, max %.0f" %
              (hs[len(hs) // 2], hs[int(len(hs) * 0.99)], hs[-1]))
        print("  old generation exit after handover ms: median %.0f, p99 %.0f, max %.0f "
              "(stale-slot generations: %d, max %.0f)" %
              (ex[len(ex) // 2], ex[int(len(ex) * 0.99)], ex[-1], len(self.stale_exit_ms),
               max(self.stale_exit_ms or [0])))
        if res:
            print("  load: ok=%d %s retried=%d max_gap_ms=%d rps=%.1f" %
                  (res["ok"], " ".join("%s=%d" % (k, res[k]) for k in ERROR_KINDS),
                   res["retried"], res["max_gap_ms"], res["rps"]))
        print("  probes: %d requests, %d failed" % (self.probes, self.probe_errors))
        print("  PID wraps: %d seen in generation PIDs (first %d, last %d), %d of the machine's "
              "counter: ~%d PIDs allocated by the machine + %d skipped (--pid-stride %d), "
              "pid_max %d" %
              (self.gen_wraps, self.gen_pids[0], self.gen_pids[-1], self.ns_wraps,
               self.ns_advanced - self.skipped, self.skipped, self.args.pid_stride, PID_MAX))
        print("  generation wraps (restart, PID before, PID after): %s" % self.wrap_at)
        print("  generation PIDs lower than the one before without a wrap (others writing "
              "ns_last_pid): %s" % self.steps_back[:20])
        print("  slow iterations (> 3 s): %d %s" % (len(self.slow), self.slow[:5]))
        print("  canaries: %d placed %s, %d retired, %d alive at the end; %d forks raced, %d "
              "PIDs reused by others first; signals received: %d; died or stopped: %d" %
              (sum(c.placed.values()), c.placed, c.retired, len(c.live), c.raced, c.taken,
               len(c.signals), len(c.deaths)))
        for pid, origin, line in c.signals[:10]:
            print("    canary %d (%s): %s" % (pid, origin, line))
        for pid, origin, how in c.deaths[:10]:
            print("    canary %d (%s): %s" % (pid, origin, how))
        print("  samples (restart: keeper fds/RSS kB, main fds/RSS kB/threads):")
        for s in self.samples:
            print("    %(restart)5d: keeper %(keeper_fds)d / %(keeper_rss)d, "
                  "main %(main_fds)d / %(main_rss)d / %(main_threads)d" % s)
        for s in self.samples[:1] + self.samples[-1:]:
            print("  fds at restart %d: keeper %s; main %s" %
                  (s["restart"], s["keeper_fd_kinds"], s["main_fd_kinds"]))

    def cleanup(self):
        if self.load and self.load.proc.poll() is None:
            self.load.proc.kill()
            self.load.proc.wait(10)
        for fd in self.pending:
            os.close(fd)
        self.pending = {}
        if self.srv:
            # Only the keeper (our child, so its PID is still its own) and its
            # descendants: PIDs of old generations may belong to anyone now.
            self.srv.known = {self.srv.proc.pid}
            self.srv.kill()
        # Before the temp dir (their logs) goes.
        self.canaries.close()
        self.env.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=os.path.join(BUILD, "libhotrestart.so"))
    ap.add_argument("--restarts", type=int, default=1000)
    ap.add_argument("--target-minutes", type=float, default=11,
                    help="the restarts are spread over this long (behind schedule: no pause)")
    ap.add_argument("--limit-minutes", type=float, default=15, help="fail past this")
    ap.add_argument("--connections", type=int, default=8, help="load client connections")
    ap.add_argument("--canaries", type=int, default=20, help="canaries alive at a time")
    ap.add_argument("--stale-every", type=int, default=20,
                    help="kill a forkconn child mid-request every N restarts")
    ap.add_argument("--drain-timeout", type=float, default=10)
    ap.add_argument("--min-wraps", type=int, default=3)
    ap.add_argument("--pid-stride", type=int, default=100,
                    help="PIDs skipped after each restart, so they wrap within the run")
    args = ap.parse_args()
    faulthandler.register(signal.SIGUSR1)  # where it is, should it ever seem stuck

    def terminated(sig, frame):
        raise TestFailure("terminated by signal %d" % sig)
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    check(os.geteuid() == 0, "the soak writes %s: run it as root" % NS_LAST_PID)
    check(os.access(CANARY, os.X_OK), "%s is missing: make soak builds it" % CANARY)
    check(args.restarts >= 100, "--restarts: at least 100 (resources are sampled per 100)")
    env = Env(args.lib)
    soak = Soak(args, env)
    try:
        soak.run()
    except TestFailure as e:
        print("SOAK FAILED: %s" % e, flush=True)
        if soak.handover_ms and soak.duration is None:
            try:
                soak.report()
            except Exception as r:  # the report is a courtesy on failure
                print("(no report: %r)" % r)
        return 1
    finally:
        soak.cleanup()
    print("SOAK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
