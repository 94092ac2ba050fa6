"""Ashyq's secondary cell suppression beside tau-Argus (pytauargus 0.6.0), re-audited independently.

Tables come from our own generator (:mod:`benchmarks.synth_migration`: region → district ×
citizenship × age group × sex, ~25 % zeros and ~15 % counts 1..4 among inner cells), written in
the project's input format (``spec.yaml`` + ``inner.csv``) into the work folder and read back
through ``read_cells``. Four patterns per table, each run in its own child process (killed at
``--cap`` seconds; peak RSS of that process):

- ``ashyq heuristic`` / ``ashyq optimal``: :func:`disclosure.suppression.protect_suppression`;
- ``tau-Argus MOD`` / ``tau-Argus OPT``: the tau-Argus engine of pytauargus, tabular input
  (every cell, totals included, with its status: ``U`` for the primaries ``0 < n < 5``, ``S``
  otherwise), region as a ``.hrc`` hierarchy, explicit protection levels per primary
  ``lower = min(n, 2)``, ``upper = 5 - lower`` (an interval of width 5, which implies our sliding
  requirement; the cell's a-priori range is [0, largest cell]), tau-Argus' default cost (the cell
  value), ``MOD(1, cap, 1, 1, 1)`` (singleton options on) and ``OPT(1, cap)``;
- ``tau-MOD-freq`` / ``tau-OPT-freq`` (only with ``--only``): the same with a frequency column
  and tau-Argus' own rule ``FREQ(5,10)`` instead of our statuses and levels (zeros are empty).

Every pattern is audited by an attacker LP written here, independent of ``disclosure/audit.py``:
variables are the suppressed cells, ``0 <= x <= grand total``, every additive relation of the
table with the published values substituted; min and max of every primary (HiGHS, one model per
connected block of suppressed cells, warm-started objective changes; a primary that the LP
optima already seen show to vary by 5 or more is certified without its own LPs — the min width
column is then a lower bound for it). ``exact`` = interval width < 1e-6, ``narrow`` = width < 5
(exact included), ``missed`` = primaries published.

    .venv/bin/python benchmarks/bench_tauargus.py [--sizes 1100 5100 7500 ...] [--seed 19]
        [--cap SECONDS] [--only ashyq-heuristic ashyq-optimal tau-MOD tau-OPT]
        [--work DIR] [--out benchmarks/results_tauargus.md] [--reuse] [--quick]

``--reuse``: a run whose figures are saved in the work folder (``result-METHOD.json`` beside the
table) is not run again (so peers and sizes can be run in separate invocations, then the whole
table written in one); ``--cached-only`` runs nothing and writes the table of the saved runs.
Load is the 1-minute load average when the run ended.

``--quick``: the ~1,100-cell table, caps of 30 s (tau-Argus does not finish in that time on a
loaded machine; the run shows the pipeline works), its own work folder, no results file (< 2 min).
Default sizes: 1100 5100 7500; 16000 and 55000 are accepted too (see ``SIZES``).
pytauargus is a benchmark-only dependency (``pip install pytauargus==0.6.0``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth_migration import SIZES, write_table  # noqa: E402

LEVEL = 5           # protection level (interval width) and min_frequency of the tables
TAU_TOTAL = "Total"  # tau-Argus' total code in the generated files
WORK = Path("/tmp/ashyq-bench-tauargus")  # generated tables, tau-Argus files, saved runs
METHODS = ("ashyq-heuristic", "ashyq-optimal", "tau-MOD", "tau-OPT", "tau-MOD-freq",
           "tau-OPT-freq")


# --------------------------------------------------------------------------------------------
# loading a generated table
# --------------------------------------------------------------------------------------------
def load(dirpath: Path, secondary: str = "heuristic"):
    """The CellTable of a generated table folder, through the project's own input path."""
    import dataclasses

    from disclosure.table import read_cells
    from publisher.specs import load_spec

    spec = load_spec(dirpath / "spec.yaml")
    spec = dataclasses.replace(
        spec, disclosure=dataclasses.replace(spec.disclosure, secondary=secondary))
    df = pd.read_csv(dirpath / "inner.csv", dtype=str, keep_default_na=False)
    return read_cells(df, spec, source=str(dirpath / "inner.csv"))


def primaries(values: np.ndarray) -> np.ndarray:
    return (values > 0) & (values < LEVEL)


# --------------------------------------------------------------------------------------------
# the independent attacker
# --------------------------------------------------------------------------------------------
def attack(values: np.ndarray, relations: sp.spmatrix, suppressed: np.ndarray,
           targets: np.ndarray) -> dict[int, tuple[float, float]]:
    """Attacker interval [min, max] of each target cell (suppressed) given the published cells.

    Independent of ``disclosure/audit.py``: cell values as variables (not deviations), bounds
    ``0 <= x <= max(values)``, the relations ``C x = 0`` with published cells substituted.
    """
    import highspy

    c = sp.csr_matrix(relations, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ub = float(v.max())
    sup = np.flatnonzero(suppressed)
    pos = -np.ones(len(v), dtype=np.int64)
    pos[sup] = np.arange(len(sup))
    cs = c[:, sup].tocsr()
    rows = np.flatnonzero(np.diff(cs.indptr) > 0)
    cs = cs[rows]
    pub = ~suppressed
    rhs = -(c[rows][:, np.flatnonzero(pub)] @ v[pub])
    # blocks: suppressed cells linked by a relation
    adj = (cs.T @ cs).tocsr() if cs.shape[0] else sp.csr_matrix((len(sup), len(sup)))
    _, label = connected_components(adj, directed=False)
    out: dict[int, tuple[float, float]] = {}
    targets = np.asarray([t for t in np.flatnonzero(targets) if suppressed[t]])
    if not len(targets):
        return out
    csc = cs.tocsc()
    for blk in np.unique(label[pos[targets]]):
        cols = np.flatnonzero(label == blk)
        sub = csc[:, cols].tocsr()
        r = np.flatnonzero(np.diff(sub.indptr) > 0)
        sub = sub[r].tocsc()
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("threads", 1)
        h.setOptionValue("simplex_strategy", 4)  # primal: only the objective changes
        n = len(cols)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, len(r)
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.full(n, ub)
        lp.row_lower_ = rhs[r].astype(np.float64)
        lp.row_upper_ = rhs[r].astype(np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = sub.indptr.astype(np.int32)
        lp.a_matrix_.index_ = sub.indices.astype(np.int32)
        lp.a_matrix_.value_ = sub.data
        h.passModel(lp)
        local = {int(g): i for i, g in enumerate(sup[cols])}
        # every LP optimum is a feasible point: the spread of the points seen so far bounds each
        # cell's interval from inside, so a target already seen to vary by LEVEL needs no LP
        seen_lo = np.full(n, np.inf)
        seen_hi = np.full(n, -np.inf)
        prev = None
        for t in targets[label[pos[targets]] == blk]:
            j = local[int(t)]
            bounds = {}
            for sense in (1.0, -1.0):
                if seen_hi[j] - seen_lo[j] >= LEVEL:
                    break
                if prev is not None:
                    h.changeColCost(prev, 0.0)
                h.changeColCost(j, -sense)  # HiGHS minimises: -x_j for the max, x_j for the min
                prev = j
                h.run()
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    raise RuntimeError("attacker LP not optimal: "
                                       + h.modelStatusToString(h.getModelStatus()))
                x = np.asarray(h.getSolution().col_value)
                np.minimum(seen_lo, x, out=seen_lo)
                np.maximum(seen_hi, x, out=seen_hi)
                bounds[sense] = x[j]
            if len(bounds) == 2:
                out[int(t)] = (bounds[-1.0], bounds[1.0])
            else:  # certified wide by feasible points: an inner bound of the interval
                out[int(t)] = (float(seen_lo[j]), float(seen_hi[j]))
    return out


def audit_pattern(values: np.ndarray, relations: sp.spmatrix, suppressed: np.ndarray) -> dict:
    prim = primaries(values)
    t0 = time.perf_counter()
    iv = attack(values, relations, suppressed, prim)
    widths = np.array([hi - lo for lo, hi in iv.values()])
    return {"exact": int((widths < 1e-6).sum()), "narrow": int((widths < LEVEL - 1e-6).sum()),
            "missed": int((prim & ~suppressed).sum()),
            "min_width": float(widths.min()) if len(widths) else None,
            "audit_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# tau-Argus input / output
# --------------------------------------------------------------------------------------------
def tau_code(code: str) -> str:
    return TAU_TOTAL if code == "_T" else code


def write_tau_inputs(table, work: Path, rule: str = "levels") -> None:
    """table.tab, table.rda, region.hrc (no .arb).

    ``rule="levels"``: every cell with its status (``U`` primary, ``S`` safe) and protection
    levels. ``rule="freq"``: every cell with its frequency (= its count), statuses left to
    tau-Argus' rule ``FREQ(5,10)`` (the configuration of issue 19's table; zeros are empty cells).
    """
    work.mkdir(parents=True, exist_ok=True)
    dims = list(table.spec.dimension_names)
    df = table.frame()
    for d in dims:
        df[d] = df[d].astype(str).map(tau_code)
    v = table.values
    prim = primaries(v)
    if rule == "freq":
        df["freq"] = v
        df[[*dims, table.spec.measure, "freq"]].to_csv(
            work / "table.tab", sep=";", header=False, index=False)
    else:
        lower = np.where(prim, np.minimum(v, 2), 0)
        upper = np.where(prim, LEVEL - lower, 0)
        df["status"] = np.where(prim, "U", "S")
        df["lpl"], df["upl"] = lower, upper
        df[[*dims, table.spec.measure, "status", "lpl", "upl"]].to_csv(
            work / "table.tab", sep=";", header=False, index=False)
    rda = ['<SEPARATOR> ";"', '<SAFE> "S"', '<UNSAFE> "U"', '<PROTECT> "P"']
    for dim in table.spec.dimensions:
        h = dim.hierarchy
        rda += [f'{dim.name} "" ""', "  <RECODABLE>", f'  <TOTCODE> "{TAU_TOTAL}"']
        if any(p != "_T" for p in h.parents):
            lines = []
            for top in h.children["_T"]:
                lines.append(top)
                lines += ["@" + c for c in h.children.get(top, ())]
            (work / f"{dim.name}.hrc").write_text("\n".join(lines) + "\n", encoding="utf-8")
            rda += ["  <HIERARCHICAL>", f'  <HIERCODELIST> "{work / (dim.name + ".hrc")}"',
                    '  <HIERLEADSTRING> "@"']
    rda += [f'{table.spec.measure} "" ""', "  <NUMERIC>"]
    if rule == "freq":
        rda += ['freq "" ""', "  <FREQUENCY>"]
    else:
        rda += ['status "" ""', "  <STATUS>", 'lpl "" ""', "  <NUMERIC> <LOWERPL>",
                'upl "" ""', "  <NUMERIC> <UPPERPL>"]
    (work / "table.rda").write_text("\n".join(rda) + "\n", encoding="utf-8")


def write_tau_batch(table, work: Path, method: str, cap_s: int, rule: str = "levels") -> Path:
    minutes = max(1, cap_s // 60 - 1)  # its own limit, a minute before we kill it
    suppress = f"MOD(1,{minutes},1,1,1)" if method == "MOD" else f"OPT(1,{minutes})"
    exp = "".join(f'"{d}"' for d in table.spec.dimension_names)
    arb = work / f"batch-{method}.arb"
    arb.write_text("\n".join([
        f'<OPENTABLEDATA> "{work / "table.tab"}"',
        f'<OPENMETADATA> "{work / "table.rda"}"',
        f'<SPECIFYTABLE> {exp}|"{table.spec.measure}"||',
        "<SAFETYRULE> FREQ(5,10)" if rule == "freq" else "<SAFETYRULE>",
        "<READTABLE> 0",
        f"<SUPPRESS> {suppress}",
        f'<WRITETABLE> (1,5,"SO+","{work / ("out-" + method + ".tab")}")',
    ]) + "\n", encoding="utf-8")
    return arb


def tau_mask(table, path: Path) -> np.ndarray:
    """Suppressed cells (status U or M) of tau-Argus' simple intermediate output."""
    from pytauargus.result import parse_simple_tab

    dims = list(table.spec.dimension_names)
    rows = parse_simple_tab(path, dims, "value")
    df = pd.DataFrame(rows)
    idx = []
    for i, d in enumerate(dims):
        codes = df[d].astype(str).replace({TAU_TOTAL: "_T", "": "_T"})
        m = codes.map(table.code_index[i])
        if m.isna().any():
            raise ValueError(f"tau-Argus output has unknown {d} codes: "
                             f"{sorted(set(codes[m.isna()]))[:5]}")
        idx.append(m.to_numpy(dtype=np.int64))
    ids = np.ravel_multi_index(idx, table.shape)
    mask = np.zeros(table.n_cells, dtype=bool)
    mask[ids[df["status"].isin(["U", "M"]).to_numpy()]] = True
    return mask


# --------------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------------
def child(table_dir: Path, method: str, cap_s: int) -> None:
    """One run in this (child) process: writes the mask to table_dir, prints one JSON line."""
    import logging

    logging.basicConfig(level=getattr(logging, os.environ.get("BENCH_LOG", "WARNING")))
    out: dict = {"method": method}
    if method.startswith("ashyq"):
        from disclosure.suppression import protect_suppression

        t = load(table_dir, method.split("-")[1])
        t0, c0 = time.perf_counter(), time.process_time()
        [pt] = protect_suppression([t])
        out["seconds"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        mask = (pt.published["conf_status"].to_numpy() != "F")
        r = pt.report
        out["secondary"] = int(r.secondary.cells)
        if r.optimality is not None and r.optimality.gap is not None:
            out["gap"] = f"{100 * r.optimality.gap:.1f} % ({r.optimality.scope})"
        out["note"] = "; ".join(r.fallbacks)
    else:
        from pytauargus.engine import run_batch

        t = load(table_dir)
        kind, rule = (method.split("-") + ["levels"])[1:3]
        work = table_dir / f"tau-{rule}"
        write_tau_inputs(t, work, rule)
        arb = write_tau_batch(t, work, kind, cap_s, rule)
        t0, c0 = time.perf_counter(), time.process_time()
        run_batch(arb)
        out["seconds"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        mask = tau_mask(t, work / f"out-{kind}.tab")
        out["secondary"] = int((mask & ~primaries(t.values)).sum())
    np.save(table_dir / f"mask-{method}.npy", mask)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(out), flush=True)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_child(table_dir: Path, method: str, cap_s: int, reuse: bool = False,
              cached_only: bool = False) -> dict:
    saved = table_dir / f"result-{method}.json"
    if (reuse or cached_only) and saved.exists():
        return json.loads(saved.read_text())
    if cached_only:
        return {"method": method, "status": "not run", "seconds": float("nan")}
    res = _run_child(table_dir, method, cap_s)
    saved.write_text(json.dumps(res))
    return res


def _run_child(table_dir: Path, method: str, cap_s: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(table_dir.resolve()),
           method, "--cap", str(cap_s)]
    t0 = time.perf_counter()
    # tau-Argus writes its work files (BT.dat, cspSCIP.*, sdc.lp, ...) into the current folder
    work = tempfile.mkdtemp(prefix=f"tauargus-{method}-")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=work, env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        so, se = proc.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        cpu = cpu_seconds(proc.pid)
        proc.kill()
        proc.communicate()
        return {"method": method, "status": f"not done in {cap_s} s ({cpu:.0f} CPU s)",
                "seconds": time.perf_counter() - t0, "load": os.getloadavg()[0]}
    lines = [x for x in so.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (se.strip().splitlines() or ["?"])[-1][:200]
        return {"method": method, "status": f"failed (exit {proc.returncode}): {tail}",
                "seconds": time.perf_counter() - t0}
    res = json.loads(lines[-1][7:])
    res["status"] = "ok"
    res["load"] = os.getloadavg()[0]
    return res


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
LABEL = {"ashyq-heuristic": ("Ashyq", "heuristic"), "ashyq-optimal": ("Ashyq", "optimal"),
         "tau-MOD": ("tau-Argus 0.6.0", "MOD"), "tau-OPT": ("tau-Argus 0.6.0", "OPT"),
         "tau-MOD-freq": ("tau-Argus 0.6.0", "MOD, FREQ(5,10)"),
         "tau-OPT-freq": ("tau-Argus 0.6.0", "OPT, FREQ(5,10)")}


def bench_table(size: int, seed: int, work: Path, cap_s: int, methods: list[str],
                reuse: bool = False, cached_only: bool = False) -> list[dict]:
    shape = SIZES[size]
    tdir = work / f"t{size}-s{seed}"
    if not ((reuse or cached_only) and (tdir / "inner.csv").exists()):
        write_table(tdir, shape, seed)
    t = load(tdir)
    prim = primaries(t.values)
    rows = []
    for m in methods:
        load_avg = os.getloadavg()[0]
        r = run_child(tdir, m, cap_s, reuse, cached_only)
        r.setdefault("load", load_avg)
        if r["status"] == "not run":
            continue
        r["cells_total"], r["primary"] = t.n_cells, int(prim.sum())
        if r["status"] == "ok" and "exact" not in r:
            s = np.load(tdir / f"mask-{m}.npy")
            r.update(cells=int(s.sum()), value=int(t.values[s].sum()),
                     zeros=int((s & (t.values == 0)).sum()),
                     marginal=int((s & ~t.inner_mask).sum()),
                     **audit_pattern(t.values, t.relations, s))
            (tdir / f"result-{m}.json").write_text(json.dumps(r))
        rows.append(r)
        print(fmt_row(size, r), flush=True)
    return rows


HEAD = ("| table (cells / primary) | tool | method | cells suppressed | secondary | zeros | "
        "marginal cells | value suppressed | seconds (CPU s) | peak RSS MB | load (1 min) | "
        "audit exact / narrow / missed | min width | MIP gap |")


def fmt_row(size: int, r: dict) -> str:
    tool, meth = LABEL[r["method"]]
    tab = f"{r['cells_total']:,} / {r['primary']:,}"
    if r["status"] != "ok":
        return (f"| {tab} | {tool} | {meth} | {r['status']} | | | | | {r['seconds']:.0f} | | "
                f"{r['load']:.1f} | | | |")
    verdict = "clean" if r["exact"] == r["narrow"] == r["missed"] == 0 else "FAILS"
    mw = "–" if r["min_width"] is None else f"{r['min_width']:.3g}"
    cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "–"
    return (f"| {tab} | {tool} | {meth} | {r['cells']:,} | {r['secondary']:,} | {r['zeros']:,} | "
            f"{r['marginal']:,} | {r['value']:,} | {r['seconds']:.1f} ({cpu}) | "
            f"{r['peak_rss_mb']:,} | "
            f"{r['load']:.1f} | {r['exact']} / {r['narrow']} / {r['missed']} ({verdict}) | {mw} | "
            f"{r.get('gap') or '–'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[1_100, 5_100, 7_500])
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--cap", type=int, default=900, help="seconds per run (default 900)")
    ap.add_argument("--only", nargs="*", choices=METHODS)
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_tauargus.md")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="take a run's figures from the work folder when it was done before")
    ap.add_argument("--cached-only", action="store_true",
                    help="run nothing: write the table from the runs saved in the work folder")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.cap)
        return
    if args.quick:
        args.sizes, args.cap = [1_100], 30
        if args.work == WORK:
            args.work = WORK.with_name(WORK.name + "-quick")
    methods = list(args.only or METHODS[:4])
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    up_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(HEAD)
    print("|" + "---|" * 14, flush=True)
    rows = []
    for size in args.sizes:
        rows.append((size, bench_table(size, args.seed, args.work, args.cap, methods,
                                         args.reuse, args.cached_only)))
    up_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    if args.quick:
        return
    cmd = "  ".join([".venv/bin/python benchmarks/bench_tauargus.py", *sys.argv[1:]])
    lines = [
        f"# Ashyq beside tau-Argus (pytauargus 0.6.0), measured {started}", "",
        f"Command: `{cmd}`  ", f"Machine load before: `{up_before}`  ",
        f"after: `{up_after}` (2 cores shared with other jobs: seconds are upper bounds).", "",
        *[__doc__.split("\n\n")[i] for i in (1, 2, 3)], "", HEAD, "|" + "---|" * 14,
    ]
    for size, rs in rows:
        lines += [fmt_row(size, r) for r in rs]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
