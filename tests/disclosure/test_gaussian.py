"""The zCDP option: ``mechanism: gaussian`` with ``rho`` (OpenDP's exact discrete Gaussian)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from noise_helpers import sparse_table
from scipy import stats

from disclosure.methods import get_method
from disclosure.methods.noise import NoiseSpecError, PrivacyCost, explain_noise
from disclosure.noise import (
    ZCDP_DELTA,
    discrete_gaussian_variance,
    expected_accuracy,
    gaussian_mechanism,
    laplace_mechanism,
    protect_noise,
    pure_to_zcdp,
    zcdp_epsilon,
    zcdp_rho_for,
)
from disclosure.spec_schema import SpecValidationError
from publisher.specs import spec_from_mapping

DIMS = [
    {"name": "region", "hierarchy": {"_T": ["R1", "R2", "R3"], "R1": ["R1A", "R1B"],
                                     "R2": ["R2A", "R2B", "R2C"]}},
    {"name": "citizenship", "codes": ["KZ", "UZ", "KG", "RU"]},
    {"name": "sex", "codes": ["F", "M"]},
]


def gauss_spec(**noise: object):
    return spec_from_mapping({"id": "gauss-test", "title": {"en": "gauss"}, "dimensions": DIMS,
                              "disclosure": {"noise": {"mechanism": "gaussian", **noise}}})


def test_conversion_to_epsilon_delta_is_the_stated_formula():
    rho = 0.1
    assert zcdp_epsilon(rho) == pytest.approx(rho + 2 * math.sqrt(rho * math.log(1 / 1e-6)))
    assert ZCDP_DELTA == 1e-6
    for eps in (0.1, 0.5, 1.0, 2.0):  # the inverse used to compare at equal (epsilon, delta)
        assert zcdp_epsilon(zcdp_rho_for(eps)) == pytest.approx(eps, rel=1e-12)
    assert pure_to_zcdp(1.0) == 0.5 and pure_to_zcdp(0.2) == pytest.approx(0.02)


@pytest.mark.parametrize("noise, key", [
    ({}, "disclosure.noise.rho"),                                  # gaussian without rho
    ({"rho": 0}, "disclosure.noise.rho"),                          # rho not positive
    ({"rho": -0.1}, "disclosure.noise.rho"),
    ({"rho": "abc"}, "disclosure.noise.rho"),
    ({"rho": 0.1, "epsilon": 1.0}, "disclosure.noise.epsilon"),    # epsilon with gaussian
    ({"epsilon": 1.0}, "disclosure.noise.epsilon"),
])
def test_bad_gaussian_specs_name_the_key_in_one_line(noise, key):
    with pytest.raises(SpecValidationError) as e:
        gauss_spec(**noise)
    assert key in str(e.value) and "\n" not in str(e.value)


def test_rho_with_geometric_is_refused_naming_rho():
    with pytest.raises(SpecValidationError) as e:
        spec_from_mapping({"id": "x", "title": {"en": "x"}, "dimensions": DIMS, "disclosure": {
            "noise": {"mechanism": "geometric", "epsilon": 1.0, "rho": 0.1}}})
    assert "disclosure.noise.rho" in str(e.value)


def test_rho_above_the_ceiling_in_epsilon_is_refused():
    table = sparse_table(gauss_spec(rho=0.5))  # epsilon 5.76 at delta 1e-6
    with pytest.raises(NoiseSpecError, match=r"rho 0.5 means epsilon 5.7\d? at delta 1e-6"):
        protect_noise(table, rng=1, epsilon_ceiling=5.0)


def test_production_release_is_zcdp_exact_and_says_so():
    table = sparse_table(gauss_spec(rho=0.1))
    pt = protect_noise(table)  # rng=None: OpenDP's exact discrete Gaussian, no seed
    r = pt.report
    assert r.differentially_private and "make_gaussian" in r.noise_source
    assert r.mechanism == "discrete Gaussian"
    p = r.privacy
    assert p.rho == 0.1 and p.rho_certified <= 0.1 and p.delta == 1e-6
    assert p.epsilon == pytest.approx(zcdp_epsilon(0.1))
    assert "rho + 2*sqrt(rho*ln(1/delta))" in p.definition and "1e-06" in p.definition
    groups = r.allocation["groups"]
    assert math.fsum(g["rho"] for g in groups) <= 0.1
    assert r.checks.additive and r.checks.non_negative
    values = pt.published["obs_value"].to_numpy()
    assert table.check_additive(values) and (values >= 0).all()
    assert "1.96 * sd + 1" in r.uncertainty.method and r.uncertainty.interval == ["obs_lower", "obs_upper"]
    assert (pt.published["obs_lower"] <= values).all() and (values <= pt.published["obs_upper"]).all()


def test_opendp_discrete_gaussian_has_the_stated_distribution():
    """20,000 draws of OpenDP's sampler at the calibrated scale against the exact pmf."""
    mech = gaussian_mechanism()
    scale, certified = mech.calibrate(1, 0.02)
    assert certified <= 0.02 and scale == pytest.approx(1 / math.sqrt(0.04), rel=1e-9)
    x = mech.sample(np.zeros(20_000, dtype=np.int64), scale)
    assert np.issubdtype(x.dtype, np.integer)
    assert x.var() == pytest.approx(discrete_gaussian_variance(scale), rel=0.05)
    ks = np.arange(-60, 61)
    pmf = np.exp(-(ks.astype(float) ** 2) / (2 * scale * scale))
    pmf /= pmf.sum()
    cut = 15  # bins |x| = 0 .. 14 and |x| >= 15
    p_abs = np.array([pmf[np.abs(ks) == a].sum() for a in range(cut)] +
                     [pmf[np.abs(ks) >= cut].sum()])
    obs = np.array([(np.abs(x) == a).sum() for a in range(cut)] + [(np.abs(x) >= cut).sum()])
    exp = p_abs * x.size
    assert stats.chisquare(obs, exp).pvalue > 1e-4


def test_seeded_gaussian_is_reproducible_and_marked_not_private():
    mech = gaussian_mechanism(7)
    assert not mech.is_private
    x = mech.sample(np.zeros(20_000, dtype=np.int64), 3.0)
    assert np.array_equal(x, gaussian_mechanism(7).sample(np.zeros(20_000, dtype=np.int64), 3.0))
    assert x.var() == pytest.approx(discrete_gaussian_variance(3.0), rel=0.05)
    table = sparse_table(gauss_spec(rho=0.1))
    pt = protect_noise(table, rng=3)
    assert not pt.report.differentially_private
    assert get_method("noise").releasable(pt.report) is not None
    assert laplace_mechanism(1).unit == "epsilon" and mech.unit == "rho"


def test_discrete_gaussian_variance_is_exact():
    for sigma in (0.5, 1.0, 4.0):
        k = np.arange(-200, 201, dtype=float)
        w = np.exp(-k * k / (2 * sigma * sigma))
        assert discrete_gaussian_variance(sigma) == pytest.approx((w * k * k).sum() / w.sum())
    assert discrete_gaussian_variance(4.0) == pytest.approx(16.0, rel=1e-6)
    assert discrete_gaussian_variance(0.5) < 0.25


def test_expected_accuracy_is_data_independent_and_is_the_release_sd():
    spec = gauss_spec(rho=0.05)
    acc = {a.level: a for a in expected_accuracy(spec)}
    for seed in (1, 2):
        table = sparse_table(spec, seed=seed, mean=1.0 + 20 * seed)
        from disclosure.noise import allocation, release

        rel = release(table, 0.05, 1, allocation(table), gaussian_mechanism(seed))
        inner = table.inner_mask
        assert float(np.median(rel.sd[inner])) == pytest.approx(acc["inner"].sd_median)
        assert float(rel.sd[table.cell_id({})]) == pytest.approx(acc["total"].sd_median)
    # the Gaussian's 95 % point is 1.96 sd; a larger rho gives smaller margins
    assert acc["inner"].moe_median == math.ceil(1.959963984540054 * acc["inner"].sd_median - 1e-9)
    tighter = {a.level: a for a in expected_accuracy(spec, 0.2)}
    assert tighter["inner"].sd_median == pytest.approx(acc["inner"].sd_median / 2, rel=0.02)


def test_margin_of_error_covers_about_95_percent_by_simulation():
    """The BLUE's 1.96 sd interval covers about 95 % (the Gaussian quantile is right for these
    sums of discrete Gaussians); the published obs_moe, which adds what post-processing moved
    the cell, covers at least 95 %."""
    from disclosure.noise import allocation, release

    spec = gauss_spec(rho=0.05)
    table = sparse_table(spec, seed=4, mean=30.0, zeros=0.0)
    shares = allocation(table)
    blue_hits = pub_hits = n = 0
    for seed in range(80):
        rel = release(table, 0.05, 1, shares, gaussian_mechanism(seed))
        blue_hits += int((np.abs(rel.blue - table.values) <= 1.959963984540054 * rel.sd).sum())
        pub_hits += int((np.abs(rel.values - table.values) <= rel.moe).sum())
        n += table.n_cells
    assert 0.935 <= blue_hits / n <= 0.965
    assert pub_hits / n >= 0.95


def test_cost_and_text_state_rho_and_the_conversion():
    spec = gauss_spec(rho=0.1)
    method = get_method("noise")
    cost = method.budget_cost(spec)
    assert isinstance(cost, PrivacyCost) and cost.unit == "rho" and float(cost) == 0.1
    geo = method.budget_cost(spec_from_mapping({"id": "x", "title": {"en": "x"},
                                                "dimensions": DIMS, "disclosure": {
        "noise": {"mechanism": "geometric", "epsilon": 0.5}}}))
    assert geo.unit == "epsilon" and float(geo) == 0.5
    pt = protect_noise(sparse_table(spec), rng=1)
    rep = method.with_budget(pt.report, spent=0.3, remaining=0.7, total=1.0, this_release=0.1,
                             unit="rho")
    text = explain_noise(rep, lambda msgid, **kw: {"en": msgid % {
        k: (v["en"] if isinstance(v, dict) else v) for k, v in kw.items()}})["en"]
    assert "rho = 0.1" in text and "epsilon = rho + 2·sqrt(rho·ln(1/delta)) = 2.45" in text
    assert "delta = 1e-06" in text and "spent rho 0.1" in text and "0.7 is left" in text
    assert rep.to_dict()["privacy"]["budget"]["unit"] == "rho"
    params = method.public_parameters(spec)
    assert params["rho"] == 0.1 and params["delta"] == 1e-6
    assert params["epsilon"] == pytest.approx(2.451, abs=1e-3)
