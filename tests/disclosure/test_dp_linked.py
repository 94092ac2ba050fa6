"""Linked noise tables of one release: one budget split over the tables, shared cells published
once (same value and margin of error in every table), every table additive."""

from __future__ import annotations

import math

import numpy as np
import pytest

from disclosure.methods.noise import NoiseSpecError
from disclosure.noise import linked_shares, protect_noise_linked
from disclosure.spec import TOTAL
from disclosure.table import CellTable, aggregate
from publisher.specs import spec_from_mapping

REG = {"name": "region", "hierarchy": {"_T": ["R1", "R2", "R3"], "R1": ["R1A", "R1B"],
                                       "R2": ["R2A", "R2B", "R2C"]}}
SEX = {"name": "sex", "codes": ["F", "M"]}
CIT = {"name": "citizenship", "codes": ["KZ", "UZ", "KG", "RU"]}
AGE = {"name": "age", "codes": ["0-4", "5-9", "10-14"]}
NAMES = ["region", "sex", "citizenship", "age"]
LEAVES = {"region": 6, "sex": 2, "citizenship": 4, "age": 3}


def spec(i: int, dims: list[dict], **noise: object):
    noise = noise or {"mechanism": "geometric", "epsilon": 1.0}
    return spec_from_mapping({"id": f"t{i}", "title": {"en": "t"}, "dimensions": dims,
                              "source_id": "src", "reference_period": "2025",
                              "disclosure": {"noise": noise}})


def tables_of(specs, seed: int = 1) -> list[CellTable]:
    """The tables of one population: each is a margin of one person-level cube."""
    full = np.random.default_rng(seed).poisson(3, size=tuple(LEAVES[n] for n in NAMES))
    out = []
    for s in specs:
        dims = [d.name for d in s.dimensions]
        axes = [NAMES.index(n) for n in dims]
        inner = full.sum(axis=tuple(a for a in range(len(NAMES)) if a not in axes))
        inner = np.transpose(inner, [sorted(axes).index(a) for a in axes])
        out.append(CellTable(spec=s, values=aggregate(s, inner).reshape(-1)))
    return out


def shared_values(pts) -> tuple[dict, int, int]:
    """Every cell by its key (non-total codes); how many keys are in two tables or more, and
    how many of those disagree on the value or the margin of error."""
    seen: dict[tuple, tuple[int, int]] = {}
    count: dict[tuple, int] = {}
    bad = 0
    for pt in pts:
        dims = [d.name for d in pt.table.spec.dimensions]
        for row in pt.published.itertuples(index=False):
            r = row._asdict()
            key = tuple(sorted((d, r[d]) for d in dims if r[d] != TOTAL))
            v = (int(r["obs_value"]), int(r["obs_moe"]))
            if key in seen and seen[key] != v:
                bad += 1
            seen.setdefault(key, v)
            count[key] = count.get(key, 0) + 1
    return seen, sum(1 for c in count.values() if c > 1), bad


@pytest.mark.parametrize("mechanism", [{"mechanism": "geometric", "epsilon": 1.0},
                                       {"mechanism": "gaussian", "rho": 0.1}])
def test_shared_cells_have_one_value_and_every_table_is_additive(mechanism):
    # t1 shares region with t0; t2 shares sex with t0 and age with t1 (disjoint sets)
    specs = [spec(0, [REG, SEX, CIT], **mechanism), spec(1, [REG, AGE], **mechanism),
             spec(2, [SEX, AGE], **mechanism)]
    tables = tables_of(specs)
    for seed in range(3):
        pts = protect_noise_linked(tables, rng=seed)
        _, shared, bad = shared_values(pts)
        assert shared == 1 + 8 + 2 + 3  # grand total, the 8 region codes, sex, age
        assert bad == 0
        for t, pt in zip(tables, pts, strict=True):
            values = pt.published["obs_value"].to_numpy()
            assert t.check_additive(values) and (values >= 0).all()
            assert pt.report.checks.additive and pt.report.checks.non_negative


def test_the_release_budget_is_split_by_square_root_of_cells_and_composes_to_it():
    specs = [spec(0, [REG, SEX, CIT]), spec(1, [REG, AGE]), spec(2, [SEX, AGE])]
    tables = tables_of(specs)
    shares = linked_shares(tables)
    roots = [math.sqrt(t.n_cells) for t in tables]
    assert shares == pytest.approx([r / sum(roots) for r in roots])
    pts = protect_noise_linked(tables)  # production sampler: certified epsilons add up
    certified = [pt.report.privacy.epsilon_certified for pt in pts]
    assert math.fsum(certified) <= 1.0
    assert certified == pytest.approx([s * 1.0 for s in shares], rel=1e-9)
    for pt, s in zip(pts, shares, strict=True):
        p = pt.report.privacy
        assert p.epsilon == 1.0 and p.table_share == pytest.approx(s)
        assert p.linked_tables == ["t0", "t1", "t2"] and pt.report.differentially_private
        assert "composes sequentially across them" in p.composition
    _, _, bad = shared_values(pts)
    assert bad == 0


def test_a_table_inside_another_is_its_margin():
    specs = [spec(0, [REG, SEX, CIT]), spec(1, [REG, SEX])]
    tables = tables_of(specs)
    pts = protect_noise_linked(tables, rng=4)
    seen, shared, bad = shared_values(pts)
    assert bad == 0 and shared == tables[1].n_cells  # every cell of t1 is a cell of t0


def test_linked_tables_must_agree_on_the_budget_and_the_source():
    specs = [spec(0, [REG, SEX]), spec(1, [REG, AGE], mechanism="geometric", epsilon=0.5)]
    with pytest.raises(NoiseSpecError, match=r"disclosure\.noise\.epsilon: linked noise tables"):
        protect_noise_linked(tables_of(specs), rng=1)
    other = spec_from_mapping({"id": "t9", "title": {"en": "t"}, "dimensions": [REG, AGE],
                               "source_id": "other", "reference_period": "2025",
                               "disclosure": {"noise": {"mechanism": "geometric",
                                                        "epsilon": 1.0}}})
    with pytest.raises(NoiseSpecError, match="source_id: linked noise tables"):
        protect_noise_linked(tables_of([spec(0, [REG, SEX]), other]), rng=1)


def test_a_shared_dimension_coded_differently_is_refused():
    flat_region = {"name": "region", "codes": ["R1A", "R1B", "R2A", "R2B", "R2C", "R3"]}
    specs = [spec(0, [REG, SEX]), spec(1, [flat_region, AGE])]
    full = tables_of([spec(0, [REG, SEX])])
    second = CellTable(spec=specs[1], values=aggregate(specs[1], np.ones((6, 3), dtype=np.int64))
                       .reshape(-1))
    with pytest.raises(NoiseSpecError, match="dimension region: linked noise tables"):
        protect_noise_linked([full[0], second], rng=1)


def test_overlapping_shared_dimension_sets_are_refused():
    # t2 shares (region, sex) with t0 and (region, age) with t1: not nested, not disjoint
    specs = [spec(0, [REG, SEX]), spec(1, [REG, AGE]), spec(2, [REG, SEX, AGE])]
    with pytest.raises(NoiseSpecError, match="overlap"):
        protect_noise_linked(tables_of(specs), rng=1)
