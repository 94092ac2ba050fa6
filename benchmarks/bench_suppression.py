"""Cell suppression benchmark: ours (heuristic, optimal) against sdcTable / tau-Argus patterns.

For every bench table (``<bench dir>/<name>/``: spec.yaml, inner.csv, peers.csv and the peers'
pattern CSVs; the folder is ``--bench-dir DIR``, else ``$ASHYQ_BENCH_DIR``, else
``../shared/bench`` next to the repository, see ``benchmarks/_bench.py``) this prints one table:
cells suppressed (primary + secondary; of them zero cells and marginal cells), value suppressed,
seconds, the optimal method's MIP gap (and whether it bounds the table or the worst block), and
the result of OUR attacker
audit on each pattern (exact / narrow / missed primary cells; "narrow" counts primaries whose
interval is narrower than min_frequency, exact included).
Peer seconds are the ones measured in peers.csv (other machine load; upper bounds).

Then a scale run: a synthetic 5-dimensional table (one 3-level hierarchy, about 500,000 cells)
protected with the heuristic, in a child process so its peak memory is measured on its own.

    .venv/bin/python benchmarks/bench_suppression.py [--bench-dir DIR] [--only NAME ...]
                                                    [--no-scale] [--scale-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._bench import add_bench_dir, bench_dir  # noqa: E402
from disclosure.audit import AuditSystem, audit, required_width  # noqa: E402
from disclosure.suppression import protect_suppression  # noqa: E402
from disclosure.table import CellTable, read_cells  # noqa: E402
from publisher.specs import load_spec  # noqa: E402


def load(dirpath: Path, secondary: str | None = None) -> CellTable:
    spec = load_spec(dirpath / "spec.yaml")
    if secondary:
        spec = dataclasses.replace(
            spec, disclosure=dataclasses.replace(spec.disclosure, secondary=secondary))
    df = pd.read_csv(dirpath / "inner.csv", dtype=str, keep_default_na=False)
    return read_cells(df, spec, source=str(dirpath / "inner.csv"))


def mask_of(table: CellTable, df: pd.DataFrame) -> np.ndarray:
    dims = list(table.spec.dimension_names)
    idx = [df[d].astype(str).map(table.code_index[i]).to_numpy()
           for i, d in enumerate(dims)]
    ids = np.ravel_multi_index(idx, table.shape)
    mask = np.zeros(table.n_cells, dtype=bool)
    mask[ids[(df["conf_status"].astype(str) != "F").to_numpy()]] = True
    return mask


def our_audit(table: CellTable, suppressed: np.ndarray) -> dict:
    """Exact / narrow / missed primaries of a pattern under our audit (frequency rule)."""
    k = table.spec.disclosure.min_frequency
    prim = (table.values > 0) & (table.values < k)
    req = required_width(table.values, prim, "absolute", k)
    system = AuditSystem.build(table.values, table.relations)
    res = audit(system, suppressed, req)
    widths = np.array([res.width(p) for p in res.lower]) if res.lower else np.zeros(0)
    return {"exact": int((widths < 1e-6).sum()), "narrow": len(res.failing),
            "missed": int((prim & ~suppressed).sum()), "audit_s": res.seconds,
            "min_width": float(widths.min()) if len(widths) else None}


def run_ours(dirpath: Path, method: str) -> dict:
    t = load(dirpath, method)
    t0 = time.perf_counter()
    [pt] = protect_suppression([t])
    secs = time.perf_counter() - t0
    s = mask_of(t, pt.published)
    a = our_audit(t, s)
    r = pt.report
    gap = None
    if r.optimality is not None and r.optimality.gap is not None:
        gap = f"{100 * r.optimality.gap:.1f} % ({r.optimality.scope})"
    return {"tool": "ashyq", "method": method, **pattern_figures(t, s),
            "secondary": r.secondary.cells, "seconds": secs, **a, "gap": gap,
            "note": "; ".join(r.fallbacks)}


def pattern_figures(t: CellTable, s: np.ndarray) -> dict:
    """Cells and value suppressed, and of them: zero cells and marginal (total) cells."""
    return {"cells": int(s.sum()), "value": int(t.values[s].sum()),
            "zeros": int((s & (t.values == 0)).sum()),
            "marginal": int((s & ~t.inner_mask).sum())}


def run_peers(dirpath: Path) -> list[dict]:
    t = load(dirpath)
    peers = pd.read_csv(dirpath / "peers.csv")
    out = []
    for row in peers.itertuples(index=False):
        tool = "sdctable" if row.tool.startswith("sdcTable") else "tauargus"
        f = dirpath / f"{tool}-{row.method}.csv"
        if not f.exists():
            continue
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        s = mask_of(t, df)
        a = our_audit(t, s)
        out.append({"tool": row.tool, "method": row.method, **pattern_figures(t, s),
                    "secondary": int(row.secondary), "gap": None,
                    "seconds": float(row.seconds) if pd.notna(row.seconds) else float("nan"),
                    **a, "note": "seconds from peers.csv"})
    return out


def fmt(rows: list[dict], title: str) -> str:
    head = ("| tool | method | cells suppressed | secondary | zeros | marginal cells | "
            "value suppressed | seconds | MIP gap | audit exact / narrow / missed | min width |")
    lines = [f"### {title}", "", head, "|" + "---|" * 11]
    for r in rows:
        secs = "–" if r["seconds"] != r["seconds"] else f"{r['seconds']:.2f}"
        mw = "–" if r["min_width"] is None else f"{r['min_width']:g}"
        verdict = "clean" if r["exact"] == r["narrow"] == r["missed"] == 0 else "FAILS"
        lines.append(f"| {r['tool']} | {r['method']} | {r['cells']:,} | {r['secondary']:,} | "
                     f"{r['zeros']:,} | {r['marginal']:,} | {r['value']:,} | {secs} | "
                     f"{r.get('gap') or '–'} | {r['exact']} / {r['narrow']} / {r['missed']} "
                     f"({verdict}) | {mw} |")
        if r.get("note") and r["tool"] == "ashyq":
            lines.append(f"|  | ↳ {r['note']} | | | | | | | | | |")
    return "\n".join(lines)


def scale_child(oblasts: int, districts: int) -> None:
    """Run in a child process: protect the synthetic table, print one JSON line."""
    import logging

    from benchmarks.synth_scale import scale_spec, scale_table

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    for noisy in ("highspy",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    spec = scale_spec(oblasts=oblasts, districts=districts)
    t0 = time.perf_counter()
    t = scale_table(spec)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    [pt] = protect_suppression([t])
    secs = time.perf_counter() - t0
    r = pt.report
    print(json.dumps({
        "cells": t.n_cells, "inner": int(t.inner_mask.sum()),
        "primary": r.primary.cells, "secondary": r.secondary.cells,
        # value suppressed: computed here from the benchmark's own synthetic inputs (the
        # report holds no figure derived from raw values)
        "value": int(t.values[mask_of(t, pt.published)].sum()), "seconds": round(secs, 1),
        "generate_s": round(gen, 1),
        "audit_passed": r.audit.passed, "audit_exact": r.audit.exact,
        "audit_narrow": r.audit.narrow, "audit_mode": r.audit.mode,
        "audit_s": r.audit.seconds, "details": r.details,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


def run_scale(oblasts: int = 6, districts: int = 7) -> str:
    cmd = [sys.executable, __file__, "--scale-child", str(oblasts), str(districts)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return f"### scale\n\nfailed (exit {proc.returncode}); see the log above"
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    d = json.loads(line)
    return "\n".join([
        "### scale: synthetic 5-dimensional table, one 3-level hierarchy (heuristic)", "",
        "| cells | inner | primary | secondary | value suppressed | seconds | peak RSS MB | "
        "audit passed / exact / narrow |",
        "|---|---|---|---|---|---|---|---|",
        f"| {d['cells']:,} | {d['inner']:,} | {d['primary']:,} | {d['secondary']:,} | "
        f"{d['value']:,} | {d['seconds']} | {d['peak_rss_mb']:,} | {d['audit_passed']} / "
        f"{d['audit_exact']} / {d['audit_narrow']} ({d['audit_mode']}) |",
        "", f"details: {json.dumps(d['details'])}",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_bench_dir(ap, "--bench")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--scale-only", action="store_true")
    ap.add_argument("--scale-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_child:
        scale_child(*args.scale_child)
        return
    if not args.scale_only:
        bench = bench_dir(args.bench_dir)
        for d in sorted(p for p in bench.iterdir() if (p / "spec.yaml").exists()):
            if args.only and d.name not in args.only:
                continue
            rows = [run_ours(d, "heuristic"), run_ours(d, "optimal"), *run_peers(d)]
            t = load(d)
            prim = int(((t.values > 0) & (t.values < t.spec.disclosure.min_frequency)).sum())
            print(fmt(rows, f"{d.name} ({t.n_cells:,} cells, {prim:,} primary)"), flush=True)
            print(flush=True)
    if not args.no_scale:
        print(run_scale(), flush=True)


if __name__ == "__main__":
    main()
