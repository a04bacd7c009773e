#!/usr/bin/env python3
"""Integration test runner: each test starts real servers under the shim,
loads them, restarts them and asserts what clients saw. Prints one line per
test, a table of restarts and errors per server, and 'N passed, M failed'."""

import argparse
import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MODULES = ["cases_core", "cases_failures", "cases_multiproc", "cases_systemd", "cases_appcalls",
           "cases_hardening", "cases_guards", "cases_keeper", "cases_topology"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--sanitized", action="store_true",
                    help="the library is the ASan/UBSan build (preload the runtimes)")
    ap.add_argument("--quick", action="store_true", help="only the tests marked quick")
    ap.add_argument("--only", default="", help="run tests whose name contains this")
    args = ap.parse_args()
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
    for name, fn in tests:
        if args.only and args.only not in name:
            continue
        if args.quick and not getattr(fn, "quick", False):
            continue
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
        except Exception as e:  # a failing test must not stop the others
            failed += 1
            detail = str(e) if isinstance(e, harness.TestFailure) else traceback.format_exc()
            print("FAIL %-40s %5.1f s\n    %s" % (name, time.monotonic() - start,
                                                  detail.replace("\n", "\n    ")), flush=True)
            for s in env.servers:
                print("    --- log of %s (last lines) ---\n    %s" %
                      (s.name, s.tail(25).replace("\n", "\n    ")), flush=True)
        finally:
            env.cleanup()
    if table:
        print("\n| server | load | restarts | ok | errors (refused/reset/timeout/bad/other) "
              "| retried | old gen exit after handover (max ms) |")
        print("|---|---|---|---|---|---|---|")
        for r in table:
            print("| %s | %s | %d | %d | %s | %d | %s |" % (
                r["server"], r.get("load", "close"), r["restarts"], r["ok"],
                "/".join(str(r[k]) for k in harness.ERROR_KINDS), r.get("retried", 0),
                ("%.0f" % r["exit_ms"]) if r.get("exit_ms") is not None else "-"))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
