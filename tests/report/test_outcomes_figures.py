"""The per-exchange rule (which feedback counts), trusted task completion, correction burden,
outcome rates, the [outcomes] config and the trend windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from shadowtap.core.config import OutcomesConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.report.outcomes.completion import outcome_figures
from shadowtap.evaluators.report.outcomes.resolution import resolve_outcomes
from shadowtap.evaluators.report.outcomes.windows import window_end, window_start

CONFIG = OutcomesConfig(heavy_correction_minutes=10, heavy_correction_ratio=0.3)
Z = 1.959964


def row(exchange_id: str, outcome: str, reviewer: str | None = "ana", at: str = "2026-03-02T10:00:00+00:00",
        **extra) -> dict:
    return {"id": f"{exchange_id}-{reviewer}-{at}", "exchange_id": exchange_id, "outcome": outcome,
            "reviewer": reviewer, "at": at, "received_at": at, "edit_minutes": None, "edit_ratio": None,
            "label": None, **extra}


def resolve(*rows: dict, config: OutcomesConfig = CONFIG):
    return resolve_outcomes(rows, config)


def test_the_most_severe_of_the_reviewers_verdicts_is_the_exchanges_outcome():
    found = resolve(row("e", "accepted", "ana"), row("e", "escalated", "ben"), row("e", "edited", "cy"))
    assert found["e"].outcome == "escalated"
    found = resolve(row("e", "rejected", "ana"), row("e", "policy_violation", "ben"))
    assert found["e"].outcome == "policy_violation"


def test_a_re_review_replaces_the_reviewers_earlier_verdict_by_time_not_by_insertion_order():
    later = row("e", "accepted", at="2026-03-02T12:00:00Z")
    earlier = row("e", "rejected", at="2026-03-02T11:00:00+00:00")
    assert resolve(later, earlier)["e"].outcome == "accepted"
    assert resolve(earlier, later)["e"].outcome == "accepted"


def test_rows_without_a_reviewer_count_as_the_app_but_never_as_a_reviewer_for_agreement():
    found = resolve(row("e", "accepted", None), row("e", "rejected", "ana"))["e"]
    assert found.outcome == "rejected"
    assert found.verdicts == {"ana": "rejected"}


def test_rows_with_an_unknown_outcome_are_ignored():
    assert resolve(row("e", "maybe"), row("f", "accepted")).keys() == {"f"}


@pytest.mark.parametrize("extra, heavy", [
    ({"edit_minutes": 10.0}, False), ({"edit_minutes": 10.5}, True),
    ({"edit_ratio": 0.3}, False), ({"edit_ratio": 0.31}, True), ({}, False),
])
def test_an_edit_is_heavy_when_it_takes_more_than_the_minutes_or_changes_more_than_the_ratio(extra, heavy):
    found = resolve(row("e", "accepted", "ana"), row("e", "edited", "ben", **extra))["e"]
    assert found.heavy_correction is heavy
    assert found.needed_correction is heavy


def test_edit_effort_counts_an_acceptance_as_zero_and_leaves_an_unmeasured_edit_out():
    found = resolve(row("e", "accepted", "ana"), row("e", "edited", "ben", edit_minutes=6.0),
                    row("e", "edited", "cy"))["e"]
    assert found.edit_minutes == pytest.approx(3.0)            # (0 + 6) / 2; cy gave no minutes
    assert found.edit_ratio == pytest.approx(0.0)              # only ana's acceptance is known
    assert resolve(row("f", "edited"))["f"].edit_minutes is None


def test_the_label_is_the_latest_counted_rows_label():
    found = resolve(row("e", "accepted", "ana", at="2026-03-02T10:00:00+00:00", label="billing"),
                    row("e", "accepted", "ben", at="2026-03-02T11:00:00+00:00", label="refunds"),
                    row("e", "accepted", "cy", at="2026-03-02T12:00:00+00:00"))["e"]
    assert found.label == "refunds"


def figures(outcomes: dict, exchanges: dict, config: OutcomesConfig = CONFIG, scores: dict | None = None):
    return outcome_figures(list(outcomes.values()), exchanges, scores or {}, config)


def test_trusted_completion_needs_completion_no_heavy_edit_and_the_budgets():
    budget = OutcomesConfig(heavy_correction_minutes=10, max_latency_ms=1000, max_cost_usd=0.01)
    outcomes = resolve(row("ok", "accepted"), row("light", "edited", edit_minutes=3),
                       row("heavy", "edited", edit_minutes=30), row("slow", "accepted"), row("dear", "accepted"),
                       row("unknown", "accepted"), row("no", "rejected"), config=budget)
    exchanges = {"ok": {"latency_ms": 900, "cost_usd": 0.01}, "light": {"latency_ms": 100, "cost_usd": 0.001},
                 "heavy": {"latency_ms": 100}, "slow": {"latency_ms": 1500, "cost_usd": 0.001},
                 "dear": {"latency_ms": 100, "cost_usd": 0.02}, "unknown": {"latency_ms": None, "cost_usd": None},
                 "no": {"latency_ms": 100}}
    found = figures(outcomes, exchanges, budget)
    # Trusted: ok (at the budget is within it), light, unknown (an unknown figure is not held against it).
    assert (found.trusted_completion.count, found.trusted_completion.n) == (3, 7)
    assert found.over_budget == 2
    assert (found.completed.count, found.heavy_correction.count) == (6, 1)
    without_budget = figures(outcomes, exchanges, OutcomesConfig(heavy_correction_minutes=10))
    assert without_budget.trusted_completion.count == 5 and without_budget.over_budget == 0


def test_outcome_rates_add_up_to_one_and_carry_wilson_intervals():
    outcomes = resolve(row("a", "accepted"), row("b", "edited"), row("c", "escalated"), row("d", "rejected"),
                       row("e", "rejected"), row("f", "policy_violation"))
    found = figures(outcomes, {})
    shares = [found.completed, found.escalation, found.rejection, found.policy_violation]
    assert sum(rate.count for rate in shares) == 6
    p, n = 2 / 6, 6
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    assert (found.rejection.rate, found.rejection.low, found.rejection.high) == pytest.approx(
        (p, centre - half, centre + half), abs=1e-6)


def test_correction_burden_is_taken_over_completed_answers_only():
    outcomes = resolve(row("a", "accepted"), row("b", "edited", edit_minutes=4, edit_ratio=0.2),
                       row("c", "rejected", edit_minutes=60))
    found = figures(outcomes, {})
    assert (found.edit_minutes.mean, found.edit_minutes.n) == (pytest.approx(2.0), 2)
    assert found.edit_ratio.mean == pytest.approx(0.1)


def test_evaluator_means_are_the_primarys_scores_on_the_slices_exchanges():
    outcomes = resolve(row("a", "accepted"), row("b", "rejected"))
    found = figures(outcomes, {}, scores={"a": {"grounding": 0.9}, "b": {"grounding": 0.5}, "z": {"grounding": 0.0}})
    assert found.evaluator_means["grounding"].mean == pytest.approx(0.7)
    assert found.evaluator_means["grounding"].n == 2


def test_windows_are_utc_days_and_weeks_starting_on_monday():
    moment = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)                     # a Thursday
    assert window_start(moment, "day") == datetime(2026, 3, 5, tzinfo=UTC)
    assert window_start(moment, "week") == datetime(2026, 3, 2, tzinfo=UTC)
    assert window_end(window_start(moment, "week"), "week") == datetime(2026, 3, 9, tzinfo=UTC)


@pytest.mark.parametrize("section, values, fragments", [
    ("outcomes", {"window": "month"}, ["[outcomes] window", "'month'", "day, week"]),
    ("outcomes", {"category": "model"}, ["[outcomes] category", "'model'", "tag:NAME"]),
    ("outcomes", {"category": "tag:"}, ["[outcomes] category", "tag:NAME"]),
    ("outcomes", {"heavy_correction_ratio": 1.5}, ["[outcomes] heavy_correction_ratio", "between 0 and 1"]),
    ("outcomes", {"max_latency_ms": -1}, ["[outcomes] max_latency_ms", "at least 0"]),
    ("outcomes", {"falling_min_items": 0}, ["[outcomes] falling_min_items", "at least 1"]),
    ("outcomes", {"bogus": 1}, ["[outcomes] bogus", "unknown key"]),
    ("gate", {"min_trusted_task_completion": 1.5}, ["[gate] min_trusted_task_completion", "between 0 and 1"]),
    ("gate", {"min_reviewer_kappa": -2}, ["[gate] min_reviewer_kappa", "between -1 and 1"]),
    ("gate", {"max_correction_minutes": -1}, ["[gate] max_correction_minutes", "at least 0"]),
    ("gate", {"outcomes_min_exchanges": 0}, ["[gate] outcomes_min_exchanges", "at least 1"]),
])
def test_outcome_config_errors_name_the_key(section, values, fragments):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"primary": {"base_url": "http://x/v1"}, section: values})
    for fragment in fragments:
        assert fragment in str(error.value)


def test_outcomes_config_accepts_every_category_dimension():
    for category in ("task", "label", "endpoint", "risk_tier", "tag:team"):
        config = config_from_dict({"primary": {"base_url": "http://x/v1"}, "outcomes": {"category": category}})
        assert config.outcomes.category == category
