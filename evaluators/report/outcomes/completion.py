"""Trusted task completion, correction burden and outcome rates over a slice of exchanges with feedback.

Definitions (over the slice's exchanges that have feedback, one outcome each, see resolution):

- trusted task completion: completed (accepted or edited) AND no heavy correction AND within the
  [outcomes] latency and cost budgets (a budget of 0 is none; an unknown latency or cost is not
  held against the exchange); a policy violation is never completed, being the most severe verdict;
- escalation, rejection, policy violation: the share with that outcome (the five outcome shares
  add up to 1; rejection does not include policy violations);
- correction burden: mean edit minutes and mean edit ratio per completed answer, over the answers
  where the figure is known (an accepted answer without one counts 0), with 95% t-intervals;
- evaluator means: the primary's mean score per evaluator over the same exchanges.

Rates carry 95% Wilson intervals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from shadowtap.core.config import OutcomesConfig
from shadowtap.evaluators.report.model import OutcomeFigures
from shadowtap.evaluators.report.outcomes.resolution import SEVERITY, ExchangeOutcome
from shadowtap.evaluators.report.stats import SCORE_RANGE, mean_interval, wilson


def within_budget(exchange: Mapping, config: OutcomesConfig) -> bool:
    """False when a set budget is exceeded by a known latency or cost."""
    for budget, column in ((config.max_latency_ms, "latency_ms"), (config.max_cost_usd, "cost_usd")):
        value = exchange.get(column)
        if budget > 0 and value is not None and value > budget:
            return False
    return True


def is_trusted(outcome: ExchangeOutcome, exchange: Mapping, config: OutcomesConfig) -> bool:
    return outcome.completed and not outcome.heavy_correction and within_budget(exchange, config)


def outcome_figures(outcomes: Sequence[ExchangeOutcome], exchanges: Mapping[str, Mapping],
                    primary_scores: Mapping[str, Mapping[str, float]], config: OutcomesConfig) -> OutcomeFigures:
    """The figures over `outcomes`; `exchanges` holds each one's latency_ms and cost_usd, and
    `primary_scores` maps exchange id -> evaluator -> the primary's score."""
    n = len(outcomes)
    counts = Counter(outcome.outcome for outcome in outcomes)
    completed = [outcome for outcome in outcomes if outcome.completed]
    trusted = sum(is_trusted(outcome, exchanges.get(outcome.exchange_id, {}), config) for outcome in outcomes)
    over_budget = sum(not within_budget(exchanges.get(outcome.exchange_id, {}), config) for outcome in completed)
    by_evaluator: dict[str, list[float]] = {}
    for outcome in outcomes:
        for evaluator, value in primary_scores.get(outcome.exchange_id, {}).items():
            by_evaluator.setdefault(evaluator, []).append(value)
    return OutcomeFigures(
        exchanges=n,
        outcomes={name: counts[name] for name in SEVERITY},
        trusted_completion=wilson(trusted, n),
        completed=wilson(len(completed), n),
        heavy_correction=wilson(sum(outcome.heavy_correction for outcome in outcomes), n),
        escalation=wilson(counts["escalated"], n),
        rejection=wilson(counts["rejected"], n),
        policy_violation=wilson(counts["policy_violation"], n),
        over_budget=over_budget,
        edit_minutes=mean_interval([o.edit_minutes for o in completed if o.edit_minutes is not None],
                                   within=(0.0, math.inf)),
        edit_ratio=mean_interval([o.edit_ratio for o in completed if o.edit_ratio is not None], within=SCORE_RANGE),
        evaluator_means={name: mean_interval(values, within=SCORE_RANGE)
                         for name, values in sorted(by_evaluator.items())},
    )
