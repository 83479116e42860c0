"""Chance-corrected agreement between reviewers, and whether it is falling.

Which kappa: Cohen's when exactly two named reviewers judged the items (every item then carries
both verdicts), Fleiss' otherwise. Fleiss' is the usual generalisation to items with different
numbers of reviewers: per item P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)), observed = mean P_i,
p_j = sum_i n_ij / sum_i n_i, expected = sum_j p_j²; with the same number of reviewers on every
item it is Fleiss (1971) exactly. Both are (observed - expected) / (1 - expected), undefined (None)
when expected agreement is 1 (every verdict the same label).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

COHEN, FLEISS = "cohen", "fleiss"


@dataclass(frozen=True)
class Kappa:
    items: int
    kappa: float | None
    observed: float | None
    expected: float | None


def agreement_method(items: Sequence[Mapping[str, str]]) -> str | None:
    """Cohen's for exactly two reviewers over all items, Fleiss' for more, None without items.

    Each item maps reviewer -> verdict and has at least two reviewers."""
    if not items:
        return None
    return COHEN if len({reviewer for item in items for reviewer in item}) == 2 else FLEISS


def kappa_of(items: Sequence[Mapping[str, str]], method: str) -> Kappa:
    """The kappa `method` names over items (reviewer -> verdict, two or more reviewers each)."""
    if method == COHEN:
        reviewers = sorted({reviewer for item in items for reviewer in item})
        if len(reviewers) != 2:   # a slice of a two-reviewer store always has both on every item
            return Kappa(len(items), None, None, None)
        first, second = reviewers
        return cohen_kappa([(item[first], item[second]) for item in items])
    return fleiss_kappa([list(item.values()) for item in items])


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> Kappa:
    """Cohen's kappa for two raters; each pair is (rater A's label, rater B's label)."""
    n = len(pairs)
    if n == 0:
        return Kappa(0, None, None, None)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    return _kappa(n, observed, expected)


def fleiss_kappa(items: Sequence[Sequence[str]]) -> Kappa:
    """Fleiss' kappa; each item is the labels its raters gave (two or more; items with fewer are ignored)."""
    rated = [Counter(labels) for labels in items if len(labels) >= 2]
    if not rated:
        return Kappa(0, None, None, None)
    per_item = [sum(c * (c - 1) for c in counts.values()) / (sum(counts.values()) * (sum(counts.values()) - 1))
                for counts in rated]
    totals: Counter = Counter()
    for counts in rated:
        totals.update(counts)
    ratings = sum(totals.values())
    expected = sum((count / ratings) ** 2 for count in totals.values())
    return _kappa(len(rated), fmean(per_item), expected)


def _kappa(items: int, observed: float, expected: float) -> Kappa:
    if expected >= 1.0 - 1e-12:
        return Kappa(items, None, observed, expected)
    return Kappa(items, (observed - expected) / (1 - expected), observed, expected)


def falling(windows: Sequence[tuple[int, float | None]], *, min_items: int,
            min_drop: float) -> tuple[float | None, bool]:
    """(first - last kappa, whether that drop is at least `min_drop`) over the windows, in time order,
    that have at least `min_items` items and a kappa; (None, False) with fewer than two such windows."""
    usable = [kappa for items, kappa in windows if items >= min_items and kappa is not None]
    if len(usable) < 2:
        return None, False
    drop = usable[0] - usable[-1]
    return drop, drop >= min_drop - 1e-12
