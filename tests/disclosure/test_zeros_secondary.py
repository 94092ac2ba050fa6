"""Zero cells as secondary suppressions: ``zero_secondary: avoid`` (default) or ``allow``.

A suppressed zero sits at its lower bound: it hides little, and a reader loses a published cell.
With ``avoid`` no zero cell is a secondary suppression unless the primaries cannot be protected
without one (then zeros are allowed and the report says so); the audit stays clean either way.
"""

from __future__ import annotations

import pytest
from supp_helpers import independent_audit, make_table, pattern_mask, spec_map
from test_optimal_gap import migration_table

from disclosure.suppression import protect_suppression
from publisher.specs import spec_from_mapping

DIMS = [{"name": "r", "codes": ["A", "B", "C"]}, {"name": "c", "codes": ["x", "y", "z"]}]
#: a table whose primaries can only be protected with a zero cell once A,y and B,y must be
#: published (found by a search over small random tables)
NEEDS_ZERO = [("A", "x", 0), ("A", "y", 15), ("A", "z", 0), ("B", "x", 3), ("B", "y", 30),
              ("B", "z", 30), ("C", "x", 0), ("C", "y", 0), ("C", "z", 3)]
MUST = [{"r": "B", "c": "y"}, {"r": "A", "c": "y"}]


def _zero_secondaries(pt) -> int:
    st = pt.published["conf_status"].to_numpy()
    return int(((st == "D") & (pt.table.values == 0)).sum())


def test_spec_key_default_values_and_refusal():
    assert spec_from_mapping(spec_map(DIMS)).disclosure.zero_secondary == "avoid"
    spec = spec_from_mapping(spec_map(DIMS, zero_secondary="allow"))
    assert spec.disclosure.zero_secondary == "allow"
    with pytest.raises(Exception, match="zero_secondary"):
        spec_from_mapping(spec_map(DIMS, zero_secondary="sometimes"))


@pytest.mark.parametrize("method", ["heuristic", "optimal"])
def test_avoid_uses_no_zero_where_allow_does(method):
    allow = migration_table(1, secondary=method, zero_secondary="allow", work_limit=20)
    avoid = migration_table(1, secondary=method, zero_secondary="avoid", work_limit=20)
    [pa] = protect_suppression([allow])
    [pv] = protect_suppression([avoid])
    assert _zero_secondaries(pa) > 0  # zeros are cheap partners when allowed
    assert _zero_secondaries(pv) == 0
    for pt in (pa, pv):
        assert pt.report.audit.passed
        assert pt.report.audit.exact == 0 and pt.report.audit.narrow == 0
        _, res = independent_audit(pt.table, pattern_mask(pt.table, pt.published))
        assert res.failing == []
    assert pv.report.parameters.zero_secondary == "avoid"
    assert pa.report.parameters.zero_secondary == "allow"
    assert not any("zero cells were allowed" in w for w in pv.report.warnings)


def test_zeros_are_allowed_when_protection_needs_them_and_the_report_says_so():
    t = make_table(DIMS, NEEDS_ZERO, must_publish=MUST)
    assert t.spec.disclosure.zero_secondary == "avoid"
    [pt] = protect_suppression([t])
    assert _zero_secondaries(pt) > 0
    assert any("zero cells were allowed" in w for w in pt.report.warnings)
    _, res = independent_audit(t, pattern_mask(t, pt.published))
    assert res.failing == []
