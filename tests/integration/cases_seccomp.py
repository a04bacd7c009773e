"""Servers LD_PRELOAD cannot see: Go (cgo and static builds), Caddy, static C
servers. The keeper hands their listeners over through seccomp user
notification and judges their readiness from /proc; the old generation gets
its stop signal at handover."""

import os
import re
import shutil
import subprocess
import time

from cases_core import ExitWatch
from harness import (BUILD, ROOT, Load, Server, check, check_no_errors, descendants,
                     free_port, http_get, pid_alive, read_pid, start_slow_request, wait_for,
                     SCALE)

GO_SRC = os.path.join(ROOT, "tests", "go")
GO_OUT = os.path.join(BUILD, "go")


def go_binary(module, cgo):
    """Builds tests/go/MODULE once per change (not per test): cgo or static."""
    src = os.path.join(GO_SRC, module)
    out = os.path.join(GO_OUT, "%s-%s" % (module, "cgo" if cgo else "static"))
    newest = max(os.path.getmtime(os.path.join(src, f)) for f in os.listdir(src))
    if os.path.exists(out) and os.path.getmtime(out) >= newest:
        return out
    os.makedirs(GO_OUT, exist_ok=True)
    home = os.path.join(GO_OUT, "home")
    env = dict(os.environ, GOCACHE=os.path.join(BUILD, "go-cache"), GOPATH=os.path.join(home, "gopath"),
               HOME=home, GOFLAGS="-mod=mod", GOTOOLCHAIN="local", GOPROXY="off",
               CGO_ENABLED="1" if cgo else "0")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(["go", "build", "-o", out + ".tmp", "."], cwd=src, env=env,
                       capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, "go build of %s failed: %s" % (module, r.stderr[-2000:]))
    os.replace(out + ".tmp", out)
    return out


def static_server(name):
    return os.path.join(BUILD, "servers-static", name)


def check_static(path, static):
    with open(path, "rb") as f:
        elf = f.read(1 << 16)
    check((b"ld-linux" not in elf) == static, "%s: expected a %s binary" %
          (path, "static" if static else "dynamic"))


def hookless_restarts(env, name, cmd, port, slow=True, graceful=True, close_restarts=5,
                      keepalive_restarts=2, keepalive_connections=8):
    """close_restarts under connection-per-request load, then
    keepalive_restarts under keep-alive load, each with a /slow request in
    flight; then a clean stop leaving nothing behind."""
    srv = Server(env, re.sub(r"[^A-Za-z0-9_.-]+", "-", name), cmd, drain_timeout=10)
    srv.wait_ready()
    rows = []
    handovers = []
    for label, restarts, keepalive in (("close", close_restarts, False),
                                       ("keep-alive", keepalive_restarts, True)):
        # The load runs until every restart is done (stopped then, as the
        # chain test does): on a busy machine a restart takes a while.
        load = Load(120 * SCALE, port=port, keepalive=keepalive,
                    connections=keepalive_connections if keepalive else 8)
        time.sleep(0.5)
        watch = ExitWatch()
        pids = [srv.pid]
        slows = []
        for i in range(restarts):
            time.sleep(0.5)
            if slow:
                t, result = start_slow_request(port)
                # No hook counts the server's connections: give the request
                # time to be accepted, well inside its 2 s.
                time.sleep(0.3)
            old, new, ms = srv.restart_ok()
            handovers.append(ms)
            watch.watch(old, time.monotonic())
            pids.append(new)
            if slow:
                slows.append((t, result, old))
        check(load.proc.poll() is None, "the load ended before the last restart")
        time.sleep(0.5)
        load.proc.terminate()
        for i, (t, result, _old) in enumerate(slows):
            t.join(10 * SCALE)
            status, headers, _ = result.get("r", (0, {}, b""))
            check(status == 200, "%s: the /slow request in flight at restart %d got %d" %
                  (name, i + 1, status))
            # (A single-threaded server busy with the load may leave it
            # queued: the successor then serves it, which is fine too.)
        res = load.result()
        exit_ms = watch.wait(8)
        if graceful:
            check_no_errors(res, "%s (%s)" % (name, label))
        else:
            check(res["refused"] == 0 and res["ok"] > 0, "%s (%s): refused connections: %s" %
                  (name, label, res))
        check(len(set(pids)) == len(pids), "a restart kept its pid: %s" % pids)
        status, headers, _ = http_get(port)
        check(status == 200 and headers.get("x-pid") in (None, str(pids[-1])),
              "%s: a new request got %d from %s, not the last generation %d" %
              (name, status, headers.get("x-pid"), pids[-1]))
        rows.append(dict(res, server=name, restarts=restarts, load=label, exit_ms=exit_ms))
    keeper = srv.keeper
    r = srv.stop()
    check(r.returncode == 0, "stop of %s failed: %s %s" % (name, r.stdout, r.stderr))
    wait_for(lambda: not pid_alive(keeper), 10, "the keeper to exit")
    check(not descendants(keeper), "processes left after stop: %s" % descendants(keeper))
    check(read_pid(srv.pidfile) is None, "the pid file is still there")
    handovers.sort()
    for row in rows:
        row["server"] = "%s (handover median %.0f ms, max %.0f ms)" % (
            name, handovers[len(handovers) // 2], handovers[-1])
    return rows


def go_graceful(cgo):
    def test(env):
        binary = go_binary("graceful", cgo)
        check_static(binary, not cgo)
        port = free_port()
        return hookless_restarts(env, "go net/http (%s)" % ("cgo" if cgo else "CGO_ENABLED=0"),
                                 [binary, "-port", str(port)], port)
    return test


def test_go_not_graceful(env):
    """Dies at SIGTERM: requests it holds then are cut, but no connection is
    ever refused (the keeper and the successor hold the listener)."""
    binary = go_binary("graceful", False)
    port = free_port()
    return hookless_restarts(env, "go net/http without Shutdown",
                             [binary, "-port", str(port), "-graceful=false"], port,
                             slow=False, graceful=False)


def test_caddy(env):
    caddy = shutil.which("caddy")
    check(caddy, "caddy is not installed (scripts/install-deps.sh)")
    port = free_port()
    conf = env.path("Caddyfile")
    with open(conf, "w") as f:
        f.write("{\n\tadmin off\n\tauto_https off\n}\n"
                "http://127.0.0.1:%d {\n\trespond \"hello from caddy\"\n}\n" % port)
    # Caddy has no way to answer after 2 s with `respond` alone: no /slow.
    return hookless_restarts(env, "caddy", [caddy, "run", "--config", conf, "--adapter",
                                            "caddyfile"], port, slow=False)


def static_c(model):
    def test(env):
        binary = static_server(model)
        check_static(binary, True)
        port = free_port()
        # A server that serves one connection to its end leaves other
        # keep-alive clients queued for as long as that one stays busy
        # (their 5 s timeout runs out on a slow machine): one such client.
        return hookless_restarts(env, "static %s" % model, [binary, "--port", str(port)], port,
                                 keepalive_connections=1 if model == "blocking" else 8)
    return test


def test_seccomp_forced_off(env):
    """--no-seccomp: a static server runs, and restart fails with a reason."""
    port = free_port()
    srv = Server(env, "static epoll_graceful", [static_server("epoll_graceful"), "--port",
                                                str(port)], ready_timeout=1,
                 run_args=["--no-seccomp"])
    srv.wait_ready()
    check(http_get(port)[0] == 200, "the server does not serve")
    rc, out, err = srv.restart()
    check(rc == 1 and "static binary" in err and "\n" not in err.strip(),
          "restart: %d %r %r" % (rc, out, err))


test_seccomp_forced_off.quick = True

TESTS = [
    ("seccomp: go net/http cgo", go_graceful(True)),
    ("seccomp: go net/http static", go_graceful(False)),
    ("seccomp: go net/http without Shutdown", test_go_not_graceful),
    ("seccomp: caddy", test_caddy),
    ("seccomp: static blocking", static_c("blocking")),
    ("seccomp: static epoll", static_c("epoll_graceful")),
    ("seccomp: --no-seccomp refuses restarts", test_seccomp_forced_off),
]
