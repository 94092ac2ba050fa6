"""Linked tables: shared cells suppressed in all tables or none, audit on the union."""

from __future__ import annotations

import numpy as np
import pytest
from supp_helpers import make_table

from disclosure.audit import AuditSystem, audit
from disclosure.errors import AshyqError
from disclosure.linked import build_problem
from disclosure.protect import protect_linked
from disclosure.spec import TOTAL
from disclosure.table import InputError

REGION = {"name": "region", "hierarchy": {"_T": ["N", "S"], "N": ["N1", "N2"], "S": ["S1", "S2"]}}
SEX = {"name": "sex", "codes": ["F", "M"]}
AGE = {"name": "age", "codes": ["Y", "O"]}

# person counts by district x sex x age; both tables are margins of it
CUBE = {("N1", "F", "Y"): 3, ("N1", "F", "O"): 10, ("N1", "M", "Y"): 12, ("N1", "M", "O"): 9,
        ("N2", "F", "Y"): 8, ("N2", "F", "O"): 7, ("N2", "M", "Y"): 1, ("N2", "M", "O"): 15,
        ("S1", "F", "Y"): 20, ("S1", "F", "O"): 2, ("S1", "M", "Y"): 11, ("S1", "M", "O"): 14,
        ("S2", "F", "Y"): 9, ("S2", "F", "O"): 13, ("S2", "M", "Y"): 6, ("S2", "M", "O"): 18}


def _tables(method="heuristic", tweak=0):
    by_sex: dict = {}
    by_age: dict = {}
    for (r, s, a), v in CUBE.items():
        by_sex[(r, s)] = by_sex.get((r, s), 0) + v
        by_age[(r, a)] = by_age.get((r, a), 0) + v
    by_age[("N1", "Y")] += tweak
    by_age[("N1", "O")] -= tweak
    t1 = make_table([REGION, SEX], [(r, s, v) for (r, s), v in by_sex.items()],
                    secondary=method, min_frequency=14)
    t2 = make_table([REGION, AGE], [(r, a, v) for (r, a), v in by_age.items()],
                    secondary=method, min_frequency=14)
    return t1, t2


@pytest.mark.parametrize("method", ["heuristic", "optimal"])
def test_shared_cells_agree_and_union_audit_passes(method):
    t1, t2 = _tables(method)
    p1, p2 = protect_linked([t1, t2])
    # region totals (sex=_T in t1, age=_T in t2) are the same cells: same status
    for code in t1.hierarchies[0].codes:
        a = p1.published["conf_status"].iloc[t1.cell_id({"region": code, "sex": TOTAL})] != "F"
        b = p2.published["conf_status"].iloc[t2.cell_id({"region": code, "age": TOTAL})] != "F"
        assert a == b, code
    assert p1.report.linked_tables == ["t", "t"]
    assert p1.report.audit.passed and p2.report.audit.passed
    # independent union audit from the published frames
    prob = build_problem([t1, t2])
    s = np.zeros(prob.n, dtype=bool)
    for p, m in ((p1, prob.cell_maps[0]), (p2, prob.cell_maps[1])):
        s[m[(p.published["conf_status"] != "F").to_numpy()]] = True
    res = audit(AuditSystem.build(prob.values, prob.relations, prob.ub), s, prob.required)
    assert res.failing == []
    assert prob.primary.sum() >= 2


def test_separate_protection_can_leak_through_the_other_table():
    """Protecting each table alone leaves something the union attacker narrows down (or not):
    the linked result is never worse than required, whatever the single results are."""
    t1, t2 = _tables()
    prob = build_problem([t1, t2])
    # shared cells are counted once: 7 region codes shared
    assert prob.n == t1.n_cells + t2.n_cells - len(t1.hierarchies[0].codes)


def test_disagreeing_shared_cell_is_refused_with_its_codes():
    t1, t2 = _tables(tweak=0)
    rows = [(r, a, int(t2.values[t2.cell_id({"region": r, "age": a})]))
            for r in ("N1", "N2", "S1", "S2") for a in ("Y", "O")]
    rows[0] = (rows[0][0], rows[0][1], rows[0][2] + 1)  # N1 one more,
    rows[2] = (rows[2][0], rows[2][1], rows[2][2] - 1)  # N2 one fewer: N and _T still agree
    bad = make_table([REGION, AGE], rows, min_frequency=14)
    with pytest.raises(InputError, match="region=N1"):
        protect_linked([t1, bad])


def test_linked_noise_tables_are_refused():
    t1, _ = _tables()
    from publisher.specs import spec_from_mapping

    spec = spec_from_mapping({"id": "n", "title": {"en": "n"}, "dimensions": [REGION, SEX],
                              "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1}}})
    import dataclasses

    t3 = dataclasses.replace(t1, spec=spec)
    with pytest.raises(AshyqError, match="one disclosure method"):
        protect_linked([t1, t3])
