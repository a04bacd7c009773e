"""Listeners made anywhere (issue 9): whichever process of a generation
binds, listens, forks, execs or daemonizes, the keeper keeps one service.
Each server model in tests/servers/ and each real daemon (varnish -F, squid
--foreground, uvicorn --workers 2, haproxy -W) is restarted 3 times under a
load of one connection per request: every restart changes the main PID, no
client sees an error, `hotrestart stop` exits 0 and no process of any
generation is left (found by an environment marker every process of the
test inherits, and as descendants of the keeper)."""

import os
import re
import shutil
import signal
import subprocess
import time
import uuid

from cases_guards import squid_setup
from cases_keeper import TAG, tagged
from harness import (Load, OpenLoad, Server, check, check_no_errors, descendants, free_port,
                     http_get, pid_alive, server_bin, status_json, wait_for, SCALE)

SYSTEM_PYTHON = "/usr/bin/python3"  # the one python3-uvicorn is installed for


class Topology:
    """A server under the keeper, with a marker in the environment of every
    process it starts."""

    def __init__(self, env, name, cmd, ready_timeout=10, extra_env=None, app_log=None):
        self.tag = "%s.%s" % (re.sub(r"\W", "_", name), uuid.uuid4().hex[:12])
        penv = dict(extra_env or {}, **{TAG: self.tag})
        self.name = name
        self.srv = Server(env, name, cmd, drain_timeout=10, ready_timeout=ready_timeout,
                          extra_env=penv, app_log=app_log)
        self.srv.wait_ready(ready_timeout + 15)
        self.keeper = self.srv.keeper

    def processes(self):
        """Every live process of the service but the keeper."""
        return set(tagged(self.tag)) - {self.keeper}

    def generation(self):
        return status_json(self.keeper)["generation"]

    def restart_ok(self):
        before = self.generation()
        old, new, _ms = self.srv.restart_ok()
        check(self.generation() > before, "generation did not advance past %d" % before)
        return old, new

    def stop_clean(self):
        r = self.srv.stop()
        check(r.returncode == 0, "stop of %s exited %d: %s %s\nlog:\n%s" %
              (self.name, r.returncode, r.stdout, r.stderr, self.srv.tail(25)))
        wait_for(lambda: not pid_alive(self.keeper), 10, "the keeper to exit")
        left = sorted(set(tagged(self.tag)) | set(descendants(self.keeper)))
        check(not left, "processes left after stop: %s" % describe(left))


def describe(pids):
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out.append("%d %s" % (pid, f.read().replace(b"\0", b" ").decode()[:80]))
        except OSError:
            out.append(str(pid))
    return "; ".join(out)


def under_load(env, name, cmd, port, path="/", connections=4, restarts=3, between=None,
               ready_timeout=10, extra_env=None, app_log=None, after=None):
    """The common run: restarts under load, no error, a clean stop, nothing
    left. between(t, i) runs before restart i (0-based)."""
    t = Topology(env, name, cmd, ready_timeout, extra_env, app_log)
    load = OpenLoad(port=port, path=path, connections=connections)
    failed = 0
    for i in range(restarts):
        time.sleep(1)
        if between:
            failed += between(t, i) or 0
        t.restart_ok()
    time.sleep(1)
    check(load.running(), "the load ended before the last restart")
    res = load.stop()
    check_no_errors(res, name)
    if after:
        after(t)
    t.stop_clean()
    return dict(res, server=name, restarts=restarts, load="close")


def test_split_listen(env):
    port = free_port()
    return under_load(env, "split_listen (bind in parent, listen in child)",
                      [server_bin("split_listen"), "--port", str(port)], port)


def test_worker_listen(env):
    port = free_port()
    return under_load(env, "worker_listen (listener made by a forked worker)",
                      [server_bin("worker_listen"), "--port", str(port)], port)


def test_exec_workers(env):
    port = free_port()
    return under_load(env, "exec_workers (workers exec'd with the listener fd)",
                      [server_bin("exec_workers"), "--port", str(port), "--workers", "2"], port)


def reload_by_sighup(t, i):
    """The app's own reload: the master re-execs itself (same PID), and the
    service stays the same generation with the same main process."""
    main, gen = status_json(t.keeper)["main_pid"], t.generation()
    workers = set(descendants(main))
    os.kill(t.keeper, signal.SIGHUP)  # forwarded to the main process
    wait_for(lambda: set(descendants(main)) - workers and
             not (set(descendants(main)) & workers), 10, "the reloaded master's new worker")
    info = status_json(t.keeper)
    check(info["main_pid"] == main and info["generation"] == gen,
          "a reload changed the service: %s" % info)


def test_reexec(env):
    port = free_port()
    return under_load(env, "reexec (master re-execs itself, start-up and SIGHUP)",
                      [server_bin("reexec"), "--port", str(port)], port,
                      between=reload_by_sighup)


def test_daemon_libc(env):
    port = free_port()
    return under_load(env, "daemon_libc (glibc daemon(), then listen)",
                      [server_bin("daemon_libc"), "--port", str(port)], port)


def test_daemon_libc_listen_first(env):
    port = free_port()
    return under_load(env, "daemon_libc --listen-first (listen, then daemon())",
                      [server_bin("daemon_libc"), "--listen-first", "--port", str(port)], port)


def test_daemon_fail(env):
    """A broken configuration is deployed between restarts: the successor's
    daemon child exits 1 after its parent exited 0, leaving a helper. The
    restart fails naming the process, nothing of that generation is left,
    and the old generation serves on; the next restarts succeed."""
    port = free_port()
    flag = env.path("broken")

    def broken_once(t, i):
        if i != 1:
            return 0
        before = t.processes()
        main = status_json(t.keeper)["main_pid"]
        open(flag, "w").close()
        start = time.monotonic()
        rc, out, err = t.srv.restart()
        os.unlink(flag)
        check(rc == 1, "restart with a broken configuration: %d %s %s" % (rc, out, err))
        check(re.search(r"its process pid \d+ then exited with status 1", err) and
              time.monotonic() - start < 5,
              "the failure does not say which process did what, or took the ready timeout: "
              "%r" % err)
        wait_for(lambda: t.processes() <= before, 5,
                 "the failed generation's processes to end (left: %s)" %
                 describe(sorted(t.processes() - before)))
        check(status_json(t.keeper)["main_pid"] == main, "the failed restart changed the main pid")
        check(http_get(port)[0] == 200, "the old generation no longer serves")
        return 1

    return under_load(env, "daemon_fail (successor fails after its fork)",
                      [server_bin("daemon_fail"), "--broken-flag", flag, "--port", str(port)],
                      port, between=broken_once)


# ---- real daemons ----

def test_varnish(env):
    port, backend_port = free_port(), free_port()
    backend = subprocess.Popen([server_bin("epoll_lt"), "--port", str(backend_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_get(backend_port)[0] == 200 if _connects(backend_port) else False,
                 5, "the backend")
        workdir = env.path("varnish")
        os.makedirs(workdir)
        os.chmod(env.tmp, 0o777)
        return under_load(env, "varnish -F (manager binds, child listens)",
                          [shutil.which("varnishd") or "/usr/sbin/varnishd", "-F", "-n", workdir,
                           "-a", "127.0.0.1:%d" % port, "-b", "127.0.0.1:%d" % backend_port,
                           "-s", "malloc,16m"], port,
                          ready_timeout=20)
    finally:
        backend.kill()
        backend.wait()


def _connects(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_squid_foreground(env):
    port = free_port()
    squid, conf, cache_log = squid_setup(env, port)
    # The master (real uid proxy, effective uid root) execs its kid, which
    # makes the listener, in secure-execution mode: the loader ignores
    # LD_PRELOAD there. A known limit (README): the restart fails and says
    # which process listens without the library; the service serves on.
    t = Topology(env, "squid --foreground (master + exec'd kid)",
                 [squid, "--foreground", "-f", conf], ready_timeout=5, app_log=cache_log)
    wait_for(lambda: _connects(port), 10, "squid's kid to listen")
    load = OpenLoad(port=port, path="/squid-internal-static/icons/silk/bullet_red.png",
                    connections=4)
    time.sleep(1)
    rc, out, err = t.srv.restart()
    check(rc == 1 and re.search(r"pid \d+ listens on 127\.0\.0\.1:%d without the library "
                                r"loaded.*secure-execution" % port, err),
          "squid --foreground: no clean, explained failure: %d %r %r" % (rc, out, err))
    time.sleep(1)
    check(load.running(), "the load ended early")
    res = load.stop()
    check_no_errors(res, t.name)
    t.stop_clean()
    return dict(res, server=t.name + ": restart refused (known limit)", restarts=0, load="close")


ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\\n"})
'''


def test_uvicorn(env):
    port = free_port()
    with open(env.path("asgiapp.py"), "w") as f:
        f.write(ASGI_APP)
    return under_load(env, "uvicorn --workers 2 (exec'd workers)",
                      [SYSTEM_PYTHON, "-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1",
                       "--port", str(port), "--app-dir", env.tmp, "--no-access-log",
                       "asgiapp:app"], port, ready_timeout=20)


HAPROXY_CFG = ("global\n    maxconn 256\n"
               "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
               "    timeout server 5s\n"
               "frontend fe\n    bind 127.0.0.1:%d\n"
               "    http-request return status 200 content-type text/plain string ok\n")


def test_haproxy(env):
    port = free_port()
    cfg = env.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG % port)
    return under_load(env, "haproxy -W (master re-execs itself)",
                      [shutil.which("haproxy") or "/usr/sbin/haproxy", "-W", "-db", "-f", cfg],
                      port, ready_timeout=20)


def test_haproxy_reload(env):
    """haproxy's own reload (SIGHUP: the master re-execs itself, a new
    worker takes the listener) stays inside one generation. A hot restart
    after such a reload is a known limit (README)."""
    port = free_port()
    cfg = env.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG % port)
    t = Topology(env, "haproxy -W reload (SIGHUP)",
                 [shutil.which("haproxy") or "/usr/sbin/haproxy", "-W", "-db", "-f", cfg], 20)
    load = OpenLoad(port=port, connections=4)
    for i in range(3):
        time.sleep(1)
        reload_by_sighup(t, i)
    time.sleep(1)
    check(load.running(), "the load ended before the last reload")
    res = load.stop()
    check_no_errors(res, t.name)
    t.stop_clean()
    return dict(res, server=t.name + ": 3 reloads, no restart", restarts=0, load="close")


TESTS = [
    ("topology split_listen", test_split_listen),
    ("topology worker_listen", test_worker_listen),
    ("topology exec_workers", test_exec_workers),
    ("topology reexec", test_reexec),
    ("topology daemon_libc", test_daemon_libc),
    ("topology daemon_libc listen-first", test_daemon_libc_listen_first),
    ("topology daemon_fail", test_daemon_fail),
    ("topology varnish -F", test_varnish),
    ("topology squid --foreground", test_squid_foreground),
    ("topology uvicorn --workers 2", test_uvicorn),
    ("topology haproxy -W", test_haproxy),
    ("topology haproxy -W reload", test_haproxy_reload),
]
