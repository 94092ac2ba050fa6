"""Hypercube partner choice (large tables): kernel paths, proofs by construction, the audit."""

from __future__ import annotations

import numpy as np
import pytest
from supp_helpers import independent_audit, make_table, pattern_mask

import disclosure.secondary_heuristic as heuristic_mod
from disclosure.audit import AuditSystem, audit
from disclosure.linked import build_problem
from disclosure.secondary_hypercube import DimensionPaths, hypercube
from disclosure.suppression import protect_suppression

REGION = {"_T": ["R1", "R2"], "R1": ["R1a", "R1b"], "R2": ["R2a", "R2b", "R2c"],
          "R1a": ["R1a1", "R1a2"], "R1b": ["R1b1", "R1b2"]}
LEAVES = ["R1a1", "R1a2", "R1b1", "R1b2", "R2a", "R2b", "R2c"]


@pytest.mark.parametrize("dim", [{"name": "region", "hierarchy": REGION},
                                 {"name": "sex", "codes": ["F", "M"]},
                                 {"name": "age", "codes": [str(i) for i in range(6)]}])
def test_every_path_is_a_kernel_vector_through_its_code(dim):
    # a one-dimensional table: its relation matrix is the project's own (CellTable.relations)
    leaves = LEAVES if "hierarchy" in dim else dim["codes"]
    t = make_table([dim], [(c, 1) for c in leaves])
    h = t.hierarchies[0]
    rel = t.relations.toarray()
    paths = DimensionPaths(h)
    for c in range(len(h.codes)):
        codes, signs = paths.codes[c], paths.signs[c]
        assert len(codes) >= 1
        for ci, sg in zip(codes, signs, strict=True):
            v = np.zeros(len(h.codes))
            v[ci[ci >= 0]] = sg[ci >= 0]
            assert v[c] == 1
            assert np.all(rel @ v == 0), (h.codes[c], ci, sg)
            assert len(np.unique(ci[ci >= 0])) == (ci >= 0).sum()
    # a district has its siblings, its cousins and the path to the root as partners
    r1a1 = h.codes.index("R1a1") if "R1a1" in h.codes else None
    if r1a1 is not None:
        sizes = sorted((paths.codes[r1a1] >= 0).sum(axis=1))
        assert sizes[0] == 2 and 4 in sizes  # sibling R1a2 (2 codes), path to the root (4 codes)


def _five_dim_table(seed: int = 5, mean: float = 5.0):
    rng = np.random.default_rng(seed)
    dims = [{"name": "region", "hierarchy": REGION}, {"name": "sex", "codes": ["F", "M"]},
            {"name": "age", "codes": ["0", "1", "2"]}, {"name": "cit", "codes": ["K", "R", "U"]},
            {"name": "year", "codes": ["2024", "2025"]}]
    rows = [(r, s, a, c, y, int(rng.poisson(mean)))
            for r in LEAVES for s in "FM" for a in "012" for c in "KRU" for y in ("2024", "2025")]
    return make_table(dims, rows, secondary="heuristic")


def test_hypercubes_prove_every_primary_protected_and_the_audit_agrees():
    t = _five_dim_table()
    prob = build_problem([t])
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    s, cert, unresolved, stats = hypercube(system, prob.primary, prob.required, ~prob.forbidden,
                                           prob.cost, t.shape, t.hierarchies)
    assert prob.primary.sum() > 50
    assert stats["hypercubes"] > 0 and len(unresolved) == 0
    assert np.all(s[prob.primary])
    # every certificate is an attacker point of the final pattern ...
    assert cert.verify(system, s)
    targets = np.flatnonzero(prob.primary)
    width = cert.hi[targets] - cert.lo[targets]
    assert np.all(width >= prob.required[targets] - 1e-6)
    # ... and the exact LP audit (which knows nothing of hypercubes) finds every primary protected
    res = audit(system, s, prob.required)
    assert res.failing == []
    for p in targets:
        assert res.upper[int(p)] - res.lower[int(p)] >= width[targets == p][0] - 1e-6


def test_must_publish_cells_are_never_hypercube_corners():
    t = _five_dim_table(seed=9)
    prob = build_problem([t])
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    forbidden = np.zeros(prob.n, dtype=bool)
    forbidden[t.inner_mask & ~prob.primary] = np.random.default_rng(1).random(
        int((t.inner_mask & ~prob.primary).sum())) < 0.3
    s, cert, unresolved, _ = hypercube(system, prob.primary, prob.required, ~forbidden,
                                       prob.cost, t.shape, t.hierarchies)
    assert not np.any(s & forbidden)
    assert cert.verify(system, s)
    done = np.setdiff1d(np.flatnonzero(prob.primary), unresolved)
    assert np.all(cert.hi[done] - cert.lo[done] >= prob.required[done] - 1e-6)


def test_large_table_path_of_the_heuristic_passes_the_audit(monkeypatch):
    # the hypercube stage normally starts at 150,000 cells; lowered so a small table takes it
    monkeypatch.setattr(heuristic_mod, "HYPERCUBE_MIN_CELLS", 100)
    t = _five_dim_table(seed=11, mean=4.0)
    [pt] = protect_suppression([t])
    d = pt.report.details
    assert d.get("partner_choice") == "hypercube" and d["hypercubes"] > 0
    assert pt.report.audit.passed
    s = pattern_mask(t, pt.published)
    prim, res = independent_audit(t, s)
    assert prim.sum() > 50 and res.failing == []
