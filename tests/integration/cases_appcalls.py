"""Calls of the app the shim must see through: System V signal calls,
vfork, files unlinked while draining, fds closed behind the hooks' back,
a daemonizing parent that returns from main()."""

import os
import signal

from harness import Server, check, free_port, read_pid, server_bin, wait_for


def test_sigset(env):
    """Handlers installed with sigset()/siginterrupt()/sigignore(): USR2
    stays the shim's restart, HUP reaches the app, TERM drains first."""
    port = free_port()
    srv = Server(env, "sigset", [server_bin("sigset"), "--port", str(port)])
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


TESTS = [
    ("sigset() handlers", test_sigset),
]
