"""ROC AUC with a DeLong interval, and which outcomes count as bad when judging an evaluator."""

from __future__ import annotations

import math
from statistics import fmean

import pytest

from shadowtap.evaluators.report.outcomes.resolution import ExchangeOutcome
from shadowtap.evaluators.report.outcomes.roc import roc_auc
from shadowtap.evaluators.report.outcomes.validity import evaluator_validity

Z = 1.959964


def brute_force_delong(good: list[float], bad: list[float]) -> tuple[float, float, float]:
    """AUC and its 95% DeLong bounds from the definitions, pair by pair."""
    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    auc = fmean(psi(g, b) for g in good for b in bad)
    v_good = [fmean(psi(g, b) for b in bad) for g in good]
    v_bad = [fmean(psi(g, b) for g in good) for b in bad]
    variance = (sum((v - auc) ** 2 for v in v_good) / (len(good) - 1) / len(good)
                + sum((v - auc) ** 2 for v in v_bad) / (len(bad) - 1) / len(bad))
    half = Z * math.sqrt(variance)
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def test_auc_counts_a_tie_as_half_a_pair():
    # Pairs (good, bad): (3,1) (3,2) (2,1) win, (2,2) ties, (1,1) ties, (1,2) loses -> (3 + 2 * 0.5) / 6.
    result = roc_auc(good=[3, 2, 1], bad=[1, 2])
    assert result.auc == pytest.approx(4 / 6)


def test_auc_matches_the_hanley_mcneil_textbook_rating_example():
    # Hanley & McNeil (1982), table 1: 109 CT images rated 1 (definitely normal) to 5 (definitely
    # abnormal); ties everywhere. Published A = 0.893. A high rating predicts the bad class, so the
    # score that predicts a good outcome is the negated rating.
    normal = [1] * 33 + [2] * 6 + [3] * 6 + [4] * 11 + [5] * 2
    abnormal = [1] * 3 + [2] * 2 + [3] * 2 + [4] * 11 + [5] * 33
    result = roc_auc(good=[-r for r in normal], bad=[-r for r in abnormal])
    assert round(result.auc, 3) == 0.893
    assert (result.auc, result.low, result.high) == pytest.approx(
        brute_force_delong([-r for r in normal], [-r for r in abnormal]))


def test_delong_interval_equals_the_structural_components_computed_pair_by_pair():
    good, bad = [0.9, 0.8, 0.8, 0.4, 0.7, 0.95], [0.3, 0.8, 0.5, 0.7, 0.1]
    result = roc_auc(good, bad)
    assert (result.auc, result.low, result.high) == pytest.approx(brute_force_delong(good, bad))
    assert result.low < result.auc < result.high


def test_auc_is_above_half_when_higher_scores_go_with_good_outcomes_and_below_when_reversed():
    assert roc_auc(good=[0.9, 0.8], bad=[0.2, 0.1]).auc == 1.0
    assert roc_auc(good=[0.2, 0.1], bad=[0.9, 0.8]).auc == 0.0


def test_auc_is_none_when_a_class_is_empty_and_has_no_bounds_with_one_of_a_class():
    assert roc_auc(good=[0.5, 0.6], bad=[]).auc is None
    assert roc_auc(good=[], bad=[0.5]).auc is None
    single = roc_auc(good=[0.9, 0.8], bad=[0.1])
    assert single.auc == 1.0 and (single.low, single.high) == (None, None)


def outcome(exchange_id: str, verdict: str, heavy: bool = False) -> ExchangeOutcome:
    return ExchangeOutcome(exchange_id, verdict, heavy, None, None, None, {})


def test_validity_counts_escalated_rejected_violations_and_heavy_corrections_as_bad():
    outcomes = {o.exchange_id: o for o in [
        outcome("a", "accepted"), outcome("b", "edited"), outcome("c", "edited", heavy=True),
        outcome("d", "escalated"), outcome("e", "rejected"), outcome("f", "policy_violation")]}
    scores = {"a": {"grounding": 0.9}, "b": {"grounding": 0.8}, "c": {"grounding": 0.85}, "d": {"grounding": 0.3},
              "e": {"grounding": 0.2}, "f": {"grounding": 0.95}, "zzz": {"grounding": 0.0}}   # no feedback: ignored
    (row,) = evaluator_validity(outcomes, scores)
    assert (row.evaluator, row.n, row.positives, row.negatives) == ("grounding", 6, 4, 2)
    # good 0.9 and 0.8 against bad 0.85, 0.3, 0.2, 0.95: 0.9 beats three, 0.8 beats two -> 5 of 8.
    assert row.auc == pytest.approx(5 / 8)


def test_validity_has_one_row_per_evaluator_in_name_order_even_when_a_class_is_empty():
    outcomes = {"a": outcome("a", "accepted"), "b": outcome("b", "accepted")}
    rows = evaluator_validity(outcomes, {"a": {"refusal": 1.0, "contract": 1.0}, "b": {"refusal": 1.0}})
    assert [(r.evaluator, r.positives, r.negatives, r.auc) for r in rows] == [
        ("contract", 0, 1, None), ("refusal", 0, 2, None)]
