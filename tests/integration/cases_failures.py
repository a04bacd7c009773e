"""Failure paths and signal handling: a failed successor changes nothing
for clients; stop drains; the app keeps its own signal handlers."""

import os
import re
import signal
import socket
import subprocess
import time

from harness import (Load, Server, check, check_no_errors, deploy, free_port, http_get,
                     pid_alive, read_pid, server_bin, held_slow_request, status_json,
                     wait_for, SCALE)


def test_failed_successors(env):
    port = free_port()
    exe = env.path("server")
    deploy(server_bin("epoll_lt"), exe)
    srv = Server(env, "epoll_lt", [exe, "--port", str(port)], ready_timeout=2)
    first = srv.wait_ready()
    load = Load(14, port=port)
    cases = [
        ("fail_exit1", r"exited with status 1"),
        ("fail_crash", r"killed by signal 11"),
        ("fail_nobind", r"not ready within 2\.0 s"),
        (None, r"cannot execute .*server: No such file or directory"),
    ]
    for binary, reason in cases:
        if binary:
            deploy(server_bin(binary), exe)
        else:
            os.remove(exe)
        rc, out, err = srv.restart(timeout=20)
        check(rc == 1, "%s: restart exited %d, want 1 (%s %s)" % (binary, rc, out, err))
        check(re.search(reason, err), "%s: reason %r does not match %r" % (binary, err, reason))
        check(err.count("\n") == 0, "%s: reason is not one line: %r" % (binary, err))
        check(srv.pid == first and pid_alive(first), "%s: the old process is gone" % binary)
        status, headers, _ = http_get(port)
        check(status == 200 and headers.get("x-pid") == str(first),
              "%s: the old process does not serve" % binary)
    deploy(server_bin("epoll_lt"), exe)
    old, new, _ = srv.restart_ok()
    check(old == first, "restarted from the wrong process")
    res = load.result()
    check_no_errors(res, "load across failed upgrades")
    return dict(res, server="epoll_lt, 4 failed + 1 good upgrade", restarts=5, exit_ms=None)


def test_stop_drains(env):
    """SIGTERM: stop accepting, finish the in-flight request, exit, remove
    the pid file."""
    port = free_port()
    srv = Server(env, "threaded", [server_bin("threaded"), "--port", str(port)])
    pid = srv.wait_ready()
    t, result = held_slow_request(port, srv.connections)
    keeper = srv.keeper
    os.kill(keeper, signal.SIGTERM)
    wait_for(lambda: status_json(srv.pidfile)["stopping"], 5, "the stop to begin")
    t.join(10 * SCALE)
    check(result["r"][0] == 200, "in-flight request failed during stop: %r" % (result["r"],))
    srv.wait_gone(pid, 10)
    srv.wait_gone(keeper, 10)
    check(srv.proc.wait(5) == 0, "the keeper exited %s after a graceful stop" % srv.proc.poll())
    check(not os.path.exists(srv.pidfile), "pid file left behind after a graceful stop")


def test_wrapper_stop(env):
    port = free_port()
    srv = Server(env, "epoll_et", [server_bin("epoll_et"), "--port", str(port)])
    pid = srv.wait_ready()
    r = srv.stop()
    check(r.returncode == 0, "hotrestart stop exited %d: %s" % (r.returncode, r.stderr))
    check(not pid_alive(pid), "process still alive after stop returned")
    check(not os.path.exists(srv.pidfile), "pid file left behind")


def test_app_signal_handlers(env):
    """The app installs its own USR2/HUP/TERM handlers after binding. Sent to
    the service (the keeper): USR2 restarts, HUP reaches the app, TERM
    drains and then runs the app's handler."""
    port = free_port()
    srv = Server(env, "blocking", [server_bin("blocking"), "--port", str(port),
                                   "--app-signals"])
    srv.wait_ready()
    old, new, _ = srv.restart_ok()
    srv.wait_gone(old, 10)
    check("app: got signal 12" not in srv.log_text(), "the app's USR2 handler ran on restart")
    os.kill(srv.keeper, signal.SIGHUP)
    wait_for(lambda: "app: got signal 1\n" in srv.log_text() or
             "app: got signal 1 " in srv.log_text(), 5, "the app's HUP handler")
    os.kill(srv.keeper, signal.SIGTERM)
    srv.wait_gone(new, 10)
    log = srv.log_text()
    check("app: got SIGTERM" in log, "the app's TERM handler did not run")
    check(log.index("stop signal received") < log.rindex("app: got SIGTERM"),
          "the app's TERM handler ran before the shim's drain")


def test_repeated_signals(env):
    """USR2 sent repeatedly during an upgrade starts one successor only."""
    port = free_port()
    srv = Server(env, "threaded", [server_bin("threaded"), "--port", str(port)])
    first = srv.wait_ready()
    for _ in range(3):
        os.kill(srv.keeper, signal.SIGUSR2)
    new = wait_for(lambda: srv.pid != first and srv.pid, 10, "the handover")
    srv.wait_gone(first, 10)
    log = srv.log_text()
    check(log.count("upgrade: started") == 1,
          "%d successors started" % log.count("upgrade: started"))
    check(pid_alive(new) and http_get(port)[0] == 200, "the successor does not serve")


def test_custom_restart_signal(env):
    """HOTRESTART_SIGNAL=HUP: HUP restarts, and USR2 is the app's again."""
    port = free_port()
    srv = Server(env, "blocking", [server_bin("blocking"), "--port", str(port),
                                   "--app-signals"], extra_env={"HOTRESTART_SIGNAL": "HUP"})
    first = srv.wait_ready()
    os.kill(srv.keeper, signal.SIGUSR2)
    wait_for(lambda: "app: got signal 12" in srv.log_text(), 5, "the app's USR2 handler")
    check(srv.pid == first, "USR2 restarted the server")
    os.kill(srv.keeper, signal.SIGHUP)
    new = wait_for(lambda: srv.pid != first and srv.pid, 10, "HUP to restart the server")
    check(pid_alive(new) and http_get(port)[1].get("x-pid") == str(new),
          "the successor started by HUP does not serve")


def test_bad_config_runs_without_shim(env):
    """A malformed variable: one clear line, and the server runs as if the
    shim were absent (no pid file, serves normally)."""
    port = free_port()
    log = env.path("badcfg.log")
    penv = env.preload_env({"HOTRESTART_DRAIN_TIMEOUT": "abc",
                            "HOTRESTART_PIDFILE": env.path("bad.pid")})
    penv["LD_PRELOAD"] = ":".join(filter(None, [penv.get("LD_PRELOAD"), env.lib]))
    with open(log, "wb") as f:
        p = subprocess.Popen([server_bin("epoll_lt"), "--port", str(port)], stdout=f,
                             stderr=subprocess.STDOUT, env=penv)
    try:
        wait_for(lambda: _serves(port), 10, "the server to serve")
        text = open(log).read()
        lines = [ln for ln in text.splitlines() if ln.startswith("hotrestart[")]
        check(len(lines) == 1 and "HOTRESTART_DRAIN_TIMEOUT" in lines[0] and
              "disabled" in lines[0], "expected one clear line, got %r" % lines)
        check(not os.path.exists(env.path("bad.pid")), "a disabled shim wrote a pid file")
    finally:
        p.kill()
        p.wait()


def _serves(port):
    try:
        return http_get(port, timeout=1)[0] == 200
    except OSError:
        return False


def test_malformed_listen_fds(env):
    """LISTEN_FDS naming fds that are not sockets: one line, the server binds
    its own socket and serves."""
    port = free_port()
    log = env.path("listenfds.log")
    penv = env.preload_env({"LISTEN_FDNAMES": "a:b"})
    penv["LD_PRELOAD"] = ":".join(filter(None, [penv.get("LD_PRELOAD"), env.lib]))
    cmd = 'LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" --port "$1" 3</dev/null 4</dev/null'
    with open(log, "wb") as f:
        p = subprocess.Popen(["/bin/sh", "-c", cmd, server_bin("epoll_lt"), str(port)],
                             stdout=f, stderr=subprocess.STDOUT, env=penv)
    try:
        wait_for(lambda: _serves(port), 10, "the server to serve")
        text = open(log).read()
        check("fd 3 is not a socket" in text and "ignored" in text,
              "no clear message about LISTEN_FDS: %r" % text)
    finally:
        p.kill()
        p.wait()


test_failed_successors.quick = True
test_stop_drains.quick = True

def test_control_clients(env):
    """Issue 13 item 12: silent control clients (more than the keeper's
    slots) never block an operator's command, and a line starting with NUL
    is answered and closed."""
    port = free_port()
    srv = Server(env, "epoll_et", [server_bin("epoll_et"), "--port", str(port)])
    srv.wait_ready()
    name = "\0hotrestart-keeper.%d.%d" % (os.stat("/proc/self/ns/pid").st_ino, srv.keeper)
    silent = []
    try:
        for _ in range(40):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(name)
            silent.append(c)
        start = time.monotonic()
        info = status_json(srv.pidfile)
        check(info["keeper_pid"] == srv.keeper, "status behind 40 silent clients: %r" % info)
        check(time.monotonic() - start < 3 * SCALE, "status waited %.1f s behind silent clients" %
              (time.monotonic() - start))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(10 * SCALE)
            c.connect(name)
            c.sendall(b"\0status\n")
            check(c.recv(100).startswith(b"fail"), "a NUL line was not refused")
        old, new, _ = srv.restart_ok()
    finally:
        for c in silent:
            c.close()


TESTS = [
    ("control: silent clients and a NUL line", test_control_clients),
    ("failed successors leave the old serving", test_failed_successors),
    ("SIGTERM drains in-flight requests", test_stop_drains),
    ("hotrestart stop", test_wrapper_stop),
    ("app's own signal handlers", test_app_signal_handlers),
    ("repeated USR2 starts one successor", test_repeated_signals),
    ("HOTRESTART_SIGNAL=HUP", test_custom_restart_signal),
    ("bad HOTRESTART_* value: shim off", test_bad_config_runs_without_shim),
    ("malformed LISTEN_FDS: ignored", test_malformed_listen_fds),
]
