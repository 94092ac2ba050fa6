"""The 95 % margin of error of every published cell, checked by simulation (seeded test sampler)."""

from __future__ import annotations

import numpy as np
import pytest
from noise_helpers import noise_spec, sparse_table

from disclosure import dp_estimate as est
from disclosure.dp_mechanism import SeededSampler, discrete_laplace_variance
from disclosure.noise import allocation, protect_noise

RUNS = 300


@pytest.mark.parametrize("epsilon, mean, zeros", [(1.0, 3.0, 0.4), (0.3, 20.0, 0.1)])
def test_margin_of_error_covers_95_percent(epsilon, mean, zeros):
    table = sparse_table(noise_spec(epsilon=epsilon), mean=mean, zeros=zeros)
    hits = np.zeros(table.n_cells)
    for seed in range(RUNS):
        pt = protect_noise(table, rng=seed)
        v = pt.published["obs_value"].to_numpy(dtype=np.int64)
        moe = pt.published["obs_moe"].to_numpy()
        hits += np.abs(v - table.values) <= moe
    cover = hits / RUNS
    # each cell: 95 % minus 3.5 binomial standard deviations; on average at least 95 %
    assert cover.min() >= 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / RUNS), cover.min()
    assert cover.mean() >= 0.95


@pytest.mark.parametrize("epsilon, mean, zeros", [(1.0, 3.0, 0.4), (0.3, 20.0, 0.1),
                                                   (2.0, 200.0, 0.0)])
def test_interval_covers_95_percent_and_no_more_than_needed(epsilon, mean, zeros):
    """[obs_lower, obs_upper] holds the true count in 95 % of draws for every cell (up to the
    simulation's binomial error) and, on average over the table, in at most 97 %: the interval
    is tight. ``value ± obs_moe`` holds the interval."""
    table = sparse_table(noise_spec(epsilon=epsilon), mean=mean, zeros=zeros)
    hits = np.zeros(table.n_cells)
    for seed in range(RUNS):
        df = protect_noise(table, rng=seed).published
        v, lo, hi, moe = (df[c].to_numpy(dtype=np.int64)
                          for c in ("obs_value", "obs_lower", "obs_upper", "obs_moe"))
        assert (lo >= 0).all() and (lo <= v).all() and (v <= hi).all()
        assert (v - moe <= lo).all() and (hi <= v + moe).all()
        assert ((v - lo == moe) | (hi - v == moe)).all()
        hits += (lo <= table.values) & (table.values <= hi)
    cover = hits / RUNS
    assert cover.min() >= 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / RUNS), cover.min()
    assert 0.95 - 1.5 * np.sqrt(0.95 * 0.05 / (RUNS * table.n_cells)) <= cover.mean() <= 0.97, \
        cover.mean()


def test_interval_half_width_is_data_independent():
    """The half-width around the BLUE depends on the code lists and the budget only."""
    from disclosure.noise import _HALF_CACHE

    a = sparse_table(noise_spec(epsilon=1.0), seed=1, mean=2.0, zeros=0.6)
    b = sparse_table(noise_spec(epsilon=1.0), seed=2, mean=50.0, zeros=0.0)
    _HALF_CACHE.clear()
    ha = release_of(a).half
    _HALF_CACHE.clear()
    hb = release_of(b).half
    assert np.array_equal(ha, hb)


def release_of(table):
    from disclosure.noise import release

    return release(table, 1.0, 1, allocation(table), SeededSampler(3))


def test_blue_variance_matches_simulation():
    table = sparse_table(noise_spec(epsilon=1.0))
    hier = table.hierarchies
    shares = dict(allocation(table))
    inner_true = table.values.reshape(table.shape)[np.ix_(*[
        [i for i, c in enumerate(h.codes) if h.is_leaf(c)] for h in hier])]
    groups = {g.name: g for g in est.marginal_groups(hier)}
    groups["total"] = est.Group(name="total", dim=None, matrix=None)
    sampler = SeededSampler(1)
    full = []
    from disclosure.table import aggregate

    fit = None
    used = [groups[n] for n in shares if n != "inner"]
    for _ in range(2000):
        for g in used:
            scale = 1 / shares[g.name]
            g.variance = discrete_laplace_variance(scale)
            g.values = sampler.sample(est.answer(g, inner_true), scale)
        s0 = 1 / shares["inner"]
        y = sampler.sample(inner_true.reshape(-1), s0).reshape(inner_true.shape)
        fit = est.wls(y, discrete_laplace_variance(s0), used)
        full.append(aggregate(table.spec, fit.inner).reshape(-1))
    full = np.array(full)
    emp = full.var(axis=0)
    exact = est.wls_variance(hier, used, fit).reshape(-1)
    assert np.allclose(full.mean(axis=0), table.values, atol=4 * np.sqrt(exact / 2000).max())
    # the sample variance of 2000 draws is within ~15 % (Laplace kurtosis) of the truth
    assert np.all(np.abs(emp / exact - 1) < 0.2)
