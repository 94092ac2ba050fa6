"""Deterministic protection: the same input and spec give the same pattern under any CPU load.

Secondary suppression is bounded by work (attacker LPs in the heuristic's pruning, branch-and-
bound nodes in the optimal method), never by the clock, so a ~5,000-cell four-dimensional table
protected once on an idle machine and once with busy loops on every core gives the same
pattern, cell for cell (security issue, "Deterministic protection").
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from disclosure.methods.suppression import SuppressionSpec
from disclosure.spec import Dimension, Hierarchy, TableSpec
from disclosure.suppression import protect_suppression
from disclosure.table import CellTable, aggregate


def _table(secondary: str, seed: int = 11, work_limit: int | None = None) -> CellTable:
    """region (4 regions -> 4 districts each) x citizenship (9, Pareto-sized) x age (7) x sex:
    21 x 10 x 8 x 3 = 5,040 cells, about a quarter of the inner cells zero or small."""
    regs = [f"R{i}" for i in range(1, 5)]
    region = {"_T": regs} | {r: [f"{r}D{j}" for j in range(1, 5)] for r in regs}
    dims = (
        Dimension("region", Hierarchy.from_children("region", region)),
        Dimension("citizenship", Hierarchy.flat("citizenship", [f"C{i}" for i in range(1, 10)])),
        Dimension("age", Hierarchy.flat("age", [f"A{i}" for i in range(1, 8)])),
        Dimension("sex", Hierarchy.flat("sex", ["F", "M"])),
    )
    spec = TableSpec(id="determinism", version="1.0.0", title={"en": "determinism"},
                     dimensions=dims,
                     disclosure=SuppressionSpec(min_frequency=5, secondary=secondary,
                                                work_limit=work_limit))
    rng = np.random.default_rng(seed)
    shape = tuple(len(d.hierarchy.leaves) for d in dims)
    cit = np.sort(rng.pareto(1.3, size=shape[1]) + 0.2)[::-1]
    mean = (rng.gamma(3.0, 1.0, size=shape[0])[:, None, None, None]
            * (cit / cit.mean())[None, :, None, None]
            * rng.gamma(4.0, 1.0, size=shape[2])[None, None, :, None] / 4.0
            * np.ones(shape) * 25.0)
    inner = rng.poisson(mean).astype(np.int64)
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))


def _burn(stop: float) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while time.time() < stop:
        x += 1


#: the optimal method's node budget in this test: small, so the test stays short (on this table
#: one HiGHS node takes about 0.4 s); the determinism does not depend on the budget's size
WORK_LIMIT = 20


def _pattern(secondary: str) -> tuple[np.ndarray, dict]:
    [pt] = protect_suppression([_table(secondary, work_limit=WORK_LIMIT)])
    assert pt.report.audit.passed
    return pt.published["conf_status"].to_numpy().copy(), pt.report.details


@pytest.mark.parametrize("secondary", ["heuristic", "optimal"])
def test_same_pattern_under_cpu_load(secondary):
    t0 = time.perf_counter()
    idle, d_idle = _pattern(secondary)
    idle_s = time.perf_counter() - t0
    ctx = mp.get_context("fork")
    n = max(2, os.cpu_count() or 2)
    stop = time.time() + 3 * idle_s + 30  # busy for the whole loaded run
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(n)]
    for b in burners:
        b.start()
    try:
        t1 = time.perf_counter()
        loaded, d_loaded = _pattern(secondary)
        loaded_s = time.perf_counter() - t1
    finally:
        for b in burners:
            b.terminate()
            b.join()
    assert len(idle) == 5040
    assert (idle != "F").sum() > 0
    assert np.array_equal(idle, loaded), (
        f"{(idle != loaded).sum()} cells differ (idle {idle_s:.1f} s, loaded {loaded_s:.1f} s)")
    for key in ("pruned", "prune_lps", "iterations", "nodes"):
        assert d_idle.get(key) == d_loaded.get(key)
