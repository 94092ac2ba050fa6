"""Publication history: a release is safe against everything already published from its source.

Scenarios built by this file's own generator and seeds: a correction (v1.0.0, then v1.0.1 with
two inner cells changed), monthly flows then their quarter, a stock series, a refusal, and the
command line. Every scenario is checked by an attacker LP written here from scratch
(:func:`attacker_intervals`: scipy's ``linprog`` over the joint system, relations rebuilt from the
specs' code lists, not from the engine's relation matrix or audit).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import linprog

from disclosure.audit import AuditSystem, audit
from disclosure.errors import AshyqError
from disclosure.history import HistoryError, PublishedTable, link_history, parse_period
from disclosure.primary import ProtectionImpossible
from disclosure.suppression import protect_suppression
from disclosure.table import CellTable, read_cells
from publisher.specs import spec_from_mapping

REGIONS = {"_T": ["R1", "R2", "R3"], "R1": ["R1a", "R1b", "R1c"], "R2": ["R2a", "R2b"],
           "R3": ["R3a", "R3b", "R3c"]}
SEXES = ["F", "M"]
AGES = ["A0", "A1", "A2", "A3"]
DIMS = [{"name": "region", "hierarchy": REGIONS}, {"name": "sex", "codes": SEXES},
        {"name": "age", "codes": AGES}]
LEAVES = {"region": ["R1a", "R1b", "R1c", "R2a", "R2b", "R3a", "R3b", "R3c"], "sex": SEXES,
          "age": AGES}
K = 5  # min_frequency = protection level


# -- generator ----------------------------------------------------------------------------------

def spec_map(*, id: str = "kids", version: str = "1.0.0", period: str | None = "2024",
             measure: str | None = None, source: str | None = "src", secondary: str = "heuristic",
             dims: list[dict] | None = None, **disclosure) -> dict:
    m = {"id": id, "version": version, "title": {"en": id}, "dimensions": dims or DIMS,
         "disclosure": {"min_frequency": K, "secondary": secondary} | disclosure}
    if period is not None:
        m["reference_period"] = period
    if measure is not None:
        m["measure_type"] = measure
    if source is not None:
        m["source_id"] = source
    return m


def inner_counts(seed: int, scale: float = 1.0) -> dict[tuple, int]:
    """Counts of the inner cells: many small ones (a sparse migration table)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in itertools.product(*LEAVES.values()):
        out[key] = int(rng.choice([0, 0, 1, 2, 3, 4, 6, 8, 12, 20]) * scale
                       if rng.random() < 0.85 else rng.integers(20, 60))
    return out


def table_of(counts: dict[tuple, int], **spec_kw) -> CellTable:
    spec = spec_from_mapping(spec_map(**spec_kw))
    names = list(LEAVES)
    df = pd.DataFrame([[*k, str(v)] for k, v in counts.items()], columns=[*names, "obs_value"])
    df[names] = df[names].astype(str)
    return read_cells(df, spec, source=spec.id)


def correct(counts: dict[tuple, int], seed: int) -> dict[tuple, int]:
    """Version 1.0.1: two inner cells changed (the rest, and so many totals, unchanged)."""
    rng = np.random.default_rng(seed + 1000)
    keys = list(counts)
    out = dict(counts)
    for i in rng.choice(len(keys), size=2, replace=False):
        out[keys[i]] = max(0, counts[keys[i]] + int(rng.choice([-3, -2, 2, 3, 4])))
    return out


def status_of(pt) -> np.ndarray:  # noqa: ANN001
    return pt.published["conf_status"].astype(str).to_numpy()


def publish(table: CellTable, published: list | None = None) -> PublishedTable:
    [pt] = protect_suppression([table], published=published)
    return PublishedTable(table=table, conf_status=status_of(pt), source=table.spec.id)


# -- the independent attacker -------------------------------------------------------------------

def _relations(spec_dims: list[dict]) -> list[tuple[tuple, list[tuple]]]:
    """(total codes, [part codes]) for every additive relation, from the code lists alone."""
    trees = []
    for d in spec_dims:
        ch = d.get("hierarchy") or {"_T": d["codes"]}
        codes = ["_T"] + [c for kids in ch.values() for c in kids]
        trees.append((ch, codes))
    out = []
    for ax, (ch, _) in enumerate(trees):
        others = [codes for j, (_, codes) in enumerate(trees) if j != ax]
        for parent, kids in ch.items():
            for rest in itertools.product(*others):
                def cell(c: str, rest: tuple = rest, ax: int = ax) -> tuple:
                    r = list(rest)
                    r.insert(ax, c)
                    return tuple(r)
                out.append((cell(parent), [cell(k) for k in kids]))
    return out


def cube(table: CellTable) -> dict[tuple, int]:
    return {tuple(table.codes_of(i).values()): int(table.values[i]) for i in range(table.n_cells)}


def attacker_intervals(tables: list[tuple[CellTable, np.ndarray]], key, extra=(),  # noqa: ANN001
                       targets=None) -> dict:  # noqa: ANN001
    """min/max of every target over the joint system, by scipy's linprog.

    ``tables``: (table, conf_status) pairs; ``key(t, codes)`` names the attacker's unknown of a
    cell (cells with one key are one unknown); ``extra``: (key, [keys]) sum relations. A key
    published free anywhere is a constant; bounds 0 <= x <= the largest grand total.
    ``targets``: keys to bound (default: every primary cell, conf_status C).
    """
    var: dict = {}
    value: dict = {}
    known: set = set()
    prim: list = []
    ub = 0
    for ti, (t, st) in enumerate(tables):
        c = cube(t)
        ub = max(ub, max(c.values()))
        for i, (codes, v) in enumerate(c.items()):
            k = key(ti, codes)
            var.setdefault(k, len(var))
            value[k] = v
            if st[i] == "F":
                known.add(k)
            elif st[i] == "C":
                prim.append(k)
    rows = []
    for ti, (t, _) in enumerate(tables):
        for tot, parts in _relations([{"name": d.name, **({"codes": list(d.hierarchy.children["_T"])}
                                                           if len(d.hierarchy.children) == 1 else
                                                           {"hierarchy": {p: list(k) for p, k in
                                                                          d.hierarchy.children.items()}})}
                                      for d in t.spec.dimensions]):
            rows.append([(key(ti, tot), 1.0)] + [(key(ti, p), -1.0) for p in parts])
    for tot, parts in extra:
        rows.append([(tot, 1.0)] + [(p, -1.0) for p in parts])
    n = len(var)
    a = np.zeros((len(rows), n))
    for r, row in enumerate(rows):
        for k, coef in row:
            a[r, var[k]] += coef
    bounds = [(value[k], value[k]) if k in known else (0, ub) for k in var]
    assert np.allclose(a @ np.array([value[k] for k in var]), 0), "relations do not hold"
    out = {}
    for k in dict.fromkeys(targets if targets is not None else prim):
        if k in known:
            out[k] = (value[k], value[k])
            continue
        c = np.zeros(n)
        c[var[k]] = 1.0
        lo = linprog(c, A_eq=a, b_eq=np.zeros(len(rows)), bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=a, b_eq=np.zeros(len(rows)), bounds=bounds, method="highs")
        out[k] = (lo.fun, -hi.fun)
    return out


def exposed(intervals: dict, level: float = K) -> list:
    return [k for k, (lo, hi) in intervals.items() if hi - lo < level - 1e-6]


def version_key(v1: CellTable, v2: CellTable):  # noqa: ANN201
    c1, c2 = cube(v1), cube(v2)
    return lambda ti, codes: (("same", codes) if c1[codes] == c2[codes] else (ti, codes))


# -- (a) a correction ---------------------------------------------------------------------------

@pytest.mark.parametrize("secondary", ["heuristic",
                                       pytest.param("optimal", marks=pytest.mark.slow)])
def test_correction_alone_leaks_and_with_history_does_not(secondary: str):
    leaked_alone = 0
    for seed in range(6):
        c1 = inner_counts(seed)
        v1 = table_of(c1, secondary=secondary)
        v2 = table_of(correct(c1, seed), version="1.0.1", secondary=secondary)
        p1 = publish(v1)
        [alone] = protect_suppression([v2])
        assert alone.report.audit.passed
        key = version_key(v1, v2)
        got = attacker_intervals([(v1, p1.conf_status), (v2, status_of(alone))], key)
        leaked_alone += bool(exposed(got))
        [joint] = protect_suppression([v2], published=[p1])
        rep = joint.report
        assert rep.audit.passed and rep.covered == [
            {"id": "kids", "version": "1.0.0", "reference_period": "2024"}]
        assert rep.previous_version == "1.0.0" and rep.flips is not None
        assert "kids 1.0.0" in rep.attacker_model and "two versions" in rep.attacker_model
        got = attacker_intervals([(v1, p1.conf_status), (v2, status_of(joint))], key)
        assert exposed(got) == [], (seed, exposed(got))
        # unchanged cells keep their state (they are one cell, already public or hidden)
        same = np.array([key(0, k)[0] == "same" for k in cube(v2)])
        assert (status_of(joint)[same] != "F").tolist() == (p1.conf_status[same] != "F").tolist()
    assert leaked_alone >= 1


# -- (b) months, then the quarter (flows) -------------------------------------------------------

@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_months_then_quarter_flow(seed: int):
    months = [inner_counts(100 + 10 * seed + m) for m in range(3)]
    quarter = {k: sum(m[k] for m in months) for k in months[0]}
    mt = [table_of(c, period=f"2024-0{m + 1}", measure="flow", id=f"kids-m{m + 1}")
          for m, c in enumerate(months)]
    pubs = [publish(t) for t in mt]
    q = table_of(quarter, period="2024-Q1", measure="flow", id="kids-q")

    def key(ti: int, codes: tuple) -> tuple:
        return (ti, codes)
    extra = [((3, k), [(m, k) for m in range(3)]) for k in cube(q)]
    [alone] = protect_suppression([q])
    [joint] = protect_suppression([q], published=pubs)
    assert joint.report.audit.passed
    assert [c["reference_period"] for c in joint.report.covered] == [
        "2024-01", "2024-02", "2024-03"]
    assert "2024-Q1 = 2024-01 + 2024-02 + 2024-03" in joint.report.attacker_model
    tabs = [(t, p.conf_status) for t, p in zip(mt, pubs, strict=True)]
    got = attacker_intervals([*tabs, (q, status_of(joint))], key, extra)
    assert exposed(got) == [], (seed, exposed(got))
    if seed == 0:
        got_alone = attacker_intervals([*tabs, (q, status_of(alone))], key, extra)
        assert exposed(got_alone), "the quarter protected alone should expose something"


def test_two_months_of_a_quarter_give_a_remainder():
    months = [inner_counts(300 + m) for m in range(3)]
    quarter = {k: sum(m[k] for m in months) for k in months[0]}
    pubs = [publish(table_of(c, period=f"2024-0{m + 1}", measure="flow", id=f"m{m + 1}"))
            for m, c in enumerate(months[:2])]
    q = table_of(quarter, period="2024-Q1", measure="flow", id="q")
    [joint] = protect_suppression([q], published=pubs)
    assert joint.report.audit.passed
    assert "remainder" in joint.report.attacker_model


# -- (c) stocks ---------------------------------------------------------------------------------

def test_stock_quarter_is_its_last_month():
    months = [inner_counts(200 + m, scale=1.0) for m in range(3)]
    mt = [table_of(c, period=f"2024-0{m + 1}", measure="stock", id="stock-m") if m == 0 else
          table_of(c, period=f"2024-0{m + 1}", measure="stock", id=f"stock-m{m + 1}")
          for m, c in enumerate(months)]
    pubs = [publish(t) for t in mt]
    q = table_of(months[2], period="2024-Q1", measure="stock", id="stock-q")
    [joint] = protect_suppression([q], published=pubs)
    assert joint.report.audit.passed
    # every cell is March's cell: the pattern is March's, nothing to choose
    assert status_of(joint).tolist() == pubs[2].conf_status.tolist()
    assert "end of its last sub-period" in joint.report.attacker_model
    # a quarter stock that differs from its last month is refused (one cell, two values)
    other = dict(months[2])
    k0 = next(iter(other))
    other[k0] += 7
    with pytest.raises(AshyqError, match="disagree"):
        protect_suppression([table_of(other, period="2024-Q1", measure="stock", id="stock-q")],
                            published=pubs)


# -- (d) refusal --------------------------------------------------------------------------------

FLAT = [{"name": "region", "codes": ["A", "B", "C"]}]


def flat(values: list[int], **kw) -> CellTable:
    spec = spec_from_mapping(spec_map(dims=FLAT, **kw))
    df = pd.DataFrame({"region": ["A", "B", "C"], "obs_value": [str(v) for v in values]})
    return read_cells(df, spec, source=spec.id)


def test_refused_when_an_earlier_release_pins_a_primary():
    q = publish(flat([22, 30, 30], period="2024-Q1", measure="flow", id="q"))
    jan = publish(flat([10, 10, 10], period="2024-01", measure="flow", id="jan"))
    feb = publish(flat([10, 10, 10], period="2024-02", measure="flow", id="feb"))
    mar = flat([2, 10, 10], period="2024-03", measure="flow", id="mar")
    protect_suppression([mar])  # alone it is fine
    with pytest.raises(ProtectionImpossible) as e:
        protect_suppression([mar], published=[q, jan, feb])
    msg = str(e.value)
    assert "region=A" in msg and "q 1.0.0 (2024-Q1)" in msg and "earlier release" in msg


def test_refused_when_a_new_primary_was_published_free():
    v1 = publish(flat([4, 10, 10], min_frequency=3))  # 4 is free under min_frequency 3
    v2 = flat([4, 10, 11], version="1.1.0")  # min_frequency 5: region=A is primary now
    with pytest.raises(ProtectionImpossible, match=r"region=A.*kids 1\.0\.0"):
        protect_suppression([v2], published=[v1])


def test_noise_refuses_published():
    from disclosure.methods import ProtectContext
    from disclosure.protect import protect_linked

    spec = spec_from_mapping({"id": "n", "title": {"en": "n"}, "dimensions": FLAT,
                              "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1}}})
    t = read_cells(pd.DataFrame({"region": ["A", "B", "C"], "obs_value": ["5", "6", "7"]}), spec)
    with pytest.raises(AshyqError, match="privacy budget ledger"):
        protect_linked([t], context=ProtectContext(rng=1, published=[publish(flat([9, 9, 9]))]))


def test_history_input_errors():
    for bad in ("2024-13", "2024Q1", "24", "2024-02-30", "last year"):
        with pytest.raises(HistoryError, match="reference_period"):
            parse_period(bad, source="spec x")
    assert parse_period("2024-Q2").start.month == 4 and parse_period("2024-02").end.day == 29
    a = flat([9, 9, 9], period="2024-01", measure=None, id="a")
    b = publish(flat([9, 9, 9], period="2024-02", measure=None, id="b"))
    with pytest.raises(HistoryError, match="measure_type"):
        link_history([a], [b])
    c = flat([9, 9, 9], period="2024-02/2024-04", measure="flow", id="c")
    d = publish(flat([9, 9, 9], period="2024-Q1", measure="flow", id="d"))
    with pytest.raises(HistoryError, match="overlap"):
        link_history([c], [d])
    same = publish(flat([9, 9, 9], version="1.2.0"))
    with pytest.raises(HistoryError, match="not lower"):
        link_history([flat([9, 9, 9], version="1.1.0")], [same])


# -- (e) the joint audit is never wider than the table's own ------------------------------------

def months_and_quarter(first_seed: int) -> tuple[list[CellTable], list[PublishedTable],
                                                  CellTable]:
    """Three monthly flow tables (seeds ``first_seed`` + 0, 1, 2), each published alone, and
    their quarter (not yet protected)."""
    months = [inner_counts(first_seed + m) for m in range(3)]
    mt = [table_of(c, period=f"2024-0{m + 1}", measure="flow", id=f"m{m + 1}")
          for m, c in enumerate(months)]
    pubs = [publish(t) for t in mt]
    q = table_of({k: sum(m[k] for m in months) for k in months[0]}, period="2024-Q1",
                 measure="flow", id="q")
    return mt, pubs, q


def own_intervals(table: CellTable, status: np.ndarray) -> dict:
    sup = status != "F"
    prim = status == "C"
    req = np.where(prim, float(K), 0.0)
    res = audit(AuditSystem.build(table.values, table.relations), sup, req)
    return {i: (res.lower[i], res.upper[i]) for i in res.lower}


@pytest.mark.parametrize("seed", range(4))
def test_joint_intervals_never_wider_than_own(seed: int):
    c1 = inner_counts(500 + seed)
    v1 = table_of(c1)
    p1 = publish(v1)
    _, pubs, q = months_and_quarter(600 + 10 * seed)
    cases = [(table_of(correct(c1, seed), version="1.0.1"), [p1]), (q, pubs)]
    for new, published in cases:
        [joint] = protect_suppression([new], published=published)
        st = status_of(joint)
        own = own_intervals(new, st)
        for x in joint.report.audit.intervals:
            i = new.cell_id(x["cell"])
            lo, hi = own[i]
            assert x["lower"] >= lo - 1e-6 and x["upper"] <= hi + 1e-6, (x, own[i])
        # and for the pattern the table would get alone, audited jointly by the engine
        [alone] = protect_suppression([new])
        own_alone = own_intervals(new, status_of(alone))
        from disclosure.history import link_history as lh
        from disclosure.linked import build_problem

        h = lh([new], published)
        prob = build_problem(h.tables, h.links)
        s = prob.fixed_suppressed.copy()  # a cell the new table publishes is known
        s[prob.cell_maps[0][status_of(alone) == "F"]] = False
        s[prob.cell_maps[0][status_of(alone) != "F"]] = True
        system = AuditSystem.build(prob.values, prob.relations, prob.ub)
        targets = prob.cell_maps[0][np.asarray(list(own_alone))]
        res = audit(system, s, np.full(prob.n, 1.0), targets=targets)
        for i, p in zip(own_alone, targets, strict=True):
            assert res.lower[int(p)] >= own_alone[i][0] - 1e-6
            assert res.upper[int(p)] <= own_alone[i][1] + 1e-6


# -- (f) the command line -----------------------------------------------------------------------

PUBLISHER = [sys.executable, "-m", "publisher.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PUBLISHER, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300,
                          env={"PATH": "/usr/bin:/bin", "ASHYQ_OUTPUT_DIR": str(cwd / "out"),
                               "ASHYQ_DATABASE_URL": f"sqlite:///{cwd / 'db.sqlite'}",
                               "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def write_table(d: Path, name: str, counts: dict[tuple, int], **spec_kw) -> tuple[str, str]:
    (d / f"{name}.yaml").write_text(yaml.safe_dump(spec_map(**spec_kw)), "utf-8")
    rows = ["region,sex,age,obs_value"] + [",".join([*k, str(v)]) for k, v in counts.items()]
    (d / f"{name}.csv").write_text("\n".join(rows) + "\n", "utf-8")
    return f"{name}.yaml", f"{name}.csv"


@pytest.mark.slow
def test_cli_published_end_to_end_and_bad_input(tmp_path: Path):
    import json

    from disclosure.report import report_from_dict

    c1 = inner_counts(7)
    s1, i1 = write_table(tmp_path, "v1", c1)
    p = run("protect", s1, i1, "-o", "v1.out.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    s2, i2 = write_table(tmp_path, "v2", correct(c1, 7), version="1.0.1")
    p = run("protect", s2, i2, "-o", "v2.out.csv", "--report", "v2.json",
            "--published", s1, i1, "v1.out.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rep = report_from_dict(json.loads((tmp_path / "v2.json").read_text()))
    assert rep.audit.passed and rep.covered[0]["version"] == "1.0.0" and rep.flips is not None
    # independent check of what was written
    v1 = table_of(c1)
    v2 = table_of(correct(c1, 7), version="1.0.1")
    st1 = pd.read_csv(tmp_path / "v1.out.csv", dtype=str)["conf_status"].to_numpy()
    st2 = pd.read_csv(tmp_path / "v2.out.csv", dtype=str)["conf_status"].to_numpy()
    assert exposed(attacker_intervals([(v1, st1), (v2, st2)], version_key(v1, v2))) == []

    def refused(*extra: str, out: str = "x.csv") -> str:
        p = run("protect", s2, i2, "-o", out, *extra, cwd=tmp_path)
        line = one_line_error(p)
        assert not (tmp_path / out).exists()
        return line

    # the published output does not belong to its input (a free value differs)
    bad = (tmp_path / "v1.out.csv").read_text().splitlines()
    j = next(i for i, ln in enumerate(bad) if i and ln.split(",")[-1] == "F"
             and ln.split(",")[3] not in ("", "0"))
    f = bad[j].split(",")
    f[3] = str(int(f[3]) + 1)
    bad[j] = ",".join(f)
    (tmp_path / "bad.out.csv").write_text("\n".join(bad) + "\n")
    line = refused("--published", s1, i1, "bad.out.csv")
    assert "bad.out.csv" in line and f"row {j + 1}" in line and "obs_value" in line
    # codes that are not the spec's
    (tmp_path / "codes.out.csv").write_text(
        (tmp_path / "v1.out.csv").read_text().replace("R1a,", "R9z,", 1))
    line = refused("--published", s1, i1, "codes.out.csv")
    assert "codes.out.csv" in line and "column region" in line
    # a bad period string
    sb, ib = write_table(tmp_path, "badper", c1, period="2024-M1")
    line = refused("--published", sb, ib, "v1.out.csv")
    assert "reference_period" in line
    # previous version not lower
    s3, _ = write_table(tmp_path, "v3", c1, version="1.0.2")
    line = refused("--published", s3, i1, "v1.out.csv")
    assert "not lower" in line and "key version" in line
    # several periods, no measure_type
    s4, i4 = write_table(tmp_path, "m1", c1, period="2024-01", id="other")
    line = refused("--published", s4, i4, "v1.out.csv")
    assert "measure_type" in line


def test_cli_flow_periods_that_do_not_nest(tmp_path: Path):
    c = inner_counts(8)
    s1, i1 = write_table(tmp_path, "q", c, period="2024-Q1", measure="flow", id="q")
    assert run("protect", s1, i1, "-o", "q.out.csv", cwd=tmp_path).returncode == 0
    s2, i2 = write_table(tmp_path, "x", c, period="2024-03/2024-05", measure="flow", id="x")
    p = run("protect", s2, i2, "-o", "x.out.csv", "--published", s1, i1, "q.out.csv",
            cwd=tmp_path)
    line = one_line_error(p)
    assert "overlap" in line and "reference_period" in line
    assert not (tmp_path / "x.out.csv").exists()
