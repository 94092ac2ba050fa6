"""Repair on the joint component of a publication history (``Attacker.repair_model``).

A history's joint component is large on a real source (12 months and their year: 27,000
suppressed cells), so the secondary suppression decides a repeat failure on a block LP and
repairs it cut after cut on one kept model of the whole component, with the new table's
publishable cells as columns fixed at their values. Here ``EXACT_LIMIT`` is lowered so that a
small history takes that path, and every pattern is audited by the independent attacker LP of
``test_history`` (scipy's linprog on the joint system written out from the codes).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_history import attacker_intervals, cube, exposed, status_of
from test_history import months_and_quarter as history_months

import disclosure.audit as audit_mod
from disclosure.audit import AuditSystem, Certificates, audit
from disclosure.history import link_history
from disclosure.linked import build_problem
from disclosure.suppression import protect_suppression


def months_and_quarter(seed: int):  # noqa: ANN201
    return history_months(700 + 10 * seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_repair_model_is_the_exact_joint_lp_and_freeing_a_cell_suppresses_it(
        seed: int, monkeypatch):  # noqa: ANN001
    _, pubs, q = months_and_quarter(seed)
    h = link_history([q], pubs)
    prob = build_problem(h.tables, h.links)
    plain = AuditSystem.build(prob.values, prob.relations, prob.ub)
    blocked = AuditSystem.build(prob.values, prob.relations, prob.ub, blocks=prob.owner)
    rng = np.random.default_rng(seed)
    s = prob.must.copy()
    s[prob.cell_maps[0]] |= rng.random(q.n_cells) < 0.5
    allowed = np.zeros(prob.n, dtype=bool)
    allowed[prob.cell_maps[0]] = True
    targets = np.flatnonzero(prob.primary & s)
    exact = audit(plain, s, np.full(prob.n, 1.0), targets=targets)
    # freeing a published cell of the quarter = suppressing it: the exact LP of s + {j}
    pub = np.flatnonzero(allowed & ~s)
    j = int(pub[np.argmax(prob.values[pub])])
    s2 = s.copy()
    s2[j] = True
    exact2 = audit(plain, s2, np.full(prob.n, 1.0), targets=targets)
    assert not exact.certified and not exact2.certified  # small: exact intervals
    monkeypatch.setattr(audit_mod, "EXACT_LIMIT", 5)
    att = audit_mod.Attacker(blocked, s, Certificates(prob.n))
    kept: list = []
    for p in targets:
        p = int(p)
        mdl = att.repair_model(p, allowed, kept)
        assert mdl is not None
        up, _, down, _ = att._pair(mdl, p)
        assert abs((prob.values[p] + up) - exact.upper[p]) < 1e-6
        assert abs((prob.values[p] - down) - exact.lower[p]) < 1e-6
    assert len(kept) == len({int(att.comp_of[int(p)]) for p in targets})
    assert att.cert.verify(blocked, s)
    for mdl in kept:
        mdl.free([j])
    for p in targets:
        p = int(p)
        mdl = att.repair_model(p, allowed, kept)
        up, _, down, _ = att._pair(mdl, p)
        if int(att.comp_of[p]) == int(att.comp_of[int(targets[0])]):
            assert prob.values[p] + up <= exact2.upper[p] + 1e-6
            assert prob.values[p] - down >= exact2.lower[p] - 1e-6
    assert att.cert.verify(blocked, s2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_months_then_quarter_through_the_repair_path_is_safe(seed: int, monkeypatch):  # noqa: ANN001
    mt, pubs, q = months_and_quarter(seed)
    monkeypatch.setattr(audit_mod, "EXACT_LIMIT", 20)
    monkeypatch.setattr(audit_mod, "LOCAL_SIZES", (3,))  # neighbourhoods that prove little
    calls = []
    real = audit_mod.Attacker.repair_model

    def spy(self, cell, allowed, kept):  # noqa: ANN001, ANN202
        calls.append(cell)
        return real(self, cell, allowed, kept)

    monkeypatch.setattr(audit_mod.Attacker, "repair_model", spy)
    [joint] = protect_suppression([q], published=pubs)
    assert joint.report.audit.passed
    assert calls, "the repair model was not used"

    def key(ti: int, codes: tuple) -> tuple:
        return (ti, codes)
    extra = [((3, k), [(m, k) for m in range(3)]) for k in cube(q)]
    tabs = [(t, p.conf_status) for t, p in zip(mt, pubs, strict=True)]
    got = attacker_intervals([*tabs, (q, status_of(joint))], key, extra)
    assert exposed(got) == [], (seed, exposed(got))
