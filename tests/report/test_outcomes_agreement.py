"""Reviewer agreement: Cohen's and Fleiss' kappa against textbook examples, the choice between
them, falling agreement, and Fleiss' kappa in the report when three reviewers judged."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import report_command
from shadowtap.evaluators.report.outcomes.kappa import agreement_method, cohen_kappa, falling, fleiss_kappa, kappa_of
from tests.support.outcomes_support import add_feedback
from tests.support.report_support import StoreBuilder


def test_cohen_kappa_matches_the_textbook_example():
    # 50 applications read by two readers: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    result = cohen_kappa(pairs)
    assert (result.items, result.observed, result.expected) == (50, pytest.approx(0.7), pytest.approx(0.5))
    assert result.kappa == pytest.approx(0.4)


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories; P = 0.378, Pe = 0.213, kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[f"c{j}" for j, count in enumerate(row) for _ in range(count)] for row in table]
    result = fleiss_kappa(items)
    assert round(result.observed, 3) == 0.378 and round(result.expected, 3) == 0.213
    assert round(result.kappa, 3) == 0.210


def test_fleiss_kappa_takes_items_with_different_numbers_of_reviewers():
    # Item 1: a, a, b -> P = (2*1 + 0) / (3*2) = 1/3; item 2: a, a -> 1. Observed 2/3.
    # Label shares over all 5 verdicts: a 4/5, b 1/5 -> expected 17/25.
    result = fleiss_kappa([["a", "a", "b"], ["a", "a"]])
    assert result.observed == pytest.approx(2 / 3) and result.expected == pytest.approx(17 / 25)
    assert result.kappa == pytest.approx((2 / 3 - 17 / 25) / (1 - 17 / 25))


def test_kappa_is_undefined_when_every_verdict_is_the_same():
    assert cohen_kappa([("accepted", "accepted")] * 4).kappa is None
    assert fleiss_kappa([["accepted"] * 3] * 2).kappa is None
    assert cohen_kappa([]).kappa is None


def test_cohen_is_chosen_for_exactly_two_reviewers_and_fleiss_for_more():
    two = [{"ana": "accepted", "ben": "edited"}, {"ana": "rejected", "ben": "rejected"}]
    three = two + [{"ana": "accepted", "cy": "accepted"}]
    assert agreement_method(two) == "cohen"
    assert agreement_method(three) == "fleiss"
    assert agreement_method([]) is None
    assert kappa_of(two, "cohen").kappa == pytest.approx(cohen_kappa([("accepted", "edited"),
                                                                      ("rejected", "rejected")]).kappa)


def test_agreement_is_falling_when_the_last_window_is_down_by_the_threshold_among_windows_with_enough_items():
    assert falling([(10, 0.8), (3, 0.1), (12, 0.55)], min_items=10, min_drop=0.2) == (pytest.approx(0.25), True)
    assert falling([(10, 0.8), (12, 0.65)], min_items=10, min_drop=0.2) == (pytest.approx(0.15), False)
    assert falling([(10, 0.5), (12, 0.9)], min_items=10, min_drop=0.2)[1] is False         # rising
    assert falling([(10, 0.8), (9, 0.1)], min_items=10, min_drop=0.2) == (None, False)       # one usable window
    assert falling([(10, 0.8), (10, None), (10, 0.6)], min_items=10, min_drop=0.2) == (pytest.approx(0.2), True)


def test_report_gives_fleiss_kappa_when_three_reviewers_judged(tmp_path):
    path = tmp_path / "three.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    verdicts = {"A": {"ana": "accepted", "ben": "accepted", "cy": "accepted"},
                "B": {"ana": "edited", "ben": "accepted", "cy": "edited"},
                "C": {"ana": "rejected", "ben": "rejected"},
                "D": {"ana": "accepted", "cy": "escalated"},
                "E": {"ben": "accepted"}}                                   # one reviewer: not an agreement item
    for hour, (exchange_id, by_reviewer) in enumerate(verdicts.items()):
        build.exchange(exchange_id, f"2026-03-02T{hour:02d}:00:00+00:00", task="qa")
        for reviewer, verdict in by_reviewer.items():
            add_feedback(store, exchange_id, verdict, reviewer)
    store.close()
    result = CliRunner().invoke(report_command, ["--store", str(path), "--json"])
    assert result.exit_code == 0, result.output
    outcomes = orjson.loads(result.stdout)["outcomes"]
    # P_i: A 1; B (2*1 + 0) / 6 = 1/3; C 1; D 0 -> observed 7/12.
    # Verdicts on A-D (10): accepted 5, edited 2, rejected 2, escalated 1 -> expected (25 + 4 + 4 + 1) / 100.
    observed, expected = 7 / 12, 34 / 100
    overall = outcomes["agreement"][0]
    assert outcomes["agreement_method"] == "fleiss"
    assert (overall["scope"], overall["items"], overall["reviewers"]) == ("overall", 4, 3)
    assert overall["observed"] == pytest.approx(observed) and overall["expected"] == pytest.approx(expected)
    assert overall["kappa"] == pytest.approx((observed - expected) / (1 - expected))
