"""ScoreStore: upserts, pending work by evaluator version, answers read back, summaries."""

import pytest

from shadowtap.core.errors import StoreError
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.score_store import PendingScore, ScoreStore, score_id
from tests.support.eval_support import add_exchanges, add_shadow


@pytest.fixture
def store(tmp_path):
    capture = CaptureStore.open(tmp_path / "s.db")
    yield capture
    capture.close()


def score_row(exchange_id, source="primary", evaluator="length", version="1", outcome="score", value=1.0,
              label="good"):
    return {"id": score_id(exchange_id, source, evaluator), "exchange_id": exchange_id, "source": source,
            "evaluator": evaluator, "evaluator_version": version, "outcome": outcome,
            "value": value if outcome == "score" else None, "label": label if outcome == "score" else None,
            "details": "{}", "error": "Boom: x" if outcome == "error" else None,
            "scored_at": "2026-11-23T00:00:00+00:00", "duration_ms": 1.0}


def pending(scores: ScoreStore, versions, **options):
    return [work for page in scores.iter_pending(versions, **options) for work in page]


def test_answers_are_pending_for_each_evaluator_when_nothing_is_scored(store):
    [first, second] = add_exchanges(store, 2)
    add_shadow(store, first["id"], "small")
    add_shadow(store, second["id"], "small", outcome="timeout")   # no answer, nothing to score
    scores = ScoreStore(store)
    assert pending(scores, {"length": "1"}) == [
        PendingScore(first["id"], "primary", "length"), PendingScore(first["id"], "small", "length"),
        PendingScore(second["id"], "primary", "length")]
    assert scores.count_pending({"length": "1", "other": "1"}) == 6


def test_scored_answers_are_not_pending_when_the_version_matches(store):
    [row] = add_exchanges(store, 1)
    scores = ScoreStore(store)
    scores.write([score_row(row["id"])])
    assert pending(scores, {"length": "1"}) == []
    assert pending(scores, {"length": "2"}) == [PendingScore(row["id"], "primary", "length")]


def test_writing_a_newer_version_replaces_the_old_row_when_upserted(store):
    [row] = add_exchanges(store, 1)
    scores = ScoreStore(store)
    scores.write([score_row(row["id"], version="1", value=0.2)])
    scores.write([score_row(row["id"], version="2", value=0.9)])
    [stored] = scores.scores(exchange_id=row["id"])
    assert (stored["evaluator_version"], stored["value"]) == ("2", 0.9)


def test_pending_is_filtered_by_time_and_source_when_asked(store):
    rows = add_exchanges(store, 3, started_at=1_700_000_000)
    for row in rows:
        add_shadow(store, row["id"], "small")
    scores = ScoreStore(store)
    since = rows[1]["started_at"]
    assert [work.exchange_id for work in pending(scores, {"e": "1"}, since=since, source="small")] == \
        [rows[1]["id"], rows[2]["id"]]
    assert scores.count_pending({"e": "1"}, source="small", limit=2) == 2
    assert scores.count_pending({"e": "1"}, limit=2) == 4


def test_pages_skip_exchanges_with_nothing_pending_when_iterating(store):
    rows = add_exchanges(store, 5)
    scores = ScoreStore(store)
    scores.write([score_row(row["id"]) for row in rows[:4]])
    pages = list(scores.iter_pending({"length": "1"}, page_size=2))
    assert pages == [[PendingScore(rows[4]["id"], "primary", "length")]]


def test_summary_counts_scores_labels_not_applicable_and_errors_per_evaluator_and_source(store):
    rows = add_exchanges(store, 4)
    scores = ScoreStore(store)
    scores.write([score_row(rows[0]["id"], value=1.0, label="good"), score_row(rows[1]["id"], value=0.0, label="bad"),
                  score_row(rows[2]["id"], outcome="not_applicable"), score_row(rows[3]["id"], outcome="error"),
                  score_row(rows[0]["id"], source="small", value=0.5, label="good"),
                  score_row(rows[0]["id"], evaluator="old", version="0")])
    summary = scores.summary(versions={"length": "1"})
    assert summary == [
        {"evaluator": "length", "source": "primary", "scored": 2, "mean": 0.5, "labels": {"good": 1, "bad": 1},
         "not_applicable": 1, "errors": 1},
        {"evaluator": "length", "source": "small", "scored": 1, "mean": 0.5, "labels": {"good": 1},
         "not_applicable": 0, "errors": 0},
    ]


def test_a_failed_write_raises_store_error_and_writes_nothing_when_a_row_is_bad(store):
    [row] = add_exchanges(store, 1)
    scores = ScoreStore(store)
    bad = {**score_row(row["id"], evaluator="other"), "outcome": None}   # outcome is NOT NULL
    with pytest.raises(StoreError, match="cannot write 2 scores"):
        scores.write([score_row(row["id"]), bad])
    assert scores.scores() == []
