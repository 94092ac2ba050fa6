"""How close ``secondary: optimal`` gets to the least cost on four-dimensional migration tables.

Tables (issue 19): region → district (2-level hierarchy) × citizenship (Pareto-sized groups) ×
age groups × sex, about a quarter of the inner cells zero and about 15% small counts (1..4);
``min_frequency`` 5, protection level 5 (sliding interval). For ~5 seeds at ~1,000, ~2,500 and
~5,000 cells this prints: cells, primaries, the heuristic's cost and secondary cells, the optimal
method's cost and secondary cells, the stated MIP gap and lower bound (sums of raw values:
a benchmark's own figures, never in a report), seconds, branch-and-bound nodes, zero cells
suppressed, and our independent audit of the optimal pattern.

    .venv/bin/python benchmarks/bench_optimal_gap.py [--sizes 1000 2500 5000] [--seeds 1 2 3 4 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from disclosure.audit import AuditSystem, audit  # noqa: E402
from disclosure.linked import build_problem  # noqa: E402
from disclosure.methods.suppression import SuppressionSpec  # noqa: E402
from disclosure.spec import Dimension, Hierarchy, TableSpec  # noqa: E402
from disclosure.table import CellTable, aggregate  # noqa: E402

#: (regions, districts per region, citizenships, age groups): 4 dims with sex
SIZES = {
    1000: (3, 3, 6, 3),     # 13 x 7 x 4 x 3 = 1,092 cells
    2500: (4, 4, 9, 3),     # 21 x 10 x 4 x 3 = 2,520 cells
    5000: (5, 5, 10, 4),    # 31 x 11 x 5 x 3 = 5,115 cells
}


def migration_table(regions: int, districts: int, citizenships: int, ages: int, seed: int,
                    secondary: str = "optimal", mean_count: float = 20.0,
                    zero_share: float = 0.22, **disclosure
                    ) -> CellTable:
    """A synthetic migration-like table (see the module docstring)."""
    regs = [f"R{i:02d}" for i in range(1, regions + 1)]
    region = {"_T": regs} | {r: [f"{r}D{j:02d}" for j in range(1, districts + 1)] for r in regs}
    dims = (
        Dimension("region", Hierarchy.from_children("region", region)),
        Dimension("citizenship",
                  Hierarchy.flat("citizenship", [f"C{i:02d}" for i in range(1, citizenships + 1)])),
        Dimension("age", Hierarchy.flat("age", [f"A{i}" for i in range(1, ages + 1)])),
        Dimension("sex", Hierarchy.flat("sex", ["F", "M"])),
    )
    spec = TableSpec(id=f"gap-{seed}", version="1.0.0", title={"en": "gap"}, dimensions=dims,
                     disclosure=SuppressionSpec(min_frequency=5, secondary=secondary,
                                                **disclosure))
    rng = np.random.default_rng(seed)
    shape = tuple(len(d.hierarchy.leaves) for d in dims)
    # Pareto-sized citizenship groups: rank k holds about 1/k of the first's migrants
    cit = np.sort(np.arange(1, shape[1] + 1) ** -1.0 * rng.lognormal(0.0, 0.3, shape[1]))[::-1]
    mean = (rng.gamma(4.0, 1.0, size=shape[0])[:, None, None, None] / 4.0
            * (cit / cit.mean())[None, :, None, None]
            * rng.gamma(6.0, 1.0, size=shape[2])[None, None, :, None] / 6.0
            * rng.uniform(0.8, 1.2, size=shape[3])[None, None, None, :]
            * np.ones(shape) * mean_count)
    inner = rng.poisson(mean).astype(np.int64)
    # structural zeros: no migrant of that citizenship and age in that district
    inner[rng.random(shape) < zero_share] = 0
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))


def run(table: CellTable, optimal_module: str | None = None) -> dict:
    """Heuristic and optimal on one table, on the cells the real run may choose (with
    ``zero_secondary: avoid`` zero cells are not candidates)."""
    from disclosure import secondary_optimal
    from disclosure.secondary_heuristic import heuristic

    mod = secondary_optimal
    if optimal_module:  # another version of the module (e.g. the one before a change)
        import importlib.util

        spec = importlib.util.spec_from_file_location("disclosure._optimal_alt", optimal_module)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    prob = build_problem([table])
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    allowed = prob.allowed
    if getattr(table.spec.disclosure, "zero_secondary", "avoid") == "avoid":
        allowed = allowed & ~((prob.values == 0) & ~prob.must)
    t0 = time.perf_counter()
    h = heuristic(system, prob.must, prob.required, allowed, prob.cost,
                  shape=table.shape, hierarchies=table.hierarchies)
    s_h = h[0]
    t_h = time.perf_counter() - t0
    kw = {"tables": prob.tables, "cell_maps": prob.cell_maps, "shape": table.shape,
          "hierarchies": table.hierarchies, "work_limit": table.spec.disclosure.work_limit}
    t0 = time.perf_counter()
    if "start" in mod.optimal.__code__.co_varnames:
        s_o, d = mod.optimal(system, prob.must, prob.required, allowed, prob.cost,
                             start=(s_h, {k: v for k, v in h[1].items()
                                          if not k.startswith("_")}), **kw)
        t_o = time.perf_counter() - t0 + t_h  # the heuristic's start is part of the run
    else:
        s_o, d = mod.optimal(system, prob.must, prob.required, allowed, prob.cost, **kw)
        t_o = time.perf_counter() - t0
    res = audit(system, s_o, prob.required)
    inner = table.inner_mask
    o = d.get("optimality") or {}
    costs = d.get("_costs") or {}
    zero = prob.values == 0
    return {
        "cells": table.n_cells, "primary": int(prob.primary.sum()),
        "zeros": float((table.values[inner] == 0).mean()),
        "small": float(((table.values[inner] > 0) & (table.values[inner] < 5)).mean()),
        "h_cost": float(prob.cost[s_h].sum()), "h_sec": int((s_h & ~prob.primary).sum()),
        "h_s": t_h, "h_zero": int((s_h & ~prob.primary & zero).sum()),
        "o_cost": float(prob.cost[s_o].sum()), "o_sec": int((s_o & ~prob.primary).sum()),
        "o_zero": int((s_o & ~prob.primary & zero).sum()),
        "gap": o.get("gap"), "lb": costs.get("lower_bound"), "proven": o.get("proven_optimal"),
        "o_s": t_o, "nodes": d.get("nodes", 0), "iters": d.get("iterations", 0),
        "lp_rounds": d.get("lp_rounds", 0), "cuts": d.get("cuts", 0),
        "audit": "clean" if not res.failing else f"{len(res.failing)} FAIL",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    ap.add_argument("--cost", default="value+count")
    ap.add_argument("--zero-secondary", default="avoid", choices=("avoid", "allow"))
    ap.add_argument("--work-limit", type=int, default=None)
    ap.add_argument("--optimal-module", default=None,
                    help="path of another secondary_optimal.py to run instead (a baseline)")
    a = ap.parse_args()
    print("| cells | primary | zeros / small | heuristic cost / sec. cells (zeros) | optimal "
          "cost / sec. cells (zeros) | gap | lower bound | proven | heur. s | opt. s "
          "(incl. heur.) | LP rounds | MILPs | nodes | cuts | audit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in a.sizes:
        dims = SIZES[size]
        for seed in a.seeds:
            t = migration_table(*dims, seed=seed, cost=a.cost, work_limit=a.work_limit,
                                zero_secondary=a.zero_secondary)
            r = run(t, a.optimal_module)
            gap = "–" if r["gap"] is None else f"{100 * r['gap']:.2f}%"
            lb = "–" if r["lb"] is None else f"{r['lb']:,.0f}"
            print(f"| {r['cells']:,} | {r['primary']} | {100 * r['zeros']:.0f}% / "
                  f"{100 * r['small']:.0f}% | {r['h_cost']:,.0f} / {r['h_sec']} ({r['h_zero']}) "
                  f"| {r['o_cost']:,.0f} / {r['o_sec']} ({r['o_zero']}) | {gap} | {lb} | "
                  f"{'yes' if r['proven'] else 'no'} | {r['h_s']:.1f} | {r['o_s']:.1f} | "
                  f"{r['lp_rounds']} | {r['iters']} | {r['nodes']} | {r['cuts']} | "
                  f"{r['audit']} |", flush=True)


if __name__ == "__main__":
    main()
