"""ROC AUC with a DeLong 95% interval: how well a score separates good outcomes from bad ones.

AUC is the probability that a good outcome's score is higher than a bad outcome's, ties counting
one half (the Mann-Whitney statistic), so 0.5 is a coin toss and above 0.5 means a higher score
goes with a better outcome. Its variance is DeLong's (1988): from the structural components
V_good(x) = P(bad score < x) + P(bad score = x) / 2 for each good score and
V_bad(y) = P(good score > y) + P(good score = y) / 2 for each bad one,
var = s²(V_good) / m + s²(V_bad) / n with sample variances. Exact and deterministic; computed by
sorting, so it stays fast on many thousands of scores.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, variance

from shadowtap.evaluators.report.stats import Z_975


@dataclass(frozen=True)
class RocAuc:
    auc: float | None                   # None when either class is empty
    low: float | None                   # 95% bounds, clipped to [0, 1]; None with fewer than 2 of a class
    high: float | None


def roc_auc(good: Sequence[float], bad: Sequence[float]) -> RocAuc:
    """AUC of scores for good outcomes against scores for bad outcomes, with its DeLong interval."""
    if not good or not bad:
        return RocAuc(None, None, None)
    good_sorted, bad_sorted = sorted(good), sorted(bad)
    v_good = [_share_below(bad_sorted, x) for x in good]
    v_bad = [1.0 - _share_below(good_sorted, y) for y in bad]
    auc = fmean(v_good)
    if len(good) < 2 or len(bad) < 2:
        return RocAuc(auc, None, None)
    half = Z_975 * math.sqrt(variance(v_good) / len(good) + variance(v_bad) / len(bad))
    return RocAuc(auc, max(0.0, auc - half), min(1.0, auc + half))


def _share_below(ordered: Sequence[float], x: float) -> float:
    """Share of `ordered` below x, ties counting one half."""
    below, not_above = bisect_left(ordered, x), bisect_right(ordered, x)
    return (below + 0.5 * (not_above - below)) / len(ordered)
