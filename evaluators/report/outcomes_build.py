"""Builds the report's outcomes section: human feedback on the primary's live answers, overall, by
category and per window, beside the primary's evaluator scores, with each evaluator's validity and
the reviewers' agreement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from shadowtap.core.config import OutcomesConfig
from shadowtap.evaluators.report.model import (
    KappaWindow,
    OutcomeCategory,
    OutcomesReport,
    OutcomeTrendPoint,
    ReviewerAgreement,
)
from shadowtap.evaluators.report.outcomes.completion import outcome_figures
from shadowtap.evaluators.report.outcomes.kappa import Kappa, agreement_method, falling, kappa_of
from shadowtap.evaluators.report.outcomes.resolution import ExchangeOutcome, resolve_outcomes
from shadowtap.evaluators.report.outcomes.validity import evaluator_validity
from shadowtap.evaluators.report.outcomes.windows import window_end, window_start
from shadowtap.evaluators.report.source import FeedbackInput

OUTCOME_METHODS = {
    "outcomes: which feedback counts": "each reviewer's latest row (by at; rows without a reviewer count as one, "
                                       "the app); the exchange's outcome is the most severe of them: "
                                       "policy_violation > rejected > escalated > edited > accepted",
    "outcomes: trusted task completion": "completed (accepted or edited), no heavy correction (any counted edit "
                                         "over [outcomes] heavy_correction_minutes or heavy_correction_ratio), "
                                         "within the latency and cost budgets; over exchanges with feedback, "
                                         "95% Wilson interval",
    "outcomes: correction burden": "mean edit minutes and mean edit ratio per completed (accepted or edited) "
                                   "answer where known; an accepted answer without one counts 0; 95% t-interval",
    "outcomes: evaluator validity": "ROC AUC of the primary's score against the outcome, positive class = "
                                    "escalated, rejected, policy violation or heavily corrected; above 0.5 = "
                                    "higher scores go with good outcomes; DeLong 95% interval",
    "outcomes: reviewer agreement": "Cohen's kappa when exactly two reviewers judged the items, Fleiss' kappa "
                                    "(items may have different numbers of reviewers) otherwise, on the outcome "
                                    "labels of exchanges judged by 2+ named reviewers; falling = the last window's "
                                    "kappa at least falling_kappa_drop below the first's, among windows with "
                                    "falling_min_items items",
    "outcomes: windows and categories": "by the exchange's time (UTC days, or weeks from Monday); categories by "
                                        "the [outcomes] category dimension",
}
_THRESHOLDS = ("heavy_correction_minutes", "heavy_correction_ratio", "max_latency_ms", "max_cost_usd",
               "falling_kappa_drop", "falling_min_items")


def build_outcomes(exchanges: Mapping[str, dict], feedback: FeedbackInput, config: OutcomesConfig) -> OutcomesReport:
    """`exchanges` are the report's (in time order, with `started_dt`); feedback on others is ignored."""
    rows = [row for row in feedback.rows if row["exchange_id"] in exchanges]
    resolved = resolve_outcomes(rows, config)
    ordered = [resolved[exchange_id] for exchange_id in exchanges if exchange_id in resolved]
    scores = feedback.primary_scores
    by_category: dict[str, list[ExchangeOutcome]] = defaultdict(list)
    for outcome in ordered:
        value = category_value(exchanges[outcome.exchange_id], outcome, config.category)
        if value is not None:
            by_category[value].append(outcome)
    method = agreement_method([outcome.verdicts for outcome in ordered if len(outcome.verdicts) >= 2])
    agreement = [reviewer_agreement(scope, members, exchanges, method, config)
                 for scope, members in [("overall", ordered), *sorted(by_category.items())]]
    agreement = [row for row in agreement if row.scope == "overall" or row.items]
    return OutcomesReport(
        feedback_rows=len(rows), exchanges=len(ordered), category=config.category, window=config.window,
        thresholds={key: getattr(config, key) for key in _THRESHOLDS},
        overall=outcome_figures(ordered, exchanges, scores, config),
        categories=[OutcomeCategory(value, outcome_figures(members, exchanges, scores, config))
                    for value, members in sorted(by_category.items())],
        trends=trend(ordered, exchanges, scores, method, config),
        validity=evaluator_validity(resolved, scores),
        agreement_method=method, agreement=agreement,
        falling_categories=[row.scope for row in agreement if row.falling and row.scope != "overall"],
    )


def category_value(exchange: Mapping, outcome: ExchangeOutcome, dimension: str) -> str | None:
    """The exchange's value on the [outcomes] category dimension; None (no category) when unset."""
    if dimension == "label":
        value = outcome.label
    elif dimension.startswith("tag:"):
        value = exchange["tags"].get(dimension[len("tag:"):])
    else:
        value = exchange.get(dimension)
    return None if value in (None, "") else str(value)


def _by_window(outcomes: Sequence[ExchangeOutcome], exchanges: Mapping[str, dict],
               window: str) -> dict[datetime, list[ExchangeOutcome]]:
    buckets: dict[datetime, list[ExchangeOutcome]] = defaultdict(list)
    for outcome in outcomes:
        buckets[window_start(exchanges[outcome.exchange_id]["started_dt"], window)].append(outcome)
    return dict(sorted(buckets.items()))


def _kappa(outcomes: Sequence[ExchangeOutcome], method: str | None) -> Kappa:
    judged = [outcome.verdicts for outcome in outcomes if len(outcome.verdicts) >= 2]
    return kappa_of(judged, method) if method and judged else Kappa(len(judged), None, None, None)


def reviewer_agreement(scope: str, outcomes: Sequence[ExchangeOutcome], exchanges: Mapping[str, dict],
                       method: str | None, config: OutcomesConfig) -> ReviewerAgreement:
    judged = [outcome for outcome in outcomes if len(outcome.verdicts) >= 2]
    overall = _kappa(judged, method)
    windows = []
    for start, members in _by_window(judged, exchanges, config.window).items():
        found = _kappa(members, method)
        windows.append(KappaWindow(start.isoformat(), window_end(start, config.window).isoformat(), found.items,
                                   found.kappa))
    drop, is_falling = falling([(w.items, w.kappa) for w in windows], min_items=config.falling_min_items,
                               min_drop=config.falling_kappa_drop)
    return ReviewerAgreement(scope=scope, items=len(judged),
                             reviewers=len({reviewer for outcome in judged for reviewer in outcome.verdicts}),
                             kappa=overall.kappa, observed=overall.observed, expected=overall.expected,
                             windows=windows, drop=drop, falling=is_falling)


def trend(outcomes: Sequence[ExchangeOutcome], exchanges: Mapping[str, dict],
          scores: Mapping[str, Mapping[str, float]], method: str | None,
          config: OutcomesConfig) -> list[OutcomeTrendPoint]:
    points = []
    for start, members in _by_window(outcomes, exchanges, config.window).items():
        found = _kappa(members, method)
        points.append(OutcomeTrendPoint(start.isoformat(), window_end(start, config.window).isoformat(),
                                        outcome_figures(members, exchanges, scores, config), found.items, found.kappa))
    return points
