"""The block LPs of the attacker audit (``AuditSystem.blocks``: per cell, the published table it
belongs to) certify intervals that are inner bounds of the exact ones, and the audit's verdict
stays exact: a primary passes with blocks exactly when it passes with exact intervals.

A history of three published months and their quarter (flows) is built; ``EXACT_LIMIT`` is
lowered so that its joint component counts as large and goes through the certified path.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import disclosure.audit as audit_mod
from disclosure.audit import AuditSystem, audit
from disclosure.history import PublishedTable, link_history
from disclosure.linked import build_problem
from disclosure.suppression import protect_suppression
from disclosure.table import read_cells
from publisher.specs import spec_from_mapping

REGION = {"_T": ["A", "B"], "A": ["A1", "A2", "A3"], "B": ["B1", "B2"]}
LEAVES = [["A1", "A2", "A3", "B1", "B2"], ["F", "M"], ["Y0", "Y1", "Y2"]]


def table(values: np.ndarray, tid: str, period: str):  # noqa: ANN201
    spec = spec_from_mapping({
        "id": tid, "title": {"en": tid}, "version": "1.0.0", "source_id": "src",
        "reference_period": period, "measure_type": "flow",
        "dimensions": [{"name": "region", "hierarchy": REGION},
                       {"name": "sex", "codes": ["F", "M"]},
                       {"name": "age", "codes": ["Y0", "Y1", "Y2"]}],
        "disclosure": {"min_frequency": 4, "secondary": "heuristic"}})
    df = pd.DataFrame(list(itertools.product(*LEAVES)), columns=["region", "sex", "age"])
    df["obs_value"] = [str(int(v)) for v in values]
    return read_cells(df, spec, source=tid)


def system_and_pattern(seed: int) -> tuple[AuditSystem, AuditSystem, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    months = [rng.choice([0, 1, 2, 3, 5, 8, 20], size=30) for _ in range(3)]
    pubs = []
    for m, c in enumerate(months):
        t = table(c, f"m{m + 1}", f"2024-0{m + 1}")
        [pt] = protect_suppression([t])
        pubs.append(PublishedTable(table=t, conf_status=pt.published["conf_status"]
                                   .astype(str).to_numpy(), source=t.spec.id))
    q = table(np.sum(months, axis=0), "q", "2024-Q1")
    h = link_history([q], pubs)
    prob = build_problem(h.tables, h.links)
    s = prob.must.copy()
    s[prob.cell_maps[0]] = rng.random(q.n_cells) < 0.6  # some pattern of the quarter
    plain = AuditSystem.build(prob.values, prob.relations, prob.ub)
    blocked = AuditSystem.build(prob.values, prob.relations, prob.ub, blocks=prob.owner)
    return plain, blocked, s, np.where(prob.primary & s, 4.0, 0.0)


@pytest.mark.parametrize("seed", [3, 11])
def test_block_intervals_are_inner_bounds_and_the_verdict_is_exact(seed, monkeypatch):  # noqa: ANN001
    plain, blocked, s, req = system_and_pattern(seed)
    exact = audit(plain, s, req)
    assert not exact.certified  # small enough: exact intervals
    monkeypatch.setattr(audit_mod, "EXACT_LIMIT", 5)
    att = audit_mod.Attacker(blocked, s, need=req)
    assert max(len(c) for c in att.comp_cells) > 5
    res = audit(blocked, s, req, attacker=att)
    assert res.certified  # the certified path ran
    assert att.block_lps > 0, "no block LP was used"
    for p in exact.lower:
        assert res.lower[p] >= exact.lower[p] - 1e-6 and res.upper[p] <= exact.upper[p] + 1e-6
    assert sorted(res.failing) == sorted(exact.failing)


def test_blocks_must_have_one_id_per_cell():
    with pytest.raises(ValueError, match="one block id per cell"):
        AuditSystem.build(np.array([1.0, 2.0, 3.0]), np.zeros((1, 3)), blocks=np.array([0, 1]))


@pytest.mark.parametrize("seed", [3, 11])
def test_block_first_bounds_are_inner_bounds_with_feasible_points(seed, monkeypatch):  # noqa: ANN001
    """``bounds(block=True)`` (the secondary suppression's repeat checks on a history) stops at
    the block LP: its interval is still an inner bound of the exact one, every point it keeps is
    feasible for the joint system, and a short block interval is flagged as a block verdict."""
    plain, blocked, s, req = system_and_pattern(seed)
    exact = audit(plain, s, req)
    monkeypatch.setattr(audit_mod, "EXACT_LIMIT", 5)
    monkeypatch.setattr(audit_mod, "LOCAL_SIZES", (1,))  # neighbourhoods that prove nothing
    att = audit_mod.Attacker(blocked, s, need=req)
    flagged = set()
    for p in np.flatnonzero(req > 0):
        lo, hi, info = att.bounds(int(p), float(req[p]), deep=True, block=True)
        assert lo >= exact.lower[int(p)] - 1e-6 and hi <= exact.upper[int(p)] + 1e-6
        if info.get("block"):
            flagged.add(int(p))
            assert hi - lo < req[p] - audit_mod.TOL
            assert info["up"] is not None and info["rows"] is not None
    assert att.block_lps > 0
    assert att.cert.verify(blocked, s)
    assert set(exact.failing) <= flagged  # a restriction is never wider than the joint LP
