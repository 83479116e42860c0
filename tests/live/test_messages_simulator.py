"""The simulator answers Anthropic Messages as api.anthropic.com does: a message of content blocks,
or its event stream; tool use, thinking and cache counts; errors in Anthropic's shape."""

import httpx
import orjson
import pytest

from shadowtap.proxy.capture.assemble import assemble_response
from shadowtap.proxy.dialects import dialect_named
from shadowtap.proxy.simulator import SimulatorSettings, create_simulator_app

pytestmark = pytest.mark.anyio
WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                   "required": ["city"]}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=create_simulator_app(SimulatorSettings(require_api_key="sim-key")))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", timeout=10,
                                 headers={"x-api-key": "sim-key"}) as client:
        yield client


def ask(text: str, **extra) -> dict:
    return {"model": "sim-large", "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


async def test_a_buffered_message_answers_in_text_with_its_usage(client):
    body = (await client.post("/v1/messages", json=ask("How long are backups kept?"))).json()
    assert (body["type"], body["role"], body["stop_reason"]) == ("message", "assistant", "end_turn")
    assert body["content"][0]["type"] == "text" and body["content"][0]["text"]
    assert set(body["usage"]) == {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                                  "cache_read_input_tokens"}


async def test_the_stream_assembles_to_the_buffered_message(client):
    for extra in ({}, {"tools": [WEATHER]}, {"thinking": {"type": "enabled", "budget_tokens": 1024}}):
        request = ask("Weather in Paris?", **extra)
        whole = (await client.post("/v1/messages", json=request)).json()
        response = await client.post("/v1/messages", json={**request, "stream": True})
        assert response.headers["content-type"].startswith("text/event-stream")
        kinds = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
        assert kinds[0] == "message_start" and "ping" in kinds and kinds[-2:] == ["message_delta", "message_stop"]
        streamed = assemble_response(dialect_named("anthropic.messages"), "text/event-stream", [response.content])
        buffered = assemble_response(dialect_named("anthropic.messages"), "application/json", [orjson.dumps(whole)])
        assert (streamed.text, streamed.tool_calls, streamed.finish_reason, streamed.reasoning, streamed.usage) == (
            buffered.text, buffered.tool_calls, buffered.finish_reason, buffered.reasoning, buffered.usage)
        assert streamed.complete


async def test_a_declared_tool_is_called_with_input_that_fits_its_schema(client):
    body = (await client.post("/v1/messages", json=ask("Weather in Paris?", tools=[WEATHER]))).json()
    assert body["stop_reason"] == "tool_use"
    assert [(block["type"], block["name"], block["input"]) for block in body["content"]] == [
        ("tool_use", "get_weather", {"city": "Paris"})]


async def test_cache_marked_blocks_are_counted_as_cache_writes_and_reads(client):
    request = ask("Hours?", system=[{"type": "text", "text": "one two three", "cache_control": {"type": "ephemeral"}}])
    request["messages"][0]["content"] = [{"type": "text", "text": "four five", "cache_control": {"type": "ephemeral"}},
                                         {"type": "text", "text": "Hours?"}]
    usage = (await client.post("/v1/messages", json=request)).json()["usage"]
    assert (usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"], usage["input_tokens"]) == (3, 2, 2)


async def test_errors_come_in_anthropics_shape(client):
    no_max_tokens = {"model": "sim-large", "messages": [{"role": "user", "content": "x"}]}
    missing = await client.post("/v1/messages", json=no_max_tokens)
    assert missing.status_code == 400
    assert missing.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                         "message": "max_tokens: Field required"}}
    overloaded = await client.post("/v1/messages", json=ask("x"), headers={"x-sim-status": "529"})
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    unauthorised = await client.post("/v1/messages", json=ask("x"), headers={"x-api-key": "wrong"})
    assert (unauthorised.status_code, unauthorised.json()["error"]["type"]) == (401, "authentication_error")


async def test_count_tokens_counts_the_request_without_answering_it(client):
    counted = await client.post("/v1/messages/count_tokens", json={
        "model": "sim-large", "system": "be brief", "messages": [{"role": "user", "content": "one two three"}]})
    assert counted.json() == {"input_tokens": 5}
