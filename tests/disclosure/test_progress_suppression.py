"""Progress while suppression runs: phases and primary cells left, from an optional callable."""

from __future__ import annotations

import numpy as np
import pytest
from test_optimal_gap import migration_table

from disclosure.methods import ProtectContext, get_method
from disclosure.suppression import protect_suppression


@pytest.mark.parametrize("method, middle", [("heuristic", "secondary"),
                                            ("optimal", "optimising")])
def test_progress_reports_phases_and_primaries_left(method, middle):
    t = migration_table(2, secondary=method, work_limit=20)
    calls: list[tuple[str, dict]] = []
    [pt] = protect_suppression([t], progress=lambda phase, **f: calls.append((phase, f)))
    phases = [p for p, _ in calls]
    assert phases[0] == "primary" and phases[-1] == "audit"
    assert middle in phases
    n_primary = pt.report.primary.cells
    assert calls[0][1]["primaries_left"] == n_primary
    lefts = [f["primaries_left"] for _, f in calls]
    assert all(isinstance(x, int) and 0 <= x <= n_primary for x in lefts)
    assert calls[-1][1]["primaries_left"] == 0
    # the heuristic's rounds: the primaries still failing after each attacker round
    sec = [f["primaries_left"] for p, f in calls if p == "secondary"]
    assert sec and sec[-1] == 0
    # the same pattern with and without someone listening
    [quiet] = protect_suppression([migration_table(2, secondary=method, work_limit=20)])
    assert np.array_equal(quiet.published["conf_status"].to_numpy(),
                          pt.published["conf_status"].to_numpy())


def test_method_protect_passes_cells_and_primaries_with_every_step():
    t = migration_table(3, secondary="heuristic")
    steps: list[tuple[str, dict]] = []
    ctx = ProtectContext(progress=lambda phase, **f: steps.append((phase, f)))
    [pt] = get_method("suppression").protect([t], ctx)
    assert {"secondary", "primary", "audit", "audited"} <= {p for p, _ in steps}
    for _, f in steps:
        assert f["cells"] == t.n_cells and f["primaries"] == pt.report.primary.cells
        assert 0 <= f["primaries_left"] <= f["primaries"]
    assert steps[-1] == ("audited", {"cells": t.n_cells, "primaries": pt.report.primary.cells,
                                     "primaries_left": 0})


def test_no_progress_no_calls():
    [pt] = get_method("suppression").protect([migration_table(3, secondary="heuristic")],
                                             ProtectContext())
    assert pt.report.audit.passed
