"""Evaluator validity: how well each evaluator's primary score predicts the human outcome.

Positive class ("needed correction or was rejected"): the exchange was escalated, rejected or a
policy violation, or was completed only after a heavy correction (ExchangeOutcome.needed_correction).
Negative class: accepted, or edited without a heavy correction. Budgets play no part: evaluators
judge the answer, not its latency or cost. AUC is oriented so that above 0.5 means a higher
score goes with a good outcome (roc.roc_auc); one row per evaluator with any primary score on
an exchange with feedback, in name order.
"""

from __future__ import annotations

from collections.abc import Mapping

from shadowtap.evaluators.report.model import EvaluatorValidity
from shadowtap.evaluators.report.outcomes.resolution import ExchangeOutcome
from shadowtap.evaluators.report.outcomes.roc import roc_auc


def evaluator_validity(outcomes: Mapping[str, ExchangeOutcome],
                       primary_scores: Mapping[str, Mapping[str, float]]) -> list[EvaluatorValidity]:
    """`primary_scores`: exchange id -> evaluator -> the primary's score; exchanges without an outcome are ignored."""
    by_evaluator: dict[str, tuple[list[float], list[float]]] = {}     # evaluator -> (good, bad) scores
    for exchange_id, outcome in outcomes.items():
        for evaluator, value in primary_scores.get(exchange_id, {}).items():
            good, bad = by_evaluator.setdefault(evaluator, ([], []))
            (bad if outcome.needed_correction else good).append(value)
    rows = []
    for evaluator, (good, bad) in sorted(by_evaluator.items()):
        auc = roc_auc(good, bad)
        rows.append(EvaluatorValidity(evaluator, len(good) + len(bad), len(bad), len(good), auc.auc, auc.low, auc.high))
    return rows
