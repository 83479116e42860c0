"""Anthropic Messages capture: bodies and event streams assembled into the columns chat fills."""

import orjson
import pytest

from shadowtap.core.redaction import Redactor
from shadowtap.proxy.capture.assemble import assemble_response
from shadowtap.proxy.capture.pricing import PriceTable
from shadowtap.proxy.capture.record import CaptureRowBuilder
from shadowtap.proxy.dialects import dialect_for_path, dialect_named
from tests.support.factories import raw_exchange

SSE = "text/event-stream; charset=utf-8"
MESSAGES = dialect_named("anthropic.messages")


def event(kind: str, **fields) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps({"type": kind, **fields}))


# The order and shape api.anthropic.com uses: thinking, then text, then a tool call whose input
# arrives as partial JSON; ping after the first block starts; usage split over start and delta.
STREAM = [
    event("message_start", message={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000,
                  "output_tokens": 1}}),
    event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
    event("ping"),
    event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "The user wants "}),
    event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "the weather."}),
    event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQB"}),
    event("content_block_stop", index=0),
    event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
    event("content_block_delta", index=1, delta={"type": "text_delta", "text": "Let me check "}),
    event("content_block_delta", index=1, delta={"type": "text_delta", "text": "Paris."}),
    event("content_block_stop", index=1),
    event("content_block_start", index=2, content_block={"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                                                         "input": {}}),
    event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
    event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
    event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": 'ris"}'}),
    event("content_block_stop", index=2),
    event("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 42}),
    event("message_stop"),
]

BODY = {"id": "msg_02", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "thinking", "thinking": "Short.", "signature": "x"},
                    {"type": "text", "text": "It is "}, {"type": "text", "text": "sunny."},
                    {"type": "tool_use", "id": "toolu_9", "name": "log", "input": {"level": 2}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30,
                  "output_tokens": 7}}


def test_a_streamed_message_keeps_thinking_apart_and_joins_tool_input_fragments():
    result = assemble_response(MESSAGES, SSE, STREAM)
    assert result.text == "Let me check Paris."
    assert result.reasoning == "The user wants the weather."
    assert result.tool_calls == [{"id": "toolu_01", "type": "function",
                                  "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert result.finish_reason == "tool_use"
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.complete and result.parse_error is None
    assert result.events == len(STREAM)


def test_streamed_usage_counts_cache_writes_and_reads_into_the_prompt_and_keeps_them():
    usage = assemble_response(MESSAGES, SSE, STREAM).usage
    assert usage == {"prompt_tokens": 2112, "completion_tokens": 42, "total_tokens": 2154,
                     "cache_creation_tokens": 100, "cache_read_tokens": 2000}


def test_time_to_first_token_is_the_first_answer_text_not_the_thinking():
    one_event_per_read = assemble_response(MESSAGES, SSE, STREAM)
    assert one_event_per_read.first_content_chunk == 8  # the first text_delta, after four thinking events


def test_a_stream_without_message_stop_is_incomplete():
    assert not assemble_response(MESSAGES, SSE, STREAM[:-1]).complete


def test_an_error_event_ends_the_stream_with_finish_reason_error():
    error = event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    result = assemble_response(MESSAGES, SSE, [*STREAM[:9], error])
    assert result.finish_reason == "error" and result.complete and result.text == "Let me check "


def test_a_buffered_message_fills_text_tool_calls_stop_reason_and_usage():
    result = assemble_response(MESSAGES, "application/json", [orjson.dumps(BODY)])
    assert result.text == "It is sunny."
    assert result.reasoning == "Short."
    assert result.tool_calls == [{"id": "toolu_9", "type": "function",
                                  "function": {"name": "log", "arguments": '{"level":2}'}}]
    assert result.finish_reason == "tool_use"
    assert result.usage == {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47,
                            "cache_creation_tokens": 0, "cache_read_tokens": 30}


def test_an_anthropic_error_body_has_no_text_and_finish_reason_error():
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}
    result = assemble_response(MESSAGES, "application/json", [orjson.dumps(body)])
    assert result.text is None and result.tool_calls is None and result.finish_reason == "error"


def test_cache_tokens_are_priced_at_the_cache_rates_when_the_table_has_them():
    prices = PriceTable({"claude-x": {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6,
                                      "cache_creation_input_token_cost": 3.75e-6,
                                      "cache_read_input_token_cost": 0.3e-6}})
    usage = {"prompt_tokens": 2112, "completion_tokens": 42, "cache_creation_tokens": 100, "cache_read_tokens": 2000}
    expected = 12 * 3e-6 + 100 * 3.75e-6 + 2000 * 0.3e-6 + 42 * 15e-6
    assert prices.usage_cost_usd("claude-x", usage) == pytest.approx(expected)
    no_cache_rates = PriceTable({"claude-x": {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6}})
    assert no_cache_rates.usage_cost_usd("claude-x", usage) == pytest.approx(2112 * 3e-6 + 42 * 15e-6)


def test_a_captured_streamed_message_fills_the_exchange_row_and_prices_its_cache_reads():
    request = {"model": "claude-x", "max_tokens": 100, "stream": True,
               "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    raw = raw_exchange(path="/v1/messages", request=request, response=b"",
                       response_headers=[(b"content-type", SSE.encode())])
    raw.response_chunks, raw.chunk_times = list(STREAM), [raw.t_start + 0.01 * (i + 1) for i in range(len(STREAM))]
    prices = PriceTable({"claude-sonnet-4-5-20250929": {
        "input_cost_per_token": 1.0, "output_cost_per_token": 2.0, "cache_creation_input_token_cost": 3.0,
        "cache_read_input_token_cost": 0.5}})
    builder = CaptureRowBuilder(redactor=Redactor(), prices=prices, client_key_salt=b"s", max_body_bytes=1 << 20)
    row = builder.build(raw)
    assert row["endpoint"] == "anthropic.messages" and row["is_stream"] == 1 and row["stream_incomplete"] == 0
    assert row["response_text"] == "Let me check Paris."
    assert orjson.loads(row["response_tool_calls"])[0]["function"]["arguments"] == '{"city": "Paris"}'
    assert (row["finish_reason"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == \
        ("tool_use", 2112, 42, 2154)
    assert (row["cache_creation_tokens"], row["cache_read_tokens"]) == (100, 2000)   # all four counts kept
    assert row["ttft_ms"] == pytest.approx(90.0)  # the ninth read carried the first answer text
    assert row["cost_usd"] == pytest.approx(12 * 1.0 + 100 * 3.0 + 2000 * 0.5 + 42 * 2.0)


@pytest.mark.parametrize("path, name", [
    ("/v1/messages", "anthropic.messages"), ("/v1/messages/count_tokens", "anthropic.count_tokens"),
    ("/v1/threads/thread_1/messages", "other"), ("/v1/messages/batches", "other"),
])
def test_only_anthropic_paths_belong_to_the_messages_dialects(path, name):
    assert dialect_for_path(path).name == name


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
     "prompt_tokens_details": {"cached_tokens": 1024}},                                    # chat completions
    {"input_tokens": 1200, "output_tokens": 30, "total_tokens": 1230,
     "input_tokens_details": {"cached_tokens": 1024}},                                     # Responses API
])
def test_openai_cached_prompt_tokens_are_kept_as_cache_reads_and_priced_at_the_cache_rate(usage):
    normalised = dialect_named("chat.completions").usage(usage)
    assert normalised == {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
                          "cache_read_tokens": 1024}
    prices = PriceTable({"gpt-x": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
                                   "cache_read_input_token_cost": 0.5e-6}})
    expected = 176 * 2e-6 + 1024 * 0.5e-6 + 30 * 8e-6
    assert prices.usage_cost_usd("gpt-x", normalised) == pytest.approx(expected)


def test_a_chat_answer_without_cached_tokens_reports_no_cache_counts():
    normalised = dialect_named("chat.completions").usage({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                                                          "prompt_tokens_details": {"cached_tokens": 0}})
    assert normalised == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
