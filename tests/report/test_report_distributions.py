"""A score distribution's mean does not depend on the order the database returns the scores in
(SQLite and PostgreSQL return them in different orders): it is the correctly rounded mean."""

from __future__ import annotations

import random
import statistics

from shadowtap.evaluators.report.build import distributions
from shadowtap.evaluators.report.source import ReportInput, ScoreValue


def input_with(values: list[float]) -> ReportInput:
    data = ReportInput()
    data.scores["primary", "grounding"] = {f"x{index}": ScoreValue(value, None, {})
                                           for index, value in enumerate(values)}
    return data


def test_the_distribution_mean_is_the_same_whatever_the_order_of_the_scores():
    rng = random.Random(7)
    values = [round(rng.betavariate(7, 2), 4) for _ in range(20_000)]
    shuffled = values[:]
    rng.shuffle(shuffled)
    [first] = distributions(input_with(values), [])
    [second] = distributions(input_with(shuffled), [])
    assert first.mean == second.mean == statistics.fmean(values)
    assert first.n == second.n == 20_000
    assert first.counts == second.counts and sum(first.counts) == 20_000


def test_the_distribution_bins_values_by_tenths_with_one_in_the_last_bin():
    [found] = distributions(input_with([0.0, 0.05, 0.1, 0.95, 1.0, -0.2, 1.3]), [])
    assert found.counts == [3, 1, 0, 0, 0, 0, 0, 0, 0, 3]
