"""A slot of an old generation's shared region that names a PID now held by
a process of the NEXT generation (issue 13, item 14, across generations).

A forkconn child is SIGKILLed in the middle of a request: its slot keeps
the PID and a connection count of 1. The PID counter is then set so that
the keeper's fork of the next generation gets that very PID. That process
is a descendant of the keeper, so a membership test by "descendant of the
keeper" alone takes it for a process of the old generation: its count
holds the old generation's drain to the timeout, and once the old
generation outlives the stop grace, SIGKILL goes to every "member", the
live generation's main process among them. Needs root (ns_last_pid).

Run alone: python3 tests/integration/cases_pidreuse.py [--lib build/libhotrestart.so]
"""

import os
import re
import select
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, TestFailure, check, control_status, descendants,  # noqa: E402
                     free_port, keeper_request, server_bin, wait_for, SCALE)

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def _inodes(pid):
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            m = re.match(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            if m:
                out.add(int(m.group(1)))
    except OSError:
        pass
    return out


def _server_inode(server_port, client_port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fl = line.split()
            if (int(fl[1].split(":")[1], 16) == server_port and
                    int(fl[2].split(":")[1], 16) == client_port and int(fl[9])):
                return int(fl[9])
    return None


def slow_request(port):
    """A /slow request (answered after 2 s) left open; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return s


def serving_child(main, port, sock):
    """The forkconn child of main holding the server side of sock."""
    client_port = sock.getsockname()[1]

    def find():
        ino = _server_inode(port, client_port)
        for pid in descendants(main) if ino else []:
            if ino in _inodes(pid):
                return pid
        return None
    return wait_for(find, 10, "the forkconn child serving /slow")


def kill_and_reap(pid):
    fd = os.pidfd_open(pid)
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        check(select.select([fd], [], [], 10 * SCALE)[0], "%d did not die" % pid)
    finally:
        os.close(fd)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "%d to be reaped" % pid, 0.002)


def test_stale_slot_pid_taken_by_successor(env):
    port = free_port()
    # Drain timeout 1 s and grace 0.5 s: a /slow request (2 s) of the old
    # generation outlives both, so the keeper reaches its SIGKILL of members.
    srv = Server(env, "forkconn", [server_bin("forkconn"), "--port", str(port)],
                 drain_timeout=1, extra_env={"HOTRESTART_STOP_GRACE": "0.5"})
    srv.wait_ready()
    keeper = srv.keeper
    ns_fd = os.open(NS_LAST_PID, os.O_RDWR)
    try:
        for attempt in range(20):
            old = control_status(keeper)["main_pid"]
            victim_sock = slow_request(port)
            victim = serving_child(old, port, victim_sock)
            kill_and_reap(victim)
            victim_sock.close()
            held = slow_request(port)   # keeps the old generation alive past the grace
            serving_child(old, port, held)
            os.pwrite(ns_fd, b"%d" % (victim - 1), 0)
            reply = keeper_request(keeper, "restart", 30 * SCALE)
            m = re.match(r"ok pid=(\d+)", reply)
            check(m, "restart failed: %r\n%s" % (reply, srv.tail()))
            new = int(m.group(1))
            if new == victim:
                break
            # Another process took the PID first: let this drain end and retry.
            held.close()
            wait_for(lambda: not control_status(keeper)["draining"], 15, "the drain to end")
        else:
            raise TestFailure("could not get the successor onto a stale slot's PID")
        new_fd = os.pidfd_open(new)
        t0 = time.monotonic()
        # The old generation: drain timeout 1 s, grace 0.5 s, then it is gone.
        wait_for(lambda: not control_status(keeper)["draining"], 15, "the old generation to end")
        held.close()
        alive = not select.select([new_fd], [], [], 0)[0]
        log = srv.log_text()
        st = control_status(keeper)
        check(alive and st["main_pid"] == new,
              "the live generation's main process %d (on the PID of the old generation's "
              "killed child) was killed when the old generation ended (%.1f s after the "
              "restart); keeper's status now: generation %s main %s\n%s" %
              (new, time.monotonic() - t0, st["generation"], st["main_pid"], srv.tail(25)))
        check("reached the drain timeout with 2 connections" not in log,
              "the stale slot's count held the old generation's drain:\n%s" % srv.tail(25))
        os.close(new_fd)
    finally:
        os.close(ns_fd)


TESTS = [("stale slot PID taken by the successor", test_stale_slot_pid_taken_by_successor)]


if __name__ == "__main__":
    import argparse
    import harness
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(harness.BUILD, "libhotrestart.so"))
    a = ap.parse_args()
    env = harness.Env(a.lib)
    try:
        test_stale_slot_pid_taken_by_successor(env)
        print("PASS")
    except TestFailure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    finally:
        env.cleanup()
