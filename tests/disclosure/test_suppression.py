"""Cell suppression end to end: primary rules, heuristic and optimal secondary, report, refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from supp_helpers import bench_table, independent_audit, make_table, pattern_mask

from disclosure.methods.suppression import SuppressionReport
from disclosure.primary import ProtectionImpossible
from disclosure.protect import protect
from disclosure.report import report_from_dict
from disclosure.suppression import protect_suppression

DIMS2 = [{"name": "r", "codes": ["A", "B", "C"]}, {"name": "c", "codes": ["x", "y", "z"]}]
ROWS = [("A", "x", 2), ("A", "y", 30), ("A", "z", 25), ("B", "x", 20), ("B", "y", 18),
        ("B", "z", 40), ("C", "x", 22), ("C", "y", 35), ("C", "z", 17)]


def _check_public(pt):
    """Public frame: suppressed cells have no value; flags are consistent."""
    df = pt.published
    sup = df["conf_status"] != "F"
    assert df.loc[sup, "obs_value"].isna().all()
    assert (df.loc[sup, "obs_status"] == "Q").all()
    assert df.loc[~sup, "obs_value"].notna().all()
    assert set(df["conf_status"]) <= {"F", "C", "D"}
    return sup


@pytest.mark.parametrize("method", ["heuristic", "optimal"])
def test_small_table_is_protected(method):
    t = make_table(DIMS2, ROWS, secondary=method)
    pt = protect(t)
    _check_public(pt)
    s = pattern_mask(t, pt.published)
    prim, res = independent_audit(t, s)
    assert prim.sum() == 1 and res.failing == []
    ax = t.cell_id({"r": "A", "c": "x"})
    assert pt.published["conf_status"].iloc[ax] == "C"
    assert (pt.published["conf_status"] == "D").sum() >= 3  # a 2x2 rectangle at least
    rep = pt.report
    assert isinstance(rep, SuppressionReport)
    json.dumps(rep.to_dict())
    assert rep.audit.passed and rep.audit.narrow == 0 and rep.audit.exact == 0
    [iv] = rep.audit.intervals
    assert iv["cell"] == {"r": "A", "c": "x"} and iv["width"] >= 5
    assert "value" not in iv  # the report never states a suppressed cell's value
    assert rep.secondary.cells == int((pt.published["conf_status"] == "D").sum())
    assert rep.suppressed.cells == int(s.sum())
    # the report holds counts only, no figure derived from the suppressed values
    d = rep.to_dict()
    assert "value_suppressed" not in d and not any("value" in k for k in d["suppressed"])


def test_heuristic_no_worse_than_sdctable_simpleheuristic():
    for name, cells, value in (("ex_vignette", 27, 549), ("synth_small", 55, 1973)):
        [pt] = protect_suppression([bench_table(name, "heuristic")])
        rep = pt.report
        assert rep.audit.passed
        assert rep.secondary.cells <= cells
        s = pattern_mask(pt.table, pt.published)
        assert int(pt.table.values[s].sum()) <= value  # value suppressed
        _, res = independent_audit(pt.table, s)
        assert res.failing == []


def test_optimal_within_one_percent_of_best_passing_peer():
    # best peer patterns that pass the audit: ex_vignette GAUSS 488, synth_small tau-Argus OPT 965
    for name, best in (("ex_vignette", 488), ("synth_small", 965)):
        [pt] = protect_suppression([bench_table(name, "optimal")])
        assert pt.report.audit.passed
        value = int(pt.table.values[pattern_mask(pt.table, pt.published)].sum())
        assert value <= best * 1.01
        assert pt.report.fallbacks == []


def test_five_dimensions_with_three_level_hierarchy():
    rng = np.random.default_rng(3)
    region = {"_T": ["R1", "R2"], "R1": ["R1a", "R1b"], "R2": ["R2a", "R2b", "R2c"],
              "R1a": ["R1a1", "R1a2"], "R1b": ["R1b1", "R1b2"]}
    dims = [{"name": "region", "hierarchy": region}, {"name": "sex", "codes": ["F", "M"]},
            {"name": "age", "codes": ["0", "1", "2"]}, {"name": "cit", "codes": ["K", "R"]},
            {"name": "year", "codes": ["2024", "2025"]}]
    leaves = ["R1a1", "R1a2", "R1b1", "R1b2", "R2a", "R2b", "R2c"]
    rows = [(r, s, a, c, y, int(rng.poisson(6)))
            for r in leaves for s in "FM" for a in "012" for c in "KR" for y in ("2024", "2025")]
    for method in ("heuristic", "optimal"):
        t = make_table(dims, rows, secondary=method, time_limit=20)
        assert t.n_cells == 12 * 3 * 4 * 3 * 3
        [pt] = protect_suppression([t])
        _check_public(pt)
        s = pattern_mask(t, pt.published)
        prim, res = independent_audit(t, s)
        assert prim.sum() > 20 and res.failing == []
        assert set(pt.report.by_dimension["region"][i]["level"] for i in range(4)) == {0, 1, 2, 3}


def test_secondary_none_refuses_when_primaries_are_recomputable():
    t = make_table(DIMS2, ROWS, secondary="none")
    with pytest.raises(ProtectionImpossible, match="none"):
        protect(t)


def test_confidential_cell_is_primary_and_protected():
    rows = [(r, c, v if v >= 5 else 9) for r, c, v in ROWS]
    t = make_table(DIMS2, rows, confidential=[{"r": "B", "c": "y"}])
    pt = protect(t)
    bid = t.cell_id({"r": "B", "c": "y"})
    assert pt.published["conf_status"].iloc[bid] == "C"
    assert pt.report.primary.by_rule["manual"] == 1
    prim = np.zeros(t.n_cells, dtype=bool)
    prim[bid] = True
    s = pattern_mask(t, pt.published)
    assert pt.report.audit.intervals[0]["width"] >= 5 and s[bid]


def test_must_publish_is_respected_or_refused():
    # A's row total must be published: protection goes through other cells.
    t = make_table(DIMS2, ROWS, must_publish=[{"r": "A"}, {"c": "x"}])
    pt = protect(t)
    assert pt.published["conf_status"].iloc[t.cell_id({"r": "A"})] == "F"
    # Must publish every other cell of A's row and column: impossible.
    t2 = make_table(DIMS2, ROWS, must_publish=[{"r": "A", "c": "y"}, {"r": "A", "c": "z"},
                                               {"r": "A"}])
    with pytest.raises(ProtectionImpossible):
        protect(t2)
    t3 = make_table(DIMS2, ROWS, must_publish=[{"r": "A", "c": "x"}])
    with pytest.raises(ProtectionImpossible, match="must publish"):
        protect(t3)


def test_zero_policy_primary_and_percent_level():
    rows = [(r, c, 0 if (r, c) == ("C", "z") else v) for r, c, v in ROWS]
    t = make_table(DIMS2, rows, zero_policy="primary", protection_level={"percent": 50})
    pt = protect(t)
    cz = t.cell_id({"r": "C", "c": "z"})
    assert pt.published["conf_status"].iloc[cz] == "C"
    assert pt.report.primary.by_rule["zero"] == 1
    for iv in pt.report.audit.intervals:
        assert iv["width"] >= iv["required_width"] - 1e-6
        assert iv["required_width"] >= 1


def test_optimal_time_limit_falls_back_and_says_so(monkeypatch):
    import disclosure.secondary_optimal as so

    monkeypatch.setattr(so, "BLOCK_THRESHOLD", 10)  # force decomposition into blocks
    t = bench_table("synth_small", "optimal")
    import dataclasses
    t.spec = dataclasses.replace(t.spec, disclosure=dataclasses.replace(
        t.spec.disclosure, time_limit=1e-4))
    [pt] = protect_suppression([t])
    assert pt.report.audit.passed
    assert pt.report.fallbacks and "time limit" in pt.report.fallbacks[0]


def test_report_is_json_and_complete():
    [pt] = protect_suppression([bench_table("ex_vignette", "heuristic")])
    rep = json.loads(json.dumps(pt.report.to_dict()))
    for key in ("method", "parameters", "cells", "primary", "secondary", "suppressed",
                "by_dimension", "audit", "seconds", "fallbacks", "warnings"):
        assert key in rep
    assert "value_suppressed" not in rep  # counts only: no figure derived from raw values
    assert rep["schema_version"] == 1 and rep["method"] == "suppression"
    assert report_from_dict(rep) == pt.report  # the JSON form reads back as the typed report
    assert rep["cells"] == 168 and rep["primary"]["cells"] == 15
    assert len(rep["audit"]["intervals"]) == 15
    assert rep["audit"]["wasted_secondary"] == []
    total = sum(lv["primary"] + lv["secondary"] for lv in rep["by_dimension"]["V1"])
    assert total == rep["suppressed"]["cells"]
    pub = pt.published
    assert isinstance(pub, pd.DataFrame) and len(pub) == 168


def test_optimal_by_blocks_is_protected_and_no_worse_than_the_heuristic(monkeypatch):
    import disclosure.secondary_optimal as so

    [heur] = protect_suppression([bench_table("synth_small", "heuristic")])
    monkeypatch.setattr(so, "BLOCK_THRESHOLD", 10)  # one block per region
    [pt] = protect_suppression([bench_table("synth_small", "optimal")])
    assert pt.report.details["blocks"] == 4  # three regions and the region total
    assert pt.report.audit.passed
    s = pattern_mask(pt.table, pt.published)
    value_heur = int(heur.table.values[pattern_mask(heur.table, heur.published)].sum())
    assert int(pt.table.values[s].sum()) <= value_heur  # value suppressed
    _, res = independent_audit(pt.table, s)
    assert res.failing == []
