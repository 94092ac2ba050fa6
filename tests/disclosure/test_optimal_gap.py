"""The optimal method on four-dimensional migration-like tables: never worse than the heuristic,
a lower bound that bounds, and public words that hold no measured (raw-derived) figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from supp_helpers import independent_audit

from disclosure.audit import AuditSystem
from disclosure.linked import build_problem
from disclosure.methods import PublishedFacts, get_method
from disclosure.methods.suppression import Optimality, SuppressionSpec
from disclosure.secondary_heuristic import heuristic
from disclosure.secondary_optimal import MIP_GAP_TOLERANCE, optimal
from disclosure.spec import Dimension, Hierarchy, TableSpec
from disclosure.suppression import protect_suppression
from disclosure.table import CellTable, aggregate


def migration_table(seed: int, regions: int = 2, districts: int = 2, citizenships: int = 3,
                    ages: int = 2, **disclosure) -> CellTable:
    """region -> district x citizenship (Pareto-sized) x age x sex; about a quarter of the inner
    cells zero and many small (the shape of benchmarks/bench_optimal_gap.py, smaller)."""
    regs = [f"R{i}" for i in range(1, regions + 1)]
    region = {"_T": regs} | {r: [f"{r}D{j}" for j in range(1, districts + 1)] for r in regs}
    dims = (
        Dimension("region", Hierarchy.from_children("region", region)),
        Dimension("citizenship",
                  Hierarchy.flat("citizenship", [f"C{i}" for i in range(1, citizenships + 1)])),
        Dimension("age", Hierarchy.flat("age", [f"A{i}" for i in range(1, ages + 1)])),
        Dimension("sex", Hierarchy.flat("sex", ["F", "M"])),
    )
    spec = TableSpec(id="gap", version="1.0.0", title={"en": "gap"}, dimensions=dims,
                     disclosure=SuppressionSpec(min_frequency=5, **disclosure))
    rng = np.random.default_rng(seed)
    shape = tuple(len(d.hierarchy.leaves) for d in dims)
    cit = np.arange(1, shape[1] + 1, dtype=float) ** -1.0
    mean = (rng.gamma(4.0, 0.25, size=shape[0])[:, None, None, None]
            * (cit / cit.mean())[None, :, None, None] * np.ones(shape) * 12.0)
    inner = rng.poisson(mean).astype(np.int64)
    inner[rng.random(shape) < 0.2] = 0
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))


def _solve(t: CellTable):
    prob = build_problem([t])
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    h = heuristic(system, prob.must, prob.required, prob.allowed, prob.cost,
                  shape=t.shape, hierarchies=t.hierarchies)
    s, d = optimal(system, prob.must, prob.required, prob.allowed, prob.cost,
                   tables=prob.tables, cell_maps=prob.cell_maps, shape=t.shape,
                   hierarchies=t.hierarchies, work_limit=50)
    return prob, h[0], s, d


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_optimal_never_worse_than_heuristic_and_bound_holds(seed):
    t = migration_table(seed)
    prob, s_h, s_o, d = _solve(t)
    assert prob.primary.sum() > 0
    cost_h, cost_o = float(prob.cost[s_h].sum()), float(prob.cost[s_o].sum())
    assert cost_o <= cost_h + 1e-9
    _, res = independent_audit(t, s_o)
    assert res.failing == []
    o, costs = d["optimality"], d["_costs"]
    assert costs["heuristic"] == pytest.approx(cost_h)
    assert costs["final"] == pytest.approx(cost_o)
    # the lower bound bounds the pattern's cost, and the gap is the one it states
    fixed = float(prob.cost[prob.must].sum())
    assert fixed - 1e-6 <= costs["lower_bound"] <= cost_o + 1e-6
    sec = cost_o - fixed
    if sec > 0:
        assert o["gap"] == pytest.approx((cost_o - costs["lower_bound"]) / sec, abs=1e-5)
    assert o["within_tolerance"] == (o["gap"] <= MIP_GAP_TOLERANCE + 1e-12)
    assert o["better_than_heuristic"] == (cost_o < cost_h - 1e-9)
    assert o["blocks"] == 1 and 0 <= o["blocks_improved"] <= 1
    assert o["blocks_improved"] == int(o["better_than_heuristic"])


def test_optimal_is_proven_on_a_tiny_table():
    """On a table small enough for the cut loop and the MILP, the pattern is proven optimal."""
    t = migration_table(4, regions=1, districts=2, citizenships=2, ages=1)
    prob, s_h, s_o, d = _solve(t)
    assert d["optimality"]["proven_optimal"]
    assert d["optimality"]["gap"] <= 1e-3
    assert float(prob.cost[s_o].sum()) <= float(prob.cost[s_h].sum()) + 1e-9


def _describe(opt: Optimality | None, fallbacks: list[str] | None = None):
    t = migration_table(1, secondary="optimal", work_limit=20)
    [pt] = protect_suppression([t])
    rep = pt.report
    if opt is not None or fallbacks is not None:
        rep = dataclasses.replace(rep, optimality=opt, fallbacks=fallbacks or [])
    facts = PublishedFacts(cells=rep.cells, primary=rep.primary.cells,
                           secondary=rep.secondary.cells, non_negative=True, additive=True)
    from datapackages.i18n import tr

    impl = get_method("suppression")
    return impl.describe(t.spec, rep, facts, tr), impl.review(rep)


def _opt(**kw) -> Optimality:
    base = {"gap": 0.123456, "lower_bound_ratio": 0.876544, "proven_optimal": False,
            "scope": "table", "nodes": 7, "iterations": 2, "better_than_heuristic": True,
            "within_tolerance": False, "mip_gap_tolerance": 0.02, "blocks": 3,
            "blocks_improved": 2}
    return Optimality(**(base | kw))


@pytest.mark.parametrize("case, expect", [
    ({"proven_optimal": True, "gap": 0.0, "lower_bound_ratio": 1.0}, "pattern is proven optimal"),
    ({"within_tolerance": True, "gap": 0.0137, "lower_bound_ratio": 0.9863},
     "within the MIP gap tolerance of 2%"),
    ({}, "not proven optimal (work limit reached): the heuristic pattern was improved in 2 of "
         "3 block(s)"),
])
def test_public_text_states_only_the_setting_and_counts(case, expect):
    opt = _opt(**case)
    note, review = _describe(opt)
    en = note.text["en"]
    assert expect in en
    # never the measured gap or lower bound (ratios of raw suppressed values)
    for figure in (opt.gap, opt.lower_bound_ratio):
        for shown in (f"{100 * figure:.1f}", f"{100 * figure:.2f}", f"{figure:.3f}",
                      f"{figure:g}"):
            if shown not in ("0.0", "100.0", "0", "1", "0.000", "1.000", "0.00", "100.00"):
                assert shown not in en
    assert "gap" not in note.parameters and "lower_bound" not in str(note.parameters)
    assert "gap" not in (note.audit or {})
    words = str(review.get("Optimiser"))
    assert "12.3" not in words and "0.123" not in words


def test_public_text_after_the_time_limit_names_no_optimality():
    note, _ = _describe(None, fallbacks=["optimal: the time limit of 1 s struck"])
    assert "proven optimal" not in note.text["en"]
    assert "time limit" in note.text["en"]
