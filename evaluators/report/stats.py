"""Confidence intervals, percentiles and the two-proportion z-test the report uses (stdlib only).

- Means: Student t-interval at 95% (exact t quantiles for df <= 30, a Cornish-Fisher expansion
  beyond, within 1e-5 of the exact value); no bounds for n < 2.
- Rates: Wilson score interval at 95%, which stays inside [0, 1] and behaves at 0% and 100%.
- Percentiles: linear interpolation between closest ranks (numpy's default, "type 7").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, stdev

from shadowtap.evaluators.report.model import Interval, Rate

Z_975 = NormalDist().inv_cdf(0.975)  # 1.959964...

# t quantile at 0.975 for 1..30 degrees of freedom.
_T_975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
          2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
          2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t_975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z, v = Z_975, float(df)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


def mean_interval(values: Sequence[float], *, within: tuple[float, float] | None = None) -> Interval:
    """Mean with a 95% t-interval; bounds are None below two values. `within` clips the bounds to
    the range the values can take (a score's mean cannot be above 1, whatever the t-interval says)."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = fmean(values)
    if n < 2:
        return Interval(mean, None, None, 1)
    half = t_975(n - 1) * stdev(values) / math.sqrt(n)
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(within[0], low), min(within[1], high)
    return Interval(mean, low, high, n)


SCORE_RANGE = (0.0, 1.0)
DIFFERENCE_RANGE = (-1.0, 1.0)


def wilson(count: int, n: int) -> Rate:
    """`count` of `n` with its 95% Wilson score interval."""
    if n == 0:
        return Rate(count, 0, None, None, None)
    p, z2 = count / n, Z_975 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Rate(count, n, p, max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_z(count_a: int, n_a: int, count_b: int, n_b: int) -> tuple[float, float] | None:
    """(z, two-sided p) for H0: the two shares are equal, with the pooled standard error.

    None when either side is empty or the pooled share is 0 or 1 (nothing to tell apart).
    """
    if n_a == 0 or n_b == 0:
        return None
    pooled = (count_a + count_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return None
    z = (count_a / n_a - count_b / n_b) / se
    return z, 2 * (1 - NormalDist().cdf(abs(z)))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) by linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    return percentile_of_sorted(sorted(values), q)


def percentile_of_sorted(ordered: Sequence[float], q: float) -> float | None:
    """`percentile` of values already sorted ascending (no copy: the report's lists run to a million)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def thin(values: Sequence[float], cap: int) -> list[float]:
    """Sorted values, evenly thinned to at most `cap` (keeping the minimum and the maximum)."""
    ordered = sorted(values)
    if len(ordered) <= cap:
        return ordered
    if cap == 1:
        return [ordered[-1]]
    step = (len(ordered) - 1) / (cap - 1)
    return [ordered[round(index * step)] for index in range(cap)]
