#!/usr/bin/env python3
"""Integration test runner: each test starts real servers under the shim,
loads them, restarts them and asserts what clients saw. Prints one line per
test, a table of restarts and errors per server, and 'N passed, M failed'.
--jobs N runs the tests in N shards at once (every test uses its own ports,
temp dir and processes), which keeps the whole suite within CI's time."""

import argparse
import importlib
import os
import selectors
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MODULES = ["cases_core", "cases_failures", "cases_multiproc", "cases_systemd", "cases_appcalls",
           "cases_hardening", "cases_guards", "cases_keeper", "cases_seccomp", "cases_topology",
           "cases_pidreuse"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--sanitized", action="store_true",
                    help="the library is the ASan/UBSan build (preload the runtimes)")
    ap.add_argument("--quick", action="store_true", help="only the tests marked quick")
    ap.add_argument("--only", default="", help="run tests whose name contains this")
    ap.add_argument("--jobs", type=int, default=1, help="shards run at once")
    ap.add_argument("--shard", default="0/1", help="K/N: run every N-th test from the K-th")
    args = ap.parse_args()
    if args.jobs > 1:
        return run_shards(args)
    shard, shards = (int(x) for x in args.shard.split("/"))
    if args.sanitized:
        os.environ.setdefault("HOTRESTART_TEST_SCALE", "2")
        harness.SCALE = float(os.environ["HOTRESTART_TEST_SCALE"])

    tests = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        tests += [(n, f) for n, f in getattr(mod, "TESTS")]
    passed = failed = 0
    table = []
    selected = [(n, f) for n, f in tests if (not args.only or args.only in n) and
                (not args.quick or getattr(f, "quick", False))]
    for name, fn in selected[shard::shards]:
        env = harness.Env(args.lib, sanitized=args.sanitized)
        start = time.monotonic()
        try:
            row = fn(env)
            if row:
                table.extend(row if isinstance(row, list) else [row])
            if args.sanitized:
                env_logs = [s.log_text() for s in env.servers]
                bad = [t for t in env_logs if "ERROR: AddressSanitizer" in t
                       or "runtime error:" in t]
                harness.check(not bad, "sanitizer report:\n" + (bad[0][-3000:] if bad else ""))
            passed += 1
            print("PASS %-40s %5.1f s" % (name, time.monotonic() - start), flush=True)
            if shards > 1:
                print(BLOCK_END, flush=True)
        except Exception as e:  # a failing test must not stop the others
            failed += 1
            detail = str(e) if isinstance(e, harness.TestFailure) else traceback.format_exc()
            print("FAIL %-40s %5.1f s\n    %s" % (name, time.monotonic() - start,
                                                  detail.replace("\n", "\n    ")), flush=True)
            for s in env.servers:
                print("    --- log of %s (last lines) ---\n    %s" %
                      (s.name, s.tail(25).replace("\n", "\n    ")), flush=True)
            if shards > 1:
                print(BLOCK_END, flush=True)
        finally:
            env.cleanup()
    print_table([row_line(r) for r in table])
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


# Ends each test's lines, so that shards run at once print whole blocks.
BLOCK_END = "-- end of test --"

TABLE_HEAD = ("| server | load | restarts | ok | errors (refused/reset/timeout/bad/other) "
              "| retried | old gen exit after handover (max ms) |")


def row_line(r):
    return "| %s | %s | %d | %d | %s | %d | %s |" % (
        r["server"], r.get("load", "close"), r["restarts"], r["ok"],
        "/".join(str(r[k]) for k in harness.ERROR_KINDS), r.get("retried", 0),
        ("%.0f" % r["exit_ms"]) if r.get("exit_ms") is not None else "-")


def print_table(rows):
    if rows:
        print("\n" + TABLE_HEAD)
        print("|---|---|---|---|---|---|---|")
        for line in rows:
            print(line)


def run_shards(args):
    """Runs the shards as child runners; their test lines pass through as
    they come, their tables and counts are added up at the end."""
    base = [sys.executable, os.path.abspath(__file__), "--lib", args.lib, "--only", args.only]
    base += ["--sanitized"] if args.sanitized else []
    base += ["--quick"] if args.quick else []
    children = [subprocess.Popen(base + ["--shard", "%d/%d" % (k, args.jobs)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 bufsize=1) for k in range(args.jobs)]
    rows, passed, failed = [], 0, 0
    pending = {c.stdout: [] for c in children}
    sel = selectors.DefaultSelector()
    for c in children:
        sel.register(c.stdout, selectors.EVENT_READ, c)
    open_count = len(children)
    while open_count:
        for key, _ in sel.select():
            line = key.fileobj.readline()
            if not line:
                sel.unregister(key.fileobj)
                open_count -= 1
                continue
            if line.rstrip("\n") == BLOCK_END:
                print("".join(pending[key.fileobj]), end="", flush=True)
                pending[key.fileobj] = []
            elif line.startswith("| ") and not line.startswith("| server |"):
                rows.append(line.rstrip("\n"))
            elif line.startswith("|---") or line.startswith("| server |") or not line.strip():
                continue
            elif line.rstrip().endswith(" failed") and " passed, " in line:
                p, f = line.split(" passed, ")
                passed += int(p)
                failed += int(f.split()[0])
            else:
                pending[key.fileobj].append(line)
    for c in children:
        c.wait()
        print("".join(pending[c.stdout]), end="")
    print_table(rows)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or any(c.returncode not in (0, 1) for c in children) else 0


if __name__ == "__main__":
    sys.exit(main())
