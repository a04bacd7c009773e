"""Accept and drain corner cases: an app that ends its accept loop by
closing the listener from its TERM handler, accept loops with a receive
timeout, and responses still being streamed when the restart comes."""

import os
import re
import signal
import socket
import threading
import time

from harness import (Load, Server, check, check_no_errors, deploy, free_port, http_get,
                     server_bin, start_slow_request, status_json, wait_for, SCALE)


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

def test_eintr_fatal(env):
    """Issue 13 item 1: an app with no signal handler that treats EINTR from
    epoll_wait() as fatal. Under the keeper its restarts and stop never
    install a handler in it, and the old generation's drain work happens in
    its own waits with the keeper's wake absorbed: a request in flight on the
    old generation completes at every restart and at the stop."""
    port = free_port()
    srv = Server(env, "eintr", [server_bin("epoll_lt"), "--port", str(port), "--eintr-fatal"])
    srv.wait_ready()
    load = Load(120, port=port)
    for _ in range(3):
        t, result = start_slow_request(port)
        wait_for(lambda: srv.connections() >= 1, 10, "the slow request")
        old, new, _ = srv.restart_ok()
        t.join(10 * SCALE)
        check(result.get("r", (0,))[0] == 200 and result["r"][1].get("x-pid") == str(old),
              "request in flight on the old generation: %r" % (result.get("r"),))
        srv.wait_gone(old, 15)
    res = load.finish(time.monotonic() + 1)
    check_no_errors(res, "epoll_lt --eintr-fatal")
    t, result = start_slow_request(port)
    wait_for(lambda: srv.connections() >= 1, 10, "the slow request")
    os.kill(srv.keeper, signal.SIGTERM)
    t.join(10 * SCALE)
    check(result.get("r", (0,))[0] == 200, "request in flight at the stop: %r" %
          (result.get("r"),))
    check(srv.proc.wait(15 * SCALE) == 0, "the keeper exited %s" % srv.proc.returncode)
    check("EINTR is fatal" not in srv.log_text(), "the app saw an EINTR:\n%s" % srv.tail())
    return dict(res, server="epoll_lt --eintr-fatal", restarts=3, exit_ms=None)


TESTS = [
    ("EINTR-fatal app: restarts and stop under the keeper", test_eintr_fatal),
    ("TERM handler closes the parked listener", term_close("close")),
    ("TERM handler shuts down the parked listener", term_close("shutdown")),
    ("accept() with SO_RCVTIMEO keeps timing out", test_rcvtimeo),
    ("streamed response survives restart (blocking reads)", streamed("block")),
    ("streamed response survives restart (non-blocking reads)", streamed("nonblock")),
]
