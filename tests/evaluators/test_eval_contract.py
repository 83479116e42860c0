"""contract: answers against their JSON Schema, tool calls against the declared tools."""

import asyncio

import orjson
import pytest

from shadowtap.core.config import ContextsConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.base import NotApplicable
from shadowtap.evaluators.contract import ContractEvaluator
from shadowtap.evaluators.items import build_items
from tests.support.eval_support import chat_request, chat_response
from tests.support.factories import raw_exchange, row_builder

RATING_SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
                 "required": ["score", "reason"], "additionalProperties": False}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def structured_request(schema=RATING_SCHEMA):
    return chat_request(response_format={"type": "json_schema", "json_schema": {"name": "rating", "schema": schema}})


def tool_call(name, arguments):
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def item(request, response, *, status=200, headers=None, path="/v1/chat/completions"):
    row = row_builder().build(raw_exchange(path=path, request=request, response=response, status=status,
                                           request_headers=headers))
    return build_items(row, [], ContextsConfig())["primary"]


def score(evaluator, scored_item):
    return asyncio.run(evaluator.score(scored_item))


def test_answer_breaking_its_response_format_schema_is_invalid_with_the_failing_path_when_scored():
    answer = item(structured_request(), chat_response('{"score": "high", "reason": "ok", "extra": 1}'))
    result = score(ContractEvaluator(), answer)
    assert (result.value, result.label) == (0.0, "invalid")
    assert result.details["errors"] == [
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.score: 'high' is not of type 'integer'",
    ]


def test_answer_matching_its_schema_is_valid_when_scored():
    result = score(ContractEvaluator(), item(structured_request(), chat_response('{"score": 4, "reason": "fine"}')))
    assert (result.value, result.label, result.details["checked"]) == (1.0, "valid", ["response_format"])


def test_answer_that_is_not_json_is_invalid_at_the_root_when_a_schema_applies():
    result = score(ContractEvaluator(), item(structured_request(), chat_response("Sure! Here is the rating: 4")))
    assert result.label == "invalid"
    assert result.details["errors"][0].startswith("$: not valid JSON")


def test_json_object_mode_requires_an_object_when_requested():
    request = chat_request(response_format={"type": "json_object"})
    result = score(ContractEvaluator(), item(request, chat_response("[1, 2]")))
    assert result.details["errors"] == ["$: [1, 2] is not of type 'object'"]


def test_responses_api_text_format_schema_is_checked_when_present():
    request = {"model": "m", "input": "rate it",
               "text": {"format": {"type": "json_schema", "name": "rating", "schema": RATING_SCHEMA}}}
    response = {"id": "r1", "object": "response", "status": "completed", "model": "m", "output": [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": '{"score": 3}'}]}]}
    result = score(ContractEvaluator(), item(request, response, path="/v1/responses"))
    assert result.details["checked"] == ["text.format"]
    assert result.details["errors"] == ["$: 'reason' is a required property"]


def test_tool_call_arguments_are_checked_against_the_declared_parameters_when_the_model_calls_a_tool():
    request = chat_request(tools=[WEATHER_TOOL])
    good_call = tool_call("get_weather", '{"city": "Oslo"}')
    good = score(ContractEvaluator(), item(request, chat_response(None, [good_call])))
    bad = score(ContractEvaluator(), item(request, chat_response(None, [tool_call("get_weather", '{"city": 5}')])))
    assert (good.label, good.details["checked"]) == ("valid", ["tool_calls"])
    assert bad.label == "invalid"
    assert bad.details["errors"] == ["tool_calls[0] get_weather $.city: 5 is not of type 'string'"]


@pytest.mark.parametrize("call, expected", [
    (tool_call("delete_all", "{}"), "tool_calls[0]: unknown tool 'delete_all' (declared: get_weather)"),
    (tool_call("get_weather", "{city"), "tool_calls[0] get_weather $: arguments are not valid JSON"),
])
def test_tool_call_is_invalid_when_the_tool_is_unknown_or_its_arguments_are_not_json(call, expected):
    result = score(ContractEvaluator(), item(chat_request(tools=[WEATHER_TOOL]), chat_response(None, [call])))
    assert result.label == "invalid"
    assert result.details["errors"][0].startswith(expected)


def test_schema_configured_for_a_task_applies_when_the_exchange_has_that_task(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "rating.json").write_text(orjson.dumps(RATING_SCHEMA).decode())
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"}, "contracts": {"rules": [
        {"task": "rating", "schema_file": "schemas/rating.json"}]}})
    evaluator = ContractEvaluator.from_config(config, config_dir=tmp_path)
    rated = item(chat_request(), chat_response('{"score": 1}'), headers=[(b"x-shadowtap-task", b"rating")])
    other = item(chat_request(), chat_response('{"score": 1}'), headers=[(b"x-shadowtap-task", b"chat")])
    assert evaluator.applies(rated) and not evaluator.applies(other)
    result = score(evaluator, rated)
    assert result.details["checked"] == ["rules[0] schemas/rating.json"]
    assert result.details["errors"] == ["$: 'reason' is a required property"]


def test_contract_does_not_apply_when_there_is_no_schema_and_no_tool_call():
    assert not ContractEvaluator().applies(item(chat_request(tools=[WEATHER_TOOL]), chat_response("just prose")))


def test_error_answers_are_not_applicable_when_the_primary_failed():
    result = score(ContractEvaluator(), item(structured_request(), {"error": {"message": "slow down"}}, status=429))
    assert isinstance(result, NotApplicable)


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"),
    ("{not json", "not valid JSON"),
    ('{"type": "no-such-type"}', "not a valid JSON Schema"),
])
def test_bad_schema_file_is_a_config_error_naming_the_rule_when_loaded(tmp_path, content, message):
    if content is not None:
        (tmp_path / "s.json").write_text(content)
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                               "contracts": {"rules": [{"schema_file": "s.json"}]}})
    with pytest.raises(ConfigError, match=message) as raised:
        ContractEvaluator.from_config(config, config_dir=tmp_path)
    assert "schema_file" in str(raised.value)
