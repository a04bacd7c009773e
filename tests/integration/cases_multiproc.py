"""Multi-process servers and real daemons: prefork, master/worker, fork per
connection, daemonizing, nginx, node; keep-alive; calls that bypass the
obvious hooks."""

import os
import re
import shutil
import socket
import time

from cases_core import ExitWatch, lighttpd_config, restart_under_load
from harness import (Load, Server, status_json, check, check_no_errors, free_port, http_get, pid_alive,
                     proc_children, read_pid, server_bin, stat_cpu_s, wait_for, SCALE)


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def multiproc_restarts(env, name, cmd, port, restarts=3, duration=6.0, keepalive=False,
                       drain_timeout=10, exit_limit=None, app_log=None):
    """Restarts a multi-process server under load; checks zero errors, that
    the old generation (workers included) is gone, and that afterwards only
    the newest generation's processes answer."""
    srv = Server(env, name, cmd, drain_timeout=drain_timeout, app_log=app_log)
    master = srv.wait_ready()
    load = Load(duration + 120, port=port, keepalive=keepalive)
    start = time.monotonic()
    watch = ExitWatch()
    generations = [master]
    old_members = []
    for i in range(restarts):
        time.sleep(max(0.0, start + duration * (i + 1) / (restarts + 1) - time.monotonic()))
        members = [p for p, _ in proc_children(generations[-1])] + [generations[-1]]
        old, new, _ = srv.restart_ok()
        since = time.monotonic()
        for p in members:
            if p != new:
                watch.watch(p, since)
        old_members += [p for p in members if p != new]
        generations.append(new)
    check(load.proc.poll() is None, "the load ended before the last restart")
    res = load.finish(max(start + duration + 2, time.monotonic() + 1))
    exit_ms = watch.wait(exit_limit if exit_limit is not None else drain_timeout + 6)
    check_no_errors(res, name)
    check(not [p for p in old_members if pid_alive(p)], "old generation processes left")
    # Exactly one generation accepts: every answer now comes from the newest.
    newest = generations[-1]
    for _ in range(20):
        _, headers, _ = http_get(port)
        who = int(headers.get("x-pid", "0"))
        parent = ppid_of(who)
        # The answer must not come from an old generation's member or one of
        # its children. (A fork-per-connection child may be gone already, its
        # pid even reused: only a live old parent is evidence.)
        check(who not in old_members and parent not in old_members,
              "answer from pid %d (parent %s) of an old generation; newest is %d" %
              (who, parent, newest))
    srv.last_main = newest
    srv.kill()
    return dict(res, server=name, restarts=restarts, load="keep-alive" if keepalive else "close",
                exit_ms=exit_ms), srv


def model(name, keepalive=False, workers=2, **kw):
    def test(env):
        port = free_port()
        # A prefork worker holds one keep-alive client at a time: as many
        # workers as clients, or queued clients starve as they would anyway.
        row, _ = multiproc_restarts(env, name, [server_bin(name), "--port", str(port),
                                                "--workers", str(workers)], port,
                                    keepalive=keepalive, **kw)
        return row
    return test


def no_respawn_storm(name, workers):
    """Every fork is logged: over 4 generations, each forks its own workers
    once and the old ones do not respawn workers while they drain."""
    def test(env):
        port = free_port()
        row, srv = multiproc_restarts(env, name, [server_bin(name), "--port", str(port),
                                                  "--workers", str(workers)], port)
        spawned = len(re.findall(r"spawned worker", srv.log_text()))
        check(spawned == workers * 4, "%d worker forks over 4 generations, want %d "
              "(respawn storm?)" % (spawned, workers * 4))
        return row
    return test


def test_daemon(env):
    """A daemonizing server: the pid file follows the process that owns the
    listeners, and restart/stop target it."""
    port = free_port()
    own = env.path("daemon-own.pid")
    srv = Server(env, "daemon", [server_bin("daemon"), "--port", str(port), "--pidfile", own])
    first = srv.wait_ready()
    wait_for(lambda: read_pid(own), 5, "the daemon's own pid file")
    check(first == read_pid(own), "hotrestart pid file %d is not the daemon %d" %
          (first, read_pid(own)))
    check(first != srv.proc.pid, "the daemon did not daemonize")
    load = Load(4, port=port)
    for _ in range(2):
        old, new, _ = srv.restart_ok()
        srv.wait_gone(old, 10)
        srv.known.add(new)
    res = load.result()
    check_no_errors(res, "daemon")
    new = srv.pid
    check(http_get(port)[1].get("x-pid") == str(new), "the newest daemon does not serve")
    r = srv.stop()
    check(r.returncode == 0, "stop failed: %s" % r.stderr)
    check(not pid_alive(new), "daemon still alive after stop")
    return dict(res, server="daemon (double fork)", restarts=2, exit_ms=None)


def test_shutdown_at_exit(env):
    """A server that shutdown()s its listener at exit must not take it away
    from the successor."""
    port = free_port()
    return restart_under_load(env, "shutdown_exit",
                              [server_bin("shutdown_exit"), "--port", str(port)],
                              [dict(port=port)])


def nginx_conf(env, port, daemon):
    www = env.path("www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from nginx\n")
    conf = env.path("nginx.conf")
    with open(conf, "w") as f:
        f.write("""
master_process on;
worker_processes 2;
daemon %s;
pid %s;
error_log %s info;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_timeout 65;
    server {
        listen 127.0.0.1:%d;
        root %s;
        location / { add_header X-Pid $pid; }
    }
}
""" % ("on" if daemon else "off", env.path("nginx-own.pid"), env.path("nginx-error.log"),
            port, www))
    return conf


def nginx_test(daemon, keepalive=False):
    def test(env):
        port = free_port()
        conf = nginx_conf(env, port, daemon)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        row, srv = multiproc_restarts(env, "nginx" + (" daemon on" if daemon else ""),
                                      [nginx, "-p", env.tmp, "-c", conf], port,
                                      keepalive=keepalive, app_log=env.path("nginx-error.log"))
        if daemon:
            # nginx's own pid file, rewritten by each new master, survives
            # the old masters' exits.
            check(read_pid(env.path("nginx-own.pid")) == srv.last_main,
                  "nginx's pid file says %s, the live master is %s" %
                  (read_pid(env.path("nginx-own.pid")), srv.pid))
        return row
    return test


def test_node(env, keepalive=False):
    node = shutil.which("node") or shutil.which("nodejs")
    check(node, "node is not installed")
    port = free_port()
    script = env.path("server.js")
    with open(script, "w") as f:
        f.write("""
const http = require('http');
http.createServer((req, res) => {
  const body = 'pid ' + process.pid + ' node\\n';
  res.writeHead(200, {'Content-Type': 'text/plain', 'X-Pid': String(process.pid),
                      'Content-Length': Buffer.byteLength(body)});
  res.end(body);
}).listen(%d, '127.0.0.1');
""" % port)
    if keepalive:
        # libuv stops reading at a short read: node is never seen waiting
        # for the next request, so its busy keep-alive connections move at
        # the drain timeout (short here), when the looser rule of a drain
        # overdue applies (shim/idle.h) instead of the stop signal.
        return restart_under_load(env, "node http", [node, script],
                                  [dict(port=port, keepalive=True)], drain_timeout=1.5,
                                  exit_limit=6, label="keep-alive")
    return restart_under_load(env, "node http", [node, script], [dict(port=port)])


TESTS = [
    ("prefork (no respawn storm)", no_respawn_storm("prefork", 3)),
    ("master/worker epoll (no respawn storm)", no_respawn_storm("master", 2)),
    ("fork per connection", model("forkconn")),
    ("daemonizing server", test_daemon),
    ("shutdown() of listener at exit", test_shutdown_at_exit),
    ("nginx master_process daemon off", nginx_test(False)),
    ("nginx daemon on", nginx_test(True)),
    ("node http.createServer", test_node),
    ("keep-alive: prefork", model("prefork", keepalive=True, workers=8, drain_timeout=20,
                                  exit_limit=5)),
    ("keep-alive: master/worker", model("master", keepalive=True, drain_timeout=20,
                                        exit_limit=5)),
    ("keep-alive: nginx", nginx_test(False, keepalive=True)),
    ("keep-alive: node", lambda env: test_node(env, keepalive=True)),
]


def bypass(mode):
    """Keep-alive restarts of a server that closes, dups and accepts around
    the obvious calls: zero errors, and the old generation leaves promptly,
    which it only does if every connection was tracked to its close."""
    def test(env):
        port = free_port()
        return restart_under_load(env, "bypass --mode " + mode,
                                  [server_bin("bypass"), "--mode", mode, "--port", str(port)],
                                  [dict(port=port, keepalive=True)], drain_timeout=20,
                                  exit_limit=6, label="keep-alive")
    return test


TESTS += [("bypass: " + m, bypass(m)) for m in ("closefrom", "close-range", "dup", "syscall")]


def short_paths_live(pid):
    """Whether the library's hooks take their short paths in pid: a page of
    the generation region is then mapped inside the address range of the
    library's own mappings (shim/gen.h)."""
    def span(line):
        lo, hi = line.split()[0].split("-")
        return int(lo, 16), int(hi, 16)
    with open("/proc/%d/maps" % pid) as f:
        lines = f.read().splitlines()
    library = [span(line) for line in lines if "/libhotrestart.so" in line]
    if not library:
        return False
    first, last = min(lo for lo, _ in library), max(hi for _, hi in library)
    return any(first < span(line)[0] < last for line in lines
               if "hotrestart-generation" in line)


def test_listener_in_unseen_epoll_set(env):
    """Steady, the epoll_ctl() hook notes nothing. A listener the app adds,
    once it is up, to an epoll set made by a raw system call must still be
    taken out of that set when its generation stops accepting: else the old
    generation's level-triggered loop spins on every connection queued for
    its successor."""
    port = free_port()
    flag = env.path("late-%d" % port)
    srv = Server(env, "bypass_late", [server_bin("bypass"), "--mode", "late", "--late-flag", flag,
                                      "--port", str(port)], drain_timeout=20)
    old = srv.wait_ready()
    wait_for(lambda: short_paths_live(old), 10, "the hooks' short paths to go live")
    open(flag, "w").close()
    wait_for(lambda: "late: the listener is in the epoll set" in srv.log_text(), 10,
             "the listener to join the raw epoll set")
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(old), "the first generation does not serve")
    # A first request left unfinished: never idle, it holds the old
    # generation until the test completes it.
    partial = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    partial.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
    wait_for(lambda: srv.connections() >= 1, 10, "the unfinished request to be held")
    os.unlink(flag)  # the successor waits without its listener: nobody accepts
    old2, new, _ = srv.restart_ok()
    check(old2 == old, "restarted the wrong process")
    queued = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    before = stat_cpu_s("/proc/%d/stat" % old)
    time.sleep(1.0)  # a window of wall time to measure CPU in: no event to wait for
    spent = stat_cpu_s("/proc/%d/stat" % old) - before
    check(spent < 0.3, "the draining generation spent %.2f s of CPU in 1 s on the listener "
          "still in its epoll set" % spent)
    open(flag, "w").close()
    queued.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    answer = queued.recv(4096)
    check(b" 200 " in answer.split(b"\r\n", 1)[0] and b"x-pid: %d" % new in answer.lower(),
          "the queued connection was not served by the successor: %r" % answer[:200])
    partial.sendall(b"Connection: close\r\n\r\n")
    answer = partial.recv(4096)
    check(b" 200 " in answer.split(b"\r\n", 1)[0] and b"x-pid: %d" % old in answer.lower(),
          "the held request was not finished by the old generation: %r" % answer[:200])
    for s in (queued, partial):
        s.close()
    srv.wait_gone(old, 10)


TESTS.append(("bypass: listener added late to a raw epoll set", test_listener_in_unseen_epoll_set))


def hold_keepalive(port, n):
    """n client connections that each completed one keep-alive exchange."""
    import socket
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            check(chunk, "server closed a keep-alive connection")
            data += chunk
        socks.append(s)
    return socks


def hooks_reached(name, make_cmd, app_log=None):
    """The accept and close hooks are really called in a real daemon: the
    shim counts the clients' connections, then sees them closed."""
    def test(env):
        port = free_port()
        cmd, log = make_cmd(env, port)
        srv = Server(env, name, cmd, app_log=log)
        srv.wait_ready()

        def conns():
            return status_json(srv.pidfile)["connections"]
        socks = hold_keepalive(port, 5)
        wait_for(lambda: conns() == 5, 5, "the shim to count 5 connections (it sees %d)" %
                 conns())
        for s in socks:
            s.close()
        wait_for(lambda: conns() == 0, 10, "the shim to see them closed (it sees %d)" %
                 conns())
    return test


def nginx_cmd(env, port):
    return ([shutil.which("nginx") or "/usr/sbin/nginx", "-p", env.tmp, "-c",
             nginx_conf(env, port, False)], env.path("nginx-error.log"))


def lighttpd_cmd(env, port):
    return [shutil.which("lighttpd") or "/usr/sbin/lighttpd", "-D", "-f",
            lighttpd_config(env, port)], None


def node_cmd(env, port):
    script = env.path("ka.js")
    with open(script, "w") as f:
        f.write("require('http').createServer((q, r) => r.end('ok\\n'))"
                ".listen(%d, '127.0.0.1');\n" % port)
    return [shutil.which("node") or shutil.which("nodejs"), script], None


def python_cmd(env, port):
    # ThreadingHTTPServer speaking HTTP/1.1, so connections stay open.
    script = env.path("ka.py")
    with open(script, "w") as f:
        f.write("import http.server as h\n"
                "class H(h.SimpleHTTPRequestHandler):\n    protocol_version = 'HTTP/1.1'\n"
                "h.ThreadingHTTPServer(('127.0.0.1', %d), H).serve_forever()\n" % port)
    return ["/usr/bin/python3", script], None


TESTS += [("hooks reached: " + n, hooks_reached(n, f)) for n, f in
          (("nginx", nginx_cmd), ("lighttpd", lighttpd_cmd), ("node", node_cmd),
           ("python", python_cmd))]

TESTS[0][1].quick = True
