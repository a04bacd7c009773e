"""Two generations side by side: servers that refuse to run twice (pid file
checks, exclusive pid files, pid-file locks) restart cleanly; a lock on data
is never shared, so that restart fails and the old generation keeps serving.
Real daemons from Debian: apache2 (prefork, event), gunicorn, pgbouncer,
squid. Each test uses its own ports and temp dir, so tests are independent."""

import errno
import fcntl
import os
import re
import shutil
import socket
import struct
import threading
import time

from cases_core import ExitWatch
from harness import (Load, OpenLoad, Server, check, check_no_errors, free_port, pid_alive,
                     read_pid, server_bin, status_json, wait_for, ERROR_KINDS, SCALE)


def session_members(sid):
    """Live (not zombie) processes of session sid: every generation the
    wrapper started, and their workers."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


class PgProbeLoad:
    """Load for a server that speaks PostgreSQL (pgbouncer): each request is
    a fresh connection sending SSLRequest; a live server answers 'N'.
    Counts like the load client."""

    def __init__(self, port, connections=4):
        self.counts = dict.fromkeys(("ok",) + ERROR_KINDS, 0)
        self.errors = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(port,), daemon=True)
                        for _ in range(connections)]
        for t in self.threads:
            t.start()

    def probe(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE) as s:
                s.sendall(struct.pack("!ii", 8, 80877103))
                answer = s.recv(1)
            return ("ok", None) if answer == b"N" else ("bad", "answer %r" % answer)
        except ConnectionRefusedError as e:
            return "refused", str(e)
        except ConnectionResetError as e:
            return "reset", str(e)
        except socket.timeout as e:
            return "timeout", str(e)
        except OSError as e:
            return "other", str(e)

    def run(self, port):
        while not self.done.is_set():
            kind, why = self.probe(port)
            with self.lock:
                self.counts[kind] += 1
                if why:
                    self.errors.append(why)

    def running(self):
        return all(t.is_alive() for t in self.threads)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()
        return dict(self.counts, pids=[], stderr="\n".join(self.errors[:5]))


def restart_and_stop(env, name, cmd, make_load, restarts=3, extra_env=None, after=None,
                     ready_timeout=15, app_log=None):
    """Restarts cmd `restarts` times under a load that runs from a second
    before the first restart to a second after the last (daemons differ in
    how long a restart takes): every restart succeeds and changes the PID,
    no client error. Then `after(srv, pids)`, a graceful stop, and no
    process of any generation may be left."""
    srv = Server(env, name, cmd, drain_timeout=10, ready_timeout=ready_timeout,
                 extra_env=extra_env, app_log=app_log)
    pids = [srv.wait_ready(ready_timeout)]
    load = make_load()
    watch = ExitWatch()
    for _ in range(restarts):
        time.sleep(1)
        old, new, _ms = srv.restart_ok()
        watch.watch(old, time.monotonic())
        pids.append(new)
    time.sleep(1)
    check(load.running(), "the load ended before the last restart")
    res = load.stop()
    exit_ms = watch.wait(16)
    check(pid_alive(pids[-1]), "the last generation died: %s" % srv.tail())
    check_no_errors(res, name)
    if res["pids"]:
        check(pids[-1] in res["pids"], "the last generation %d served nothing" % pids[-1])
    if after:
        after(srv, pids)
    r = srv.stop()
    check(r.returncode == 0, "stop of %s failed (%d): %s %s" % (name, r.returncode, r.stdout,
                                                                r.stderr))
    wait_for(lambda: not session_members(srv.proc.pid), 15,
             "every process of %s to exit (left: %s)" % (name, session_members(srv.proc.pid)))
    return dict(res, server=name, restarts=restarts, exit_ms=exit_ms)


def http_load(port, path="/", connections=8):
    return lambda: OpenLoad(port=port, path=path, connections=connections)


LOCK_MODES = ("fcntl", "ofd", "flock", "lockf")


def lock_is_held(path, mode):
    """Whether another process finds the file locked (the test runner is one:
    process and OFD locks conflict with its fcntl lock, flock with flock)."""
    fd = os.open(path, os.O_RDWR)
    try:
        if mode == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)


def guard_test(mode):
    def test(env):
        port = free_port()
        guard_pid = env.path("guard-own.pid")

        def after(srv, pids):
            check(read_pid(guard_pid) == pids[-1], "the guard's pid file holds %s, not the "
                  "last generation %d" % (read_pid(guard_pid), pids[-1]))
            if mode in LOCK_MODES:
                check(lock_is_held(guard_pid, mode), "nobody holds the %s lock on the pid "
                      "file after the old generations left" % mode)
        row = restart_and_stop(env, "guard " + mode, [server_bin("guard"), "--guard", mode,
                                                      "--pidfile", guard_pid, "--port",
                                                      str(port)],
                               http_load(port), after=after)
        check(not os.path.exists(guard_pid), "the last generation did not remove its pid file")
        return row
    return test


def test_data_lock_is_not_shared(env):
    """A lock on data must win: each restart fails with the server's own
    message, the old generation serves on without a client error."""
    port = free_port()
    srv = Server(env, "guard datalock", [server_bin("guard"), "--guard", "datalock",
                                         "--pidfile", env.path("guard-own.pid"), "--data",
                                         env.path("data.db"), "--port", str(port)])
    first = srv.wait_ready()
    load = Load(120, port=port)
    for _ in range(2):
        time.sleep(1)
        rc, out, err = srv.restart()
        check(rc == 1, "restart did not fail (%d): %s %s" % (rc, out, err))
        # The reason is the successor's own, quoted from its stderr.
        check(re.fullmatch(r'hotrestart: restart failed: successor exited with status 1: .*'
                           r'"guard: cannot lock data file [^"]*"', err),
              "restart's reason does not quote the server: %r" % err)
        check(srv.pid == first, "pid changed to %s" % srv.pid)
    check(load.proc.poll() is None, "the load ended before the last restart")
    res = load.finish(time.monotonic() + 1)
    check_no_errors(res, "guard datalock")
    info = status_json(srv.pidfile)
    check("cannot lock data file" in info.get("last_failure", ""),
          "status --json last_failure: %r" % info.get("last_failure"))
    check(pid_alive(first), "the old generation died")
    return dict(res, server="guard datalock (restarts fail)", restarts=0)


def apache_test(mpm):
    def test(env):
        port = free_port()
        www = env.path("www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello from apache\n")
        conf = env.path("httpd.conf")
        workers = ("StartServers 2\n" if mpm == "prefork" else
                   "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\n")
        with open(conf, "w") as f:
            f.write("ServerRoot %s\nServerName localhost\n"
                    "LoadModule mpm_%s_module /usr/lib/apache2/modules/mod_mpm_%s.so\n"
                    "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n"
                    "User www-data\nGroup www-data\nListen 127.0.0.1:%d\n"
                    "PidFile %s\nErrorLog %s\nDefaultRuntimeDir %s\nDocumentRoot %s\n%s"
                    % (env.tmp, mpm, mpm, port, env.path("httpd.pid"),
                       env.path("httpd-error.log"), env.tmp, www, workers))
        apache = shutil.which("apache2") or "/usr/sbin/apache2"
        # -k start is where apache checks its PidFile: "httpd (pid N) already running".
        return restart_and_stop(env, "apache2 " + mpm, [apache, "-f", conf, "-k", "start",
                                                        "-DFOREGROUND"],
                                http_load(port, "/index.html"),
                                app_log=env.path("httpd-error.log"))
    return test


def test_gunicorn(env):
    port = free_port()
    with open(env.path("app.py"), "w") as f:
        f.write("def application(environ, start_response):\n"
                "    body = b'hello from gunicorn\\n'\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
                "                              ('Content-Length', str(len(body)))])\n"
                "    return [body]\n")
    gunicorn = shutil.which("gunicorn") or "/usr/bin/gunicorn"
    # An old master waits up to --graceful-timeout for its idle sync workers
    # (they sleep in select); a restart waits for the previous drain.
    return restart_and_stop(env, "gunicorn", [gunicorn, "-p", env.path("gunicorn-own.pid"),
                                              "-w", "2", "--graceful-timeout", "2", "-b",
                                              "127.0.0.1:%d" % port, "--chdir", env.tmp,
                                              "app:application"],
                            http_load(port, connections=4))


def writable_by_daemon(env):
    """Daemons that drop privileges (squid, pgbouncer -u) exec their
    successor as the unprivileged user: it writes the pid files."""
    os.chmod(env.tmp, 0o777)


def test_pgbouncer(env):
    port = free_port()
    writable_by_daemon(env)
    with open(env.path("users.txt"), "w") as f:
        f.write('"u" "p"\n')
    ini = env.path("pgbouncer.ini")
    with open(ini, "w") as f:
        f.write("[databases]\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
                "unix_socket_dir =\nauth_type = trust\nauth_file = %s\npidfile = %s\n"
                % (port, env.path("users.txt"), env.path("pgbouncer-own.pid")))
    pgbouncer = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return restart_and_stop(env, "pgbouncer", [pgbouncer, "-u", "postgres", ini],
                            lambda: PgProbeLoad(port))


def squid_setup(env, port):
    """A minimal squid configuration on port, with its pid file and cache log
    made by root and handed to squid's user (the successor rewrites them).
    Returns (squid binary, configuration path, cache log path)."""
    writable_by_daemon(env)
    own_pid, cache_log = env.path("squid-own.pid"), env.path("squid-cache.log")
    for path in (own_pid, cache_log):
        open(path, "w").close()
        shutil.chown(path, "proxy")
    conf = env.path("squid.conf")
    with open(conf, "w") as f:
        f.write("http_port 127.0.0.1:%d\npid_filename %s\ncache_log %s\n"
                "cache_effective_user proxy\naccess_log none\ncache_store_log none\n"
                "pinger_enable off\nicp_port 0\nhtcp_port 0\nnetdb_filename none\n"
                "http_access allow all\nshutdown_lifetime 1 seconds\ncoredump_dir %s\n"
                "visible_hostname localhost\n" % (port, own_pid, cache_log, env.tmp))
    return shutil.which("squid") or "/usr/sbin/squid", conf, cache_log


def test_squid(env):
    port = free_port()
    squid, conf, cache_log = squid_setup(env, port)
    # Squid serves its own icons: a 200 with a Content-Length, no origin needed.
    # A small one: squid writes bodies in 4 KiB steps, and between two steps
    # the drain can take the connection for idle (README, known limits).
    return restart_and_stop(env, "squid", [squid, "-N", "-f", conf],
                            http_load(port, "/squid-internal-static/icons/silk/bullet_red.png",
                                      4),
                            app_log=cache_log)


test_data_lock_is_not_shared.quick = True

TESTS = [("guard " + m, guard_test(m)) for m in
         ("kill", "proc", "excl", "fcntl", "ofd", "flock", "lockf")]
TESTS[3][1].quick = True
TESTS += [
    ("guard datalock: restart fails, old serves", test_data_lock_is_not_shared),
    ("apache2 mpm_prefork (PidFile)", apache_test("prefork")),
    ("apache2 mpm_event (PidFile)", apache_test("event")),
    ("gunicorn -p, 2 sync workers", test_gunicorn),
    ("pgbouncer with pidfile", test_pgbouncer),
    ("squid -N with pid file", test_squid),
]
