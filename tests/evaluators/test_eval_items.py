"""EvalItems from the store: the primary's answer, the twin's and the candidates', with request and contexts."""

import pytest

from shadowtap.core.config import ContextsConfig
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.score_store import ScoreStore
from shadowtap.evaluators.items import build_items, iter_items, load_items
from tests.support.eval_support import add_exchanges, add_shadow, chat_request, chat_response
from tests.support.factories import raw_exchange, row_builder


@pytest.fixture
def store(tmp_path):
    capture = CaptureStore.open(tmp_path / "s.db")
    yield capture
    capture.close()


def test_primary_answer_carries_text_tool_calls_timings_usage_and_status_when_built():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    row = row_builder().build(raw_exchange(request=chat_request(), response=chat_response("hi", [call])))
    primary = build_items(row, [], ContextsConfig())["primary"].answer
    assert (primary.source, primary.text, primary.tool_calls, primary.finish_reason) == ("primary", "hi", [call],
                                                                                         "tool_calls")
    assert (primary.status, primary.prompt_tokens, primary.completion_tokens) == (200, 5, 1)
    assert primary.latency_ms == pytest.approx(50.0)


def test_only_answered_shadows_become_items_when_loaded(store):
    [row] = add_exchanges(store, 1)
    add_shadow(store, row["id"], "small")
    add_shadow(store, row["id"], "large", outcome="timeout")
    add_shadow(store, row["id"], "primary_twin", text="hello again")
    [(exchange, items)] = list(load_items(ScoreStore(store), [row["id"]], ContextsConfig()))
    assert exchange["id"] == row["id"]
    assert set(items) == {"primary", "small", "primary_twin"}
    assert items["small"].twin.text == "hello again" and items["small"].primary is items["primary"].answer
    assert items["primary"].is_primary and not items["small"].is_primary


def test_request_is_none_when_the_body_was_not_json():
    row = row_builder().build(raw_exchange(request=b"\xff not json"))
    item = build_items(row, [], ContextsConfig())["primary"]
    assert (item.request, item.contexts) == (None, [])


def test_contexts_come_from_the_shadowtap_field_when_the_request_had_one():
    request = chat_request(shadowtap={"contexts": [{"id": "kb", "text": "fact"}]})
    item = build_items(row_builder().build(raw_exchange(request=request)), [], ContextsConfig())["primary"]
    assert [(context.id, context.text) for context in item.contexts] == [("kb", "fact")]
    assert "shadowtap" not in item.request


def test_iter_items_streams_every_answer_in_pages_when_the_store_is_large(store):
    rows = add_exchanges(store, 7)
    add_shadow(store, rows[3]["id"], "small")
    items = list(iter_items(ScoreStore(store), ContextsConfig(), page_size=3))
    assert len(items) == 8
    assert [item.exchange["id"] for item in items if item.is_primary] == [row["id"] for row in rows]
