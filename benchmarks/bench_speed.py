"""Speed of Ashyq's secondary suppression on 4-dimensional migration-like tables (issue 19 targets).

Tables from :mod:`benchmarks.synth_migration` (region → district × citizenship × age × sex, one
2-level hierarchy, ~25 % zeros and ~15 % counts 1..4 among inner cells), built in memory (no CSV).
Each run is its own child process (peak RSS of that process; killed at ``--cap`` seconds). The
report's own audit result (the engine's attacker, certified or LP mode) is printed beside the
figures; ``--audit`` also re-audits the pattern with the independent attacker of
``bench_tauargus.py`` (slow on large tables).

Targets (issue 19): 7,500 cells ≤ 10 s heuristic; 55,000 ≤ 60 s heuristic and ≤ 3 min optimal;
250,000 ≤ 3 min heuristic; 1,000,000 ≤ 10 min and < 8 GB.

    .venv/bin/python benchmarks/bench_speed.py [--sizes 7500 55000 250000 1000000]
        [--methods heuristic optimal] [--cap SECONDS] [--audit] [--profile SIZE] [--quick]

``--profile SIZE``: run the heuristic on that size under cProfile in this process and print
the 15 functions with the largest cumulative and own time. ``--quick``: the ~1,100-cell table,
heuristic only (a smoke run, < 2 min; the 7,500-cell one takes minutes on a loaded machine).
Sizes are the nominal keys of ``benchmarks.synth_migration.SIZES`` (1100 … 1000000).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth_migration import SIZES, migration_table  # noqa: E402

TARGETS = {(7_500, "heuristic"): 10, (55_000, "heuristic"): 60, (55_000, "optimal"): 180,
           (250_000, "heuristic"): 180, (1_000_000, "heuristic"): 600}


def child(size: int, method: str, seed: int, audit: bool) -> None:
    from disclosure.suppression import protect_suppression

    t0 = time.perf_counter()
    t = migration_table(SIZES[size], seed, secondary=method)
    gen = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    [pt] = protect_suppression([t])
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = pt.published["conf_status"].to_numpy() != "F"
    r = pt.report
    out = {"size": size, "method": method, "cells_total": t.n_cells,
           "primary": int(r.primary.cells), "secondary": int(r.secondary.cells),
           "cells": int(s.sum()), "value": int(t.values[s].sum()),
           "zeros": int((s & (t.values == 0)).sum()), "marginal": int((s & ~t.inner_mask).sum()),
           "seconds": round(secs, 1), "cpu_s": round(cpu, 1), "generate_s": round(gen, 1),
           "audit": f"{'passed' if r.audit.passed else 'FAILED'}, {r.audit.exact} exact / "
                    f"{r.audit.narrow} narrow ({r.audit.mode})",
           "note": "; ".join(r.fallbacks),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if audit:
        from benchmarks.bench_tauargus import audit_pattern

        a = audit_pattern(t.values, t.relations, s)
        out["independent"] = f"{a['exact']} / {a['narrow']} / {a['missed']} ({a['audit_s']:.0f} s)"
    print("RESULT " + json.dumps(out), flush=True)


def run(size: int, method: str, seed: int, cap: int, audit: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(size), method, "--seed", str(seed)]
    if audit:
        cmd.append("--audit")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        so, se = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        from benchmarks.bench_tauargus import cpu_seconds

        cpu = cpu_seconds(proc.pid)
        proc.kill()
        proc.communicate()
        return {"size": size, "method": method, "status": f"not done in {cap} s ({cpu:.0f} CPU s)",
                "load": load,
                "seconds": time.perf_counter() - t0}
    lines = [x for x in so.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (se.strip().splitlines() or ["?"])[-1][:200]
        return {"size": size, "method": method, "status": f"failed ({proc.returncode}): {tail}",
                "load": load, "seconds": time.perf_counter() - t0}
    return json.loads(lines[-1][7:]) | {"status": "ok", "load": load}


HEAD = ("| cells | primary | method | cells suppressed | secondary | zeros | marginal | value | "
        "seconds (CPU s) | target | peak RSS MB | load (1 min) | engine audit | independent audit "
        "exact / narrow / missed |")


def fmt(r: dict) -> str:
    target = TARGETS.get((r["size"], r["method"]))
    tgt = f"≤ {target} s" if target else "–"
    if r["status"] != "ok":
        return (f"| {SIZES[r['size']].cells:,} | | {r['method']} | {r['status']} | | | | | "
                f"{r['seconds']:.0f} | {tgt} | | {r['load']:.1f} | | |")
    ok = "" if target is None else (" ✓" if r["seconds"] <= target else " ✗")
    return (f"| {r['cells_total']:,} | {r['primary']:,} | {r['method']} | {r['cells']:,} | "
            f"{r['secondary']:,} | {r['zeros']:,} | {r['marginal']:,} | {r['value']:,} | "
            f"{r['seconds']}{ok} ({r.get('cpu_s', '–')}) | {tgt} | {r['peak_rss_mb']:,} | {r['load']:.1f} | "
            f"{r['audit']} | {r.get('independent', '–')} |")


def profile(size: int, seed: int) -> None:
    import cProfile
    import pstats

    from disclosure.suppression import protect_suppression

    t = migration_table(SIZES[size], seed, secondary="heuristic")
    pr = cProfile.Profile()
    pr.enable()
    protect_suppression([t])
    pr.disable()
    st = pstats.Stats(pr)
    st.strip_dirs()
    st.sort_stats("cumulative").print_stats(15)
    st.sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[7_500, 55_000, 250_000])
    ap.add_argument("--methods", nargs="*", default=["heuristic"],
                    choices=["heuristic", "optimal"])
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--cap", type=int, default=900)
    ap.add_argument("--audit", action="store_true")
    ap.add_argument("--profile", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.seed, args.audit)
        return
    if args.profile:
        profile(args.profile, args.seed)
        return
    if args.quick:
        args.sizes, args.methods, args.cap = [1_100], ["heuristic"], 110
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(HEAD)
    print("|" + "---|" * 14, flush=True)
    for size in args.sizes:
        for m in args.methods:
            print(fmt(run(size, m, args.seed, args.cap, args.audit)), flush=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
