"""Exact sums of values and of their squares, which add up across slices: a mean and its
t-interval from them, equal to the last bit to `stats.mean_interval` over the values themselves.

`statistics.stdev` is exact: it sums each float as a fraction (`float.as_integer_ratio`, whose
denominator is a power of two), squares included, and rounds only the final square root. These
moments keep the same integer partial sums, so a report can tally each cell of its traffic once
and add cells up for every slice, instead of reading every value again for every slice that holds
it (at 1,000,000 exchanges, most of a report's time went there). The mean is `fsum(values) / n`
as `statistics.fmean` computes it: the exact sum, correctly rounded once, then divided.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from shadowtap.evaluators.report.model import Interval
from shadowtap.evaluators.report.stats import t_975

_SQRT_BIT_WIDTH = 2 * 53 + 3  # statistics._sqrt_bit_width for IEEE doubles


class Moments:
    """n, and per power-of-two denominator d the sums of numerators and of squared numerators
    of the values (value = numerator / d). Finite values only (scores and their differences)."""

    __slots__ = ("n", "sums", "squares")

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[int, int] = {}
        self.squares: dict[int, int] = {}

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        moments = cls()
        moments.add_values(values)
        return moments

    def add_values(self, values: Iterable[float]) -> None:
        sums, squares = self.sums, self.squares
        # Scores repeat (rounded judges, 0/1 labels): each distinct value is split into a fraction once.
        for value, count in Counter(values).items():
            numerator, denominator = value.as_integer_ratio()
            sums[denominator] = sums.get(denominator, 0) + count * numerator
            squares[denominator] = squares.get(denominator, 0) + count * numerator * numerator
            self.n += count

    def add(self, other: Moments) -> None:
        """Adds `other`'s values to these (`other` is not changed)."""
        self.n += other.n
        for denominator, total in other.sums.items():
            self.sums[denominator] = self.sums.get(denominator, 0) + total
        for denominator, total in other.squares.items():
            self.squares[denominator] = self.squares.get(denominator, 0) + total

    def _exact_sums(self) -> tuple[int, int, int]:
        """(S, Q, D): the sum is S / D and the sum of squares Q / D**2, D the largest denominator."""
        common = max(self.sums, default=1)
        total = sum(value * (common // denominator) for denominator, value in self.sums.items())
        squares = sum(value * (common // denominator) ** 2 for denominator, value in self.squares.items())
        return total, squares, common

    def mean(self) -> float | None:
        """`statistics.fmean` of the values; None when there are none."""
        if not self.n:
            return None
        total, _, common = self._exact_sums()
        return (total / common) / self.n  # int / int is correctly rounded, as math.fsum

    def stdev(self) -> float:
        """`statistics.stdev` of the values (at least two)."""
        if self.n < 2:
            raise ValueError(f"stdev needs at least two values, got {self.n}")
        total, squares, common = self._exact_sums()
        # variance = (n * sum(x^2) - sum(x)^2) / (n * (n - 1)), with sum(x) = S/D and sum(x^2) = Q/D^2
        numerator = self.n * squares - total * total
        denominator = common * common * self.n * (self.n - 1)
        divisor = math.gcd(numerator, denominator)
        return _float_sqrt_of_frac(numerator // divisor, denominator // divisor)

    def interval(self, *, within: tuple[float, float] | None = None) -> Interval:
        """`stats.mean_interval(values, within=within)`, from the moments alone."""
        n = self.n
        if n == 0:
            return Interval(None, None, None, 0)
        mean = self.mean()
        assert mean is not None
        if n < 2:
            return Interval(mean, None, None, 1)
        half = t_975(n - 1) * self.stdev() / math.sqrt(n)
        low, high = mean - half, mean + half
        if within is not None:
            low, high = max(within[0], low), min(within[1], high)
        return Interval(mean, low, high, n)


def _integer_sqrt_of_frac_rto(n: int, m: int) -> int:
    """Square root of n/m, rounded to the nearest integer using round-to-odd (CPython's statistics)."""
    a = math.isqrt(n // m)
    return a | (a * a * m != n)


def _float_sqrt_of_frac(n: int, m: int) -> float:
    """Square root of n/m as a float, correctly rounded: CPython 3.11's `statistics._float_sqrt_of_frac`,
    which `statistics.stdev` ends with (copied: it is private to the stdlib)."""
    q = (n.bit_length() - m.bit_length() - _SQRT_BIT_WIDTH) // 2
    if q >= 0:
        return (_integer_sqrt_of_frac_rto(n, m << 2 * q) << q) / 1
    return _integer_sqrt_of_frac_rto(n << -2 * q, m) / (1 << -q)
