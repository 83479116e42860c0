"""Exact moments add up across cells and give the same mean and t-interval, to the last bit, as
`stats.mean_interval` (statistics.fmean and statistics.stdev) over the values themselves."""

from __future__ import annotations

import random
import statistics

import pytest

from shadowtap.evaluators.report.moments import Moments
from shadowtap.evaluators.report.stats import DIFFERENCE_RANGE, SCORE_RANGE, mean_interval

AWKWARD = {
    "one value": [0.37],
    "two equal values": [0.7, 0.7],
    "many equal values": [0.1] * 1000,
    "large offset": [1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3],
    "huge offset, tiny spread": [1e15 + step * 0.125 for step in range(7)],
    "tiny values": [5e-324, 1e-310, 2.5e-300],
    "mixed magnitudes": [1e300, 1.0, -1e300, 1e-300, 3.0],
    "differences around zero": [0.1 - 0.3, 0.3 - 0.1, 0.0, -0.0, 0.2 - 0.2],
    "rounded scores": [round(random.Random(3).random(), 4) for _ in range(500)],
    "0/1 labels": [1.0, 0.0, 1.0, 1.0, 0.0],
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
@pytest.mark.parametrize("within", [None, SCORE_RANGE, DIFFERENCE_RANGE])
def test_the_interval_from_moments_equals_the_interval_over_the_values(name, within):
    values = AWKWARD[name]
    assert Moments.of(values).interval(within=within) == mean_interval(values, within=within)


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_the_stdev_from_moments_equals_statistics_stdev_when_there_are_two_values_or_more(name):
    values = AWKWARD[name]
    if len(values) < 2:
        with pytest.raises(ValueError, match="at least two"):
            Moments.of(values).stdev()
    else:
        assert Moments.of(values).stdev() == statistics.stdev(values)
        assert Moments.of(values).mean() == statistics.fmean(values)


def test_moments_of_parts_added_up_equal_the_moments_of_the_whole_in_any_order():
    rng = random.Random(14)
    values = [rng.choice((round(rng.random(), 4), rng.random() - rng.random(), 1e6 + rng.random()))
              for _ in range(3000)]
    cuts = sorted(rng.sample(range(1, len(values)), 20))
    parts = [values[start:end] for start, end in zip([0, *cuts], [*cuts, len(values)])]
    rng.shuffle(parts)
    total = Moments()
    for part in parts:
        total.add(Moments.of(part))
    assert total.n == len(values)
    assert total.interval(within=DIFFERENCE_RANGE) == mean_interval(values, within=DIFFERENCE_RANGE)
    assert total.interval() == mean_interval(values)


def test_no_values_give_an_empty_interval_and_no_mean():
    assert Moments().mean() is None
    assert Moments.of([]).interval() == mean_interval([])
