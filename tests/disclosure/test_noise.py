"""DP release of count tables: exact noise, consistent non-negative integers, report, bad input."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from noise_helpers import noise_spec, sparse_table

from datapackages.i18n import tr
from disclosure import dp_estimate as est
from disclosure import dp_postprocess as post
from disclosure.dp_mechanism import (
    OpenDPSampler,
    discrete_laplace_quantile,
    discrete_laplace_variance,
)
from disclosure.methods import get_method
from disclosure.methods.noise import (
    Budget,
    Checks,
    NoiseReport,
    NoiseSpec,
    NoiseSpecError,
    explain_noise,
)
from disclosure.noise import (
    DEFAULT_EPSILON_CEILING,
    allocation,
    check_epsilon,
    protect_noise,
    release_key,
)
from disclosure.protect import protect
from disclosure.report import report_from_dict
from disclosure.table import InputError, membership, read_cells
from publisher.specs import SpecValidationError, spec_from_mapping


def _values(pt) -> np.ndarray:
    return pt.published["obs_value"].to_numpy(dtype=np.int64)


@pytest.mark.parametrize("rng", [None, 11], ids=["opendp", "seeded"])
def test_every_cell_published_nonneg_integer_additive(rng):
    table = sparse_table(noise_spec(epsilon=0.5))
    pt = protect(table, rng=rng)
    df = pt.published
    assert len(df) == table.n_cells
    v = _values(pt)
    assert df["obs_value"].notna().all()
    assert (v >= 0).all()
    assert table.check_additive(v)  # every total = sum of its parts, every dimension and level
    assert set(df["conf_status"]) == {"F"} and set(df["obs_status"]) == {"A"}
    assert (df["obs_moe"] >= 0).all() and df["obs_moe"].dtype.kind == "i"
    assert pt.report.checks == Checks(non_negative=True, integer=True, additive=True,
                                      cells=table.n_cells)
    # Noise really was added (the chance that all 100+ cells come out exact is negligible).
    assert not np.array_equal(v, table.values)


def test_opendp_is_the_production_sampler_and_certifies_epsilon():
    table = sparse_table(noise_spec(epsilon=0.7))
    pt = protect_noise(table)
    r = pt.report
    assert isinstance(r, NoiseReport)
    assert r.differentially_private is True
    assert "OpenDP" in r.noise_source
    assert r.privacy.epsilon_certified <= 0.7
    assert r.privacy.epsilon_certified > 0.7 * (1 - 1e-9)
    assert r.privacy.contribution_bound == 1
    shares = [g["share"] for g in r.allocation["groups"]]
    assert math.isclose(sum(shares), 1.0, abs_tol=1e-5)


def test_seeded_sampler_is_reproducible_and_marked_not_private():
    table = sparse_table(noise_spec())
    a, b = protect_noise(table, rng=5), protect_noise(table, rng=5)
    assert np.array_equal(_values(a), _values(b))
    assert a.report.differentially_private is False
    assert "NOT" in a.report.noise_source
    c = protect_noise(table, rng=np.random.default_rng(6))
    assert not np.array_equal(_values(a), _values(c))


def test_opendp_calibration_never_exceeds_target():
    s = OpenDPSampler()
    for eps in (0.1, 0.7, 1 / 3, 0.05 * 0.2, 2.0):
        for bound in (1, 3):
            scale, spent = s.calibrate(bound, eps)
            assert spent <= eps
            assert math.isclose(scale, bound / eps, rel_tol=1e-9)


def test_opendp_noise_has_discrete_laplace_variance():
    s = OpenDPSampler()
    scale = 2.0
    x = np.zeros(20000, dtype=np.int64)
    noisy = s.sample(x, scale)
    assert noisy.dtype == np.int64
    var = discrete_laplace_variance(scale)
    # sd of the sample variance of a Laplace ~ sqrt(5) var / sqrt(n); allow 5 sd
    assert abs(noisy.var() - var) < 5 * math.sqrt(5) * var / math.sqrt(len(x))


def test_contribution_bound_scales_the_noise():
    t1 = sparse_table(noise_spec(contribution_bound=1))
    t2 = sparse_table(noise_spec(contribution_bound=2))
    g1 = protect_noise(t1, rng=1).report.allocation["groups"]
    g2 = protect_noise(t2, rng=1).report.allocation["groups"]
    for a, b in zip(g1, g2, strict=True):
        assert math.isclose(b["scale"], 2 * a["scale"])
    assert "at most 2" in protect_noise(t2, rng=1).report.privacy.contribution_bound_meaning


def _explicit_design(table, groups):
    """Dense A (marginal queries x inner cells) built cell by cell."""
    shape = tuple(len(h.leaves) for h in table.hierarchies)
    n = int(np.prod(shape))
    rows = []
    for g in groups:
        for q in range(g.n_queries):
            row = np.zeros(n)
            for i in range(n):
                idx = np.unravel_index(i, shape)
                row[i] = 1.0 if g.dim is None else g.matrix[q, idx[g.dim]]
            rows.append(row)
    return np.array(rows)


def test_wls_is_the_blue_and_its_variance_is_exact():
    table = sparse_table(noise_spec())
    hier = table.hierarchies
    shape = tuple(len(h.leaves) for h in hier)
    rng = np.random.default_rng(3)
    groups = est.marginal_groups(hier) + [est.Group(name="total", dim=None, matrix=None)]
    for i, g in enumerate(groups):
        g.variance = 2.0 + i
        g.values = rng.normal(50, 10, g.n_queries)
    v0 = 1.7
    y = rng.normal(3, 2, shape)
    fit = est.wls(y, v0, groups)
    a = _explicit_design(table, groups)
    w = np.concatenate([np.full(g.n_queries, 1 / g.variance) for g in groups])
    z = np.concatenate([g.values for g in groups])
    p = np.eye(a.shape[1]) / v0 + a.T @ (w[:, None] * a)
    x = np.linalg.solve(p, y.reshape(-1) / v0 + a.T @ (w * z))
    assert np.allclose(fit.inner.reshape(-1), x, atol=1e-8)
    cov = np.linalg.inv(p)
    # every published cell is a sum of inner cells: its variance is s^T cov s
    mems = [membership(h) for h in hier]
    full = np.einsum("ai,bj,ck->abcijk", *mems).reshape(table.n_cells, -1)
    expected = np.einsum("ci,ij,cj->c", full, cov, full)
    got = est.wls_variance(hier, groups, fit).reshape(-1)
    assert np.allclose(got, expected, rtol=1e-7, atol=1e-8)


def test_totals_not_biased_upward_on_a_sparse_table():
    """Clip-then-sum inflates the grand total; the top-down release does not."""
    spec = noise_spec(epsilon=0.5, dims=[{"name": "a", "codes": [f"a{i}" for i in range(20)]},
                                          {"name": "b", "codes": [f"b{i}" for i in range(15)]}])
    table = sparse_table(spec, mean=0.8, zeros=0.6)
    gt = table.cell_id({})
    truth = int(table.values[gt])
    ours, clipped = [], []
    scale = 1 / 0.5
    p = 1 - math.exp(-1 / scale)
    rng = np.random.default_rng(0)
    inner_truth = table.values[table.inner_mask]
    for seed in range(40):
        ours.append(int(_values(protect_noise(table, rng=seed))[gt]) - truth)
        noise = rng.geometric(p, inner_truth.shape) - rng.geometric(p, inner_truth.shape)
        clipped.append(int(np.maximum(inner_truth + noise, 0).sum()) - truth)
    se = np.std(ours) / math.sqrt(len(ours))
    assert abs(np.mean(ours)) < 4 * se + 1
    assert np.mean(clipped) > 50  # ~ +0.5 per zero cell: the bias we avoid
    assert abs(np.mean(ours)) < np.mean(clipped) / 10


def test_unbalanced_hierarchy_levels_are_measured_and_consistent():
    table = sparse_table(noise_spec())
    names = [g for g, _ in allocation(table)]
    assert names[:2] == ["inner", "total"]
    assert {"region@1", "region@2", "citizenship@1", "sex@1"} <= set(names)
    cut = est.level_cut(table.hierarchies[0], 2)
    assert [table.hierarchies[0].codes[i] for i in cut] == ["R1A", "R1B", "R2A", "R2B", "R2C", "R3"]


def test_one_dimensional_table():
    spec = noise_spec(dims=[{"name": "region", "hierarchy": {"_T": ["A", "B"], "A": ["A1", "A2"]}}])
    table = sparse_table(spec)
    pt = protect_noise(table, rng=2)
    v = _values(pt)
    assert (v >= 0).all() and table.check_additive(v)
    assert [g for g, _ in allocation(table)] == ["inner", "total", "region@1"]


def test_weights_from_the_spec():
    table = sparse_table(noise_spec(weights={"inner": 0.5, "total": 0.1, "region": 0.2,
                                             "citizenship@1": 0.2, "sex": 0}))
    assert isinstance(table.spec.disclosure, NoiseSpec)
    shares = dict(allocation(table, table.spec.disclosure.weights))
    assert math.isclose(shares["inner"], 0.5)
    assert math.isclose(shares["region@1"], 0.1) and math.isclose(shares["region@2"], 0.1)
    assert math.isclose(shares["citizenship@1"], 0.2)
    assert "sex@1" not in shares
    pt = protect_noise(table, rng=1)
    assert {g["group"] for g in pt.report.allocation["groups"]} == set(shares)


@pytest.mark.parametrize("weights, msg", [
    ({"nope": 0.1}, "unknown group"),
    ({"inner": 0}, "inner must be greater than 0"),
])
def test_bad_weights(weights, msg):
    table = sparse_table(noise_spec(weights=weights))
    with pytest.raises(NoiseSpecError, match=msg):
        protect_noise(table, rng=1)


@pytest.mark.parametrize("weights, msg", [
    ({"total": -1}, "greater than or equal to 0"),
    ({"total": "a lot"}, "Not a valid number"),
    ({"total": float("nan")}, "nan or infinity"),
])
def test_bad_weights_refused_by_the_spec(weights, msg):
    with pytest.raises(SpecValidationError, match=msg) as e:
        noise_spec(weights=weights)
    assert "disclosure.noise.weights.total" in str(e.value)
    table = sparse_table(noise_spec())
    with pytest.raises(NoiseSpecError, match="must be a number >= 0"):
        allocation(table, weights)


def test_redundant_levels_are_not_measured():
    spec = noise_spec(dims=[{"name": "a", "codes": ["only"]},
                            {"name": "b", "hierarchy": {"_T": ["P"], "P": ["Q", "R"]}}])
    names = [g for g, _ in allocation(sparse_table(spec))]
    assert names == ["inner", "total", "b@2"]


def test_release_key_and_budget_in_report():
    table = sparse_table(noise_spec())
    pt = protect_noise(table, rng=1)
    k = release_key(pt.published)
    assert len(k) == 64 and k == release_key(pt.published.copy())
    assert k != release_key(protect_noise(table, rng=2).published)
    r = get_method("noise").with_budget(pt.report, spent=0.75, remaining=0.25, total=1.0)
    assert r.privacy.budget == Budget(spent=0.75, remaining=0.25, total=1.0)
    assert "0.25" in explain_noise(r, tr)["en"]
    d = json.loads(json.dumps(r.to_dict()))  # the report is plain JSON
    # adapted (issue 13): the budget also records what this release spent (None: not given)
    assert d["privacy"]["budget"] == {"spent": 0.75, "remaining": 0.25, "total": 1.0,
                                      "this_release": None, "unit": "epsilon"}
    assert report_from_dict(d) == r  # and reads back as the same typed report


@pytest.mark.parametrize("eps, msg", [
    (0, "greater than 0"), (-1.0, "greater than 0"), (float("nan"), "NaN"),
    ("1.0", "must be a number"), (None, "must be a number"), (True, "must be a number"),
    (float("inf"), "above the ceiling"), (DEFAULT_EPSILON_CEILING + 0.1, "above the ceiling"),
])
def test_check_epsilon_refuses(eps, msg):
    with pytest.raises(NoiseSpecError, match=msg):
        check_epsilon(eps, DEFAULT_EPSILON_CEILING)


def test_check_epsilon_accepts_and_ceiling_is_configurable():
    assert check_epsilon(1, 2.0) == 1.0
    with pytest.raises(NoiseSpecError, match="ceiling 0.5"):
        check_epsilon(1, 0.5)
    table = sparse_table(noise_spec(epsilon=3.0))
    with pytest.raises(NoiseSpecError, match="above the ceiling 2"):
        protect_noise(table, rng=1, epsilon_ceiling=2.0)


@pytest.mark.parametrize("eps, msg", [
    (0, "greater than 0"), (-0.5, "greater than 0"), ("abc", "number"), ("nan", "nan or infinity"), ("inf", "nan or infinity"),
])
def test_spec_refuses_bad_epsilon(eps, msg):
    with pytest.raises(SpecValidationError, match=msg) as e:
        noise_spec(epsilon=eps)
    assert "disclosure.noise.epsilon" in str(e.value)


def test_spec_refuses_noise_with_suppression():
    with pytest.raises(SpecValidationError, match="noise and suppression"):
        spec_from_mapping({
            "id": "x", "title": {"en": "x"}, "dimensions": [{"name": "a", "codes": ["1", "2"]}],
            "disclosure": {"min_frequency": 5,
                           "noise": {"mechanism": "geometric", "epsilon": 1}},
        })


@pytest.mark.parametrize("count, reason", [("-3", "negative"), ("2.5", "not a whole number")])
def test_read_cells_refuses_negative_and_fractional_counts(count, reason):
    spec = noise_spec(dims=[{"name": "a", "codes": ["x", "y"]}])
    df = pd.DataFrame({"a": ["x", "y"], "obs_value": ["4", count]})
    with pytest.raises(InputError, match=reason) as e:
        read_cells(df, spec, source="in.csv")
    assert e.value.row == 3 and e.value.column == "obs_value"


def test_explanation_in_three_languages():
    table = sparse_table(noise_spec())
    pt = protect_noise(table, rng=1)
    texts = explain_noise(pt.report, tr)
    assert set(texts) == {"kk", "ru", "en"}
    m = round(pt.report.uncertainty.inner_moe_median)
    for t in texts.values():
        assert f"±{m}" in t and "obs_moe" in t
    report = dataclasses.replace(pt.report, privacy=dataclasses.replace(
        pt.report.privacy, budget=Budget(spent=0.5, remaining=1.5, total=2.0)))
    again = explain_noise(report, tr)
    assert "1.5" in again["en"] and "1.5" in again["ru"] and "1.5" in again["kk"]


def test_discrete_laplace_helpers():
    # P(|X| <= t) from the pmf P(k) = (1-a)/(1+a) a^|k|
    for scale in (0.5, 1.0, 1 / 0.7, 5.0, 40.0):
        a = math.exp(-1 / scale)
        t = discrete_laplace_quantile(scale)
        cdf = lambda u, a=a: 1 - 2 * a ** (u + 1) / (1 + a)  # noqa: E731
        assert cdf(t) >= 0.95 and (t == 0 or cdf(t - 1) < 0.95)
        ks = np.arange(-2000, 2001)
        pmf = (1 - a) / (1 + a) * a ** np.abs(ks)
        assert math.isclose((pmf * ks**2).sum(), discrete_laplace_variance(scale), rel_tol=1e-9)
        # the margin of error rule covers the single-measurement case
        assert math.ceil(math.log(20) / math.sqrt(2) * math.sqrt(discrete_laplace_variance(scale))) >= t


def test_controlled_round_keeps_margins_and_floor_ceiling():
    rng = np.random.default_rng(4)
    for _ in range(30):
        r, c = rng.integers(1, 30), rng.integers(1, 8)
        x = rng.gamma(0.5, 3, (r, c)) * (rng.random((r, c)) > 0.3)
        rows = post._largest_remainder(x.sum(axis=1), int(round(x.sum())))
        cols = post._largest_remainder(x.sum(axis=0), int(rows.sum()))
        fitted = post.rake(x, rows.astype(float), cols.astype(float))
        y = post.controlled_round(fitted, rows, cols)
        assert (y.sum(axis=1) == rows).all() and (y.sum(axis=0) == cols).all()
        assert (y >= np.floor(fitted - 1e-9)).all() and (y <= np.ceil(fitted + 1e-9)).all()


def test_projection_meets_margins_and_is_nonnegative():
    rng = np.random.default_rng(5)
    x = rng.normal(1, 3, (6, 5, 4))
    truth = np.abs(rng.normal(2, 2, (6, 5, 4)))
    tot = int(round(truth.sum()))
    m = [post._largest_remainder(truth.sum(axis=(1, 2)), tot),
         post._largest_remainder(truth.sum(axis=(0, 2)), tot),
         post._largest_remainder(truth.sum(axis=(0, 1)), tot)]
    assert all(a.sum() == tot for a in m)
    p, sweeps = post.project_nonneg(x, m)
    assert (p >= 0).all()
    for d in range(3):
        assert np.allclose(post._oneway(p, d), m[d], atol=1e-5)
    # optimality: no feasible direction along the margins' null space improves the distance
    base = np.sum((p - x) ** 2)
    for _ in range(200):
        i, j = rng.integers(0, 6, 2)
        k, l_ = rng.integers(0, 5, 2)
        q = p.copy()
        t = 0.01
        q[i, k, 0] += t
        q[j, k, 0] -= t
        q[i, l_, 0] -= t
        q[j, l_, 0] += t
        if (q >= 0).all() and i != j and k != l_:
            assert np.sum((q - x) ** 2) >= base - 1e-6


def test_default_margins_share_follows_the_square_root_of_their_cells():
    """The default 20 % for the margins is split by sqrt(number of cells of each level): a level
    with four times the cells gets twice the share; the code lists decide, never the counts."""
    table = sparse_table(noise_spec())
    shares = dict(allocation(table))
    groups = {g.name: len(g.codes) for g in est.marginal_groups(table.hierarchies)}
    assert math.isclose(shares["inner"], 0.75) and math.isclose(shares["total"], 0.05)
    assert math.isclose(sum(shares[g] for g in groups), 0.20)
    for a, b in itertools.combinations(groups, 2):
        assert math.isclose(shares[a] / shares[b], math.sqrt(groups[a] / groups[b]))
    doubled = sparse_table(noise_spec())
    doubled.values[:] = doubled.values * 2
    assert dict(allocation(doubled)) == shares
