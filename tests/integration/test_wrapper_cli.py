#!/usr/bin/env python3
"""CLI tests for scripts/hotrestart that need neither the library nor a real server.

A fake control server stands in for the keeper: a child process running this
file with --serve, which binds the keeper's abstract socket name for its own
PID (the wrapper checks that the peer is the process it asked for).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRAPPER = os.path.join(ROOT, "scripts", "hotrestart")
TIMEOUT = 20
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))


def hr(*args, env=None, cwd=None):
    env = dict(os.environ, **(env or {}))
    return subprocess.run([WRAPPER, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=cwd)


def describe(res):
    return f"rc={res.returncode} stdout={res.stdout!r} stderr={res.stderr!r}"


def expect(name, res, status, stdout=None, stderr_has=None):
    ok = res.returncode == status
    if stdout is not None:
        ok = ok and res.stdout == stdout
    if stderr_has is not None:
        ok = ok and stderr_has in res.stderr and res.stderr.startswith("hotrestart: ")
    check(name, ok, describe(res))


def sleeper():
    return subprocess.Popen(["sleep", "30"])


def dead_pid():
    # A PID that existed a moment ago and has been reaped: almost surely free now.
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=TIMEOUT)
    return proc.pid


def keeper_name(pid):
    return "\0hotrestart-keeper.%d.%d" % (os.stat("/proc/self/ns/pid").st_ino, pid)


class FakeServer:
    """A child process answering control requests for its own PID from a table
    {command: reply} (None = never answer) that the test may change at any
    time; it exits `exit_after` seconds after answering "stop" when given."""

    def __init__(self, tmp, replies):
        self.table = os.path.join(tmp, "replies.json")
        self.log = os.path.join(tmp, "received.txt")
        self.set(replies)
        open(self.log, "w").close()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                      self.table, self.log], stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.proc.stdout.readline()  # "listening": bound and listening for its own PID

    def set(self, replies):
        tmp = self.table + ".tmp"
        with open(tmp, "w") as f:
            json.dump(replies, f)
        os.replace(tmp, self.table)

    @property
    def received(self):
        with open(self.log) as f:
            return f.read().splitlines(keepends=True)

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)


def serve(table, log):
    """--serve: the fake keeper's side (runs in the child)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(keeper_name(os.getpid()))
    sock.listen(8)
    print("listening", flush=True)
    held = []
    while True:
        conn, _ = sock.accept()
        line = conn.makefile("rb").readline().decode()
        with open(log, "a") as f:
            f.write(line)
        with open(table) as f:
            replies = json.load(f)
        reply = replies.get(line.strip())
        if reply is None:
            held.append(conn)  # keep the client waiting for its timeout
            continue
        conn.sendall(reply.encode() + b"\n")
        conn.close()
        if line.strip() == "stop" and replies.get("exit_after") is not None:
            time.sleep(replies["exit_after"])
            os._exit(0)


def test_usage_errors(tmp):
    pidfile = os.path.join(tmp, "x.pid")
    cases = [
        ("no subcommand", []),
        ("unknown subcommand", ["frobnicate"]),
        ("unknown flag", ["status", "--bogus", "1"]),
        ("unknown run flag", ["run", "--bogus", "--", "true"]),
        ("negative timeout", ["restart", "1", "--timeout", "-5"]),
        ("zero timeout", ["stop", "1", "--timeout", "0"]),
        ("non-numeric timeout", ["restart", "1", "--timeout", "soon"]),
        ("non-numeric drain timeout", ["run", "--drain-timeout", "x", "--", "true"]),
        ("negative ready timeout", ["run", "--ready-timeout", "-1", "--", "true"]),
        ("non-numeric PID", ["stop", "abc"]),
        ("negative PID", ["status", "-5"]),
        ("missing command after --", ["run", "--"]),
        ("both PID and --pidfile", ["status", "1", "--pidfile", pidfile]),
        ("neither PID nor --pidfile", ["restart"]),
    ]
    for name, args in cases:
        res = hr(*args)
        lines = res.stderr.splitlines()
        check(f"usage error: {name} -> 2, one line",
              res.returncode == 2 and len(lines) == 1 and lines[0].startswith("hotrestart:"),
              describe(res))


def test_help():
    flags = {
        None: ["run", "restart", "stop", "status", "--version", "--pidfile", "--drain-timeout",
               "--ready-timeout", "--timeout", "--json"],
        "run": ["--pidfile", "--drain-timeout", "--ready-timeout", "COMMAND"],
        "restart": ["--pidfile", "--timeout", "PID"],
        "stop": ["--pidfile", "--timeout", "PID"],
        "status": ["--pidfile", "--json", "PID"],
    }
    for sub, wanted in flags.items():
        res = hr(*([sub] if sub else []), "--help")
        missing = [flag for flag in wanted if flag not in res.stdout]
        check(f"{sub or 'main'} --help exits 0 and mentions {' '.join(wanted)}",
              res.returncode == 0 and not missing, f"missing {missing}; {describe(res)}")
    expect("--version", hr("--version"), 0, stdout="hotrestart 0.1.0\n")


def test_targets(tmp):
    pid = dead_pid()
    for sub in ("restart", "stop", "status"):
        expect(f"{sub} of a nonexistent PID -> 3", hr(sub, str(pid)), 3, stderr_has=f"no process {pid}")
    child = sleeper()
    try:
        for sub in ("restart", "stop", "status"):
            expect(f"{sub} of a PID without control socket -> 3", hr(sub, str(child.pid)), 3,
                   stderr_has=f"{child.pid} is not running under hotrestart (no control socket)")
        pidfile = os.path.join(tmp, "live.pid")
        with open(pidfile, "w") as f:
            f.write(f"{child.pid}\n")
        expect("--pidfile of a PID without control socket -> 3", hr("status", "--pidfile", pidfile), 3,
               stderr_has="no control socket")
    finally:
        child.kill()
        child.wait(timeout=TIMEOUT)
    for name, content in (("garbage", "not a pid\n"), ("empty", ""), ("zero", "0\n")):
        path = os.path.join(tmp, f"{name}.pid")
        with open(path, "w") as f:
            f.write(content)
        res = hr("status", "--pidfile", path)
        check(f"--pidfile with {name} content -> 3, one line",
              res.returncode == 3 and len(res.stderr.splitlines()) == 1, describe(res))
    expect("--pidfile that does not exist -> 3", hr("stop", "--pidfile", os.path.join(tmp, "none.pid")),
           3, stderr_has="cannot read pidfile")


def test_run(tmp):
    lib = os.path.join(tmp, "libdummy.so")
    open(lib, "w").close()
    env = {"HOTRESTART_LIBRARY": lib}
    show = ["sh", "-c", 'echo "$LD_PRELOAD|$HOTRESTART_PIDFILE|$HOTRESTART_DRAIN_TIMEOUT'
                        '|$HOTRESTART_READY_TIMEOUT|$$|$PPID"']
    cwd = os.path.realpath(tmp)

    def launch(args, preload):
        # Start from an environment free of any hotrestart settings of the caller.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("HOTRESTART_")}
        full_env.update(env)
        full_env.pop("LD_PRELOAD", None)
        if preload is not None:
            full_env["LD_PRELOAD"] = preload
        proc = subprocess.Popen([WRAPPER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=full_env, cwd=cwd)
        out, err = proc.communicate(timeout=TIMEOUT)
        return proc, out.strip().split("|"), err

    proc, fields, err = launch(["run", "--exec", "--pidfile", "rel.pid", "--drain-timeout", "0.5",
                                "--ready-timeout", "30", "--", *show], None)
    check("run sets LD_PRELOAD to the library", fields[0] == lib, f"{fields} {err!r}")
    check("run makes the pidfile absolute", fields[1] == os.path.join(cwd, "rel.pid"), f"{fields}")
    check("run passes the timeouts", fields[2:4] == ["0.5", "30"], f"{fields}")
    check("run --exec execs: the server keeps the wrapper's PID", fields[4] == str(proc.pid),
          f"{fields} vs {proc.pid}")

    proc, fields, err = launch(["run", "--exec", "--", *show], f"/usr/lib/other.so {lib}")
    check("run prepends without duplicating", fields[0] == f"{lib}:/usr/lib/other.so", f"{fields}")
    check("run leaves unset timeouts unset", fields[1:4] == ["", "", ""], f"{fields}")

    proc, fields, err = launch(["run", "--exec", "--", WRAPPER, "run", "--exec", "--", *show], None)
    check("nested run keeps one copy of the library", fields[0] == lib, f"{fields} {err!r}")
    check("nested run --exec still execs in place", fields[4] == str(proc.pid),
          f"{fields} vs {proc.pid}")

    # The default: the wrapper's PID becomes the keeper, the server its child,
    # preloaded, with the timeouts but not the keeper's own pid file.
    proc, fields, err = launch(["run", "--pidfile", "rel.pid", "--drain-timeout", "0.5", "--",
                                *show], f"/usr/lib/other.so {lib}")
    check("run: the server is the keeper's child, the keeper has the wrapper's PID",
          len(fields) == 6 and fields[5] == str(proc.pid) and fields[4] != str(proc.pid),
          f"{fields} vs {proc.pid} {err!r}")
    check("run: the server gets the library first", fields[0] == f"{lib}:/usr/lib/other.so",
          f"{fields}")
    check("run: the keeper's pid file stays the keeper's", fields[1] == "" and fields[2] == "0.5",
          f"{fields}")
    check("run: a server that exits 0 ends the keeper with 0", proc.returncode == 0,
          f"{proc.returncode} {err!r}")

    expect("run of a missing command -> 127", hr("run", "--", "no-such-command-xyz", env=env), 127,
           stderr_has="no-such-command-xyz: not found")
    expect("run without the library -> 1",
           hr("run", "--", "true", env={"HOTRESTART_LIBRARY": os.path.join(tmp, "missing.so")}), 1,
           stderr_has="library not found")
    suid = os.path.join(tmp, "suid-true")
    with open("/bin/true", "rb") as src, open(suid, "wb") as dst:
        dst.write(src.read())
    os.chmod(suid, 0o4755)
    expect("run refuses a setuid executable -> 1", hr("run", "--", suid, env=env), 1,
           stderr_has="setuid")


STATUS = {"generation": 2,
          "listeners": [{"fd": 5, "address": "127.0.0.1:8080", "inherited": True},
                        {"fd": 7, "address": "[::]:8443", "inherited": False}],
          "connections": 3, "upgrading": False, "draining": False, "stopping": False}


def test_control(tmp):
    started = time.time() - 3725  # 1h 2m 5s ago
    server = FakeServer(tmp, {})
    pid = str(server.pid)
    status = json.dumps(dict(STATUS, pid=server.pid, started_unix=started), separators=(",", ":"))
    server.set({"restart": "ok pid=4242 ms=12.5", "status": status})
    try:
        res = hr("restart", pid)
        expect("restart ok", res, 0, stdout="restarted: new pid 4242, handover 12.5 ms\n")
        check("restart sends one 'restart' line", server.received[-1:] == ["restart\n"], server.received)
        pidfile = os.path.join(tmp, "ctl.pid")
        with open(pidfile, "w") as f:
            f.write(pid)
        expect("restart via --pidfile", hr("restart", "--pidfile", pidfile), 0,
               stdout="restarted: new pid 4242, handover 12.5 ms\n")

        server.set({"restart": "fail successor exited with status 1", "status": status})
        expect("restart fail -> 1", hr("restart", pid), 1,
               stderr_has="hotrestart: restart failed: successor exited with status 1")
        server.set({"status": status})
        start = time.monotonic()
        res = hr("restart", pid, "--timeout", "0.3")
        expect("restart without reply -> 4", res, 4, stderr_has="restart did not finish within 0.3 s")
        check("restart timeout is honoured", time.monotonic() - start < 5, "took too long")

        expect("status --json passes the line through", hr("status", pid, "--json"), 0,
               stdout=status + "\n")
        res = hr("status", pid)
        lines = res.stdout.splitlines()
        wanted = [f"pid: {pid}", "generation: 2", "listeners:", "  fd 5  127.0.0.1:8080 (inherited)",
                  "  fd 7  [::]:8443", "connections: 3", "state: serving"]
        check("status human form", res.returncode == 0 and all(w in lines for w in wanted)
              and any(l.startswith("started: ") and "(up 1h 2m " in l for l in lines), describe(res))
        server.set({"status": json.dumps(dict(STATUS, pid=server.pid, started_unix=started,
                                               upgrading=True))})
        check("status shows upgrading", "state: upgrading" in hr("status", pid).stdout)
        server.set({"status": "{not json"})
        expect("status with invalid JSON -> 1", hr("status", pid, "--json"), 1, stderr_has="invalid status")

        server.set({"stop": "fail already stopping"})
        expect("stop fail -> 1", hr("stop", pid), 1, stderr_has="stop failed: already stopping")
        server.set({"stop": "ok"})
        expect("stop while the process lingers -> 4", hr("stop", pid, "--timeout", "0.3"), 4,
               stderr_has="still running")
        # The fake exits but is not reaped: the wrapper must treat the zombie as gone.
        server.set({"stop": "ok", "exit_after": 0.3})
        expect("stop waits for exit (zombie counts as gone)", hr("stop", pid, "--timeout", "10"), 0,
               stdout=f"stopped: pid {pid}\n")
    finally:
        server.close()

    # A process squatting the name of another PID never gets to answer.
    victim = sleeper()
    squat = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        squat.bind(keeper_name(victim.pid))
        squat.listen(1)
        res = hr("restart", str(victim.pid), "--timeout", "3")
        expect("a squatter on the control name is refused -> 1", res, 1,
               stderr_has="held by another process")
    finally:
        squat.close()
        victim.kill()
        victim.wait(timeout=TIMEOUT)


def main():
    if sys.argv[1:2] == ["--serve"]:
        serve(*sys.argv[2:4])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        groups = (("usage errors", lambda: test_usage_errors(tmp)), ("help", test_help),
                  ("targets", lambda: test_targets(tmp)), ("run", lambda: test_run(tmp)),
                  ("control", lambda: test_control(tmp)))
        for name, test in groups:
            try:
                test()
            except Exception as e:  # a crash in one group must still show in the tally
                check(f"{name} tests ran to completion", False, repr(e))
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
