"""Calls of the app the shim must see through: System V signal calls,
vfork, files unlinked while draining, fds closed behind the hooks' back,
a daemonizing parent that returns from main()."""

import os
import signal
import socket

from harness import (SCALE, Load, Server, check, check_no_errors, free_port, http_get,
                     pid_alive, read_pid, server_bin, wait_for)


def test_sigset(env):
    """Handlers installed with sigset()/siginterrupt()/sigignore(): USR2
    stays the shim's restart, HUP reaches the app, TERM drains first."""
    port = free_port()
    # The library's own handlers are at stake: without a keeper (run --exec)
    # it holds the restart and stop signals itself.
    srv = Server(env, "sigset", [server_bin("sigset"), "--port", str(port)],
                 run_args=["--exec"])
    first = srv.wait_ready()
    os.kill(first, signal.SIGUSR2)
    new = wait_for(lambda: read_pid(srv.pidfile) != first and read_pid(srv.pidfile), 10,
                   "USR2 to restart the server (log: %s)" % srv.tail())
    srv.known.add(new)
    srv.wait_gone(first, 10)
    check("app: got signal 12" not in srv.log_text(), "the app's USR2 handler ran on restart")
    os.kill(new, signal.SIGHUP)
    wait_for(lambda: "app: got signal 1\n" in srv.log_text(), 5, "the app's HUP handler")
    os.kill(new, signal.SIGTERM)
    srv.wait_gone(new, 10)
    log = srv.log_text()
    check("app: got signal 15" in log, "the app's TERM handler did not run")
    check(log.rindex("stop signal received") < log.rindex("app: got signal 15"),
          "the app's TERM handler ran before the shim's drain")


def test_daemon_parent_returns(env):
    """A daemon that listens, forks and whose parent leaves main() by
    returning (glibc's exit path, no exit() call to hook): the pid file and
    restarts follow the child."""
    port = free_port()
    own = env.path("daemon-own.pid")
    srv = Server(env, "daemon", [server_bin("daemon"), "--listen-first", "--port", str(port),
                                 "--pidfile", own])
    try:
        first = srv.wait_ready()
        wait_for(lambda: read_pid(own), 5, "the daemon's own pid file")
        check(first == read_pid(own) and first != srv.proc.pid,
              "hotrestart pid file %d is not the daemon %d" % (first, read_pid(own)))
        load = Load(3, port=port)
        old, new, _ = srv.restart_ok()
        srv.wait_gone(old, 10)
        srv.known.add(new)
        check_no_errors(load.result(), "daemon --listen-first")
        check(http_get(port)[1].get("x-pid") == str(new), "the new daemon does not serve")
        r = srv.stop()
        check(r.returncode == 0, "stop failed: %s" % r.stderr)
        check(not pid_alive(new), "daemon still alive after stop")
    finally:
        srv.known.add(read_pid(own) or 0)  # a daemon the shim lost sight of


def test_unlink_while_draining(env):
    """A file the old generation writes after the upgrade started and
    unlinks at exit is really removed (only a pid file the successor
    rewrote is kept: the nginx tests cover that)."""
    port = free_port()
    spool = env.path("spool")
    os.makedirs(spool)
    srv = Server(env, "tempfile", [server_bin("tempfile"), "--port", str(port), "--spool", spool])
    srv.wait_ready()
    old, new, _ = srv.restart_ok()
    srv.wait_gone(old, 10)
    check("removed %s/spool.%d" % (spool, old) in srv.log_text(),
          "the old generation did not reach its unlink (log: %s)" % srv.tail())
    left = os.listdir(spool)
    check(not left, "files the old generation unlinked are still there: %s" % left)


def test_vfork(env):
    """vfork() keeps vfork semantics (the child's write is visible to the
    parent), and the child's closefrom() and _exit() leave the parent's
    state alone: it becomes ready and restarts."""
    port = free_port()
    srv = Server(env, "vfork", [server_bin("vfork"), "--port", str(port)])
    srv.wait_ready()
    check("vfork() child shared memory" in srv.log_text(), "not a vfork: %s" % srv.tail())
    old, new, _ = srv.restart_ok()
    srv.wait_gone(old, 10)
    check(http_get(port)[1].get("x-pid") == str(new), "the successor does not serve")


def test_fd_reused_behind_the_hooks(env):
    """A connection closed inside glibc (fclose of an fdopen()ed socket)
    whose number is reused, unseen, for an upstream connection: the drain
    must not shut that upstream connection down, nor count it."""
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(1)
    upstream.settimeout(10 * SCALE)
    port = free_port()
    srv = Server(env, "fdreuse", [server_bin("fdreuse"), "--upstream",
                                  str(upstream.getsockname()[1]), "--port", str(port)])
    srv.wait_ready()
    check(http_get(port)[0] == 200, "the request served through stdio failed")
    conn, _ = upstream.accept()
    conn.settimeout(10 * SCALE)
    conn.sendall(b"ping\n")
    check(conn.recv(16) == b"pong\n", "no answer on the upstream connection")
    old, new, _ = srv.restart_ok()
    srv.wait_gone(old, 10)
    check("upstream: end of input" not in srv.log_text(),
          "the drain shut down an upstream connection that reused a connection's fd number")
    conn.close()
    upstream.close()


TESTS = [
    ("sigset() handlers", test_sigset),
    ("daemon whose parents return from main()", test_daemon_parent_returns),
    ("unlink while draining", test_unlink_while_draining),
    ("vfork() semantics", test_vfork),
    ("fd reused behind the hooks", test_fd_reused_behind_the_hooks),
]
