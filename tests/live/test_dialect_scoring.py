"""Captured Anthropic Messages and Responses exchanges score like chat: contexts from documents
and tool results, contracts from `input_schema` and `text.format`, agreement across dialects."""

import asyncio

import orjson

from shadowtap.core.config import ContextsConfig
from shadowtap.evaluators.agreement import AgreementEvaluator
from shadowtap.evaluators.contract import ContractEvaluator
from shadowtap.evaluators.items import build_items
from shadowtap.replay.paraphrase import last_user_text, with_paraphrase
from shadowtap.replay.targets import replay_request
from tests.support.factories import raw_exchange, row_builder

WEATHER = {"name": "get_weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}
MESSAGES_REQUEST = {
    "model": "claude-haiku-4-5", "max_tokens": 100, "tools": [WEATHER],
    "messages": [
        {"role": "user", "content": [
            {"type": "document", "title": "kb-12", "source": {"type": "text", "media_type": "text/plain",
                                                              "data": "Backups are kept for 30 days."}},
            {"type": "text", "text": "How long are backups kept?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Rain, 4C"}]},
    ]}


def message_answer(*blocks: dict) -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": list(blocks), "stop_reason": "tool_use" if any(b["type"] == "tool_use" for b in blocks)
            else "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}


def tool_use(name: str, arguments: dict) -> dict:
    return {"type": "tool_use", "id": "toolu_2", "name": name, "input": arguments}


def rome_call() -> dict:
    return message_answer(tool_use("get_weather", {"city": "Rome"}))


def captured(path: str, request: dict, response: dict, shadows: list[dict] = ()) -> dict:
    row = row_builder().build(raw_exchange(path=path, request=request, response=response))
    return build_items(row, list(shadows), ContextsConfig())


def score(evaluator, item):
    return asyncio.run(evaluator.score(item))


def test_anthropic_documents_and_tool_results_are_the_exchanges_contexts():
    items = captured("/v1/messages", MESSAGES_REQUEST, message_answer({"type": "text", "text": "30 days."}))
    contexts = items["primary"].contexts
    assert [(c.text, c.id, c.origin) for c in contexts] == [
        ("Backups are kept for 30 days.", "kb-12", "document"), ("Rain, 4C", "toolu_1", "tool_message")]


def test_tool_use_input_is_checked_against_the_tools_input_schema():
    good = captured("/v1/messages", MESSAGES_REQUEST,
                    rome_call())
    assert score(ContractEvaluator(), good["primary"]).label == "valid"
    bad = captured("/v1/messages", MESSAGES_REQUEST,
                   message_answer(tool_use("get_weather", {"town": "Rome"})))
    result = score(ContractEvaluator(), bad["primary"])
    assert result.label == "invalid"
    assert any("'city' is a required property" in error for error in result.details["errors"])
    unknown = captured("/v1/messages", MESSAGES_REQUEST,
                       message_answer({"type": "tool_use", "id": "toolu_3", "name": "delete_all", "input": {}}))
    assert "unknown tool 'delete_all'" in score(ContractEvaluator(), unknown["primary"]).details["errors"][0]


def test_a_responses_text_format_schema_is_checked_on_the_output_text():
    request = {"model": "gpt-4.1", "input": "Rate it", "text": {"format": {
        "type": "json_schema", "name": "r", "schema": {"type": "object", "required": ["score"]}}}}
    answer = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1", "output": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": '{"note": 1}'}]}]}
    result = score(ContractEvaluator(), captured("/v1/responses", request, answer)["primary"])
    assert result.label == "invalid" and result.details["checked"] == ["text.format"]


def test_an_anthropic_primary_and_a_chat_candidate_agree_when_they_call_the_same_tool_alike():
    shadow = {"candidate": "chatty", "outcome": "ok", "response_text": None, "finish_reason": "tool_calls",
              "response_tool_calls": orjson.dumps([{"id": "call_9", "type": "function", "function": {
                  "name": "get_weather", "arguments": '{"city": "Rome"}'}}]).decode()}
    items = captured("/v1/messages", MESSAGES_REQUEST,
                     rome_call(),
                     [shadow])
    assert score(AgreementEvaluator(), items["chatty"]).value == 1.0
    shadow["response_tool_calls"] = shadow["response_tool_calls"].replace("Rome", "Oslo")
    items = captured("/v1/messages", MESSAGES_REQUEST,
                     rome_call(),
                     [shadow])
    assert score(AgreementEvaluator(), items["chatty"]).value < 1.0


def test_a_captured_messages_exchange_replays_as_chat_and_paraphrases_its_last_user_text():
    request = {"model": "claude-haiku-4-5", "max_tokens": 50, "system": "Be brief.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Where is the office?"}]}]}
    rebuilt = replay_request({"endpoint": "anthropic.messages"}, request)
    assert rebuilt["messages"] == [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Where is the office?"}]
    assert replay_request({"endpoint": "chat.completions"}, {"messages": []}) == {"messages": []}
    assert last_user_text(request) == "Where is the office?"
    assert with_paraphrase(request, "Where's the office?")["messages"][0]["content"][0]["text"] == "Where's the office?"
    responses = {"model": "gpt-4.1", "input": "Where is the office?"}
    assert last_user_text(responses) == "Where is the office?"
    assert with_paraphrase(responses, "Office location?")["input"] == "Office location?"
