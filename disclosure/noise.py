"""Differentially private release of a count table: exact integer noise, consistent totals.

Guarantee: the published table (every cell, totals included) and its margins of error satisfy
pure epsilon-differential privacy for the privacy unit of the spec (default: one person, counted
in at most ``contribution_bound`` inner cells — 1 by default), under add/remove-one-person
neighbouring. Everything after the noisy measurements is post-processing of them.

Steps (see :mod:`disclosure.dp_estimate` and :mod:`disclosure.dp_postprocess`):

1. Measure with discrete Laplace noise (OpenDP, exact sampler, cryptographic RNG): the inner
   cells, every dimension's one-way margins at every hierarchy level, and the grand total. The
   budget is split by the allocation rule :data:`DEFAULT_WEIGHTS` (spec key
   ``disclosure.noise.weights``): inner cells 75 %, grand total 5 %, the remaining 20 % over the
   one-way margin groups in proportion to the square root of their number of cells (a level of
   30 codes gets 1.8x the share of a level of 9: the mean error over all margin cells is then
   smallest; ``benchmarks/bench_dp.py`` prints the frontier).
2. Combine them by weighted least squares (the BLUE, inverse-variance weights).
3. Top-down integer post-processing: the grand total and one-way margins first (rounded,
   non-negative, consistent down each hierarchy), then the cells made non-negative under those
   margins, then controlled rounding. Published values are non-negative integers and every total
   is exactly the sum of its parts.
4. A 95 % margin of error per cell (``obs_moe``): ``ceil(2.12 * sd + |published - BLUE|)`` where
   sd is the exact standard deviation of the cell's BLUE and 2.12 = ln(20)/sqrt(2) is the 95 %
   point of a Laplace distribution in units of its standard deviation. A BLUE error is a
   weighted sum of independent Laplace noises, lighter-tailed than one Laplace of the same
   variance (not proven here: checked numerically for such sums, e.g. two equal ones exceed it
   4.5 % of the time, and by simulation of the whole release in
   ``tests/disclosure/test_noise_moe.py``). The second term bounds what post-processing moved
   the cell (triangle inequality), so rounding and non-negativity cannot break the coverage.

Seeds: ``rng=None`` (production) uses OpenDP's sampler, which has no seed. Passing a numpy
``Generator`` or an ``int`` seed switches to :class:`~disclosure.dp_mechanism.SeededSampler` for
tests: the report then says ``"differentially_private": False`` and the publisher must refuse to
release such a table.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

from . import dp_estimate as est
from . import dp_postprocess as post
from .dp_mechanism import Measurement, discrete_laplace_variance, make_sampler
from .errors import R_
from .methods.noise import (
    MOE_COLUMN,
    Checks,
    NoiseReport,
    NoiseSpec,
    NoiseSpecError,
    PostProcessing,
    Privacy,
    Uncertainty,
)
from .protect import FREE, ProtectedTable, published_frame
from .spec import TableSpec
from .table import CellTable, aggregate

DEFAULT_EPSILON_CEILING = 5.0
DEFAULT_WEIGHTS = {"inner": 0.75, "total": 0.05, "margins": 0.20}
LAPLACE_Q95 = math.log(20) / math.sqrt(2)  # 95 % half-width of a Laplace, in standard deviations


def check_epsilon(epsilon: object, ceiling: float = DEFAULT_EPSILON_CEILING) -> float:
    """Return epsilon as a float if it is a finite number with 0 < epsilon <= ceiling; else raise."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real):
        raise NoiseSpecError(R_("epsilon must be a number, got %(epsilon)s"), epsilon=repr(epsilon))
    e = float(epsilon)
    if math.isnan(e):
        raise NoiseSpecError(R_("epsilon is NaN; it must be a number greater than 0"))
    if e <= 0:
        raise NoiseSpecError(R_("epsilon must be greater than 0, got %(e)s"), e=format(e, "g"))
    if math.isinf(e) or e > ceiling:
        raise NoiseSpecError(
            R_("epsilon %(e)s is above the ceiling %(ceiling)s configured for this service (EPSILON_CEILING); a larger epsilon gives too little protection"), e=format(e, "g"), ceiling=format(ceiling, "g"))
    return e


def allocation(table: CellTable, weights: dict | None = None) -> list[tuple[str, float]]:
    """The budget allocation rule: (group name, share of epsilon), shares summing to 1.

    ``weights`` keys: ``inner``, ``total``, ``margins`` (split over all one-way margin groups in
    proportion to the square root of their number of cells), a dimension name (split equally over
    that dimension's levels) or ``dim@level``.
    Missing keys take :data:`DEFAULT_WEIGHTS`; the shares are normalised to sum to 1.
    """
    w = dict(DEFAULT_WEIGHTS)
    groups = est.marginal_groups(table.hierarchies)
    names = {g.name for g in groups}
    dims = {h.name: [g.name for g in groups if g.name.startswith(h.name + "@")]
            for h in table.hierarchies}
    given = dict(weights or {})
    for key, val in given.items():
        if isinstance(val, bool) or not isinstance(val, Real) or not math.isfinite(val) or val < 0:
            raise NoiseSpecError(R_("weights.%(key)s: must be a number >= 0, got %(val)s"), key=key, val=repr(val))
        if key not in {"inner", "total", "margins"} | names | set(dims):
            raise NoiseSpecError(
                R_("weights.%(key)s: unknown group; use inner, total, margins, a dimension name or one of %(names)s"), key=key, names=', '.join(sorted(names)))
    w.update({k: float(v) for k, v in given.items() if k in {"inner", "total", "margins"}})
    share: dict[str, float] = {g: 0.0 for g in names}
    # The margins' share goes to the groups in proportion to the square root of their number of
    # cells: with a group's error dominated by its own noise (sd ~ 1/eps_g), this minimises the
    # mean absolute error over all margin cells for a fixed total (Lagrange: k_g / eps_g^2 =
    # const). It depends on the code lists only, never on the counts.
    root = {g.name: math.sqrt(len(g.codes)) for g in groups}
    for g in names:
        share[g] = w["margins"] * root[g] / math.fsum(root.values())
    for d, gs in dims.items():
        if d in given:
            for g in gs:
                share[g] = float(given[d]) / len(gs)
    for g in names:
        if g in given:
            share[g] = float(given[g])
    out = [("inner", w["inner"]), ("total", w["total"])]
    out += [(g.name, share[g.name]) for g in groups]
    s = sum(v for _, v in out)
    if w["inner"] <= 0:
        raise NoiseSpecError(R_("weights.inner must be greater than 0 (every inner cell is measured)"))
    return [(n, v / s) for n, v in out if v > 0]


def _inner_cube(table: CellTable) -> np.ndarray:
    cube = table.values.reshape(table.shape)
    idx = [np.array([i for i, c in enumerate(h.codes) if h.is_leaf(c)]) for h in table.hierarchies]
    return cube[np.ix_(*idx)]


def protect_noise(table: CellTable, *, rng: np.random.Generator | int | None = None,
                  epsilon_ceiling: float = DEFAULT_EPSILON_CEILING) -> ProtectedTable:
    """Publish every cell as a non-negative integer, exactly additive, with pure epsilon-DP.

    ``rng`` must be None in production (OpenDP's cryptographic exact sampler). A numpy Generator
    or an int seed selects the seeded test sampler; the result is then marked as not private.
    """
    noise = table.spec.disclosure
    if not isinstance(noise, NoiseSpec):
        raise NoiseSpecError(R_("the spec has no disclosure.noise section"))
    if noise.mechanism != "geometric":
        raise NoiseSpecError(R_("unknown mechanism %(mechanism)s; only 'geometric'"), mechanism=repr(noise.mechanism))
    epsilon = check_epsilon(noise.epsilon, epsilon_ceiling)
    bound = int(noise.contribution_bound)
    if bound < 1:
        raise NoiseSpecError(R_("contribution_bound must be at least 1"))
    shares = allocation(table, noise.weights)
    sampler = make_sampler(rng)
    rel = release(table, epsilon, bound, shares, sampler)
    values, moe = rel.values, rel.moe
    measurements, spent, grand, sweeps = rel.measurements, rel.spent, rel.grand, rel.sweeps

    conf = np.full(table.n_cells, FREE, dtype=object)
    t = time.perf_counter()
    published = published_frame(table, conf, values=values, extra={MOE_COLUMN: moe})
    rel.timings["published_frame"] = time.perf_counter() - t
    report = _report(table, epsilon, spent, bound, noise, sampler, measurements, shares,
                     values, moe, grand, sweeps)
    report.seconds = {k: round(v, 3) for k, v in rel.timings.items()}
    return ProtectedTable(table=table, published=published, report=report)


@dataclass
class Release:
    """The outcome of :func:`release`: published values and what the report needs."""

    values: np.ndarray  # published integer value of every cell (flat, C order)
    moe: np.ndarray  # 95 % margin of error of every cell
    blue: np.ndarray  # BLUE of every cell (float; internal, for benchmarks and tests)
    sd: np.ndarray  # standard deviation of the BLUE of every cell
    measurements: list[Measurement]
    spent: float
    grand: int
    sweeps: int
    timings: dict[str, float]


def release(table: CellTable, epsilon: float, bound: int, shares: list[tuple[str, float]],
            sampler) -> Release:  # noqa: ANN001
    """Measure with noise, estimate (WLS), post-process (top-down) and size the margins of error.

    ``epsilon`` must already be checked; ``shares`` come from :func:`allocation`.
    """
    clock = time.perf_counter
    t0 = clock()
    hier = table.hierarchies
    inner_true = _inner_cube(table)
    shape = inner_true.shape
    groups_by_name = {g.name: g for g in est.marginal_groups(hier)}
    measurements: list[Measurement] = []
    inner_noisy = None
    v0 = 0.0
    used: list[est.Group] = []
    # Each group's target is shaved by 1e-12 (relative) so that float rounding in the shares can
    # never make the certified total exceed epsilon.
    for name, share in shares:
        eps_g = epsilon * share * (1 - 1e-12)
        scale, certified = sampler.calibrate(bound, eps_g)
        measurements.append(Measurement(name=name, epsilon=certified, scale=scale))
        var = discrete_laplace_variance(scale)
        if name == "inner":
            inner_noisy = sampler.sample(inner_true.reshape(-1), scale).reshape(shape)
            v0 = var
            continue
        g = (est.Group(name="total", dim=None, matrix=None) if name == "total"
             else groups_by_name[name])
        g.weight, g.variance = share, var
        g.values = sampler.sample(est.answer(g, inner_true), scale)
        used.append(g)
    assert inner_noisy is not None
    t1 = clock()
    spent = math.fsum(m.epsilon for m in measurements)
    if sampler.is_private and spent > epsilon:
        raise RuntimeError(f"certified epsilon {spent!r} exceeds the requested {epsilon!r}")

    # --- everything below is post-processing of the noisy measurements only ---
    fit = est.wls(inner_noisy, v0, used)
    blue_full = aggregate(table.spec, fit.inner).reshape(-1)
    oneway = [est.membership_oneway(h, fit.inner, d) for d, h in enumerate(hier)]
    grand, _, leaf_margins = post.topdown_margins(hier, oneway, float(fit.inner.sum()))
    if len(hier) == 1:
        inner_pub = leaf_margins[0].reshape(shape)
        sweeps = 0
    else:
        proj, sweeps = post.project_nonneg(fit.inner, leaf_margins)
        inner_pub = post.round_stages(proj, leaf_margins)
    values = aggregate(table.spec, inner_pub).reshape(-1).astype(np.int64)
    t2 = clock()

    sd = np.sqrt(est.wls_variance(hier, used, fit)).reshape(-1)
    moe = np.ceil(LAPLACE_Q95 * sd + np.abs(values - blue_full) - 1e-9).astype(np.int64)

    t3 = clock()
    return Release(values=values, moe=moe, blue=blue_full, sd=sd, measurements=measurements,
                   spent=spent, grand=grand, sweeps=sweeps,
                   timings={"noise": t1 - t0, "estimate_and_postprocess": t2 - t1,
                            "margin_of_error": t3 - t2})


def _report(table: CellTable, epsilon: float, spent: float, bound: int, noise, sampler,  # noqa: ANN001
            measurements: list[Measurement], shares: list[tuple[str, float]],
            values: np.ndarray, moe: np.ndarray, grand: int, sweeps: int) -> NoiseReport:
    inner = table.inner_mask
    gt = table.cell_id({})
    try:
        import opendp

        odp = getattr(opendp, "__version__", None)
    except ImportError:  # pragma: no cover
        odp = None
    if odp is None:
        from importlib.metadata import version

        odp = version("opendp")
    return NoiseReport(
        cells=int(table.n_cells),
        mechanism="discrete Laplace (two-sided geometric)",
        noise_source=(f"OpenDP {odp} make_laplace on 64-bit integers (exact sampler, "
                      "cryptographic RNG)" if sampler.is_private else
                      "seeded numpy test sampler: NOT a differentially private release"),
        differentially_private=bool(sampler.is_private),
        privacy=Privacy(
            definition="pure epsilon-differential privacy",
            epsilon=epsilon,
            epsilon_certified=spent,
            privacy_unit=noise.privacy_unit,
            contribution_bound=bound,
            contribution_bound_meaning=(f"each {noise.privacy_unit} is counted in at most "
                                        f"{bound} inner cell(s) (by at most {bound} in total)"),
            neighbouring=f"add or remove one {noise.privacy_unit}",
            composition="sequential over the measured groups; each group is a partition of "
                        "the inner cells, so its L1 sensitivity is the contribution bound",
        ),
        allocation={
            "rule": ("inner cells 75%, grand total 5%, the remaining 20% over the one-way "
                     "margins of every dimension at every hierarchy level in proportion to the "
                     "square root of their number of cells, unless the spec sets "
                     "disclosure.noise.weights"),
            "groups": [{"group": m.name, "share": round(s, 6), "epsilon": m.epsilon,
                        "scale": m.scale,
                        "noise_sd": math.sqrt(discrete_laplace_variance(m.scale))}
                       for m, (_, s) in zip(measurements, shares, strict=True)],
        },
        post_processing=PostProcessing(
            estimator="weighted least squares over all measurements (BLUE, inverse-variance)",
            steps=[
                "grand total = rounded estimate; one-way margins top-down through each hierarchy, "
                "non-negative, largest-remainder rounding (sums kept)",
                "cells: Euclidean projection onto non-negative values with those margins",
                "controlled rounding one dimension at a time (max-flow), margins kept exactly",
                "every total = exact sum of its published parts",
            ],
            projection_sweeps=int(sweeps),
            clip_then_sum=False,
        ),
        checks=Checks(
            non_negative=bool(np.all(values >= 0)),
            integer=True,
            additive=bool(table.check_additive(values)),
            cells=int(table.n_cells),
        ),
        uncertainty=Uncertainty(
            column=MOE_COLUMN,
            level=0.95,
            method="ceil(2.12 * sd(BLUE of the cell) + |published - BLUE|)",
            inner_moe_median=float(np.median(moe[inner])),
            inner_moe_max=int(moe[inner].max()),
            grand_total_moe=int(moe[gt]),
            grand_total_published=int(grand),
        ),
    )


def release_key(published: pd.DataFrame) -> str:
    """SHA-256 of the published table (CSV bytes): the key of a release in the budget ledger."""
    data = published.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LevelAccuracy:
    """The expected accuracy of one published level, known before any draw."""

    level: str  # "inner", "total", "DIM@DEPTH" (one dimension below its total), "other"
    cells: int
    sd_median: float
    moe_median: int  # ceil(2.12 * sd) of the BLUE: the 95 % margin of error before rounding
    moe_max: int


def expected_accuracy(spec: TableSpec, epsilon: float | None = None, *,
                      epsilon_ceiling: float = DEFAULT_EPSILON_CEILING) -> list[LevelAccuracy]:
    """The 95 % margin of error of every published level for ``epsilon`` (default: the spec's),
    computed from the code lists, the contribution bound and the allocation only — never from the
    counts, so it can be shown before a draw is made and charged (``publisher protect
    --dry-run``, the release form).

    It is the margin of error of the BLUE of each cell (``ceil(2.12 * sd)``); the published
    ``obs_moe`` of a cell adds what the integer, non-negative post-processing moved that cell
    (usually 0–2), so a published margin is never smaller than this figure.
    """
    from types import SimpleNamespace

    noise = spec.disclosure
    if not isinstance(noise, NoiseSpec):
        raise NoiseSpecError(R_("the spec has no disclosure.noise section"))
    eps = check_epsilon(noise.epsilon if epsilon is None else epsilon, epsilon_ceiling)
    bound = int(noise.contribution_bound)
    if bound < 1:
        raise NoiseSpecError(R_("contribution_bound must be at least 1"))
    hier = tuple(d.hierarchy for d in spec.dimensions)
    shares = allocation(SimpleNamespace(hierarchies=hier), noise.weights)
    by_name = {g.name: g for g in est.marginal_groups(hier)}
    v0, used = 0.0, []
    for name, share in shares:
        var = discrete_laplace_variance(bound / (eps * share))
        if name == "inner":
            v0 = var
            continue
        g = by_name[name] if name != "total" else est.Group(name="total", dim=None, matrix=None)
        g.weight, g.variance = share, var
        g.values = np.zeros(g.n_queries)
        used.append(g)
    inner_shape = tuple(len(h.leaves) for h in hier)
    fit = est.wls(np.zeros(inner_shape), v0, used)
    sd = np.sqrt(est.wls_variance(hier, used, fit))
    kinds = np.empty(sd.shape, dtype=object)
    depth = [np.array([h.depth[c] for c in h.codes]) for h in hier]
    leaf = [np.array([h.is_leaf(c) for c in h.codes]) for h in hier]
    for idx in np.ndindex(sd.shape):
        below = [d for d, i in enumerate(idx) if depth[d][i] > 0]
        if all(leaf[d][i] for d, i in enumerate(idx)):
            kinds[idx] = "inner"
        elif not below:
            kinds[idx] = "total"
        elif len(below) == 1:
            d = below[0]
            kinds[idx] = f"{hier[d].name}@{depth[d][idx[d]]}"
        else:
            kinds[idx] = "other"
    order = ["inner"] + sorted({k for k in kinds.flat if "@" in k}) + ["other", "total"]
    out = []
    for k in order:
        s = sd[kinds == k]
        if s.size == 0:
            continue
        moe = np.ceil(LAPLACE_Q95 * s - 1e-9)
        out.append(LevelAccuracy(level=k, cells=int(s.size), sd_median=float(np.median(s)),
                                 moe_median=int(np.median(moe)), moe_max=int(moe.max())))
    return out
