"""The attacker audit: LP intervals by hand, cuts, and the peers' patterns re-audited."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from supp_helpers import DATA, bench_table, independent_audit, make_table, pattern_mask

from disclosure.audit import Attacker, AuditSystem, Certificates, audit, required_width

ROWS2x2 = [("A", "x", 1), ("A", "y", 9), ("B", "x", 6), ("B", "y", 4)]
DIMS2 = [{"name": "r", "codes": ["A", "B"]}, {"name": "c", "codes": ["x", "y"]}]


def _system(t):
    return AuditSystem.build(t.values, t.relations)


def test_hypercube_interval_by_hand():
    # All four inner cells suppressed, totals published: y = (t, -t, -t, t), t in [-1, 6].
    t = make_table(DIMS2, ROWS2x2)
    s = t.inner_mask.copy()
    ax = t.cell_id({"r": "A", "c": "x"})
    by = t.cell_id({"r": "B", "c": "y"})
    res = audit(_system(t), s, np.where(s, 5.0, 0.0))
    assert res.lower[ax] == pytest.approx(0) and res.upper[ax] == pytest.approx(7)
    assert res.lower[by] == pytest.approx(3) and res.upper[by] == pytest.approx(10)
    assert res.failing == []  # every width is 7 >= 5


def test_single_suppression_in_a_relation_is_exact():
    t = make_table(DIMS2, ROWS2x2)
    s = np.zeros(t.n_cells, dtype=bool)
    ax = t.cell_id({"r": "A", "c": "x"})
    s[ax] = True
    res = audit(_system(t), s, np.where(s, 5.0, 0.0))
    assert res.width(ax) == pytest.approx(0)
    assert res.failing == [ax]


def test_narrow_interval_fails_the_level():
    t = make_table(DIMS2, ROWS2x2)
    s = t.inner_mask.copy()
    ax = t.cell_id({"r": "A", "c": "x"})
    req = np.zeros(t.n_cells)
    req[ax] = 8.0  # wider than the attainable 7
    res = audit(_system(t), s, req)
    assert res.failing == [ax]


def test_cut_equals_lp_bound_at_the_pattern():
    """The Benders cut sum g_i z_i equals the attacker's reach at the current pattern."""
    t = bench_table("synth_small")
    df = pd.read_csv(DATA / "synth_small" / "tauargus-OPT.csv", dtype=str, keep_default_na=False)
    s = pattern_mask(t, df)
    system = _system(t)
    att = Attacker(system, s)
    prim = np.flatnonzero((t.values > 0) & (t.values < 5))
    for p in prim[:8]:
        lo, hi, duals = att.bounds(int(p))
        up = att.cut(int(p), +1, duals["up"])
        down = att.cut(int(p), -1, duals["down"])
        assert sum(g for i, g in up.items() if s[i]) == pytest.approx(hi - t.values[p], abs=1e-6)
        assert sum(g for i, g in down.items() if s[i]) == pytest.approx(t.values[p] - lo, abs=1e-6)


def _peer(name, method):
    return pd.read_csv(DATA / name / f"{method}.csv", dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name,method,exact,narrow", [
    ("ex_vignette", "sdctable-OPT", 1, 1),
    ("ex_vignette", "sdctable-HITAS", 8, 8),
    ("ex_vignette", "sdctable-SIMPLEHEURISTIC", 0, 0),
    ("synth_small", "sdctable-GAUSS", 0, 2),
    ("synth_small", "tauargus-OPT", 0, 0),
])
def test_peer_patterns_reaudited(name, method, exact, narrow):
    """Our audit reproduces the independent audit in peers.csv (exact / narrow primaries)."""
    t = bench_table(name)
    s = pattern_mask(t, _peer(name, method))
    prim, res = independent_audit(t, s)
    widths = np.array([res.width(p) for p in res.lower])
    assert int((widths < 1e-6).sum()) == exact
    assert len(res.failing) == narrow
    peers = pd.read_csv(DATA / name / "peers.csv")
    row = peers[peers["method"] == method.split("-", 1)[1]].iloc[0]
    assert (int(row["audit_exact"]), int(row["audit_narrow"]) + int(row["audit_exact"])) == (exact, narrow)


def test_required_width_percent_and_absolute():
    v = np.array([0, 3, 40, 200])
    prim = np.array([False, True, True, True])
    assert list(required_width(v, prim, "absolute", 5)) == [0, 5, 5, 5]
    assert list(required_width(v, prim, "percent", 10)) == [0, 1, 4, 20]


def test_unsuppressed_cell_cannot_be_queried():
    t = make_table(DIMS2, ROWS2x2)
    att = Attacker(_system(t), np.zeros(t.n_cells, dtype=bool))
    with pytest.raises(ValueError):
        att.bounds(0)


def test_certified_mode_gives_inner_bounds_of_the_exact_intervals(monkeypatch):
    """Large components: local/interior-point certificates bound the exact interval from inside."""
    import disclosure.audit as au

    t = bench_table("synth_small")
    s = pattern_mask(t, _peer("synth_small", "tauargus-OPT"))
    prim, exact = independent_audit(t, s)
    monkeypatch.setattr(au, "EXACT_LIMIT", 5)
    req = required_width(t.values, prim, "absolute", 5)
    system = _system(t)
    for shape in (None, t.shape):  # breadth-first neighbourhoods, boxes of codes
        att = Attacker(system, s, need=req, shape=shape)
        res = audit(system, s, req, attacker=att)
        assert set(res.certified) == set(exact.lower)
        for p in exact.lower:
            assert exact.lower[p] - 1e-6 <= res.lower[p] <= res.upper[p] <= exact.upper[p] + 1e-6
        assert att.cert.verify(system, s)
        assert res.failing == []  # this pattern is safe, and the certificates show it


def test_certificates_that_do_not_fit_the_pattern_are_dropped():
    t = make_table(DIMS2, ROWS2x2)
    s = t.inner_mask.copy()
    ax = t.cell_id({"r": "A", "c": "x"})
    ay = t.cell_id({"r": "A", "c": "y"})
    cert = Certificates(t.n_cells)
    cert.add(np.array([ax, ay]), np.array([2.0, -2.0]))  # breaks the column relations
    assert not cert.verify(_system(t), s)
    assert cert.points == [] and cert.hi[ax] == 0
    ok = Certificates(t.n_cells)
    cells = np.flatnonzero(s)
    y = np.array([1.0 if c in (ax, t.cell_id({"r": "B", "c": "y"})) else -1.0 for c in cells])
    ok.add(cells, y)
    assert ok.verify(_system(t), s) and ok.hi[ax] == 1


def test_column_generation_reaches_the_exact_interval(monkeypatch):
    """Tiny neighbourhoods that cannot certify: pricing in columns ends at the exact bounds."""
    import disclosure.audit as au

    t = bench_table("synth_small")
    s = pattern_mask(t, _peer("synth_small", "tauargus-OPT"))
    prim, exact = independent_audit(t, s)
    monkeypatch.setattr(au, "EXACT_LIMIT", 5)
    monkeypatch.setattr(au, "LOCAL_SIZES", (2,))
    system = _system(t)
    huge = np.where(prim & s, 1e9, 0.0)  # never satisfied: every interval is pushed to the end
    att = Attacker(system, s)
    for p in list(exact.lower)[:6]:
        lo, hi, info = att.bounds(p, float(huge[p]))
        assert lo == pytest.approx(exact.lower[p], abs=1e-6)
        assert hi == pytest.approx(exact.upper[p], abs=1e-6)
    assert att.cert.verify(system, s)
