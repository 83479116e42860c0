"""Which canaried requests are contract-bound, and which candidate answers keep the contract (no processes)."""

import gzip

import orjson
import pytest

from shadowtap.core.config import ContractRule
from shadowtap.core.errors import ConfigError
from shadowtap.proxy.canary.contracts import ContractRules, answer_errors
from shadowtap.proxy.dialects import dialect_for_path

CHAT = dialect_for_path("/v1/chat/completions")
JSON = [(b"Content-Type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream")]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
STRUCTURED = {"model": "m", "messages": [{"role": "user", "content": "where?"}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}}
WEATHER_TOOL = {"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def completion(content: str | None, tool_calls: list | None = None) -> list[bytes]:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return [orjson.dumps({"id": "c", "object": "chat.completion", "model": "m",
                          "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})]


def stream(*pieces: str, finished: bool = True) -> list[bytes]:
    events = [b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [
        {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}) + b"\n\n" for piece in pieces]
    return events + ([b"data: [DONE]\n\n"] if finished else [])


def contract(request: dict, headers=(), rules=None):
    return (rules or ContractRules([])).contract_for(CHAT, list(headers), request)


def test_a_plain_request_is_not_contract_bound():
    assert contract({"model": "m", "messages": [{"role": "user", "content": "hi"}]}) is None


def test_response_format_json_schema_json_object_and_tools_make_a_request_contract_bound():
    assert contract(STRUCTURED).schemas == (SCHEMA,)
    assert contract({**STRUCTURED, "response_format": {"type": "json_object"}}).schemas == ({"type": "object"},)
    tooled = contract({"model": "m", "messages": [], "tools": [WEATHER_TOOL]})
    assert tooled is not None and list(tooled.tools) == ["weather"]


def test_a_configured_rule_makes_matching_requests_contract_bound(tmp_path):
    (tmp_path / "s.json").write_bytes(orjson.dumps(SCHEMA))
    rules = ContractRules.load([ContractRule(schema_file="s.json", task="extract")], tmp_path)
    plain = {"model": "m", "messages": []}
    assert contract(plain, [(b"x-shadowtap-task", b"extract")], rules).schemas == (SCHEMA,)
    assert contract(plain, [(b"x-shadowtap-task", b"chat")], rules) is None


def test_a_broken_rule_schema_is_a_config_error_at_start_up(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="schema_file"):
        ContractRules.load([ContractRule(schema_file="bad.json")], tmp_path)


def test_an_answer_valid_against_the_schema_keeps_the_contract():
    assert answer_errors(contract(STRUCTURED), CHAT, JSON, completion('{"city": "Lyon"}')) == []


@pytest.mark.parametrize("content", ['{"town": "Lyon"}', '{"city": 3}', "Lyon", None])
def test_an_answer_breaking_the_schema_is_refused(content):
    assert answer_errors(contract(STRUCTURED), CHAT, JSON, completion(content))


def test_a_streamed_answer_is_assembled_before_it_is_checked():
    assert answer_errors(contract(STRUCTURED), CHAT, SSE, stream('{"ci', 'ty": "Lyon"}')) == []
    assert answer_errors(contract(STRUCTURED), CHAT, SSE, stream('{"city": ', "1}"))
    assert answer_errors(contract(STRUCTURED), CHAT, SSE, stream('{"city": "Lyon"}', finished=False))


def test_a_compressed_answer_is_decoded_before_it_is_checked():
    body = gzip.compress(completion('{"city": "Lyon"}')[0])
    assert answer_errors(contract(STRUCTURED), CHAT, [*JSON, (b"content-encoding", b"gzip")], [body]) == []


def test_tool_calls_must_name_a_declared_tool_with_valid_arguments():
    tooled = contract({"model": "m", "messages": [], "tools": [WEATHER_TOOL]})

    def call(name, arguments):
        return [{"id": "t", "type": "function", "function": {"name": name, "arguments": arguments}}]

    assert answer_errors(tooled, CHAT, JSON, completion(None, call("weather", '{"city": "Lyon"}'))) == []
    assert answer_errors(tooled, CHAT, JSON, completion(None, call("weather", '{"town": "Lyon"}')))
    assert answer_errors(tooled, CHAT, JSON, completion(None, call("stocks", "{}")))
    assert answer_errors(tooled, CHAT, JSON, completion(None, call("weather", "{not json")))


def test_an_unparseable_body_breaks_the_contract():
    assert answer_errors(contract(STRUCTURED), CHAT, JSON, [b"<html>oops</html>"])
