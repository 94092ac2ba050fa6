"""Exact integer noise for counts: the discrete Laplace (two-sided geometric) mechanism.

Production noise comes from OpenDP (``opendp.measurements.make_laplace`` on a vector of 64-bit
integers with the L1 distance): OpenDP samples the discrete Laplace distribution exactly (Canonne,
Kamath & Steinke 2020) from OpenSSL's cryptographic RNG, and its privacy map certifies the
epsilon each measurement spends. There is no seed in that path.

:class:`SeededSampler` draws the same distribution with numpy for tests (reproducible, NOT
cryptographic, not exact). A table protected with it is marked in its report as not a
differentially private release (see :func:`disclosure.noise.protect_noise`).

Why not diffprivlib: its ``Geometric`` mechanism samples through a floating-point inverse CDF
(no exactness guarantee; its open issue #94 says all its floating-point mechanisms remain open to
precision-based attacks, arXiv:2207.13793 —
https://github.com/IBM/differential-privacy-library/issues/94), and an integer ``random_state``
silently switches it to Mersenne Twister. Ashyq does not use diffprivlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCALE_NUDGE_STEPS = 64


def discrete_laplace_variance(scale: float) -> float:
    """Variance of the discrete Laplace distribution P(k) ∝ exp(-|k|/scale)."""
    a = math.exp(-1.0 / scale)
    return 2.0 * a / (1.0 - a) ** 2


def discrete_laplace_quantile(scale: float, level: float = 0.95) -> int:
    """Smallest integer t with P(|X| <= t) >= level for X ~ discrete Laplace(scale)."""
    a = math.exp(-1.0 / scale)
    # P(|X| > t) = 2 a^(t+1) / (1 + a)
    t = math.log((1.0 - level) * (1.0 + a) / 2.0) / math.log(a) - 1.0
    return max(0, math.ceil(t - 1e-12))


@dataclass(frozen=True)
class Measurement:
    """One group of disjoint counting queries measured with discrete Laplace noise."""

    name: str
    epsilon: float  # epsilon certified by the privacy map for this group
    scale: float

    @property
    def variance(self) -> float:
        return discrete_laplace_variance(self.scale)


class OpenDPSampler:
    """Discrete Laplace noise from OpenDP (exact sampler, cryptographic RNG). The production path."""

    name = "opendp"
    is_private = True
    #: what ``calibrate``'s budget is (in its refusal)
    budget_name = "epsilon"

    def __init__(self) -> None:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        self._dp = dp

    def _measurement(self, scale: float):  # noqa: ANN202
        dp = self._dp
        return dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64")),
                                 dp.l1_distance(T="i64"), scale=scale)

    def calibrate(self, sensitivity: int, epsilon: float) -> tuple[float, float]:
        """The smallest scale (to float precision) whose OpenDP privacy map gives <= epsilon.

        Returns (scale, certified epsilon). OpenDP's map rounds conservatively, so the plain
        ``sensitivity / epsilon`` may map to an epsilon one ulp above the target; the scale is then
        nudged upward until the certified epsilon is within the target.
        """
        scale = self._start_scale(sensitivity, epsilon)
        for _ in range(SCALE_NUDGE_STEPS):
            spent = float(self._measurement(scale).map(sensitivity))
            if spent <= epsilon:
                return scale, spent
            scale = math.nextafter(scale, math.inf) * (1 + 1e-15)
        raise RuntimeError(f"could not calibrate the noise scale for {self.budget_name} {epsilon}")

    @staticmethod
    def _start_scale(sensitivity: int, budget: float) -> float:
        return sensitivity / budget

    def sample(self, true_counts: np.ndarray, scale: float) -> np.ndarray:
        meas = self._measurement(scale)
        out = meas(np.asarray(true_counts, dtype=np.int64).tolist())
        return np.asarray(out, dtype=np.int64)


class SeededSampler:
    """Discrete Laplace noise from a seeded numpy generator. For TESTS ONLY: not cryptographic,
    not an exact sampler, so a table noised with it is not a differentially private release."""

    name = "numpy-seeded-test-sampler"
    is_private = False

    def __init__(self, rng: np.random.Generator | int) -> None:
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def calibrate(self, sensitivity: int, epsilon: float) -> tuple[float, float]:
        return sensitivity / epsilon, epsilon

    def sample(self, true_counts: np.ndarray, scale: float) -> np.ndarray:
        counts = np.asarray(true_counts, dtype=np.int64)
        p = 1.0 - math.exp(-1.0 / scale)
        # The difference of two i.i.d. geometric counts of failures is discrete Laplace.
        g1 = self.rng.geometric(p, size=counts.shape) - 1
        g2 = self.rng.geometric(p, size=counts.shape) - 1
        return counts + (g1 - g2)


def make_sampler(rng: np.random.Generator | int | None) -> OpenDPSampler | SeededSampler:
    """OpenDP when ``rng`` is None (production); the seeded test sampler otherwise."""
    return OpenDPSampler() if rng is None else SeededSampler(rng)
