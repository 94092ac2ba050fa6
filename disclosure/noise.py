"""Differentially private release of a count table: exact integer noise, consistent totals.

Two mechanisms, one constructor each (:func:`laplace_mechanism`, :func:`gaussian_mechanism`):

* ``mechanism: geometric`` (spec key ``epsilon``): discrete Laplace noise. Guarantee: the
  published table (every cell, totals included) and its margins of error satisfy **pure
  epsilon-differential privacy** for the privacy unit of the spec (default: one person, counted
  in at most ``contribution_bound`` inner cells — 1 by default), under add/remove-one-person
  neighbouring.
* ``mechanism: gaussian`` (spec key ``rho``): discrete Gaussian noise. Guarantee: **rho-zero-
  concentrated differential privacy** (zCDP, Bun & Steinke 2016) for the same privacy unit and
  neighbouring. zCDP implies (epsilon, delta)-DP for every delta > 0 with
  ``epsilon = rho + 2 * sqrt(rho * ln(1 / delta))`` (:func:`zcdp_epsilon`; Ashyq states it for
  delta = :data:`ZCDP_DELTA` = 1e-6). It does not imply pure epsilon-DP.

Everything after the noisy measurements is post-processing of them.

Steps (see :mod:`disclosure.dp_estimate` and :mod:`disclosure.dp_postprocess`):

1. Measure with noise (OpenDP, exact sampler, cryptographic RNG): the inner cells, every
   dimension's one-way margins at every hierarchy level, and the grand total. The budget
   (epsilon, or rho: both compose by addition) is split by the allocation rule
   :data:`DEFAULT_WEIGHTS` (spec key ``disclosure.noise.weights``): inner cells 75 %, grand total
   5 %, the remaining 20 % over the one-way margin groups in proportion to the square root of
   their number of cells (a level of 30 codes gets 1.8x the share of a level of 9: the mean error
   over all margin cells is then smallest; ``benchmarks/bench_dp.py`` prints the frontier).
2. Combine them by weighted least squares (the BLUE, inverse-variance weights).
3. Top-down integer post-processing: the grand total and one-way margins first (rounded,
   non-negative, consistent down each hierarchy), then the cells made non-negative under those
   margins, then controlled rounding. Published values are non-negative integers and every total
   is exactly the sum of its parts.
4. A 95 % range of the true count per cell (``obs_lower``, ``obs_upper``): the counts within h
   of the cell's BLUE, widened to hold the published value, where h is the 95 % point of the
   BLUE's error. That error is a fixed linear map of the noise alone, so h is data-independent:
   :func:`blue_halfwidth` simulates it from the mechanism at the release's scales, per class of
   cells (same depths, same sd; the grand total, alone in its class, takes ``q * sd + 1`` with
   q = 2.12 = ln(20)/sqrt(2) for the Laplace, 1.96 for the Gaussian). The range holds the true
   count whenever the BLUE's range does, so rounding and non-negativity cannot break the
   coverage; ``obs_moe`` is the distance from the published value to the range's farther end
   (``value ± obs_moe`` holds it). Checked by simulation of the whole release in
   ``tests/disclosure/test_noise_moe.py`` and ``benchmarks/bench_dp.py``.

Linked tables (:func:`protect_noise_linked`): several tables of one release, about one
population, share one budget (split over the tables in proportion to the square root of their
number of cells; sequential composition across the tables) and a cell present in two of them
gets one published value.

Seeds: ``rng=None`` (production) uses OpenDP's sampler, which has no seed. Passing a numpy
``Generator`` or an ``int`` seed switches to a seeded numpy sampler for tests: the report then
says ``"differentially_private": False`` and the publisher must refuse to release such a table.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from . import dp_estimate as est
from . import dp_postprocess as post
from .dp_mechanism import OpenDPSampler, discrete_laplace_variance, make_sampler
from .errors import R_
from .methods.noise import (
    LOWER_COLUMN,
    MOE_COLUMN,
    UPPER_COLUMN,
    Checks,
    NoiseReport,
    NoiseSpec,
    NoiseSpecError,
    PostProcessing,
    Privacy,
    Uncertainty,
)
from .protect import FREE, ProtectedTable, published_frame
from .spec import TOTAL, TableSpec
from .table import CellTable, aggregate

DEFAULT_EPSILON_CEILING = 5.0
DEFAULT_WEIGHTS = {"inner": 0.75, "total": 0.05, "margins": 0.20}
LAPLACE_Q95 = math.log(20) / math.sqrt(2)  # 95 % half-width of a Laplace, in standard deviations
GAUSS_Q95 = 1.959963984540054  # 95 % half-width of a normal, in standard deviations
ZCDP_DELTA = 1e-6  # the delta at which a rho-zCDP release states its (epsilon, delta)


# -- the budget units ---------------------------------------------------------------------------

def zcdp_epsilon(rho: float, delta: float = ZCDP_DELTA) -> float:
    """The epsilon of (epsilon, delta)-DP implied by rho-zCDP (Bun & Steinke 2016, Prop. 1.3):
    ``epsilon = rho + 2 * sqrt(rho * ln(1 / delta))``."""
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def zcdp_rho_for(epsilon: float, delta: float = ZCDP_DELTA) -> float:
    """The largest rho whose :func:`zcdp_epsilon` at ``delta`` is ``epsilon`` (its inverse)."""
    ln = math.log(1.0 / delta)
    return (math.sqrt(ln + epsilon) - math.sqrt(ln)) ** 2


def pure_to_zcdp(epsilon: float) -> float:
    """Pure epsilon-DP implies (epsilon^2 / 2)-zCDP (Bun & Steinke 2016, Prop. 1.4)."""
    return epsilon * epsilon / 2.0


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


def check_rho(rho: object, epsilon_ceiling: float = DEFAULT_EPSILON_CEILING) -> float:
    """Return rho as a float if it is a finite number > 0 whose (epsilon, delta = 1e-6) is within
    the epsilon ceiling; else raise, naming the key ``rho``."""
    if isinstance(rho, bool) or not isinstance(rho, Real):
        raise NoiseSpecError(R_("rho must be a number, got %(rho)s"), rho=repr(rho))
    r = float(rho)
    if math.isnan(r) or r <= 0:
        raise NoiseSpecError(R_("rho must be greater than 0, got %(rho)s"), rho=format(r, "g"))
    if math.isinf(r) or zcdp_epsilon(r) > epsilon_ceiling:
        raise NoiseSpecError(
            R_("rho %(rho)s means epsilon %(e)s at delta 1e-6, above the ceiling %(ceiling)s configured for this service (EPSILON_CEILING)"), rho=format(r, "g"), e=format(zcdp_epsilon(r), ".3g") if math.isfinite(r) else "inf", ceiling=format(epsilon_ceiling, "g"))
    return r


def spec_budget(noise: NoiseSpec, ceiling: float = DEFAULT_EPSILON_CEILING) -> float:
    """The checked budget of a noise spec in its mechanism's unit (epsilon, or rho)."""
    if noise.mechanism == "gaussian":
        if noise.epsilon is not None:
            raise NoiseSpecError(R_("disclosure.noise.epsilon: the gaussian mechanism takes rho (zCDP), not epsilon"))
        if noise.rho is None:
            raise NoiseSpecError(R_("disclosure.noise.rho: missing; the gaussian mechanism needs rho (zCDP)"))
        return check_rho(noise.rho, ceiling)
    if noise.mechanism != "geometric":
        raise NoiseSpecError(R_("unknown mechanism %(mechanism)s; use 'geometric' or 'gaussian'"), mechanism=repr(noise.mechanism))
    if noise.rho is not None:
        raise NoiseSpecError(R_("disclosure.noise.rho: only for mechanism gaussian; the geometric mechanism takes epsilon"))
    return check_epsilon(noise.epsilon, ceiling)


# -- the mechanisms -----------------------------------------------------------------------------

def discrete_gaussian_variance(sigma: float) -> float:
    """Variance of the discrete Gaussian P(k) ∝ exp(-k^2 / (2 sigma^2)) (exact sum; <= sigma^2)."""
    kmax = int(math.ceil(12 * sigma)) + 2
    k = np.arange(-kmax, kmax + 1, dtype=float)
    w = np.exp(-(k * k) / (2.0 * sigma * sigma))
    return float((w * k * k).sum() / w.sum())


class _Mechanism:
    """What both mechanisms share: a sampler (OpenDP's in production, a seeded one in tests)
    that calibrates the scale to a budget and draws the noisy counts."""

    sampler: Any
    is_private: bool

    def calibrate(self, sensitivity: int, budget: float) -> tuple[float, float]:
        return self.sampler.calibrate(sensitivity, budget)

    def sample(self, true_counts: np.ndarray, scale: float) -> np.ndarray:
        return self.sampler.sample(true_counts, scale)


class LaplaceMechanism(_Mechanism):
    """Discrete Laplace noise on counts (see :func:`laplace_mechanism`)."""

    name = "geometric"
    unit = "epsilon"
    q95 = LAPLACE_Q95
    definition = "pure epsilon-differential privacy"

    def __init__(self, rng: np.random.Generator | int | None = None) -> None:
        self.sampler = make_sampler(rng)
        self.is_private = bool(self.sampler.is_private)

    @staticmethod
    def variance(scale: float) -> float:
        return discrete_laplace_variance(scale)

    @staticmethod
    def nominal_scale(sensitivity: int, budget: float) -> float:
        return sensitivity / budget

    def source(self, odp: str) -> str:
        return (f"OpenDP {odp} make_laplace on 64-bit integers (exact sampler, cryptographic RNG)"
                if self.is_private else
                "seeded numpy test sampler: NOT a differentially private release")


class _OpenDPGaussian(OpenDPSampler):
    """Discrete Gaussian from OpenDP's ``make_gaussian`` on 64-bit integers (L2 distance, zCDP);
    calibrated like the Laplace sampler: the smallest scale whose privacy map gives <= rho."""

    budget_name = "rho"

    def _measurement(self, scale: float):  # noqa: ANN202
        dp = self._dp
        return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T="i64")),
                                  dp.l2_distance(T="i64"), scale=scale)

    @staticmethod
    def _start_scale(sensitivity: int, budget: float) -> float:
        return sensitivity / math.sqrt(2.0 * budget)


class _SeededGaussian:
    """Discrete Gaussian from a seeded numpy generator (Canonne, Kamath & Steinke 2020,
    Algorithm 3, in floating point). For TESTS ONLY: not cryptographic, not exact."""

    is_private = False

    def __init__(self, rng: np.random.Generator | int) -> None:
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def calibrate(self, sensitivity: int, rho: float) -> tuple[float, float]:
        return sensitivity / math.sqrt(2.0 * rho), rho

    def sample(self, true_counts: np.ndarray, scale: float) -> np.ndarray:
        counts = np.asarray(true_counts, dtype=np.int64)
        n = counts.size
        out = np.empty(n, dtype=np.int64)
        todo = np.arange(n)
        t = math.floor(scale) + 1
        p = 1.0 - math.exp(-1.0 / t)
        s2 = scale * scale
        while todo.size:
            y = (self.rng.geometric(p, size=todo.size) - 1) - (self.rng.geometric(p, size=todo.size) - 1)
            accept = self.rng.random(todo.size) < np.exp(-((np.abs(y) - s2 / t) ** 2) / (2 * s2))
            out[todo[accept]] = y[accept]
            todo = todo[~accept]
        return counts + out.reshape(counts.shape)


class GaussianMechanism(_Mechanism):
    """Discrete Gaussian noise on counts (see :func:`gaussian_mechanism`)."""

    name = "gaussian"
    unit = "rho"
    q95 = GAUSS_Q95
    definition = "rho-zero-concentrated differential privacy (zCDP)"

    def __init__(self, rng: np.random.Generator | int | None = None) -> None:
        self.sampler = _OpenDPGaussian() if rng is None else _SeededGaussian(rng)
        self.is_private = bool(self.sampler.is_private)

    @staticmethod
    def variance(scale: float) -> float:
        return discrete_gaussian_variance(scale)

    @staticmethod
    def nominal_scale(sensitivity: int, budget: float) -> float:
        return sensitivity / math.sqrt(2.0 * budget)

    def source(self, odp: str) -> str:
        return (f"OpenDP {odp} make_gaussian on 64-bit integers (exact discrete Gaussian, "
                "cryptographic RNG)" if self.is_private else
                "seeded numpy test sampler: NOT a differentially private release")


Mechanism = LaplaceMechanism | GaussianMechanism


def laplace_mechanism(rng: np.random.Generator | int | None = None) -> LaplaceMechanism:
    """Discrete Laplace (two-sided geometric) noise. Guarantee: a vector of counting queries with
    L1 sensitivity Δ noised at scale s is pure (Δ / s)-differentially private; the scale is
    calibrated by OpenDP's privacy map (``make_laplace``, exact sampler, OpenSSL's cryptographic
    RNG, no seed). ``rng`` (a numpy Generator or an int seed) selects a seeded numpy sampler of
    the same distribution for TESTS: its output is not differentially private."""
    return LaplaceMechanism(rng)


def gaussian_mechanism(rng: np.random.Generator | int | None = None) -> GaussianMechanism:
    """Discrete Gaussian noise. Guarantee: a vector of counting queries with L2 sensitivity Δ
    noised at scale sigma is rho-zCDP with rho = Δ² / (2 sigma²) (Canonne, Kamath & Steinke
    2020), which implies (rho + 2 sqrt(rho ln(1/δ)), δ)-DP for every δ > 0 but not pure DP; the
    scale is calibrated by OpenDP's privacy map (``make_gaussian`` on 64-bit integers with the
    L2 distance, exact sampler, cryptographic RNG, no seed). A group of disjoint counts that one
    unit changes by at most ``contribution_bound`` in L1 changes by at most as much in L2.
    ``rng`` selects a seeded numpy sampler for TESTS: its output is not differentially private."""
    return GaussianMechanism(rng)


def make_mechanism(mechanism: str, rng: np.random.Generator | int | None = None) -> Mechanism:
    """The mechanism a spec names (``geometric`` or ``gaussian``)."""
    if mechanism == "gaussian":
        return gaussian_mechanism(rng)
    if mechanism == "geometric":
        return laplace_mechanism(rng)
    raise NoiseSpecError(R_("unknown mechanism %(mechanism)s; use 'geometric' or 'gaussian'"),
                         mechanism=repr(mechanism))


def _as_mechanism(sampler: Any) -> Mechanism:
    """A mechanism, or a bare Laplace sampler of :mod:`disclosure.dp_mechanism` wrapped as one."""
    if isinstance(sampler, LaplaceMechanism | GaussianMechanism):
        return sampler
    m = LaplaceMechanism.__new__(LaplaceMechanism)
    m.sampler, m.is_private = sampler, bool(sampler.is_private)
    return m


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


@dataclass(frozen=True)
class Measured:
    """One group of disjoint counting queries measured with noise."""

    name: str
    spent: float  # epsilon (Laplace) or rho (Gaussian) certified by the privacy map
    scale: float
    variance: float


def protect_noise(table: CellTable, *, rng: np.random.Generator | int | None = None,
                  epsilon_ceiling: float = DEFAULT_EPSILON_CEILING) -> ProtectedTable:
    """Publish every cell as a non-negative integer, exactly additive, with the spec's guarantee
    (pure epsilon-DP for ``geometric``, rho-zCDP for ``gaussian``).

    ``rng`` must be None in production (OpenDP's cryptographic exact sampler). A numpy Generator
    or an int seed selects the seeded test sampler; the result is then marked as not private.
    """
    return protect_noise_linked([table], rng=rng, epsilon_ceiling=epsilon_ceiling)[0]


def _noise_of(table: CellTable) -> NoiseSpec:
    noise = table.spec.disclosure
    if not isinstance(noise, NoiseSpec):
        raise NoiseSpecError(R_("the spec has no disclosure.noise section"))
    return noise


_SAME_KEYS = ("mechanism", "epsilon", "rho", "privacy_unit", "contribution_bound")


def check_linked(specs: list[TableSpec]) -> None:
    """Linked noise tables are one release: they must agree on the mechanism, its budget, the
    privacy unit, the contribution bound, the data source and the reference period, and code a
    dimension they share with one hierarchy. Raises naming the key that differs."""
    first = specs[0]
    n0 = first.disclosure
    for spec in specs[1:]:
        n = spec.disclosure
        for key in _SAME_KEYS:
            if getattr(n, key) != getattr(n0, key):
                raise NoiseSpecError(R_("disclosure.noise.%(key)s: linked noise tables are one release with one budget; table %(id)s gives %(value)s, table %(first)s gives %(expected)s"), source=f"spec {spec.id}", key=key, id=repr(spec.id), value=repr(getattr(n, key)), first=repr(first.id), expected=repr(getattr(n0, key)))
        for key in ("source_id", "reference_period"):
            if spec.metadata.get(key) != first.metadata.get(key):
                raise NoiseSpecError(R_("%(key)s: linked noise tables are charged to one data source and period; table %(id)s differs from table %(first)s"), source=f"spec {spec.id}", key=key, id=repr(spec.id), first=repr(first.id))
    seen: dict[str, tuple[str, Any]] = {}
    for spec in specs:
        for d in spec.dimensions:
            h = d.hierarchy
            sig = (tuple(h.codes), tuple(sorted((p, tuple(c)) for p, c in h.children.items())))
            if d.name in seen and seen[d.name][1] != sig:
                raise NoiseSpecError(R_("dimension %(dimension)s: linked noise tables must code a dimension they share with the same codes and hierarchy (tables %(a)s and %(b)s differ)"), source=f"spec {spec.id}", dimension=d.name, a=repr(seen[d.name][0]), b=repr(spec.id))
            seen.setdefault(d.name, (spec.id, sig))


def linked_shares(tables: list[CellTable]) -> list[float]:
    """Each linked table's share of the release's budget: proportional to the square root of its
    number of cells (the rule used between margin groups), summing to 1. Code lists only."""
    roots = [math.sqrt(t.n_cells) for t in tables]
    s = math.fsum(roots)
    return [r / s for r in roots]


def _shared_blocks(table: CellTable, earlier: list[tuple[CellTable, np.ndarray]]
                   ) -> tuple[int | None, list[tuple[tuple[int, ...], np.ndarray]]]:
    """The cells ``table`` shares with tables published before it, as (grand total, blocks):
    a block is a set of this table's dimensions and the published leaf-level margin over them
    (the cells with every other dimension at its total). Blocks contained in another are
    implied by it; two blocks that overlap otherwise cannot be kept together by the top-down
    post-processing and are refused."""
    if not earlier:
        return None, []
    names = [h.name for h in table.hierarchies]
    grand = None
    found: dict[tuple[int, ...], np.ndarray] = {}
    for other, inner in earlier:
        onames = [h.name for h in other.hierarchies]
        common = [d for d, n in enumerate(names) if n in onames]
        grand = int(inner.sum())
        if not common:
            continue
        axes = [onames.index(names[d]) for d in common]
        rest = tuple(a for a in range(inner.ndim) if a not in axes)
        m = inner.sum(axis=rest) if rest else inner
        kept = sorted(axes)
        m = np.transpose(m, [kept.index(a) for a in axes])
        found.setdefault(tuple(common), m.astype(np.int64))
    keys = [k for k in found if not any(set(k) < set(o) for o in found)]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if set(a) & set(b):
                raise NoiseSpecError(R_("linked noise tables: table %(id)s shares cells with earlier tables over dimensions (%(a)s) and (%(b)s), which overlap; link tables whose shared dimensions are nested or disjoint"), source=f"spec {table.spec.id}", id=repr(table.spec.id), a=", ".join(names[d] for d in a), b=", ".join(names[d] for d in b))
    return grand, [(k, found[k]) for k in keys]


def protect_noise_linked(tables: list[CellTable], *,
                         rng: np.random.Generator | int | None = None,
                         epsilon_ceiling: float = DEFAULT_EPSILON_CEILING
                         ) -> list[ProtectedTable]:
    """Protect the noise tables of one release together: one budget, consistent shared cells.

    Guarantee: the tables together satisfy the spec's guarantee at the release's budget (pure
    epsilon-DP for ``geometric``, rho-zCDP for ``gaussian``; every spec states the same budget)
    for the privacy unit of the specs, one unit counted in at most ``contribution_bound`` inner
    cells *of each table* — the tables count the same population, so a unit may be in every
    table. The budget is split over the tables by :func:`linked_shares` and spent by sequential
    composition across them (epsilons, or rhos, add up to the release's), so the ledger is
    charged once for the release. Shared cells (the same codes of the dimensions a cell does not
    total over; a dimension absent from a table counts as its total) are post-processing: the
    first table is published as a single table would be; each later table is post-processed
    with the cells it shares with earlier ones fixed at their published values (and their margin
    of error), so a shared cell has one published value and every table stays additive. Each
    table's margins of error come from its own measurements plus what post-processing moved.
    """
    specs = [t.spec for t in tables]
    noise = _noise_of(tables[0])
    if len(tables) > 1:
        check_linked(specs)
    budget = spec_budget(noise, epsilon_ceiling)
    bound = int(noise.contribution_bound)
    if bound < 1:
        raise NoiseSpecError(R_("contribution_bound must be at least 1"))
    mech = make_mechanism(noise.mechanism, rng)
    parts = linked_shares(tables) if len(tables) > 1 else [1.0]
    out: list[ProtectedTable] = []
    earlier: list[tuple[CellTable, np.ndarray]] = []
    moes: dict[tuple, tuple[int, int, int]] = {}
    for table, part in zip(tables, parts, strict=True):
        shares = allocation(table, noise.weights)
        grand, blocks = _shared_blocks(table, earlier)
        rel = release(table, budget * part, bound, shares, mech, fixed_grand=grand,
                      fixed=blocks)
        moe, lower, upper = rel.moe.copy(), rel.lower.copy(), rel.upper.copy()
        keys = _cell_keys(table)
        for i, k in enumerate(keys):  # a shared cell keeps the interval it was published with
            if k in moes:
                moe[i], lower[i], upper[i] = moes[k]
            else:
                moes[k] = (int(moe[i]), int(lower[i]), int(upper[i]))
        conf = np.full(table.n_cells, FREE, dtype=object)
        t = time.perf_counter()
        published = published_frame(table, conf, values=rel.values,
                                    extra={MOE_COLUMN: moe, LOWER_COLUMN: lower,
                                           UPPER_COLUMN: upper})
        rel.timings["published_frame"] = time.perf_counter() - t
        report = _report(table, budget, bound, noise, mech, rel, shares, moe,
                         linked=[s.id for s in specs] if len(tables) > 1 else None,
                         part=part)
        report.seconds = {k: round(v, 3) for k, v in rel.timings.items()}
        out.append(ProtectedTable(table=table, published=published, report=report))
        earlier.append((table, _inner_cube_of(table, rel.values)))
    return out


def _cell_keys(table: CellTable) -> list[tuple]:
    """The key of every cell across linked tables: (dimension, code) of its non-total codes."""
    names = [h.name for h in table.hierarchies]
    order = sorted(range(len(names)), key=lambda d: names[d])
    codes = [np.asarray(h.codes, dtype=object)[g] for h, g in
             zip(table.hierarchies, table.code_arrays(), strict=True)]
    return [tuple((names[d], codes[d][i]) for d in order if codes[d][i] != TOTAL)
            for i in range(table.n_cells)]


def _inner_cube_of(table: CellTable, values: np.ndarray) -> np.ndarray:
    cube = values.reshape(table.shape)
    idx = [np.array([i for i, c in enumerate(h.codes) if h.is_leaf(c)]) for h in table.hierarchies]
    return cube[np.ix_(*idx)]


@dataclass
class Release:
    """The outcome of :func:`release`: published values and what the report needs."""

    values: np.ndarray  # published integer value of every cell (flat, C order)
    moe: np.ndarray  # margin of error of every cell: [value - moe, value + moe] holds the interval
    lower: np.ndarray  # 95 % interval of the true count of every cell: lower end (>= 0)
    upper: np.ndarray  # ... and upper end
    half: np.ndarray  # half-width of the 95 % interval around the BLUE (data-independent)
    blue: np.ndarray  # BLUE of every cell (float; internal, for benchmarks and tests)
    sd: np.ndarray  # standard deviation of the BLUE of every cell
    measurements: list[Measured]
    spent: float
    grand: int
    sweeps: int
    timings: dict[str, float]


def release(table: CellTable, epsilon: float, bound: int, shares: list[tuple[str, float]],
            sampler: Any, *, fixed_grand: int | None = None,
            fixed: list[tuple[tuple[int, ...], np.ndarray]] | None = None) -> Release:
    """Measure with noise, estimate (WLS), post-process (top-down) and size the margins of error.

    ``epsilon`` is the budget in the mechanism's unit (epsilon, or rho for the Gaussian), already
    checked; ``shares`` come from :func:`allocation`; ``sampler`` is a mechanism
    (:func:`make_mechanism`) or a bare Laplace sampler. ``fixed_grand`` and ``fixed`` (blocks of
    dimensions with their integer leaf-level margins) are cells published already by a linked
    table: the post-processing keeps them.
    """
    mech = _as_mechanism(sampler)
    clock = time.perf_counter
    t0 = clock()
    hier = table.hierarchies
    inner_true = _inner_cube(table)
    shape = inner_true.shape
    groups_by_name = {g.name: g for g in est.marginal_groups(hier)}
    measurements: list[Measured] = []
    inner_noisy = None
    v0 = 0.0
    used: list[est.Group] = []
    # Each group's target is shaved by 1e-12 (relative) so that float rounding in the shares can
    # never make the certified total exceed the budget.
    for name, share in shares:
        b_g = epsilon * share * (1 - 1e-12)
        scale, certified = mech.calibrate(bound, b_g)
        var = mech.variance(scale)
        measurements.append(Measured(name=name, spent=certified, scale=scale, variance=var))
        if name == "inner":
            inner_noisy = mech.sample(inner_true.reshape(-1), scale).reshape(shape)
            v0 = var
            continue
        g = (est.Group(name="total", dim=None, matrix=None) if name == "total"
             else groups_by_name[name])
        g.weight, g.variance = share, var
        g.values = mech.sample(est.answer(g, inner_true), scale)
        used.append(g)
    assert inner_noisy is not None
    t1 = clock()
    spent = math.fsum(m.spent for m in measurements)
    if mech.is_private and spent > epsilon:
        raise RuntimeError(f"certified budget {spent!r} exceeds the requested {epsilon!r}")

    # --- everything below is post-processing of the noisy measurements only ---
    fit = est.wls(inner_noisy, v0, used)
    blue_full = aggregate(table.spec, fit.inner).reshape(-1)
    grand, inner_pub, sweeps = _postprocess(hier, fit.inner, fixed_grand, fixed or [])
    values = aggregate(table.spec, inner_pub).reshape(-1).astype(np.int64)
    t2 = clock()

    sd = np.sqrt(est.wls_variance(hier, used, fit)).reshape(-1)
    scales = {m.name: m.scale for m in measurements}
    half = blue_halfwidth(table.spec, type(mech), scales["inner"], v0,
                          [(g, scales[g.name]) for g in used], sd)
    lower, upper, moe = interval_of(values, blue_full, half)

    t3 = clock()
    return Release(values=values, moe=moe, lower=lower, upper=upper, half=half,
                   blue=blue_full, sd=sd, measurements=measurements,
                   spent=spent, grand=grand, sweeps=sweeps,
                   timings={"noise": t1 - t0, "estimate_and_postprocess": t2 - t1,
                            "margin_of_error": t3 - t2})


def _postprocess(hier: tuple, inner: np.ndarray, fixed_grand: int | None,
                 fixed: list[tuple[tuple[int, ...], np.ndarray]]
                 ) -> tuple[int, np.ndarray, int]:
    """Integer, non-negative, additive inner cells from the BLUE ``inner``; cells published by a
    linked table (``fixed_grand``, ``fixed`` blocks) are kept. Returns (grand, inner, sweeps)."""
    shape = inner.shape
    in_block = {d for dims, _ in fixed for d in dims}
    free = [d for d in range(len(hier)) if d not in in_block]
    total = float(inner.sum()) if fixed_grand is None else float(fixed_grand)
    oneway = [est.membership_oneway(hier[d], inner, d) for d in free]
    grand, _, free_leaf = post.topdown_margins(tuple(hier[d] for d in free), oneway, total)
    if not fixed:
        if len(hier) == 1:
            return grand, free_leaf[0].reshape(shape), 0
        proj, sweeps = post.project_nonneg(inner, free_leaf)
        return grand, post.round_stages(proj, free_leaf), sweeps
    # Each fixed block of dimensions is flattened into one axis whose margin is fixed.
    order = [d for dims, _ in fixed for d in dims] + free
    x = np.transpose(inner, order)
    flat = [int(np.prod([shape[d] for d in dims])) for dims, _ in fixed] + [shape[d] for d in free]
    x = x.reshape(flat)
    margins = [m.reshape(-1).astype(np.int64) for _, m in fixed] + list(free_leaf)
    grand = int(margins[0].sum())
    sweeps = 0
    if x.ndim == 1:
        y = margins[0]
    else:
        proj, sweeps = post.project_nonneg(x, margins)
        y = post.round_stages(proj, margins)
    y = y.reshape([shape[d] for d in order])
    return grand, np.transpose(y, np.argsort(order)), sweeps


def _report(table: CellTable, budget: float, bound: int, noise: NoiseSpec, mech: Mechanism,
            rel: Release, shares: list[tuple[str, float]], moe: np.ndarray, *,
            linked: list[str] | None = None, part: float = 1.0) -> NoiseReport:
    values, measurements = rel.values, rel.measurements
    inner = table.inner_mask
    gt = table.cell_id({})
    from importlib.metadata import version

    try:
        odp = version("opendp")
    except Exception:  # pragma: no cover
        odp = "?"
    gaussian = mech.unit == "rho"
    unit = noise.privacy_unit
    if gaussian:
        eps_equiv = zcdp_epsilon(budget)
        definition = (f"rho-zero-concentrated differential privacy (rho = {budget:g}); it implies "
                      f"(epsilon, delta)-differential privacy with epsilon = rho + "
                      f"2*sqrt(rho*ln(1/delta)) = {eps_equiv:.4g} for delta = {ZCDP_DELTA:g}")
    else:
        eps_equiv = budget
        definition = "pure epsilon-differential privacy"
    composition = ("sequential over the measured groups; each group is a partition of the inner "
                   "cells, so its sensitivity (L1" + (" and L2" if gaussian else "") +
                   ") is the contribution bound")
    if linked:
        composition += (f"; linked tables {', '.join(linked)} are one release: the budget is "
                        "split over them in proportion to the square root of their number of "
                        f"cells (this table {part:.6g} of it) and composes sequentially across "
                        "them; cells they share are published once")
    q = "1.96" if gaussian else "2.12"
    share_word = "rho" if gaussian else "epsilon"
    privacy = Privacy(
        definition=definition,
        epsilon=eps_equiv,
        epsilon_certified=(zcdp_epsilon(rel.spent) if gaussian else rel.spent),
        privacy_unit=unit,
        contribution_bound=bound,
        contribution_bound_meaning=(f"each {unit} is counted in at most {bound} inner cell(s) "
                                    f"(by at most {bound} in total)"),
        neighbouring=f"add or remove one {unit}",
        composition=composition,
    )
    if gaussian:
        privacy.rho = budget
        privacy.rho_certified = rel.spent
        privacy.delta = ZCDP_DELTA
    if linked:
        privacy.linked_tables = list(linked)
        privacy.table_share = part
    return NoiseReport(
        cells=int(table.n_cells),
        mechanism=("discrete Gaussian" if gaussian else "discrete Laplace (two-sided geometric)"),
        noise_source=mech.source(odp),
        differentially_private=bool(mech.is_private),
        privacy=privacy,
        allocation={
            "rule": (f"inner cells 75%, grand total 5%, the remaining 20% over the one-way "
                     f"margins of every dimension at every hierarchy level in proportion to the "
                     f"square root of their number of cells (shares of {share_word}), unless "
                     "the spec sets disclosure.noise.weights"),
            "groups": [{"group": m.name, "share": round(s, 6), share_word: m.spent,
                        "scale": m.scale, "noise_sd": math.sqrt(m.variance)}
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
            ] + (["cells shared with a linked table published before this one are kept at "
                  "their published value"] if linked and linked[0] != table.spec.id else []),
            projection_sweeps=int(rel.sweeps),
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
            method=("interval [obs_lower, obs_upper]: the integers >= 0 within h of the "
                    "cell's BLUE, widened to hold the published value; h = the 95 % point of "
                    "|BLUE error| / sd of the cell's class (same depth in every dimension, same "
                    "sd) simulated from the noise alone (data-independent; classes with fewer "
                    f"than {MC_MIN_CLASS} simulated errors: {q} * sd + 1) times the cell's sd; "
                    "obs_moe = the distance from the published value to the farther end"),
            interval=[LOWER_COLUMN, UPPER_COLUMN],
            inner_halfwidth_median=float(np.median(rel.half[inner])),
            inner_moe_median=float(np.median(moe[inner])),
            inner_moe_max=int(moe[inner].max()),
            grand_total_moe=int(moe[gt]),
            grand_total_published=int(rel.grand),
        ),
    )


MC_ERRORS = 300_000  # simulated cell errors per table (at least) for the interval half-widths
MC_DRAWS = (4, 400)  # fewest and most simulated draws of the whole noise vector
MC_MIN_CLASS = 4000  # simulated errors a class of cells needs for its own 95 % point
MC_SEED = 20240601  # the simulation is a computation, not noise on data: fixed, reproducible


def _cell_classes(hier: tuple, sd: np.ndarray | None) -> np.ndarray:
    """Class of every cell of the full cube (flat): cells of one class have the same depth in
    every dimension, are all inner or all not, and (unless ``sd`` is None) have the same BLUE
    standard deviation."""
    shape = tuple(len(h.codes) for h in hier)
    key = np.zeros(shape, dtype=np.int64)
    inner = np.ones(shape, dtype=bool)
    for d, h in enumerate(hier):
        sh = [1] * len(hier)
        sh[d] = shape[d]
        dep = np.array([h.depth[c] for c in h.codes], dtype=np.int64).reshape(sh)
        # dense ids after every dimension: no overflow however many dimensions
        key = np.unique(key * 64 + dep, return_inverse=True)[1].reshape(shape)
        inner = inner & np.array([h.is_leaf(c) for c in h.codes]).reshape(sh)
    code = key.reshape(-1) * 2 + inner.reshape(-1)
    if sd is not None:  # one-dimensional uniques: a lexicographic unique over rows is slow
        sd_of = np.unique(np.round(sd / max(float(sd.max()), 1e-300), 9), return_inverse=True)[1]
        code = code * (int(sd_of.max()) + 1) + sd_of.reshape(-1)
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def blue_halfwidth(spec: TableSpec, mech_type: type, inner_scale: float, v0: float,
                   groups: list[tuple[est.Group, float]], sd: np.ndarray,
                   level: float = 0.95) -> np.ndarray:
    """Half-width ``h`` of every cell's interval around its BLUE: P(|BLUE - true| <= h) >= level.

    The error of the BLUE is a fixed linear map of the noise alone (the true counts cancel), so
    its distribution depends on the code lists, the budget and its allocation only — never on
    the data. It is simulated: whole noise vectors drawn from the mechanism at the release's
    scales (a seeded generator: this computes a quantile of a known distribution, it adds no
    noise to anything published), passed through the estimator. Cells of one class (same depth
    in every dimension, inner or not, same standard deviation) share that distribution; the
    class's ``level`` point of |error| / sd (the empirical quantile at or above it) times the
    cell's sd is its half-width when the class has at least :data:`MC_MIN_CLASS` simulated
    errors; a smaller class is pooled with the cells of the same depths (other sds). Cells still
    short of errors (the grand total) take the continuous rule ``q * sd`` plus one count for
    the discreteness of the errors, which covers more.
    """
    from dataclasses import replace

    from .table import membership

    hier = tuple(d.hierarchy for d in spec.dimensions)
    fp = hashlib.sha256()
    for h in hier:
        m = membership(h)
        fp.update(repr(m.shape).encode() + m.astype(np.uint8).tobytes())
    fp.update(repr((mech_type.__name__, inner_scale, v0, level,
                    [(g.name, s, g.variance) for g, s in groups])).encode())
    key = fp.hexdigest()
    if key in _HALF_CACHE:
        return _HALF_CACHE[key].copy()
    inner_shape = tuple(len(h.leaves) for h in hier)
    n = sd.size
    draws = int(min(MC_DRAWS[1], max(MC_DRAWS[0], -(-MC_ERRORS // n))))
    sampler = mech_type(np.random.default_rng(MC_SEED))
    copies = [(replace(g), s) for g, s in groups]
    errs = np.empty((draws, n))
    for k in range(draws):
        y = sampler.sample(np.zeros(int(np.prod(inner_shape)), dtype=np.int64), inner_scale)
        for g, s in copies:
            g.values = sampler.sample(np.zeros(g.n_queries, dtype=np.int64), s)
        fit = est.wls(y.reshape(inner_shape).astype(float), v0, [g for g, _ in copies])
        errs[k] = aggregate(spec, fit.inner).reshape(-1)
    ratio = np.abs(errs) / np.where(sd > 0, sd, 1.0)[None, :]
    half = mech_type.q95 * sd + 1.0
    done = np.zeros(n, dtype=bool)
    # Fine classes first; a cell whose fine class is too small for its own 95 % point is pooled
    # with the cells of its depth (all sds) before falling back to the continuous rule.
    for cls in (_cell_classes(hier, sd), _cell_classes(hier, None)):
        n_cls = int(cls.max()) + 1
        size = np.bincount(cls, minlength=n_cls)
        order = np.argsort(cls, kind="stable")
        starts = np.concatenate([[0], np.cumsum(size)])
        for c in range(n_cls):
            cells = order[starts[c]:starts[c + 1]]
            cells = cells[~done[cells]]
            if size[c] * draws < MC_MIN_CLASS or cells.size == 0:
                continue
            pool = order[starts[c]:starts[c + 1]]
            t = float(np.quantile(ratio[:, pool], level, method="higher"))
            half[cells] = t * sd[cells]
            done[cells] = True
    if len(_HALF_CACHE) >= 16:
        _HALF_CACHE.pop(next(iter(_HALF_CACHE)))
    _HALF_CACHE[key] = half
    return half.copy()


# Half-widths by (code lists, mechanism, scales): they depend on nothing else, so a process that
# releases the same shape again (a retry, a dry run, a simulation) does not simulate again.
_HALF_CACHE: dict[str, np.ndarray] = {}


def interval_of(values: np.ndarray, blue: np.ndarray, half: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The published 95 % interval of every cell and its symmetric margin of error.

    The interval is the smallest range of counts holding the BLUE's interval
    ``[blue - half, blue + half]`` (true counts are integers >= 0) and the published value:
    it covers the true count whenever the BLUE's interval does, whatever post-processing did.
    ``moe`` is the distance from the published value to the farther end, so
    ``value ± moe`` holds the interval.
    """
    lower = np.maximum(0, np.minimum(values, np.ceil(blue - half - 1e-9))).astype(np.int64)
    upper = np.maximum(values, np.floor(blue + half + 1e-9)).astype(np.int64)
    moe = np.maximum(values - lower, upper - values).astype(np.int64)
    return lower, upper, moe


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
    moe_median: int  # ceil(half-width of the 95 % interval around the BLUE)
    moe_max: int


def expected_accuracy(spec: TableSpec, epsilon: float | None = None, *,
                      epsilon_ceiling: float = DEFAULT_EPSILON_CEILING,
                      mechanism: str | None = None) -> list[LevelAccuracy]:
    """The 95 % margin of error of every published level for the budget ``epsilon`` (in the
    mechanism's unit: epsilon, or rho for ``gaussian``; default: the spec's), computed from the
    code lists, the contribution bound and the allocation only — never from the counts, so it
    can be shown before a draw is made and charged (``publisher protect --dry-run``, the release
    form). ``mechanism`` overrides the spec's.

    It is the half-width of the 95 % interval around the BLUE of each cell, rounded up
    (:func:`blue_halfwidth`: simulated from the noise alone, no data). A published cell's
    interval ``[obs_lower, obs_upper]`` is that range around its estimate, widened to hold the
    published value; ``obs_moe`` is the distance from the value to the interval's farther end.
    """
    from dataclasses import replace
    from types import SimpleNamespace

    noise = spec.disclosure
    if not isinstance(noise, NoiseSpec):
        raise NoiseSpecError(R_("the spec has no disclosure.noise section"))
    mech_name = mechanism or noise.mechanism
    gaussian = mech_name == "gaussian"
    if epsilon is None:
        b = spec_budget(noise, epsilon_ceiling)
    elif gaussian:
        b = check_rho(epsilon, epsilon_ceiling)
    else:
        b = check_epsilon(epsilon, epsilon_ceiling)
    mech_type = GaussianMechanism if gaussian else LaplaceMechanism
    bound = int(noise.contribution_bound)
    if bound < 1:
        raise NoiseSpecError(R_("contribution_bound must be at least 1"))
    hier = tuple(d.hierarchy for d in spec.dimensions)
    shares = allocation(SimpleNamespace(hierarchies=hier), noise.weights)
    by_name = {g.name: g for g in est.marginal_groups(hier)}
    v0, used = 0.0, []
    for name, share in shares:
        var = mech_type.variance(mech_type.nominal_scale(bound, b * share))
        if name == "inner":
            v0 = var
            continue
        g = by_name[name] if name != "total" else est.Group(name="total", dim=None, matrix=None)
        g = replace(g)
        g.weight, g.variance = share, var
        g.values = np.zeros(g.n_queries)
        used.append(g)
    inner_shape = tuple(len(h.leaves) for h in hier)
    fit = est.wls(np.zeros(inner_shape), v0, used)
    sd = np.sqrt(est.wls_variance(hier, used, fit))
    scales = [mech_type.nominal_scale(bound, b * share) for _, share in shares]
    half = blue_halfwidth(spec, mech_type, scales[0], v0,
                          list(zip(used, scales[1:], strict=True)), sd.reshape(-1)
                          ).reshape(sd.shape)
    kinds = level_kinds(hier)
    order = ["inner"] + sorted({k for k in kinds.flat if "@" in k}) + ["other", "total"]
    out = []
    for k in order:
        s = sd[kinds == k]
        if s.size == 0:
            continue
        moe = np.ceil(half[kinds == k] - 1e-9)
        out.append(LevelAccuracy(level=k, cells=int(s.size), sd_median=float(np.median(s)),
                                 moe_median=int(np.median(moe)), moe_max=int(moe.max())))
    return out


def level_kinds(hier: tuple) -> np.ndarray:
    """The published level of every cell of the full cube: ``inner``, ``total``, ``DIM@DEPTH``
    (one dimension below its total, the others at theirs) or ``other``."""
    shape = tuple(len(h.codes) for h in hier)
    kinds = np.empty(shape, dtype=object)
    depth = [np.array([h.depth[c] for c in h.codes]) for h in hier]
    leaf = [np.array([h.is_leaf(c) for c in h.codes]) for h in hier]
    for idx in np.ndindex(shape):
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
    return kinds
