"""Service-manager integration: the sd_notify messages systemd sees, socket
activation with the real systemd-socket-activate, `hotrestart status`, the
pid file contract, `make install`/`uninstall`, and the library's exports."""

import os
import re
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import (ROOT, WRAPPER, SCALE, Load, Server, check, check_no_errors, deploy,
                     free_port, http_get, pid_alive, read_pid, server_bin,
                     status_json, wait_for)

TRANSCRIPT = os.path.join(harness.BUILD, "sd_notify-transcript.txt")
STATUS_EXAMPLE = os.path.join(harness.BUILD, "status-example.txt")


def mono_us():
    return int(time.monotonic() * 1e6)


def run_wrapper(args, timeout=30, wrapper=WRAPPER, env=None):
    return subprocess.run([wrapper] + list(args), capture_output=True, text=True,
                          timeout=timeout * SCALE + 10, env=env)


def status_text(target):
    args = ["status"] + (["--pidfile", target] if isinstance(target, str) else [str(target)])
    r = run_wrapper(args, timeout=10)
    check(r.returncode == 0, "status %s failed (%d): %s" % (target, r.returncode, r.stderr))
    return r.stdout


def launched(env, name, argv, penv, pidfile):
    """A process tree the test starts itself (not through the source
    wrapper), tracked like any server: log shown on failure, killed at the
    end."""
    return Server.__new__(Server).launch(env, name, argv, penv, pidfile)


# ---- a. sd_notify ----

class NotifySocket:
    """systemd's end of NOTIFY_SOCKET: a datagram socket that reports each
    message with its sender's pid (SCM_CREDENTIALS)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.received = []

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        check(pid is not None, "datagram without SCM_CREDENTIALS: %r" % data)
        msg = (pid, data.decode(errors="replace"))
        self.received.append(msg)
        return msg

    def expect(self, count, what, timeout=10):
        """The next count messages, waiting at most timeout (scaled)."""
        got = []
        deadline = time.monotonic() + timeout * SCALE
        while len(got) < count:
            msg = self._recv(deadline - time.monotonic())
            if msg is None:
                raise harness.TestFailure("%s: got %d of %d sd_notify messages: %r" %
                                          (what, len(got), count, got))
            got.append(msg)
        return got

    def quiet(self, seconds, what):
        """Checks that nothing more arrives for a while."""
        msg = self._recv(seconds * SCALE)
        check(msg is None, "%s: unexpected sd_notify message %r" % (what, msg))

    def close(self):
        self.sock.close()


def match_msg(msg, pid, pattern, what):
    check(msg[0] == pid, "%s: sent by pid %s, expected pid %s (%r)" % (what, msg[0], pid, msg[1]))
    m = re.fullmatch(pattern, msg[1])
    check(m, "%s: message %r does not match %r" % (what, msg[1], pattern))
    return m


def test_sd_notify(env):
    exe = env.path("server")
    deploy(server_bin("epoll_lt"), exe)
    port = free_port()
    notify = NotifySocket(env.path("notify.sock"))
    transcript = []

    def note(action, msgs):
        transcript.append("== " + action)
        for pid, text in msgs:
            lines = text.split("\n")
            transcript.append("[pid %d] %s" % (pid, lines[0]))
            transcript.extend(" " * len("[pid %d] " % pid) + ln for ln in lines[1:])

    try:
        srv = Server(env, "notify", [exe, "--port", str(port)],
                     extra_env={"NOTIFY_SOCKET": notify.path})
        first = srv.wait_ready()
        # The keeper is the main PID systemd tracks: every message is its.
        keeper = srv.keeper
        check(keeper != first, "the keeper %d is the server %d" % (keeper, first))
        msgs = notify.expect(1, "first start")
        match_msg(msgs[0], keeper, r"READY=1\nSTATUS=Serving \(generation 1, pid %d\)" % first,
                  "first start")
        note("hotrestart run --pidfile FILE -- epoll_lt --port %d  (keeper pid %d, server pid %d)"
             % (port, keeper, first), msgs)

        before = mono_us()
        old, new, ms = srv.restart_ok()
        after = mono_us()
        msgs = notify.expect(2, "restart")
        m = match_msg(msgs[0], keeper, r"RELOADING=1\nMONOTONIC_USEC=(\d+)\n"
                      r"STATUS=Upgrading: starting (.+)", "restart: reloading")
        usec = int(m.group(1))
        check(before - 1000 <= usec <= after,
              "MONOTONIC_USEC=%d is not within the restart [%d, %d]" % (usec, before, after))
        check(m.group(2) == exe, "STATUS names %r, the executable is %r" % (m.group(2), exe))
        match_msg(msgs[1], keeper, r"READY=1\nSTATUS=Serving \(generation 2, pid %d\)" % new,
                  "restart: successor ready")
        note("hotrestart restart  ->  new pid %d, handover %g ms" % (new, ms), msgs)
        srv.wait_gone(old, 15)
        notify.quiet(0.2, "after the old generation exited")

        deploy(server_bin("fail_exit1"), exe)
        rc, out, err = srv.restart()
        check(rc == 1, "failing restart exited %d, want 1 (%s %s)" % (rc, out, err))
        reason = re.fullmatch(r"hotrestart: restart failed: (.+)", err)
        check(reason, "unexpected error line %r" % err)
        msgs = notify.expect(2, "failed restart")
        match_msg(msgs[0], keeper, r"RELOADING=1\nMONOTONIC_USEC=\d+\n"
                  r"STATUS=Upgrading: starting %s" % re.escape(exe), "failed restart: reloading")
        match_msg(msgs[1], keeper, r"READY=1\nSTATUS=Upgrade failed \(%s\); still serving" %
                  re.escape(reason.group(1)), "failed restart: still serving")
        check(srv.pid == new and pid_alive(new), "the serving process changed on a failed upgrade")
        note("hotrestart restart with a failing binary  ->  %s" % err, msgs)

        r = srv.stop()
        check(r.returncode == 0, "hotrestart stop exited %d: %s" % (r.returncode, r.stderr))
        msgs = notify.expect(1, "stop")
        match_msg(msgs[0], keeper, r"STOPPING=1\nSTATUS=Stopping: draining 0 connections", "stop")
        note("hotrestart stop  ->  %s" % r.stdout.strip(), msgs)
        notify.quiet(0.3, "after the stop")
        senders = {pid for pid, _ in notify.received}
        check(senders == {keeper}, "messages from pids other than the keeper: %s" %
              sorted(senders))
    finally:
        notify.close()
    with open(TRANSCRIPT, "w") as f:
        f.write("# sd_notify datagrams received on NOTIFY_SOCKET, in order; sender pid from\n"
                "# SCM_CREDENTIALS (tests/integration/cases_systemd.py, server epoll_lt)\n")
        f.write("\n".join(transcript) + "\n")


# ---- b. socket activation ----

def parse_strace(path, server):
    """From an `strace -f -e trace=bind,execve` log: the binds each pid made
    before and after it executed the server binary."""
    execd, before, after = set(), [], []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"(\d+)\s+(.*)", line)
            if not m:
                continue
            pid, call = int(m.group(1)), m.group(2)
            if call.startswith("execve(") and call.startswith('execve("%s"' % server) and \
                    "= -1" not in call:
                execd.add(pid)
            elif call.startswith("bind("):
                fam = re.search(r"sa_family=(AF_\w+)", call)
                (after if pid in execd else before).append(
                    (pid, fam.group(1) if fam else "?", call.strip()))
    return execd, before, after


def socket_activation(env, keeper):
    """keeper: the command is `hotrestart run -- server`, so the keeper gets
    systemd's socket and hands it to each generation; else the server is
    preloaded directly (LD_PRELOAD-only use)."""
    port = free_port()
    pidfile = env.path("activated.pid")
    trace = env.path("strace.txt")
    server = server_bin("epoll_lt")
    base = env.preload_env()
    # Only the server is preloaded: strace and systemd-socket-activate must not be.
    runtimes = base.pop("LD_PRELOAD", None)
    passed = {"HOTRESTART_PIDFILE": pidfile, "HOTRESTART_DRAIN_TIMEOUT": "10",
              "HOTRESTART_READY_TIMEOUT": "10"}
    if keeper:
        passed["HOTRESTART_LIBRARY"] = env.lib
        if runtimes:
            passed["LD_PRELOAD"] = runtimes
    else:
        passed["LD_PRELOAD"] = ":".join(filter(None, [runtimes, env.lib]))
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if name in base:
            passed[name] = base[name]
    # systemd-socket-activate passes on only PATH, TERM, USER, HOME and its -E
    # variables; it listens, waits for the first connection, then executes
    # the command in its own process with LISTEN_FDS=1 and LISTEN_PID set.
    argv = ["strace", "-f", "--seccomp-bpf", "-e", "trace=bind,execve", "-e", "signal=none",
            "-qq", "-o", trace, "systemd-socket-activate", "-l", "127.0.0.1:%d" % port]
    for k, v in passed.items():
        argv += ["-E", "%s=%s" % (k, v)]
    argv += ["--"] + ([WRAPPER, "run", "--"] if keeper else []) + [server, "--port", str(port)]
    act = launched(env, "activated", argv, base, pidfile)

    def listening():
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(listening, 10, "systemd-socket-activate to listen (log: %s)" % act.tail())
    check(not os.path.exists(pidfile), "the server started before the first connection")
    # The first connection starts the server, which serves it.
    status, headers, _ = http_get(port)
    check(status == 200, "first request: status %d" % status)
    first = act.wait_ready()
    service_pid = read_pid(pidfile)
    check(headers.get("x-pid") == str(first), "first request served by %s, owner is %d" %
          (headers.get("x-pid"), first))
    info = status_json(pidfile)
    addrs = [ls["address"] for ls in info["listeners"]]
    check(addrs == ["127.0.0.1:%d" % port], "listeners %r" % addrs)

    restarts = 3
    load = Load(2 + 2 * restarts, port=port)
    time.sleep(1)
    pids = [first]
    for _ in range(restarts):
        r = run_wrapper(["restart", "--pidfile", pidfile], env=env.preload_env())
        m = re.fullmatch(r"restarted: new pid (\d+), handover [0-9.]+ ms\n", r.stdout)
        check(r.returncode == 0 and m, "restart failed (%d): %r %r\nlog:\n%s" %
              (r.returncode, r.stdout, r.stderr, act.tail()))
        new = int(m.group(1))
        act.known.add(new)
        want = service_pid if keeper else new
        check(read_pid(pidfile) == want, "pid file names %s, want %d" % (read_pid(pidfile), want))
        pids.append(new)
        time.sleep(1)
    res = load.result()
    check_no_errors(res, "load across restarts of a socket-activated server")
    seen = set(res["pids"])
    check(pids[-1] in seen or http_get(port)[1].get("x-pid") == str(pids[-1]),
          "the last generation does not serve")

    r = run_wrapper(["stop", "--pidfile", pidfile], env=env.preload_env())
    check(r.returncode == 0, "hotrestart stop exited %d: %s" % (r.returncode, r.stderr))
    try:
        act.proc.wait(timeout=15 * SCALE)
    except subprocess.TimeoutExpired:
        raise harness.TestFailure("strace did not exit after the last generation stopped")

    execd, before, after = parse_strace(trace, server)
    check(set(pids) <= execd, "generations %s not all seen executing the server (%s)" %
          (pids, sorted(execd)))
    inet_before = [b for b in before if b[1] in ("AF_INET", "AF_INET6")]
    check(len(inet_before) == 1 and "htons(%d)" % port in inet_before[0][2],
          "expected systemd-socket-activate's one bind, got %r" % inet_before)
    inet_after = [b for b in after if b[1] != "AF_UNIX"]
    check(not inet_after, "the server bound sockets itself: %r" % inet_after)
    if keeper:
        ctl = [b for b in before if "hotrestart-keeper." in b[2]]
        check(len(ctl) == 1, "expected the keeper's one control socket, got %r" % before)
    else:
        ctl = [b for b in after if "hotrestart-ctl." in b[2]]
        check(len(ctl) >= len(pids), "expected a control socket bind per generation, got %r" %
              after)
    return dict(res, server="epoll_lt via systemd-socket-activate" +
                (" + keeper" if keeper else ""), restarts=restarts, exit_ms=None)


def test_socket_activation(env):
    return socket_activation(env, keeper=False)


def test_socket_activation_keeper(env):
    return socket_activation(env, keeper=True)


# ---- c. status ----

def held_request(port):
    """A connection whose request is half sent: the old generation holds it
    until finish_held() sends the rest."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    return c


def finish_held(c):
    c.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    head = data.partition(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (line.partition(":") for line in head[1:]))
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    return status, headers


def test_status(env):
    """Under the keeper: the service's PID, the live generation and its main
    PID, and a drain shown while an old generation finishes."""
    port = free_port()
    srv = Server(env, "status", [server_bin("threaded"), "--port", str(port)])
    pid = srv.wait_ready()
    keeper = srv.keeper
    info = status_json(srv.pidfile)
    for key in ("pid", "keeper_pid", "generation", "main_pid", "started_unix", "listeners",
                "connections", "upgrading", "draining", "stopping"):
        check(key in info, "status --json lacks %r: %r" % (key, info))
    check(info["pid"] == keeper and info["keeper_pid"] == keeper and info["main_pid"] == pid
          and info["generation"] == 1 and keeper != pid, "status names %r" % info)
    check(info["connections"] == 0 and info["upgrading"] is False and info["draining"] is False,
          "idle server status %r" % info)
    fd = info["listeners"][0]["fd"]
    # A request still being received holds its connection with no timer: a
    # loaded machine's wrapper call may outlast a 2 s /slow request.
    hold = held_request(port)
    wait_for(lambda: srv.connections() >= 1, 5, "the held request")
    text = status_text(srv.pidfile)
    expect = [r"pid: %d" % keeper, r"main pid: %d \(the live generation's main process\)" % pid,
              r"generation: 1",
              r"started: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \(up \d+s\)", r"listeners:",
              r"  fd %d  127\.0\.0\.1:%d" % (fd, port), r"connections: 1", r"state: serving"]
    lines = text.rstrip("\n").split("\n")
    check(len(lines) == len(expect) and all(re.fullmatch(p, ln) for p, ln in zip(expect, lines)),
          "human status output:\n%s" % text)
    with open(STATUS_EXAMPLE, "w") as f:
        f.write("$ hotrestart status --pidfile /run/example.pid   # one request in flight\n")
        f.write(text)
    status, headers = finish_held(hold)
    check(status == 200 and headers.get("x-pid") == str(pid), "the held request: %r %r" %
          (status, headers))
    # The drain of the old generation shows while it holds such a request
    # (never idle).
    hold = held_request(port)
    wait_for(lambda: srv.connections() >= 1, 5, "the held request")
    old, new, _ = srv.restart_ok()
    info = status_json(srv.pidfile)
    check(info["pid"] == keeper and info["main_pid"] == new and info["generation"] == 2 and
          info["draining"] is True, "status during the drain: %r" % info)
    status, headers = finish_held(hold)
    check(status == 200 and headers.get("x-pid") == str(old),
          "the drained request: %r %r" % (status, headers))
    srv.wait_gone(old, 10)
    wait_for(lambda: status_json(srv.pidfile)["draining"] is False, 5, "the drain to end")


def test_status_exec(env):
    """run --exec (no keeper): the server answers status itself, and an old
    generation answers while it drains."""
    port = free_port()
    srv = Server(env, "status", [server_bin("threaded"), "--port", str(port)],
                 run_args=["--exec"])
    pid = srv.wait_ready()
    info = status_json(srv.pidfile)
    for key in ("pid", "generation", "started_unix", "listeners", "connections", "upgrading",
                "draining"):
        check(key in info, "status --json lacks %r: %r" % (key, info))
    check(info["pid"] == pid and info["generation"] == 1, "status names %r" % info)
    check(abs(info["started_unix"] - time.time()) < 60 * SCALE, "started_unix %r" % info)
    check(len(info["listeners"]) == 1 and
          info["listeners"][0]["address"] == "127.0.0.1:%d" % port, "listeners %r" % info)
    check(info["connections"] == 0 and info["upgrading"] is False and info["draining"] is False,
          "idle server status %r" % info)
    fd = info["listeners"][0]["fd"]

    hold = held_request(port)
    wait_for(lambda: srv.connections() >= 1, 5, "the held request")
    text = status_text(srv.pidfile)
    expect = [r"pid: %d" % pid, r"generation: 1",
              r"started: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \(up \d+s\)", r"listeners:",
              r"  fd %d  127\.0\.0\.1:%d" % (fd, port), r"connections: 1", r"state: serving"]
    lines = text.rstrip("\n").split("\n")
    check(len(lines) == len(expect) and all(re.fullmatch(p, ln) for p, ln in zip(expect, lines)),
          "human status output:\n%s" % text)
    with open(STATUS_EXAMPLE, "w") as f:
        f.write("$ hotrestart status --pidfile /run/example.pid   # one request in flight\n")
        f.write(text)
    status, _ = finish_held(hold)
    check(status == 200, "the held request: %r" % status)

    # The old generation answers status while it drains (held by a request
    # still being received).
    hold = held_request(port)
    wait_for(lambda: srv.connections() >= 1, 5, "the held request")
    old, new, _ = srv.restart_ok()
    check(old == pid, "restarted from %d, not %d" % (old, pid))
    info = status_json(old)
    check(info["pid"] == old and info["draining"] is True and info["connections"] >= 1,
          "old generation's status during the drain: %r" % info)
    text = status_text(old)
    check("state: draining" in text and "pid: %d" % old in text,
          "old generation's human status:\n%s" % text)
    info = status_json(srv.pidfile)
    check(info["pid"] == new and info["generation"] == 2 and info["draining"] is False,
          "new generation's status: %r" % info)
    status, headers = finish_held(hold)
    check(status == 200 and headers.get("x-pid") == str(old),
          "the drained request: %r %r" % (status, headers))
    srv.wait_gone(old, 10)


# ---- d. pid file ----

def test_pidfile(env):
    """Under the keeper the pid file names the service (the keeper) for its
    whole life: written once, never rewritten, removed at the stop."""
    port = free_port()
    srv = Server(env, "pidfile", [server_bin("epoll_lt"), "--port", str(port)])
    first = srv.wait_ready()
    keeper = srv.keeper
    check(keeper == srv.proc.pid, "the pid file names %d, not the keeper %d (the wrapper's PID)"
          % (keeper, srv.proc.pid))
    written = os.stat(srv.pidfile)
    mains = [first]
    for _ in range(3):
        old, new, _ = srv.restart_ok()
        mains.append(new)
        check(read_pid(srv.pidfile) == keeper, "the pid file changed to %s" % read_pid(srv.pidfile))
    now = os.stat(srv.pidfile)
    check((now.st_ino, now.st_mtime_ns) == (written.st_ino, written.st_mtime_ns),
          "the pid file was rewritten across restarts")
    check(len(set(mains)) == 4, "restarts did not change the main pid: %r" % mains)
    r = srv.stop()
    check(r.returncode == 0 and r.stdout == "stopped: pid %d\n" % keeper,
          "hotrestart stop: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    check(not pid_alive(keeper) and not any(pid_alive(p) for p in mains),
          "processes left after the stop")
    check(not os.path.lexists(srv.pidfile), "pid file left after a graceful stop")


def test_pidfile_exec(env):
    """run --exec: the pid file follows the owner of the listeners."""
    port = free_port()
    srv = Server(env, "pidfile", [server_bin("epoll_lt"), "--port", str(port)],
                 run_args=["--exec"])
    first = srv.wait_ready()
    check(status_json(srv.pidfile)["pid"] == first, "the pid file does not name the owner")
    pids = {first}
    bad, values = [], set()
    reads = [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                with open(srv.pidfile, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = None
            reads[0] += 1
            if data is None or not re.fullmatch(rb"[1-9][0-9]*\n", data):
                bad.append(data)
            else:
                values.add(int(data))
            time.sleep(0.001)
    poller = threading.Thread(target=poll)
    poller.start()
    olds = []
    try:
        for _ in range(10):
            old, new, _ = srv.restart_ok()
            olds.append(old)
            pids.add(new)
    finally:
        stop.set()
        poller.join(5)
    check(not bad, "pid file read empty, partial or missing: %r" % bad[:5])
    check(reads[0] >= 20, "only %d reads of the pid file" % reads[0])
    check(values <= pids, "pid file named %s, not one of the owners %s" % (values - pids, pids))
    check(status_json(srv.pidfile)["pid"] == new, "after 10 restarts the pid file is not the owner")

    # A symlink planted at the temp name is removed, not followed.
    owner = srv.pid
    victim = env.path("victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    link = "%s.tmp.%d" % (srv.pidfile, owner)
    os.symlink(victim, link)
    old, new, _ = srv.restart_ok()
    with open(victim) as f:
        check(f.read() == "precious\n", "the symlinked victim was written")
    check(not os.path.islink(srv.pidfile) and read_pid(srv.pidfile) == new,
          "pid file is not a plain file naming %d" % new)
    check(not os.path.lexists(link), "the planted link is still there")
    olds.append(old)

    # Processes that handed over exit without removing it.
    for pid in olds:
        srv.wait_gone(pid, 15)
    check(read_pid(srv.pidfile) == new and status_json(srv.pidfile)["pid"] == new,
          "after the old generations exited the pid file names %s, not %d" %
          (read_pid(srv.pidfile), new))
    leftovers = [n for n in os.listdir(env.tmp) if ".tmp." in n]
    check(not leftovers, "temp files left behind: %r" % leftovers)

    r = srv.stop()
    check(r.returncode == 0, "hotrestart stop exited %d: %s" % (r.returncode, r.stderr))
    check(not os.path.lexists(srv.pidfile), "pid file left after a graceful stop")


# ---- e. install ----

def make(*args):
    r = subprocess.run(["make", "-s", "-C", ROOT] + list(args), capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0, "make %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                          (r.stdout + r.stderr)[-2000:]))


def tree_files(top):
    out = set()
    for dirpath, dirs, files in os.walk(top):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            out.add(os.path.relpath(os.path.join(dirpath, name), top))
    return out


def test_install(env):
    prefix = env.path("prefix") + "/usr"
    make("install", "PREFIX=" + prefix)
    wrapper = os.path.join(prefix, "bin", "hotrestart")
    library = os.path.join(prefix, "lib", "libhotrestart.so.0")
    penv = {k: v for k, v in os.environ.items()
            if k not in ("HOTRESTART_LIBRARY", "LD_PRELOAD") and not k.startswith("HOTRESTART_")}
    port = free_port()
    pidfile = env.path("installed.pid")
    srv = launched(env, "installed", [wrapper, "run", "--pidfile", pidfile, "--",
                                      server_bin("epoll_lt"), "--port", str(port)], penv, pidfile)
    first = srv.wait_ready()

    def maps_library(pid):
        with open("/proc/%d/maps" % pid) as f:
            return library in f.read()
    keeper = read_pid(pidfile)
    check(maps_library(first), "the server did not load %s" % library)
    with open("/proc/%d/cmdline" % keeper, "rb") as f:
        argv0 = f.read().split(b"\0")[0].decode()
    check(argv0 == os.path.join(prefix, "lib", "hotrestart", "hotrestart-keeper"),
          "the service runs under %r, not the installed keeper" % argv0)
    check(not maps_library(keeper), "the keeper itself is preloaded")
    check(http_get(port)[0] == 200, "the installed setup does not serve")
    r = run_wrapper(["restart", "--pidfile", pidfile], wrapper=wrapper, env=penv)
    m = re.fullmatch(r"restarted: new pid (\d+), handover [0-9.]+ ms\n", r.stdout)
    check(r.returncode == 0 and m, "installed restart: %d %r %r" % (r.returncode, r.stdout,
                                                                      r.stderr))
    new = int(m.group(1))
    srv.known.add(new)
    check(read_pid(pidfile) == keeper and maps_library(new), "the successor is not set up")
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(new), "the successor does not serve")
    r = run_wrapper(["stop", "--pidfile", pidfile], wrapper=wrapper, env=penv)
    check(r.returncode == 0 and r.stdout == "stopped: pid %d\n" % keeper,
          "installed stop: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    check(not os.path.exists(pidfile), "pid file left after the stop")

    stage = env.path("stage")
    make("install", "DESTDIR=" + stage, "PREFIX=/usr")
    units = sorted(n for n in os.listdir(os.path.join(ROOT, "scripts", "systemd"))
                   if n.endswith((".service", ".socket")))
    check(any(n.endswith(".service") for n in units) and any(n.endswith(".socket") for n in units),
          "scripts/systemd has no .service or no .socket: %r" % units)
    want = {"usr/lib/libhotrestart.so.0", "usr/lib/libhotrestart.so", "usr/bin/hotrestart",
            "usr/lib/hotrestart/hotrestart-keeper",
            "usr/share/man/man1/hotrestart.1", "usr/share/man/man7/libhotrestart.7"}
    want |= {"usr/share/doc/hotrestart/" + n for n in units}
    got = tree_files(stage)
    check(got == want, "installed tree: missing %s, extra %s" % (sorted(want - got),
                                                                 sorted(got - want)))
    lib = os.path.join(stage, "usr/lib/libhotrestart.so.0")
    check(os.readlink(os.path.join(stage, "usr/lib/libhotrestart.so")) == "libhotrestart.so.0",
          "libhotrestart.so is not a link to libhotrestart.so.0")
    with open(lib, "rb") as a, open(os.path.join(harness.BUILD, "libhotrestart.so"), "rb") as b:
        check(a.read() == b.read(), "the installed library is not build/libhotrestart.so")
    script = os.path.join(stage, "usr/bin/hotrestart")
    check(os.access(script, os.X_OK), "usr/bin/hotrestart is not executable")
    with open(script) as f:
        text = f.read()
    check(re.search(r'^LIBRARY_PATH = "/usr/lib/libhotrestart\.so\.0"$', text, re.M),
          "the library path is not baked into usr/bin/hotrestart")
    check(re.search(r'^KEEPER_PATH = "/usr/lib/hotrestart/hotrestart-keeper"$', text, re.M),
          "the keeper path is not baked into usr/bin/hotrestart")
    for n in units:
        with open(os.path.join(stage, "usr/share/doc/hotrestart", n)) as f:
            unit = f.read()
        check("/usr/local/" not in unit, "%s still names /usr/local" % n)
    make("uninstall", "DESTDIR=" + stage, "PREFIX=/usr")
    left = tree_files(stage)
    check(not left, "uninstall left %s" % sorted(left))


# ---- f. exports ----

def test_exports(env):
    with open(os.path.join(ROOT, "shim", "libhotrestart.map")) as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    m = re.search(r"global:(.*?)local:", text, re.S)
    check(m, "no global:/local: sections in shim/libhotrestart.map")
    want = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)))
    check(len(want) > 10, "only %d names in the map's global list" % len(want))
    r = subprocess.run(["nm", "-D", "--defined-only", env.lib], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "nm failed: %s" % r.stderr)
    got = {line.split()[-1].split("@")[0] for line in r.stdout.splitlines() if line.strip()}
    check(got == want, "exports of %s: missing %s, extra %s" %
          (env.lib, sorted(want - got), sorted(got - want)))
    r = subprocess.run(["readelf", "-d", env.lib], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "Library soname: [libhotrestart.so.0]" in r.stdout,
          "SONAME is not libhotrestart.so.0: %s" %
          [ln for ln in r.stdout.splitlines() if "SONAME" in ln])


test_sd_notify.quick = True
test_exports.quick = True

TESTS = [
    ("sd_notify transcript", test_sd_notify),
    ("socket activation (systemd-socket-activate)", test_socket_activation),
    ("socket activation through the keeper", test_socket_activation_keeper),
    ("hotrestart status, live and draining", test_status),
    ("hotrestart status, run --exec", test_status_exec),
    ("pid file names the keeper for the service's life", test_pidfile),
    ("pid file, run --exec: owner, atomic, no symlink, kept", test_pidfile_exec),
    ("make install / uninstall", test_install),
    ("exports: only the map's hooks, SONAME", test_exports),
]
