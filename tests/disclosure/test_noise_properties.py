"""Property test: on random tables and hierarchies, any epsilon, the release is always non-negative,
integer and exactly additive, with every measured group certified within epsilon."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disclosure.noise import protect_noise
from disclosure.table import CellTable, aggregate
from publisher.specs import spec_from_mapping


@st.composite
def hierarchy(draw, name: str) -> dict:
    depth = draw(st.integers(1, 3))
    counter = iter(range(10_000))

    def node(prefix: str, level: int) -> dict:
        n = draw(st.integers(1, 4))
        kids = [f"{prefix}{next(counter)}" for _ in range(n)]
        out = {prefix if level else "_T": kids}
        for k in kids:
            if level + 1 < depth and draw(st.booleans()):
                out.update(node(k, level + 1))
        return out

    return {"name": name, "hierarchy": node(name[0].upper(), 0)}


@st.composite
def tables(draw):
    k = draw(st.integers(1, 4))
    dims = [draw(hierarchy(f"d{i}x")) for i in range(k)]
    eps = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0, 3.0]))
    spec = spec_from_mapping({"id": "p", "title": {"en": "p"}, "dimensions": dims,
                              "disclosure": {"noise": {"mechanism": "geometric", "epsilon": eps}}})
    shape = tuple(len(d.hierarchy.leaves) for d in spec.dimensions)
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    mean = draw(st.sampled_from([0.0, 0.3, 2.0, 50.0]))
    inner = rng.poisson(mean, size=shape)
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1)), seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_release_is_always_consistent(case):
    table, seed = case
    pt = protect_noise(table, rng=seed)
    v = pt.published["obs_value"].to_numpy(dtype=np.int64)
    assert (v >= 0).all()
    assert table.check_additive(v)
    assert (pt.published["obs_moe"].to_numpy() >= 0).all()
    shares = [g["share"] for g in pt.report.allocation["groups"]]
    assert math.isclose(sum(shares), 1.0, abs_tol=1e-5)
    assert pt.report.privacy.epsilon_certified <= pt.report.privacy.epsilon
