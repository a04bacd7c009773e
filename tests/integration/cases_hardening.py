"""Accept and drain corner cases: an app that ends its accept loop by
closing the listener from its TERM handler, accept loops with a receive
timeout, and responses still being streamed when the restart comes."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (Load, Server, check, check_no_errors, deploy, free_port, http_get,
                     pid_alive, proc_children, server_bin, held_slow_request, stat_cpu_s, status_json,
                     wait_for, SCALE, WRAPPER)


def term_close(how):
    """The old generation leaves through the app's own clean-up: its TERM
    handler (plain signal(), so SA_RESTART) closes or shuts down the
    listener its main thread is parked on in accept()."""
    def test(env):
        port = free_port()
        # A grace far longer than the waits below: SIGKILL cannot pass for a clean exit.
        srv = Server(env, "term_close", [server_bin("term_close"), "--port", str(port)],
                     extra_env={"CLOSE_HOW": how, "HOTRESTART_STOP_GRACE": "30"})
        srv.wait_ready()
        old, new, _ = srv.restart_ok()
        srv.wait_gone(old, 10)
        log = srv.log_text()
        check("pid %d: clean exit" % old in log,
              "the old generation did not go through its clean-up:\n%s" % srv.tail())
        status, headers, _ = http_get(port)
        check(status == 200 and headers.get("x-pid") == str(new), "new generation does not serve")
        r = srv.stop()
        check(r.returncode == 0, "stop failed: %s %s" % (r.stdout, r.stderr))
        check("pid %d: clean exit" % new in srv.log_text(),
              "a stopped generation did not go through its clean-up:\n%s" % srv.tail())
    return test


def timeouts_of(srv, pid):
    return len(re.findall(r"pid %d timeouts \d+" % pid, srv.log_text()))


def test_rcvtimeo(env):
    """An accept loop with SO_RCVTIMEO sees its timeouts: running, while it
    drains after the successor made the shared listener non-blocking, and
    as a successor that inherited the non-blocking listener."""
    port = free_port()
    exe = env.path("server")
    deploy(server_bin("rcvtimeo"), exe)
    srv = Server(env, "rcvtimeo", [exe, "--port", str(port)])
    first = srv.wait_ready()
    wait_for(lambda: timeouts_of(srv, first) >= 3, 3, "accept() timeouts (log: %s)" % srv.tail())

    # The old generation drains as long as this request is incomplete.
    held = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    wait_for(lambda: srv.connections() >= 1, 5,
             "the held request to be accepted")
    deploy(server_bin("epoll_lt"), exe)
    srv.restart_ok()
    seen = timeouts_of(srv, first)
    wait_for(lambda: timeouts_of(srv, first) >= seen + 2, 2,
             "accept() timeouts in the draining generation (log: %s)" % srv.tail())
    held.sendall(b"\r\n")
    answer = held.recv(65536)
    held.close()
    check(b"X-Pid: %d" % first in answer, "held request: %r" % answer[:200])
    srv.wait_gone(first, 10)
    check("pid %d: clean exit" % first in srv.log_text(), "first generation: no clean exit")

    deploy(server_bin("rcvtimeo"), exe)
    _, third, _ = srv.restart_ok()
    wait_for(lambda: timeouts_of(srv, third) >= 3, 3,
             "accept() timeouts on the inherited non-blocking listener (log: %s)" % srv.tail())
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(third), "third generation does not serve")


STREAMS = 8


def stream_client(port, halfway, result):
    """GET / and read to the end; sets halfway once half the body is in."""
    body = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                body = data.partition(b"\r\n\r\n")[2]
                if len(body) >= 1000:
                    halfway.set()
    except OSError as e:
        result["error"] = str(e)
    halfway.set()
    result["body"] = len(body)


def streamed(mode):
    """Responses the server is still writing when the restart comes (it
    watches the client socket meanwhile and aborts on end of input) finish
    in full: such a connection is not idle."""
    def test(env):
        port = free_port()
        srv = Server(env, "stream", [server_bin("stream"), "--port", str(port)],
                     extra_env={"STREAM_READ": mode})
        old = srv.wait_ready()
        clients = []
        for _ in range(STREAMS):
            halfway, result = threading.Event(), {}
            t = threading.Thread(target=stream_client, args=(port, halfway, result))
            t.start()
            clients.append((t, halfway, result))
        for _, halfway, _ in clients:
            check(halfway.wait(5 * SCALE), "no response started")
        _, new, _ = srv.restart_ok()
        for t, _, _ in clients:
            t.join(10 * SCALE)
        cut = [r for _, _, r in clients if r.get("body") != 2000]
        aborted = srv.log_text().count("response aborted")
        check(not cut and not aborted, "%d of %d streamed responses cut short (%d aborted by "
              "the server): %s" % (len(cut), STREAMS, aborted, cut[:3]))
        srv.wait_gone(old, 10)
        status, headers, _ = http_get(port)
        check(headers.get("x-pid") == str(new), "new generation does not serve")
    return test


test_rcvtimeo.quick = True

def eintr_fatal(model):
    """Issue 13 item 1: an app with no signal handler that treats EINTR from
    its wait (epoll_wait(), poll(), select()) as fatal. Under the keeper its
    restarts and stop never install a handler in it, and the old
    generation's drain work happens in its own waits with the keeper's wake
    absorbed, the steady state's short paths included: a request in flight
    on the old generation completes at every restart and at the stop."""
    def test(env):
        return test_eintr_fatal(env, model)
    return test


def test_eintr_fatal(env, model):
    port = free_port()
    srv = Server(env, "eintr_" + model, [server_bin(model), "--port", str(port), "--eintr-fatal"])
    srv.wait_ready()
    load = Load(120, port=port)
    for _ in range(3):
        t, result = held_slow_request(port, srv.connections, 10)
        old, new, _ = srv.restart_ok()
        t.join(10 * SCALE)
        check(result.get("r", (0,))[0] == 200 and result["r"][1].get("x-pid") == str(old),
              "request in flight on the old generation: %r" % (result.get("r"),))
        srv.wait_gone(old, 15)
    res = load.finish(time.monotonic() + 1)
    check_no_errors(res, model + " --eintr-fatal")
    t, result = held_slow_request(port, srv.connections, 10)
    os.kill(srv.keeper, signal.SIGTERM)
    t.join(10 * SCALE)
    check(result.get("r", (0,))[0] == 200, "request in flight at the stop: %r" %
          (result.get("r"),))
    check(srv.proc.wait(15 * SCALE) == 0, "the keeper exited %s" % srv.proc.returncode)
    check("EINTR is fatal" not in srv.log_text(), "the app saw an EINTR:\n%s" % srv.tail())
    return dict(res, server=model + " --eintr-fatal", restarts=3, exit_ms=None)




def test_agent_thread_refused(env):
    """Without a keeper (run --exec) the library's agent thread cannot be made
    (RLIMIT_NPROC reached, as an unprivileged user): one error line, not one
    per hooked call; the pid file names the server; the app serves as if the
    library were absent; the wrapper is told at once there is nothing to talk
    to instead of waiting for its timeout."""
    port = free_port()
    shared = env.path("nproc")
    os.makedirs(shared)
    os.chmod(shared, 0o777)
    pidfile = os.path.join(shared, "server.pid")
    # Copies the unprivileged user can reach wherever the checkout lives.
    copies = {}
    for name, src in (("hotrestart", WRAPPER), ("libhotrestart.so", env.lib),
                      ("epoll_lt", server_bin("epoll_lt"))):
        copies[name] = os.path.join(shared, name)
        shutil.copy(src, copies[name])
        os.chmod(copies[name], 0o755)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
            "prlimit", "--nproc=1", "--", "/usr/bin/python3", copies["hotrestart"], "run",
            "--exec", "--pidfile", pidfile, "--", copies["epoll_lt"], "--port", str(port)]
    penv = env.preload_env({"HOTRESTART_LIBRARY": copies["libhotrestart.so"]})
    srv = Server.__new__(Server).launch(env, "nproc", argv, penv, pidfile)
    pid = srv.wait_ready()
    for _ in range(300):  # each one passes the accept and epoll hooks
        status, _, _ = http_get(port)
        check(status == 200, "the app does not serve: %s" % srv.tail())
    text = srv.log_text()
    check(text.count("cannot start the agent thread") == 1,
          "want one error line, got %d:\n%s" % (text.count("cannot start the agent thread"),
                                                srv.tail()))
    started = time.monotonic()
    r = subprocess.run([WRAPPER, "status", str(pid)], capture_output=True, text=True,
                       timeout=60)
    took = time.monotonic() - started
    check(r.returncode != 0 and "no control socket" in r.stderr,
          "status of an agent-less server: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    check(took < 10 * SCALE, "status took %.1f s: it waited for a timeout" % took)
    check(pid_alive(pid), "the server died")


test_agent_thread_refused.quick = True


def ctl_name(pid):
    return "\0hotrestart-ctl.%d.%d" % (os.stat("/proc/self/ns/pid").st_ino, pid)


def ctl_connect(pid):
    """A connection to the library's control socket; a full backlog (the
    agent has not accepted the previous ones yet) is waited out, bounded."""
    deadline = time.monotonic() + 10 * SCALE
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(ctl_name(pid))
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_control_clients(env):
    """Without a keeper: silent control clients (more than there are slots)
    do not lock the operator out, and a line that starts with NUL is
    answered."""
    port = free_port()
    srv = Server(env, "ctl_clients", [server_bin("epoll_lt"), "--port", str(port)],
                 run_args=["--exec"])
    pid = srv.wait_ready()
    silent = [ctl_connect(pid) for _ in range(20)]
    try:
        nul = ctl_connect(pid)
        nul.sendall(b"\0status\n")
        reply = nul.recv(4096)
        check(reply.startswith(b"fail unknown command"), "a NUL line got %r" % reply)
        info = status_json(srv.pidfile)
        check(info and info.get("pid") == pid, "status behind silent clients: %r" % info)
    finally:
        for s in silent:
            s.close()


def agent_cpu_s(pid):
    """CPU seconds of the process's threads other than its main thread (the
    app is single-threaded: that is the library's agent)."""
    return sum(stat_cpu_s("/proc/%d/task/%s/stat" % (pid, tid))
               for tid in os.listdir("/proc/%d/task" % pid) if int(tid) != pid)


def test_fd_table_full(env):
    """Without a keeper, the process out of fds (RLIMIT_NOFILE reached by
    held connections): the agent does not spin on the control connection it
    cannot accept, and a restart whose client gave up meanwhile is dropped
    when fds free up, not run late."""
    port = free_port()
    srv = Server(env, "fdfull", ["prlimit", "--nofile=48", "--", server_bin("epoll_lt"),
                                 "--port", str(port)], run_args=["--exec"])
    pid = srv.wait_ready()
    held = []
    try:
        for _ in range(60):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % pid)) >= 48, 10,
                 "the server to run out of fds")
        waiter = ctl_connect(pid)
        waiter.sendall(b"restart\n")
        before = agent_cpu_s(pid)
        # A window of wall time to measure CPU in: no event to wait for.
        time.sleep(1.0)
        spent = agent_cpu_s(pid) - before
        check(spent < 0.3, "the agent spent %.2f s of CPU in 1 s while out of fds" % spent)
        waiter.close()  # the operator's timeout
    finally:
        for s in held:
            s.close()
    wait_for(lambda: "dropped: its client left" in srv.log_text(), 10,
             "the stale restart request to be dropped (log: %s)" % srv.tail())
    check("upgrade: started" not in srv.log_text(),
          "the restart ran after its client left:\n%s" % srv.tail())
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(pid), "the server no longer serves")


def test_dup2_onto_library_fds(env):
    """Without a keeper: the app dup2()s /dev/null onto every fd above 2 it
    did not open (the library's pipe, eventfd, control socket among them).
    The library's fds move out of the way: its agent does not spin on
    /dev/null, and a restart still works through them."""
    port = free_port()
    srv = Server(env, "dupover", [server_bin("dupover"), "--port", str(port)],
                 run_args=["--exec"])
    pid = srv.wait_ready()
    os.kill(pid, signal.SIGHUP)
    status, _, _ = http_get(port)  # the accept loop acts on the SIGHUP
    check(status == 200, "the app does not serve")
    wait_for(lambda: "dup-over: " in srv.log_text(), 10, "the app's dup2() calls")
    before = agent_cpu_s(pid)
    time.sleep(1.0)  # a window of wall time to measure CPU in
    spent = agent_cpu_s(pid) - before
    check(spent < 0.3, "the agent spent %.2f s of CPU in 1 s after the app's dup2()" % spent)
    old, new, _ = srv.restart_ok()
    status, headers, _ = http_get(port)
    check(status == 200 and headers.get("x-pid") == str(new), "the new generation does not serve")


def test_owner_killed(env):
    """Without a keeper: the master of a prefork server is SIGKILLed (no
    hand-over to a child, unlike a daemonizing exit). Its workers, whose
    agents watch it, keep serving without spinning on its death."""
    port = free_port()
    srv = Server(env, "prefork_kill", [server_bin("prefork"), "--port", str(port),
                                       "--workers", "2"], run_args=["--exec"])
    master = srv.wait_ready()
    workers = wait_for(lambda: [p for p, _ in proc_children(master)] or None, 10, "workers")
    for _ in range(10):  # every worker has accepted, so its agent runs
        http_get(port)
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: not pid_alive(master), 10, "the master to die")
    before = sum(stat_cpu_s("/proc/%d/stat" % w) for w in workers)
    time.sleep(1.0)  # a window of wall time to measure CPU in
    spent = sum(stat_cpu_s("/proc/%d/stat" % w) for w in workers) - before
    check(spent < 0.3, "workers spent %.2f s of CPU in 1 s after their master died" % spent)
    status, _, _ = http_get(port)
    check(status == 200, "the orphaned workers no longer serve")



TESTS = [
    ("EINTR-fatal app: restarts and stop under the keeper", eintr_fatal("epoll_lt")),
    ("EINTR-fatal app (poll): restarts and stop under the keeper", eintr_fatal("poll")),
    ("EINTR-fatal app (select): restarts and stop under the keeper", eintr_fatal("select")),
    ("TERM handler closes the parked listener", term_close("close")),
    ("TERM handler shuts down the parked listener", term_close("shutdown")),
    ("accept() with SO_RCVTIMEO keeps timing out", test_rcvtimeo),
    ("streamed response survives restart (blocking reads)", streamed("block")),
    ("streamed response survives restart (non-blocking reads)", streamed("nonblock")),
    ("exec mode: agent thread refused (RLIMIT_NPROC)", test_agent_thread_refused),
    ("exec mode: silent and NUL control clients", test_control_clients),
    ("exec mode: out of fds with a control client waiting", test_fd_table_full),
    ("exec mode: app dup2()s onto the library's fds", test_dup2_onto_library_fds),
    ("exec mode: master SIGKILLed, workers stay quiet", test_owner_killed),
]
