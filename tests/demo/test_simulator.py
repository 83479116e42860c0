"""The simulated upstream: deterministic OpenAI-shaped answers, streams, knobs and errors."""

import base64
import gzip
import math
import struct
import time
import zlib

import httpx
import openai
import orjson
import pytest

from shadowtap.core.errors import ConfigError
from shadowtap.proxy.simulator import SimulatorSettings, create_simulator_app, running_simulator
from shadowtap.proxy.simulator.__main__ import main as simulator_cli

pytestmark = pytest.mark.anyio

CONTEXT = ("Orders ship from the Leeds warehouse within two days. Returns are accepted for "
           "60 days with a receipt. Gift cards never expire.")
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "detailed": {"type": "boolean"}},
        "required": ["city", "days", "unit"]}}}
LOOKUP_TOOL = {"type": "function", "function": {
    "name": "lookup_order", "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "express": {"type": "boolean"},
                       "weight": {"type": "number"}, "tags": {"type": "array"},
                       "address": {"type": "object", "properties": {"zip": {"type": "integer"}},
                                   "required": ["zip"]}},
        "required": ["order_id", "express", "weight", "tags", "address"]}}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def settings():
    return SimulatorSettings(record_requests=True)


@pytest.fixture
async def client(settings):
    transport = httpx.ASGITransport(app=create_simulator_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim",
                                 timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def live_simulator():
    with running_simulator(SimulatorSettings(record_requests=True)) as base_url:
        yield base_url


def chat(question, **extra):
    return {"model": "sim-small", "messages": [{"role": "user", "content": question}], **extra}


def sse_data(text):
    return [line.removeprefix("data: ") for line in text.split("\n\n") if line]


def reassemble(chunks):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_chat_completion_bytes_repeat_when_the_same_request_is_sent_twice(client):
    first = await client.post("/v1/chat/completions", json=chat("How long are logs kept?"))
    second = await client.post("/v1/chat/completions", json=chat("How long are logs kept?"))
    other = await client.post("/v1/chat/completions", json=chat("Which regions exist?"))

    assert first.status_code == 200
    assert first.content == second.content
    assert first.headers["x-request-id"] == second.headers["x-request-id"]
    assert first.headers["x-request-id"].startswith("req-sim-")
    assert other.json()["id"] != first.json()["id"]
    body = first.json()
    assert body["object"] == "chat.completion" and body["model"] == "sim-small"
    assert body["id"].startswith("chatcmpl-sim-") and isinstance(body["created"], int)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


async def test_chat_answer_quotes_the_best_corpus_sentence_when_there_is_no_context(client):
    body = (await client.post("/v1/chat/completions", json=chat("How long are logs kept?"))).json()

    assert body["choices"][0]["message"]["content"] == (
        "According to Data Retention: Logs are kept for 30 days and then deleted.")
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_chat_answer_is_a_context_sentence_when_the_request_carries_context(client):
    request = {"model": "sim-small", "messages": [
        {"role": "system", "content": f"Answer from this.\n<context>{CONTEXT}</context>"},
        {"role": "user", "content": "How many days do I have for returns?"}]}

    answer = (await client.post("/v1/chat/completions", json=request)).json()

    assert answer["choices"][0]["message"]["content"] == (
        "Returns are accepted for 60 days with a receipt.")


async def test_chat_answer_comes_from_the_tool_result_when_one_follows_the_question(client):
    request = chat("What's the weather in Paris?", tools=[WEATHER_TOOL])
    request["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Paris weather: sunny, 21 C."}]

    message = (await client.post("/v1/chat/completions", json=request)).json()["choices"][0]

    assert message["finish_reason"] == "stop"
    assert message["message"]["content"] == "Paris weather: sunny, 21 C."


async def test_chat_calls_the_named_tool_with_required_arguments_when_tool_choice_names_it(client):
    request = chat("Where is order A-17 going?", tools=[WEATHER_TOOL, LOOKUP_TOOL],
                   tool_choice={"type": "function", "function": {"name": "lookup_order"}})

    choice = (await client.post("/v1/chat/completions", json=request)).json()["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_sim_")
    assert call["function"]["name"] == "lookup_order"
    assert orjson.loads(call["function"]["arguments"]) == {
        "order_id": "A-17", "express": True, "weight": 1.0, "tags": [], "address": {"zip": 1}}


async def test_chat_calls_the_first_tool_filling_only_required_params_when_choice_is_auto(client):
    request = chat("What's the weather in Paris?", tools=[WEATHER_TOOL, LOOKUP_TOOL])

    call = (await client.post("/v1/chat/completions", json=request)).json()[
        "choices"][0]["message"]["tool_calls"][0]

    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {
        "city": "Paris", "days": 1, "unit": "celsius"}


async def test_tool_arguments_are_an_empty_object_when_the_tool_has_no_parameters(client):
    request = chat("Ping?", tools=[{"type": "function", "function": {"name": "ping"}}])

    call = (await client.post("/v1/chat/completions", json=request)).json()[
        "choices"][0]["message"]["tool_calls"][0]

    assert call["function"] == {"name": "ping", "arguments": "{}"}


async def test_chat_answers_in_text_when_tool_choice_is_none(client):
    request = chat("How long are logs kept?", tools=[WEATHER_TOOL], tool_choice="none")

    message = (await client.post("/v1/chat/completions", json=request)).json()[
        "choices"][0]["message"]

    assert "tool_calls" not in message
    assert message["content"].startswith("According to Data Retention:")


async def test_content_satisfies_the_schema_when_response_format_is_json_schema(client):
    schema = {"type": "object", "required": ["summary", "confidence", "source", "tags"],
              "properties": {"summary": {"type": "string"}, "confidence": {"type": "number"},
                             "source": {"$ref": "#/$defs/Source"},
                             "tags": {"type": "array", "items": {"type": "string"}},
                             "unused": {"type": "string"}},
              "$defs": {"Source": {"type": "object", "required": ["title", "kind"],
                                   "properties": {"title": {"type": "string"},
                                                  "kind": {"enum": ["doc", "web"]}}}}}
    request = chat("How long are logs kept?", response_format={
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})

    content = (await client.post("/v1/chat/completions", json=request)).json()[
        "choices"][0]["message"]["content"]

    parsed = orjson.loads(content)
    assert set(parsed) == {"summary", "confidence", "source", "tags"}
    assert parsed["summary"] == (
        "According to Data Retention: Logs are kept for 30 days and then deleted.")
    assert parsed["confidence"] == 1.0 and parsed["tags"] == []
    assert parsed["source"]["kind"] == "doc" and isinstance(parsed["source"]["title"], str)


async def test_content_is_an_answer_object_when_response_format_is_json_object(client):
    request = chat("How long are logs kept?", response_format={"type": "json_object"})

    content = (await client.post("/v1/chat/completions", json=request)).json()[
        "choices"][0]["message"]["content"]

    assert orjson.loads(content) == {
        "answer": "According to Data Retention: Logs are kept for 30 days and then deleted."}


async def test_stream_chunks_reassemble_the_plain_answer_when_stream_is_true(client):
    whole = (await client.post("/v1/chat/completions", json=chat("What is the SLA?"))).json()

    response = await client.post("/v1/chat/completions", json=chat("What is the SLA?", stream=True))

    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_data(response.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "stop"}
    assert 5 <= len(chunks) <= 22
    assert reassemble(chunks) == whole["choices"][0]["message"]["content"]
    assert all("usage" not in c for c in chunks)


async def test_stream_ends_with_a_usage_chunk_when_include_usage_is_set(client):
    whole = (await client.post("/v1/chat/completions", json=chat("What is the SLA?"))).json()
    request = chat("What is the SLA?", stream=True, stream_options={"include_usage": True})

    events = sse_data((await client.post("/v1/chat/completions", json=request)).text)

    usage_chunk = orjson.loads(events[-2])
    assert events[-1] == "[DONE]"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == whole["usage"]
    assert orjson.loads(events[0])["usage"] is None


async def test_stream_tool_call_fragments_join_into_the_arguments_when_tools_are_given(client):
    whole = (await client.post("/v1/chat/completions",
                               json=chat("Weather in Oslo?", tools=[WEATHER_TOOL]))).json()
    request = chat("Weather in Oslo?", tools=[WEATHER_TOOL], stream=True)

    events = sse_data((await client.post("/v1/chat/completions", json=request)).text)

    deltas = [orjson.loads(e)["choices"][0]["delta"] for e in events[:-1]]
    opening = deltas[0]["tool_calls"][0]
    expected = whole["choices"][0]["message"]["tool_calls"][0]
    assert opening["index"] == 0 and opening["id"] == expected["id"]
    assert opening["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
    assert len(fragments) > 1
    assert "".join(fragments) == expected["function"]["arguments"]
    assert orjson.loads(events[-2])["choices"][0]["finish_reason"] == "tool_calls"


async def test_status_knob_returns_429_with_retry_headers_when_x_sim_status_is_429(client):
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-status": "429"})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.json()["error"]["message"] == "Simulated 429 error"
    assert response.json()["error"]["param"] is None


async def test_status_knob_returns_a_server_error_when_x_sim_status_is_500(client):
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-status": "500"})

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


async def test_knob_error_names_the_header_when_its_value_is_not_an_integer(client):
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-latency-ms": "soon"})

    assert response.status_code == 400
    assert "x-sim-latency-ms" in response.json()["error"]["message"]


@pytest.mark.parametrize("settings", [SimulatorSettings(require_api_key="sk-sim")])
async def test_request_is_refused_with_401_when_the_api_key_is_wrong(client):
    refused = await client.post("/v1/chat/completions", json=chat("hi"),
                                headers={"authorization": "Bearer nope"})
    accepted = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"authorization": "Bearer sk-sim"})

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert accepted.status_code == 200


@pytest.mark.parametrize("settings", [SimulatorSettings(error_rate=0.5, error_status=503)])
async def test_error_rate_fails_the_same_requests_every_time_when_set(client):
    questions = [f"question number {n}" for n in range(40)]

    async def statuses():
        return [(await client.post("/v1/chat/completions", json=chat(q))).status_code
                for q in questions]

    first = await statuses()
    assert first == await statuses()
    assert set(first) == {200, 503}
    assert 8 <= first.count(503) <= 32


async def test_latency_knob_delays_the_response_when_x_sim_latency_ms_is_set(client):
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-latency-ms": "200"})

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.2


async def test_gzip_knob_compresses_the_body_with_its_length_when_x_sim_gzip_is_set(client):
    plain = await client.post("/v1/chat/completions", json=chat("What is the SLA?"))
    request = client.build_request("POST", "/v1/chat/completions", json=chat("What is the SLA?"),
                                   headers={"x-sim-gzip": "1"})

    response = await client.send(request, stream=True)
    raw = b"".join([piece async for piece in response.aiter_raw()])

    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    assert gzip.decompress(raw) == plain.content


async def test_embeddings_are_deterministic_unit_vectors_when_dimensions_vary(client):
    default = (await client.post("/v1/embeddings", json={"model": "sim-embed",
                                                         "input": "hello"})).json()
    sized = (await client.post("/v1/embeddings", json={
        "model": "sim-embed", "input": ["hello", "world", "hello"], "dimensions": 8})).json()

    assert len(default["data"][0]["embedding"]) == 16
    vectors = [item["embedding"] for item in sized["data"]]
    assert [len(v) for v in vectors] == [8, 8, 8]
    assert vectors[0] == vectors[2] != vectors[1]
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0) for v in vectors)
    assert sized["usage"]["prompt_tokens"] == 3


async def test_embeddings_decode_to_the_float_vector_when_encoding_format_is_base64(client):
    request = {"model": "sim-embed", "input": "hello"}
    floats = (await client.post("/v1/embeddings", json=request)).json()["data"][0]["embedding"]

    encoded = (await client.post("/v1/embeddings", json={**request, "encoding_format": "base64"})
               ).json()["data"][0]["embedding"]

    decoded = struct.unpack("<16f", base64.b64decode(encoded))
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(decoded, floats))


async def test_responses_api_returns_a_completed_message_when_input_is_a_string(client):
    body = (await client.post("/v1/responses", json={"model": "sim-large",
                                                     "input": "How long are logs kept?"})).json()

    assert body["object"] == "response" and body["status"] == "completed"
    assert body["model"] == "sim-large" and body["id"].startswith("resp_sim_")
    (item,) = body["output"]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"][0]["type"] == "output_text"
    assert item["content"][0]["text"] == (
        "According to Data Retention: Logs are kept for 30 days and then deleted.")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_responses_api_grounds_the_answer_when_input_messages_carry_context(client):
    request = {"model": "sim-large", "input": [
        {"role": "user", "content": [{"type": "input_text", "text":
         f"<context>{CONTEXT}</context> Do gift cards expire?"}]}]}

    body = (await client.post("/v1/responses", json=request)).json()

    assert body["output"][0]["content"][0]["text"] == "Gift cards never expire."


async def test_responses_stream_deltas_join_into_the_final_text_when_stream_is_true(client):
    whole = (await client.post("/v1/responses", json={"model": "sim-small",
                                                      "input": "Which regions?"})).json()

    text = (await client.post("/v1/responses", json={"model": "sim-small",
                                                     "input": "Which regions?",
                                                     "stream": True})).text

    events = []
    for block in text.strip().split("\n\n"):
        name_line, data_line = block.split("\n")
        event = orjson.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.index("response.output_text.done") > types.index("response.output_text.delta")
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    final_text = whole["output"][0]["content"][0]["text"]
    assert len(deltas) > 1 and "".join(deltas) == final_text
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["output"][0]["content"] == whole["output"][0]["content"]


async def test_legacy_completion_streams_the_same_text_when_stream_is_true(client):
    request = {"model": "sim-small", "prompt": "Are backups encrypted?"}
    whole = (await client.post("/v1/completions", json=request)).json()

    events = sse_data((await client.post("/v1/completions", json={**request, "stream": True})).text)

    assert whole["object"] == "text_completion"
    assert whole["choices"][0]["text"].startswith("According to Backups:")
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_models_lists_the_simulated_models_when_requested(client):
    body = (await client.get("/v1/models")).json()

    assert {"sim-small", "sim-large"} <= {model["id"] for model in body["data"]}


async def test_malformed_json_gets_an_openai_style_400_when_the_body_does_not_parse(client):
    response = await client.post("/v1/chat/completions", content=b'{"model": ',
                                 headers={"content-type": "application/json"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request")
    assert error["type"] == "invalid_request_error"


async def test_odd_field_shape_gets_a_400_when_response_format_is_not_an_object(client):
    response = await client.post("/v1/chat/completions",
                                 json=chat("hi", response_format="json"))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_missing_messages_gets_a_400_naming_the_param_when_the_body_lacks_them(client):
    response = await client.post("/v1/chat/completions", json={"model": "sim-small"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


async def test_unknown_path_gets_an_openai_style_404_when_not_routed(client):
    response = await client.post("/v1/nothing-here", json={})

    assert response.status_code == 404
    assert response.json() == {"error": {"message": "Invalid URL (POST /v1/nothing-here)",
                                         "type": "invalid_request_error", "param": None,
                                         "code": "not_found"}}


async def test_recorded_requests_keep_every_header_when_record_requests_is_on(client):
    await client.post("/v1/chat/completions", json=chat("hi"),
                      headers={"authorization": "Bearer sk-client", "X-Custom": "yes"})
    await client.post("/v1/embeddings", content=b"not json")

    recorded = (await client.get("/sim/requests")).json()
    cleared = await client.delete("/sim/requests")

    assert [r["path"] for r in recorded] == ["/v1/chat/completions", "/v1/embeddings"]
    assert recorded[0]["method"] == "POST"
    assert recorded[0]["headers"]["authorization"] == "Bearer sk-client"
    assert recorded[0]["headers"]["x-custom"] == "yes"
    assert recorded[0]["body"] == chat("hi")
    assert recorded[1]["body"] is None and recorded[1]["raw"] == "not json"
    assert cleared.status_code == 200
    assert (await client.get("/sim/requests")).json() == []


def test_stream_events_arrive_paced_when_ttft_and_chunk_delay_are_set(live_simulator):
    headers = {"x-sim-ttft-ms": "150", "x-sim-chunk-delay-ms": "20"}
    arrivals = []
    started = time.perf_counter()
    with httpx.stream("POST", f"{live_simulator}/v1/chat/completions", headers=headers,
                      json=chat("What is the SLA?", stream=True), timeout=10) as response:
        for _ in response.iter_lines():
            arrivals.append(time.perf_counter() - started)

    assert arrivals[0] >= 0.15
    assert arrivals[-1] - arrivals[0] >= 0.02 * 5


def test_stream_gzip_flushes_whole_events_when_x_sim_gzip_is_set(live_simulator):
    decompressor = zlib.decompressobj(31)
    pieces = []
    with httpx.stream("POST", f"{live_simulator}/v1/chat/completions",
                      headers={"x-sim-gzip": "1", "x-sim-chunk-delay-ms": "5"},
                      json=chat("What is the SLA?", stream=True), timeout=10) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert "content-length" not in response.headers
        for raw in response.iter_raw():
            pieces.append(decompressor.decompress(raw))

    text = b"".join(pieces).decode()
    assert decompressor.eof
    arrived = [piece for piece in pieces if piece]
    assert len(arrived) >= 5  # flushed event by event, not buffered to the end
    assert all(piece.endswith(b"\n\n") for piece in arrived)
    assert sse_data(text)[-1] == "[DONE]"


def test_stream_breaks_off_without_done_when_x_sim_drop_after_is_set(live_simulator):
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", f"{live_simulator}/v1/chat/completions",
                          headers={"x-sim-drop-after": "3"},
                          json=chat("What is the SLA?", stream=True), timeout=10) as response:
            received.extend(line for line in response.iter_lines() if line)

    assert len(received) == 3
    assert "[DONE]" not in "".join(received)


def test_openai_sdk_reads_chat_completions_when_pointed_at_the_simulator(live_simulator):
    client = openai.OpenAI(base_url=f"{live_simulator}/v1", api_key="sk-test", max_retries=0,
                           timeout=10)

    completion = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "How long are logs kept?"}])
    stream = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "How long are logs kept?"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)

    content = completion.choices[0].message.content
    assert content == "According to Data Retention: Logs are kept for 30 days and then deleted."
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens


def test_openai_sdk_reads_tool_calls_and_parsed_schemas_when_pointed_at_the_simulator(
        live_simulator):
    client = openai.OpenAI(base_url=f"{live_simulator}/v1", api_key="sk-test", max_retries=0,
                           timeout=10)

    with client.chat.completions.stream(
            model="sim-small", tools=[WEATHER_TOOL],
            messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
        final = stream.get_final_completion()

    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments)["city"] == "Oslo"


def test_openai_sdk_reads_embeddings_and_responses_when_pointed_at_the_simulator(
        live_simulator):
    client = openai.OpenAI(base_url=f"{live_simulator}/v1", api_key="sk-test", max_retries=0,
                           timeout=10)

    embedding = client.embeddings.create(model="sim-embed", input=["a", "b"], dimensions=12)
    response = client.responses.create(model="sim-small", input="Do you offer SSO?")
    with client.responses.stream(model="sim-small", input="Do you offer SSO?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        streamed = stream.get_final_response()

    assert [len(item.embedding) for item in embedding.data] == [12, 12]
    assert math.isclose(sum(x * x for x in embedding.data[0].embedding), 1.0, rel_tol=1e-5)
    assert response.output_text.startswith("According to Single Sign-On:")
    assert "".join(deltas) == streamed.output_text == response.output_text


def test_settings_name_the_bad_key_when_error_rate_is_out_of_range():
    with pytest.raises(ConfigError, match="error_rate"):
        SimulatorSettings(error_rate=1.5)


def test_cli_exits_with_usage_error_when_a_setting_is_invalid(capsys):
    with pytest.raises(SystemExit) as exit_info:
        simulator_cli(["--chunk-delay-ms", "-5"])

    assert exit_info.value.code == 2
    assert "chunk_delay_ms" in capsys.readouterr().err


def _recorded(base_url, marker, until=lambda record: True, timeout_s=5.0) -> list[dict]:
    """The recorded requests carrying `marker`, in order, once one of them satisfies `until`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in httpx.get(f"{base_url}/sim/requests").json() if marker in r["raw"]]
        if any(until(r) for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_hang_sends_no_status_line_and_records_when_the_client_gave_up(live_simulator):
    body = chat("hang-marker-1")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{live_simulator}/v1/chat/completions", json=body, headers={"x-sim-hang": "1"},
                   timeout=httpx.Timeout(10, read=0.3))
    gave_up_at = time.time()

    (record,) = _recorded(live_simulator, "hang-marker-1", lambda r: r["client_gone_at"])
    assert record["writes_at"] == []
    assert 0 <= record["client_gone_at"] - gave_up_at < 1.0


def test_hang_after_sends_that_many_events_then_silence_until_the_client_leaves(live_simulator):
    lines = []
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", f"{live_simulator}/v1/chat/completions", json=chat("hang-marker-2", stream=True),
                          headers={"x-sim-hang-after": "3"}, timeout=httpx.Timeout(10, read=0.5)) as response:
            lines.extend(line for line in response.iter_lines() if line)

    assert len(lines) == 3
    (record,) = _recorded(live_simulator, "hang-marker-2", lambda r: r["client_gone_at"])
    assert len(record["writes_at"]) == 3 and record["client_gone_at"] >= record["writes_at"][-1]


def test_trickle_sends_the_same_body_one_byte_per_write_when_x_sim_trickle_ms_is_set(live_simulator):
    body = chat("trickle-marker")
    plain = httpx.post(f"{live_simulator}/v1/chat/completions", json=body)
    trickled = httpx.post(f"{live_simulator}/v1/chat/completions", json=body, headers={"x-sim-trickle-ms": "0"})

    assert trickled.content == plain.content
    plain_record, trickled_record = _recorded(live_simulator, "trickle-marker", lambda r: len(r["writes_at"]) > 1)
    assert (len(plain_record["writes_at"]), len(trickled_record["writes_at"])) == (1, len(plain.content))


def test_drop_after_cuts_a_json_body_short_of_its_length_when_it_is_trickled(live_simulator):
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", f"{live_simulator}/v1/chat/completions", json=chat("What is the SLA?"),
                          headers={"x-sim-trickle-ms": "0", "x-sim-drop-after": "25"}, timeout=10) as response:
            for data in response.iter_raw():
                received += data

    assert len(received) == 25 < int(response.headers["content-length"])


def test_split_utf8_cuts_the_first_multi_byte_character_into_two_writes(live_simulator):
    body = chat("When does the café open? split-marker", stream=True)
    body["messages"].insert(0, {"role": "system", "content": "<context>The café opens at eight.</context>"})
    reads = []
    with httpx.stream("POST", f"{live_simulator}/v1/chat/completions", json=body,
                      headers={"x-sim-split-utf8-ms": "100"}, timeout=10) as response:
        reads.extend(response.iter_raw())
    whole = httpx.post(f"{live_simulator}/v1/chat/completions", json=body, timeout=10).content

    assert b"".join(reads) == whole and "café" in whole.decode()
    cut = [read for read in reads if read[-1:] >= b"\xc0"]  # a read ending on a lead byte
    assert len(cut) == 1
    split, unsplit = _recorded(live_simulator, "split-marker")
    assert len(split["writes_at"]) == len(unsplit["writes_at"]) + 1 == whole.count(b"data: ") + 1


async def test_split_utf8_is_refused_with_gzip_since_compressed_bytes_have_no_characters(client):
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-split-utf8-ms": "10", "x-sim-gzip": "1"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-sim-split-utf8-ms"


async def test_response_headers_knob_adds_the_given_headers_when_set(client):
    extra = {"retry-after": "7", "x-ratelimit-limit-requests": "100", "connection": "x-hop", "x-hop": "1"}
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-response-headers": orjson.dumps(extra).decode()})

    assert response.status_code == 200
    assert {name: response.headers[name] for name in extra} == extra


@pytest.mark.parametrize("value", ['["retry-after"]', '{"retry-after": 7}', "not json",
                                   '{"x-a": "1\\r\\nx-b: 2"}'])
async def test_response_headers_knob_is_refused_naming_itself_when_not_an_object_of_safe_strings(client, value):
    response = await client.post("/v1/chat/completions", json=chat("hi"),
                                 headers={"x-sim-response-headers": value})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-sim-response-headers"


SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}


async def test_the_souring_persona_answers_like_the_plain_simulator_until_soured_then_breaks_every_answer(client):
    from shadowtap.proxy.simulator import personas

    def souring(**extra):
        return {**chat("How long are logs kept?", **extra), "model": "sim-souring"}

    try:
        good_text = (await client.post("/v1/chat/completions", json=souring())).json()
        good_json = (await client.post("/v1/chat/completions", json=souring(response_format=SCHEMA_FORMAT))).json()
        assert good_text["choices"][0]["message"]["content"] == (
            "According to Data Retention: Logs are kept for 30 days and then deleted.")
        assert isinstance(orjson.loads(good_json["choices"][0]["message"]["content"])["answer"], str)

        assert (await client.post("/sim/sour", json={"model": "sim-sour-grapes"})).status_code == 400
        assert (await client.post("/sim/sour", json={"model": "sim-souring"})).json() == {"soured": ["sim-souring"]}
        bad_text = (await client.post("/v1/chat/completions", json=souring())).json()
        bad_json = (await client.post("/v1/chat/completions", json=souring(response_format=SCHEMA_FORMAT))).json()
        added = bad_text["choices"][0]["message"]["content"].removeprefix(good_text["choices"][0]["message"]["content"])
        assert added.strip() in personas._UNSUPPORTED_CLAIMS
        assert orjson.loads(bad_json["choices"][0]["message"]["content"])["answer"] == 42   # the wrong type

        assert (await client.delete("/sim/sour")).json() == {"soured": []}
        again = (await client.post("/v1/chat/completions", json=souring())).json()
        assert again["choices"][0]["message"]["content"] == good_text["choices"][0]["message"]["content"]
    finally:
        personas.sweeten()
