#!/usr/bin/env python3
"""make demo: start a sample server under hotrestart, keep it busy with the
load client, hot-restart it several times, and print what clients saw."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
WRAPPER = os.path.join(ROOT, "scripts", "hotrestart")
RESTARTS = 5
DURATION = 12.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def main():
    tmp = tempfile.mkdtemp(prefix="hotrestart-demo-")
    pidfile = os.path.join(tmp, "server.pid")
    port = free_port()
    server = [os.path.join(BUILD, "servers", "epoll_lt"), "--port", str(port)]
    env = dict(os.environ, HOTRESTART_LIBRARY=os.path.join(BUILD, "libhotrestart.so"))
    log = open(os.path.join(tmp, "server.log"), "wb")
    print("starting: hotrestart run --pidfile %s -- %s" % (pidfile, " ".join(server)))
    proc = subprocess.Popen([WRAPPER, "run", "--pidfile", pidfile, "--"] + server,
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while not read_pid(pidfile) and time.monotonic() < deadline:
        time.sleep(0.02)
    if not read_pid(pidfile):
        sys.exit("demo: the server did not become ready")
    print("server ready: pid %d on 127.0.0.1:%d" % (read_pid(pidfile), port))

    loads = [subprocess.Popen([os.path.join(BUILD, "loadclient"), "--port", str(port),
                               "--duration", str(DURATION), "--connections", "8"] + extra,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in ([], ["--keepalive"])]
    start = time.monotonic()
    pids = [read_pid(pidfile)]
    failures = 0
    for i in range(RESTARTS):
        time.sleep(max(0.0, start + DURATION * (i + 1) / (RESTARTS + 1) - time.monotonic()))
        r = subprocess.run([WRAPPER, "restart", "--pidfile", pidfile], capture_output=True,
                           text=True, env=env, timeout=60)
        line = (r.stdout or r.stderr).strip()
        print("restart %d: %s" % (i + 1, line))
        m = re.search(r"new pid (\d+)", r.stdout)
        if r.returncode != 0 or not m:
            failures += 1
        else:
            pids.append(int(m.group(1)))
    results = []
    for name, ld in zip(("connection per request", "keep-alive"), loads):
        out, _ = ld.communicate(timeout=DURATION + 30)
        fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        results.append((name, fields))
    subprocess.run([WRAPPER, "stop", "--pidfile", pidfile], capture_output=True, env=env,
                   timeout=60)
    proc.wait(timeout=30)
    log.close()

    total_errors = 0
    print("\n%d restarts (%d failed), generations: %s" %
          (RESTARTS, failures, " -> ".join(map(str, pids))))
    print("| load | requests served | refused | reset | timeout | bad | other "
          "| retried (keep-alive) | longest gap ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, f in results:
        total_errors += int(f.get("errors", 1))
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, f.get("ok"), f.get("refused"), f.get("reset"), f.get("timeout"),
            f.get("bad"), f.get("other"), f.get("retried"), f.get("max_gap_ms")))
    print("\nclient-visible errors: %d" % total_errors)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if total_errors == 0 and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
