"""FeedbackStore: items are validated, redacted and stored once; repeats change nothing; an id
reused for other content, an unknown exchange or a bad field is refused with the field named."""

from __future__ import annotations

import pytest

from shadowtap.core.errors import FeedbackConflict, FeedbackInvalid, UnknownExchange
from shadowtap.core.redaction import Redactor
from shadowtap.core.store import CaptureStore, FeedbackStore
from tests.support.reference import levenshtein

ANSWER = "Northwind Cloud bills usage monthly in arrears."


@pytest.fixture
def store(tmp_path):
    store = CaptureStore.open(tmp_path / "captures.db")
    store.insert_exchanges([
        {"id": "ex_one", "started_at": "2026-11-23T10:00:00+00:00", "method": "POST", "path": "/v1/chat/completions",
         "endpoint": "chat.completions", "response_text": ANSWER},
        {"id": "ex_tool", "started_at": "2026-11-23T10:01:00+00:00", "method": "POST",
         "path": "/v1/chat/completions", "endpoint": "chat.completions", "response_text": None},
    ])
    yield store
    store.close()


@pytest.fixture
def feedback(store):
    return FeedbackStore(store, Redactor())


def stored(store) -> list[dict]:
    return list(store.db.query("select * from feedback order by id"))


def test_an_item_is_stored_with_a_content_id_utc_time_and_source_when_it_has_no_feedback_id(store, feedback):
    (result,) = feedback.record([{"exchange_id": "ex_one", "outcome": "accepted", "reviewer": "ana",
                                  "at": "2026-11-23T12:30:00+02:00"}], source="import")
    (row,) = stored(store)
    assert result.status == "created" and result.feedback_id == row["id"] and row["id"].startswith("fb_")
    assert (row["exchange_id"], row["outcome"], row["reviewer"], row["source"]) == (
        "ex_one", "accepted", "ana", "import")
    assert row["at"] == "2026-11-23T10:30:00.000000+00:00"
    assert row["edit_minutes"] is None and row["edit_distance"] is None and row["edit_ratio"] is None
    assert row["received_at"] > "2026" and len(row["fingerprint"]) == 64


def test_edit_distance_and_ratio_come_from_the_captured_answer_and_the_edited_text_is_not_kept(store, feedback):
    edited = "Northwind Cloud bills monthly in arrears, on the 1st."
    feedback.record([{"exchange_id": "ex_one", "outcome": "edited", "edited_text": edited, "edit_minutes": 2.5}],
                    source="api")
    (row,) = stored(store)
    expected = levenshtein(ANSWER, edited)
    assert row["edit_distance"] == expected
    assert row["edit_ratio"] == pytest.approx(expected / max(len(ANSWER), len(edited)))
    assert row["edit_minutes"] == 2.5
    assert edited not in repr(row)


def test_an_answer_without_text_is_compared_as_empty_and_two_empty_texts_have_ratio_0(store, feedback):
    feedback.record([{"exchange_id": "ex_tool", "outcome": "edited", "edited_text": "", "feedback_id": "a"},
                     {"exchange_id": "ex_tool", "outcome": "edited", "edited_text": "abc", "feedback_id": "b"}],
                    source="api")
    rows = {row["id"]: row for row in stored(store)}
    assert (rows["a"]["edit_distance"], rows["a"]["edit_ratio"]) == (0, 0.0)
    assert (rows["b"]["edit_distance"], rows["b"]["edit_ratio"]) == (3, 1.0)


def test_the_comment_is_redacted_like_captured_text(store, feedback):
    feedback.record([{"exchange_id": "ex_one", "outcome": "rejected",
                      "comment": "customer ana@example.com called, card 4111 1111 1111 1111"}], source="api")
    (row,) = stored(store)
    assert "ana@example.com" not in row["comment"] and "4111" not in row["comment"]
    assert "[REDACTED:email]" in row["comment"] and "[REDACTED:card]" in row["comment"]


def test_posting_the_same_content_twice_is_unchanged_with_or_without_a_feedback_id(store, feedback):
    items = [{"exchange_id": "ex_one", "outcome": "accepted", "reviewer": "ana"},
             {"feedback_id": "ticket-7", "exchange_id": "ex_one", "outcome": "escalated"}]
    first = feedback.record(items, source="api")
    again = feedback.record(items, source="import")
    assert [r.status for r in first] == ["created", "created"]
    assert [r.status for r in again] == ["unchanged", "unchanged"]
    assert [r.feedback_id for r in again] == [r.feedback_id for r in first]
    assert len(stored(store)) == 2 and {row["source"] for row in stored(store)} == {"api"}


def test_a_feedback_id_reused_for_other_content_conflicts_and_the_batch_stores_nothing(store, feedback):
    feedback.record([{"feedback_id": "ticket-7", "exchange_id": "ex_one", "outcome": "accepted"}], source="api")
    with pytest.raises(FeedbackConflict) as raised:
        feedback.record([{"exchange_id": "ex_one", "outcome": "rejected", "reviewer": "new"},
                         {"feedback_id": "ticket-7", "exchange_id": "ex_one", "outcome": "rejected"}], source="api")
    assert raised.value.index == 1 and "ticket-7" in str(raised.value)
    assert [row["outcome"] for row in stored(store)] == ["accepted"]


def test_the_same_id_twice_in_one_batch_with_different_content_conflicts(store, feedback):
    with pytest.raises(FeedbackConflict):
        feedback.record([{"feedback_id": "x", "exchange_id": "ex_one", "outcome": "accepted"},
                         {"feedback_id": "x", "exchange_id": "ex_one", "outcome": "rejected"}], source="api")
    assert stored(store) == []


def test_unknown_exchange_ids_are_refused_by_name_and_nothing_is_stored(store, feedback):
    with pytest.raises(UnknownExchange) as raised:
        feedback.record([{"exchange_id": "ex_one", "outcome": "accepted"},
                         {"exchange_id": "ex_nope", "outcome": "accepted"}], source="api")
    assert raised.value.index == 1 and raised.value.exchange_ids == ["ex_nope"]
    assert "no captured exchange with id 'ex_nope'" in str(raised.value)
    assert "x-shadowtap-exchange-id" in str(raised.value)
    assert stored(store) == []


def test_an_exchange_id_prefix_is_not_an_exchange_id(store, feedback):
    with pytest.raises(UnknownExchange):
        feedback.record([{"exchange_id": "ex_o", "outcome": "accepted"}], source="api")


@pytest.mark.parametrize("item, field, words", [
    ({"outcome": "accepted"}, "exchange_id", "missing"),
    ({"exchange_id": "ex_one"}, "outcome", "missing"),
    ({"exchange_id": "ex_one", "outcome": "great"}, "outcome", "policy_violation"),
    ({"exchange_id": "ex_one", "outcome": "edited", "edit_minutes": -1}, "edit_minutes", "0 or more"),
    ({"exchange_id": "ex_one", "outcome": "edited", "edit_minutes": "5"}, "edit_minutes", "number"),
    ({"exchange_id": "ex_one", "outcome": "edited", "edit_minutes": True}, "edit_minutes", "number"),
    ({"exchange_id": "ex_one", "outcome": "accepted", "at": "yesterday"}, "at", "ISO 8601"),
    ({"exchange_id": "ex_one", "outcome": "accepted", "reviewer": 7}, "reviewer", "string"),
    ({"exchange_id": "ex_one", "outcome": "accepted", "score": 1}, "score", "unknown field"),
    ({"exchange_id": "ex_one", "outcome": "accepted", "feedback_id": " "}, "feedback_id", "empty"),
    ({"exchange_id": "ex_one", "outcome": "accepted", "label": "x" * 201}, "label", "at most 200"),
])
def test_a_bad_field_is_refused_with_its_name_and_index(store, feedback, item, field, words):
    with pytest.raises(FeedbackInvalid) as raised:
        feedback.record([{"exchange_id": "ex_one", "outcome": "accepted"}, item], source="api")
    assert raised.value.field == field and raised.value.index == 1
    assert field in str(raised.value) and words in str(raised.value) and "item 1" in str(raised.value)
    assert stored(store) == []


def test_record_each_stores_the_good_items_and_reports_each_bad_one_in_place(store, feedback):
    feedback.record([{"feedback_id": "taken", "exchange_id": "ex_one", "outcome": "accepted"}], source="api")
    results = feedback.record_each([
        {"exchange_id": "ex_one", "outcome": "edited", "edit_minutes": 1},
        {"exchange_id": "ex_one", "outcome": "nope"},
        {"exchange_id": "ex_missing", "outcome": "accepted"},
        {"feedback_id": "taken", "exchange_id": "ex_one", "outcome": "rejected"},
        {"feedback_id": "taken", "exchange_id": "ex_one", "outcome": "accepted"},
        {"exchange_id": "ex_tool", "outcome": "policy_violation"},
    ], source="import")
    kinds = [type(result).__name__ for result in results]
    assert kinds == ["FeedbackResult", "FeedbackInvalid", "UnknownExchange", "FeedbackConflict", "FeedbackResult",
                     "FeedbackResult"]
    assert [getattr(result, "status", None) for result in results] == ["created", None, None, None, "unchanged",
                                                                        "created"]
    assert sorted(row["outcome"] for row in stored(store)) == ["accepted", "edited", "policy_violation"]


def test_listing_feedback_filters_by_exchange(store, feedback):
    feedback.record([{"exchange_id": "ex_one", "outcome": "accepted"},
                     {"exchange_id": "ex_tool", "outcome": "rejected"}], source="api")
    assert [row["outcome"] for row in feedback.feedback(exchange_id="ex_tool")] == ["rejected"]
    assert len(feedback.feedback()) == 2


