"""The store reads behind the review UI: filters, score sorting and pages that never load the
whole table. (Issue 16, item 2.)"""

from __future__ import annotations

import pytest

from shadowtap.core.store import Store
from shadowtap.core.store.review_reads import ReviewFilter
from shadowtap.evaluators.review.word_diff import word_diff
from tests.support.outcomes_support import add_feedback
from tests.support.review_support import review_store


@pytest.fixture
def store(tmp_path):
    review_store(tmp_path / "captures.db")
    opened = Store.open(tmp_path / "captures.db")
    yield opened
    opened.close()


def ids(page) -> list[str]:
    return [row["id"] for row in page.rows]


def test_pages_follow_one_another_without_overlap(store):
    first = store.review.exchanges(ReviewFilter(), limit=20)
    second = store.review.exchanges(ReviewFilter(), offset=20, limit=20)
    assert len(first.rows) == 20 and first.has_more
    assert len(second.rows) == 11 and not second.has_more
    assert not set(ids(first)) & set(ids(second))
    assert ids(first)[0] == "hostile"  # newest first


def test_a_score_range_on_a_candidates_answers_sorted_lowest_first(store):
    page = store.review.exchanges(ReviewFilter(candidate="drifty", evaluator="grounding", max_score=0.61),
                                  sort="score_low")
    values = [row["score_value"] for row in page.rows]
    assert values == sorted(values) and values and max(values) <= 0.61


def test_filters_by_task_disagreement_and_review_state(store):
    disagreements = store.review.exchanges(ReviewFilter(candidate="drifty", disagreement=True, task="qa"))
    assert set(ids(disagreements)) == {"x000", "x006", "x012", "x018", "x024", "hostile"}
    add_feedback(store.captures, "x006", "accepted", reviewer="Ada")
    reviewed = store.review.exchanges(ReviewFilter(outcome="accepted"))
    assert ids(reviewed) == ["x006"]
    unreviewed = store.review.exchanges(ReviewFilter(outcome="none"), limit=100)
    assert "x006" not in ids(unreviewed) and len(unreviewed.rows) == 30


def test_one_exchange_with_its_shadows_scores_and_feedback(store):
    assert store.review.exchange("x003")["response_text"] == "The answer to question 3 is in the handbook."
    assert [row["candidate"] for row in store.review.shadows("x003")] == ["drifty", "primary_twin"]
    assert {(row["source"], row["evaluator"]) for row in store.review.scores("x003")} >= {
        ("drifty", "agreement"), ("primary", "grounding")}
    assert store.review.exchange("missing") is None
    assert store.review.replay_results("x003") == []


def test_a_word_diff_marks_what_the_candidate_added_and_dropped():
    segments = word_diff("ships from Oslo today", "ships from Bergen today")
    assert [(segment.kind, segment.text) for segment in segments] == [
        ("same", "ships from "), ("removed", "Oslo"), ("added", "Bergen"), ("same", " today")]
    assert word_diff(None, "new") == [word_diff("", "new")[0]]
