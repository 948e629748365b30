"""Confidence intervals: Wilson for proportions, a seeded percentile bootstrap for means.

Hand-written because each is a few lines of numpy/scipy and the libraries that
offer them (statsmodels, scipy.stats.bootstrap) either are not a dependency or
resample in a way we cannot seed per item group; the formulas are the
textbook ones and tests check them against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from heedful.errors import InvalidInput

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A rate or mean with its interval, all in the same unit (a fraction unless said otherwise)."""

    value: float
    low: float
    high: float
    n: int

    def percent(self) -> Estimate:
        return Estimate(self.value * 100, self.low * 100, self.high * 100, self.n)

    def as_dict(self) -> dict:
        return asdict(self)


def wilson(successes: float, n: int, z: float = Z95) -> Estimate:
    """The Wilson score interval for a binomial proportion (good near 0 and 1, unlike Wald)."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if not 0 <= successes <= n:
        raise InvalidInput(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def sem(values: Sequence[float]) -> float:
    """Standard error of the mean with ddof=1 (pandas' Series.sem, which AlpacaEval uses)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan
    return float(x.std(ddof=1) / math.sqrt(len(x)))


def bootstrap_mean(values: Sequence[float], *, seed: int = 0, n_boot: int = 2000,
                   level: float = 0.95) -> Estimate:
    """Mean with a percentile bootstrap interval over items (resampled with replacement, seeded)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(float(x.mean()), float(lo), float(hi), len(x))


def bootstrap_stat(n: int, stat, *, seed: int = 0, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `stat(indices)` over bootstrap resamples of n items (for any statistic)."""
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)], dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
