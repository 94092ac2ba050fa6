"""Property: the joint attacker audit is never wider than each table's own.

Hypothesis draws small random tables of one source and a history for them: a correction (two
versions of one table), months then their quarter (flows: three months tile the quarter, two leave a
remainder), and a
stock series (the quarter's stock is its last month's). The published tables are protected one
by one as they would have been; the new table is protected against them. Then, for every
primary cell of every table (the new one and the published ones), the interval the engine's
joint audit gives is contained in the interval an attacker gets from that table alone with its
pattern — computed here independently, by scipy's ``linprog`` over the table's own code lists.
An attacker who holds more tables can only know more.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from disclosure.audit import AuditSystem, audit
from disclosure.history import PublishedTable, link_history
from disclosure.linked import build_problem
from disclosure.primary import ProtectionImpossible
from disclosure.suppression import protect_suppression
from disclosure.table import CellTable, read_cells
from publisher.specs import spec_from_mapping

K = 3  # min_frequency (the protection level): small tables keep many primaries
REGION = {"_T": ["A", "B"], "A": ["A1", "A2"], "B": ["B1", "B2", "B3"]}
LEAVES = {"region": ["A1", "A2", "B1", "B2", "B3"], "sex": ["F", "M"]}
DIMS = [{"name": "region", "hierarchy": REGION}, {"name": "sex", "codes": LEAVES["sex"]}]
TOL = 1e-6

counts = st.lists(st.sampled_from([0, 1, 1, 2, 2, 4, 5, 8, 13, 30]),
                  min_size=10, max_size=10)


def table(values: list[int], *, id: str, version: str = "1.0.0", period: str = "2024",
          measure: str | None = None) -> CellTable:
    m = {"id": id, "version": version, "title": {"en": id}, "dimensions": DIMS,
         "source_id": "src", "reference_period": period,
         "disclosure": {"min_frequency": K, "secondary": "heuristic"}}
    if measure:
        m["measure_type"] = measure
    spec = spec_from_mapping(m)
    rows = [[*k, str(v)] for k, v in zip(itertools.product(*LEAVES.values()), values,
                                         strict=True)]
    return read_cells(pd.DataFrame(rows, columns=[*LEAVES, "obs_value"]), spec, source=id)


def status(pt) -> np.ndarray:  # noqa: ANN001
    return pt.published["conf_status"].astype(str).to_numpy()


def publish(t: CellTable, published: list[PublishedTable] | None = None) -> PublishedTable:
    [pt] = protect_suppression([t], published=published)
    return PublishedTable(table=t, conf_status=status(pt), source=t.spec.id)


def own_intervals(t: CellTable, st_: np.ndarray) -> dict[tuple, tuple[float, float]]:
    """Per primary cell (by codes): [min, max] over the table alone, by linprog on relations
    rebuilt from the code lists (each parent = the sum of its children, along each dimension)."""
    codes = [tuple(t.codes_of(i).values()) for i in range(t.n_cells)]
    idx = {c: i for i, c in enumerate(codes)}
    trees = [REGION, {"_T": LEAVES["sex"]}]
    every = [["_T", *[c for kids in tr.values() for c in kids]] for tr in trees]
    rows = []
    for ax, tr in enumerate(trees):
        for parent, kids in tr.items():
            for rest in itertools.product(*(e for j, e in enumerate(every) if j != ax)):
                def at(c: str, rest: tuple = rest, ax: int = ax) -> int:
                    r = list(rest)
                    r.insert(ax, c)
                    return idx[tuple(r)]
                row = np.zeros(t.n_cells)
                row[at(parent)] = 1.0
                for k in kids:
                    row[at(k)] -= 1.0
                rows.append(row)
    a = np.array(rows)
    v = t.values.astype(float)
    assert np.allclose(a @ v, 0)
    ub = float(v.max())
    bounds = [(v[i], v[i]) if st_[i] == "F" else (0.0, ub) for i in range(t.n_cells)]
    out = {}
    for i in np.flatnonzero(st_ == "C"):
        c = np.zeros(t.n_cells)
        c[i] = 1.0
        lo = linprog(c, A_eq=a, b_eq=np.zeros(len(a)), bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=a, b_eq=np.zeros(len(a)), bounds=bounds, method="highs")
        assert lo.status == 0 and hi.status == 0
        out[codes[i]] = (lo.fun, -hi.fun)
    return out


def joint_intervals(new: CellTable, new_status: np.ndarray, published: list[PublishedTable]
                    ) -> list[dict[tuple, tuple[float, float]]]:
    """Per table (the new one, then the published ones in link order): the engine's joint audit
    interval of each of its primary cells, the new table with its final pattern."""
    h = link_history([new], published)
    prob = build_problem(h.tables, h.links)
    s = prob.fixed_suppressed.copy()
    s[prob.cell_maps[0]] = new_status != "F"
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    states = [new_status] + [p.conf_status for p in h.published]
    targets = np.unique(np.concatenate([m[st_ == "C"] for m, st_ in
                                        zip(prob.cell_maps, states, strict=True)]))
    res = audit(system, s, np.full(prob.n, 1.0), targets=targets)
    out = []
    for t, m, st_ in zip(h.tables, prob.cell_maps, states, strict=True):
        out.append({tuple(t.codes_of(int(i)).values()): (res.lower[int(m[i])],
                                                         res.upper[int(m[i])])
                    for i in np.flatnonzero(st_ == "C")})
    return out


def history(kind: str, base: list[int], more: list[list[int]], changed: list[int],
            bump: int) -> tuple[CellTable, list[CellTable]]:
    """The new table and the tables published before it (in publication order)."""
    if kind == "correction":
        fixed = list(base)
        for j in changed:
            fixed[j] = max(0, fixed[j] + bump)
        return table(fixed, id="t", version="1.0.1"), [table(base, id="t")]
    months = [base, *more]
    measure = "flow" if kind == "flow" else "stock"
    pubs = [table(c, id=f"m{k + 1}", period=f"2024-0{k + 1}", measure=measure)
            for k, c in enumerate(months)]
    if kind == "stock":
        return table(months[-1], id="q", period="2024-Q1", measure="stock"), pubs
    total = [sum(c[j] for c in months) for j in range(len(base))]
    if len(months) < 3 and bump > 0:  # the quarter's unpublished month: a remainder >= 0
        for j in changed:
            total[j] += bump
    return table(total, id="q", period="2024-Q1", measure="flow"), pubs


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kind=st.sampled_from(["correction", "flow", "stock"]), base=counts,
       more=st.lists(counts, min_size=1, max_size=2),
       changed=st.lists(st.integers(0, 9), min_size=1, max_size=2, unique=True),
       bump=st.sampled_from([-3, -1, 2, 5]))
def test_joint_audit_never_wider_than_each_tables_own(kind, base, more, changed, bump):  # noqa: ANN001
    new, earlier = history(kind, base, more, changed, bump)
    published: list[PublishedTable] = []
    try:
        for t in earlier:
            # months of a flow are protected alone; a stock month sees the earlier months
            published.append(publish(t, published or None))
        [pt] = protect_suppression([new], published=published)
    except ProtectionImpossible:
        event(f"{kind}: refused")
        return  # refused, never published unsafe: nothing to compare
    new_status = status(pt)
    event(f"{kind}: {'with' if (new_status == 'C').any() else 'without'} new primaries")
    joint = joint_intervals(new, new_status, published)
    h = link_history([new], published)
    own = [own_intervals(new, new_status)] + [own_intervals(p.table, p.conf_status)
                                              for p in h.published]
    assert len(joint) == len(own)
    for mine, theirs in zip(joint, own, strict=True):
        assert mine.keys() == theirs.keys()
        for cell, (lo, hi) in mine.items():
            o_lo, o_hi = theirs[cell]
            assert lo >= o_lo - TOL and hi <= o_hi + TOL, (kind, cell, (lo, hi), (o_lo, o_hi))
    # and the report's intervals are the joint ones
    for x in pt.report.audit.intervals:
        cell = tuple(x["cell"].values())
        lo, hi = joint[0][cell]
        assert abs(x["lower"] - lo) < 1e-5 and abs(x["upper"] - hi) < 1e-5, (x, lo, hi)
