"""Single-process server models, python's http.server and lighttpd: several
hot restarts under load, zero client-visible errors."""

import os
import shutil
import threading
import time

from harness import (Load, Server, check, check_no_errors, count_fds, free_port, http_get,
                     pid_alive, proc_children, proc_status, server_bin, held_slow_request,
                     status_json, wait_for, SCALE)


class ExitWatch:
    """Measures how long each old generation lives after its handover."""

    def __init__(self):
        self.times = {}
        self.threads = []

    def watch(self, pid, since):
        def run():
            deadline = since + 60 * SCALE
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            self.times[pid] = (time.monotonic() - since) * 1000 if not pid_alive(pid) else None
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def wait(self, limit_s):
        for t in self.threads:
            t.join(limit_s * SCALE + 5)
        late = [p for p, ms in self.times.items() if ms is None or ms > limit_s * 1000 * SCALE]
        check(len(self.times) == len(self.threads) and not late,
              "old generation(s) %s still alive %.0f s after handover" % (late, limit_s))
        return max(self.times.values()) if self.times else None


def restart_under_load(env, name, cmd, loads, restarts=3, duration=6.0, drain_timeout=10,
                       exit_limit=None, label="close", extra_env=None, cwd=None):
    """Starts cmd under the shim, runs the loads, restarts `restarts` times
    spread over the load, and checks every restart and every request."""
    srv = Server(env, name, cmd, drain_timeout=drain_timeout, extra_env=extra_env, cwd=cwd)
    first = srv.wait_ready()
    # The load outlasts the restart schedule, so every restart is under load.
    running = [Load(duration + 120, **spec) for spec in loads]
    start = time.monotonic()
    watch = ExitWatch()
    pids = [first]
    for i in range(restarts):
        # A schedule, not a synchronisation: restarts land inside the load.
        at = start + duration * (i + 1) / (restarts + 1)
        time.sleep(max(0.0, at - time.monotonic()))
        old, new, _ms = srv.restart_ok()
        watch.watch(old, time.monotonic())
        pids.append(new)
    check(all(ld.proc.poll() is None for ld in running),
          "the load ended before the last restart (machine too slow?)")
    # The load goes on until every old generation left, so its clients
    # are then served by the last one whatever the drain took.
    exit_ms = watch.wait(exit_limit if exit_limit is not None else drain_timeout + 6)
    end = max(start + duration + 2, time.monotonic() + 1)
    results = [ld.finish(end) for ld in running]
    check(pid_alive(pids[-1]), "the last generation died: %s" % srv.tail())
    total = {k: sum(r[k] for r in results) for k in results[0] if k not in ("pids", "stderr")}
    total["stderr"] = "".join(r["stderr"] for r in results)
    total["pids"] = sum((r["pids"] for r in results), [])
    check_no_errors(total, name)
    # Each restart really moved the traffic: the last generation serves.
    if total["pids"]:
        check(pids[-1] in total["pids"], "the last generation %d served nothing (%s)" %
              (pids[-1], sorted(set(total["pids"]))))
    row = dict(total, server=name, restarts=restarts, load=label, exit_ms=exit_ms)
    srv.kill()
    return row


def tcp_model(model, **kw):
    def test(env):
        port = free_port()
        return restart_under_load(env, model, [server_bin(model), "--port", str(port)],
                                  [dict(port=port)], **kw)
    return test


def test_unix(env):
    path = env.path("unix.sock")
    row = restart_under_load(env, "unix", [server_bin("unix"), "--unix", path],
                             [dict(unix=path)])
    check(os.path.exists(path), "the socket path is gone after the old generations exited")
    return row


def test_dual(env):
    p4, p6 = free_port(), free_port()
    return restart_under_load(env, "dual", [server_bin("dual"), "--port", str(p4), "--port6",
                                            str(p6)],
                              [dict(port=p4), dict(port=p6, host="::1")])


def test_python_http_server(env):
    port = free_port()
    return restart_under_load(env, "python3 http.server",
                              ["/usr/bin/python3", "-m", "http.server", str(port), "--bind",
                               "127.0.0.1"], [dict(port=port, connections=4)], cwd=env.tmp)


def lighttpd_config(env, port):
    www = env.path("www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from lighttpd\n")
    conf = env.path("lighttpd.conf")
    with open(conf, "w") as f:
        f.write('server.document-root = "%s"\nserver.port = %d\nserver.bind = "127.0.0.1"\n'
                'index-file.names = ("index.html")\n'
                'mimetype.assign = (".html" => "text/html")\n' % (www, port))
    return conf


def test_lighttpd(env):
    port = free_port()
    conf = lighttpd_config(env, port)
    return restart_under_load(env, "lighttpd", [shutil.which("lighttpd") or "/usr/sbin/lighttpd",
                                                "-D", "-f", conf], [dict(port=port)])


def test_keepalive_drain(env):
    """Keep-alive clients must not pin the old generation: idle connections
    are closed promptly, clients retry once on a fresh connection."""
    port = free_port()
    row = restart_under_load(env, "epoll_lt", [server_bin("epoll_lt"), "--port", str(port)],
                             [dict(port=port, keepalive=True)], drain_timeout=20,
                             exit_limit=5, label="keep-alive")
    return row


def test_slow_request_in_flight(env):
    """A request the server answers after 2 s completes on the old process."""
    port = free_port()
    srv = Server(env, "threaded", [server_bin("threaded"), "--port", str(port)])
    old = srv.wait_ready()
    # Readiness signal: the old process holds the connection.
    t, result = held_slow_request(port, srv.connections)
    old2, new, _ = srv.restart_ok()
    check(old2 == old, "restarted the wrong process")
    t.join(10 * SCALE)
    status, headers, body = result["r"]
    check(status == 200, "slow request got status %d" % status)
    check(headers.get("x-pid") == str(old), "slow request served by %s, not the old %d" %
          (headers.get("x-pid"), old))
    srv.wait_gone(old, 10)
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(new), "new generation does not serve")


def test_chain_of_100(env):
    """100 successive restarts: no growth in fds, threads, zombies or memory."""
    port = free_port()
    srv = Server(env, "epoll_lt", [server_bin("epoll_lt"), "--port", str(port)])
    srv.wait_ready()
    samples = []
    load = None
    for i in range(100):
        # Load in the middle only: fd counts are compared without clients.
        if i == 2:
            load = Load(60 * SCALE, port=port, connections=2)
        if i == 98:
            load.proc.terminate()
            res = load.result()
        old, new, _ = srv.restart_ok()
        srv.wait_gone(old, 15)
        if i in (1, 99):
            samples.append((count_fds(new), proc_status(new, "Threads"),
                            proc_status(new, "VmRSS"), proc_children(new)))
    check_no_errors(res, "load during 100 restarts")
    (fd1, th1, rss1, ch1), (fd2, th2, rss2, ch2) = samples
    check(fd2 == fd1, "fds grew from %d to %d" % (fd1, fd2))
    check(th2 == th1, "threads grew from %d to %d" % (th1, th2))
    check(not ch2, "the live process has children (zombies?): %s" % ch2)
    check(rss2 <= rss1 * 1.25 + 1024, "RSS grew from %d kB to %d kB" % (rss1, rss2))
    return dict(res, server="epoll_lt (chain of 100)", restarts=100, exit_ms=None)


test_unix.quick = True
test_slow_request_in_flight.quick = True

TESTS = [("model " + m, tcp_model(m)) for m in
         ("blocking", "threaded", "threadpool", "epoll_lt", "epoll_et", "poll", "select")]
TESTS[3][1].quick = True
TESTS += [
    ("model unix (unlinks its path)", test_unix),
    ("model dual (IPv4 + IPv6)", test_dual),
    ("python3 -m http.server", test_python_http_server),
    ("lighttpd", test_lighttpd),
    ("keep-alive load drains promptly", test_keepalive_drain),
    ("slow request completes on old process", test_slow_request_in_flight),
    ("chain of 100 restarts", test_chain_of_100),
]
