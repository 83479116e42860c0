"""An app using the official OpenAI SDK notices nothing when its base URL points at shadowtap."""

import time

import httpx
import openai
import pytest
from openai import OpenAI

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                       "required": ["city", "unit"]},
    },
}
ANSWER_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["answer", "score"], "additionalProperties": False}},
}
QUESTION = [{"role": "user", "content": "How long are backups kept in Northwind Cloud?"}]


def sdk(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key="sk-test-sdk-key", max_retries=0, timeout=20)


def test_non_streaming_answers_equal_direct_ones(proxy, simulator):
    direct, proxied = sdk(simulator.base_url), sdk(proxy.base_url)
    for kwargs in ({"messages": QUESTION}, {"messages": QUESTION, "tools": [WEATHER_TOOL]},
                   {"messages": QUESTION, "response_format": ANSWER_FORMAT}):
        expected = direct.chat.completions.create(model="sim-large", **kwargs)
        actual = proxied.chat.completions.create(model="sim-large", **kwargs)
        assert actual.model_dump() == expected.model_dump()
    assert (proxied.embeddings.create(model="sim-embed", input=["a", "b"]).model_dump()
            == direct.embeddings.create(model="sim-embed", input=["a", "b"]).model_dump())
    assert (proxied.responses.create(model="sim-large", input="support hours?").model_dump()
            == direct.responses.create(model="sim-large", input="support hours?").model_dump())


def test_streamed_chunks_equal_direct_ones_in_order_and_content(proxy, simulator):
    def chunks(client: OpenAI) -> list[dict]:
        stream = client.chat.completions.create(model="sim-large", messages=QUESTION, stream=True,
                                                stream_options={"include_usage": True})
        return [chunk.model_dump() for chunk in stream]

    expected, actual = chunks(sdk(simulator.base_url)), chunks(sdk(proxy.base_url))
    assert len(actual) > 3
    assert actual == expected


def test_stream_chunks_arrive_incrementally_when_the_upstream_is_slow(proxy):
    delay_s = 0.15
    stream = sdk(proxy.base_url).chat.completions.create(
        model="sim-large", messages=QUESTION, stream=True,
        extra_headers={"x-sim-chunk-delay-ms": str(int(delay_s * 1000))})
    arrivals = [time.monotonic() for _ in stream]
    assert len(arrivals) >= 5
    # The upstream sends its last chunk (n-1) delays after its first; had the proxy buffered,
    # everything would arrive at once. Half the gap is a wide margin against scheduling noise.
    assert arrivals[-1] - arrivals[0] > 0.5 * delay_s * (len(arrivals) - 1)


def test_tools_and_response_format_reach_the_upstream_unchanged(proxy, simulator):
    simulator.clear()
    sdk(proxy.base_url).chat.completions.create(
        model="sim-large", messages=QUESTION, tools=[WEATHER_TOOL], tool_choice="required",
        response_format=ANSWER_FORMAT, temperature=0.2, seed=7)
    (received,) = [r for r in simulator.recorded() if r["path"] == "/v1/chat/completions"]
    assert received["body"]["tools"] == [WEATHER_TOOL]
    assert received["body"]["response_format"] == ANSWER_FORMAT
    assert received["body"]["tool_choice"] == "required"
    assert (received["body"]["temperature"], received["body"]["seed"]) == (0.2, 7)


@pytest.mark.parametrize("status, error_type", [
    (400, openai.BadRequestError), (401, openai.AuthenticationError),
    (429, openai.RateLimitError), (500, openai.InternalServerError),
])
def test_upstream_errors_reach_the_client_with_the_same_status_body_and_retry_after(
        proxy, simulator, status, error_type):
    headers = {"x-sim-status": str(status), "authorization": "Bearer sk-test-sdk-key"}
    body = {"model": "sim-large", "messages": QUESTION}
    direct = httpx.post(f"{simulator.base_url}/chat/completions", json=body, headers=headers)
    proxied = httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers=headers)
    assert proxied.status_code == direct.status_code == status
    assert proxied.content == direct.content
    assert proxied.headers.get("retry-after") == direct.headers.get("retry-after")
    if status == 429:
        assert proxied.headers["retry-after"] == "1"
    with pytest.raises(error_type) as caught:
        sdk(proxy.base_url).chat.completions.create(model="sim-large", messages=QUESTION,
                                                    extra_headers={"x-sim-status": str(status)})
    assert caught.value.status_code == status


def test_every_response_carries_its_exchange_id(proxy):
    response = httpx.post(f"{proxy.base_url}/chat/completions", json={"model": "m", "messages": QUESTION})
    assert len(response.headers["x-shadowtap-exchange-id"]) == 26
