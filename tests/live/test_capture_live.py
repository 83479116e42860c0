"""Capture through a real `shadowtap serve` in front of the simulated upstream: what the client
receives and what lands in the store agree, metadata is taken off the wire, and broken or
abandoned streams are recorded as such."""

from __future__ import annotations

import gzip
import time
import zlib

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.store_reading import rows as read_rows
from tests.support.store_reading import wait_for_exchange, wait_for_rows

CHAT = "/chat/completions"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "days", "unit"]}}}


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as client:
        yield client


def chat_body(question: str, **fields) -> dict:
    return {"model": "sim-small", "messages": [{"role": "user", "content": question}], **fields}


def stream_body(question: str, **fields) -> dict:
    return chat_body(question, stream=True, stream_options={"include_usage": True}, **fields)


def sse_data(raw: bytes) -> list[bytes]:
    """The data payloads of an SSE body, in order ([DONE] included)."""
    return [line[len(b"data: "):] for line in raw.split(b"\n") if line.startswith(b"data: ")]


def json_events(raw: bytes) -> list[dict]:
    return [orjson.loads(data) for data in sse_data(raw) if data != b"[DONE]"]


def delta_text(events: list[dict]) -> str:
    return "".join(choice["delta"].get("content") or ""
                   for event in events for choice in event["choices"])


def find_recorded(simulator, marker: str) -> dict:
    """The one request the simulator saw whose raw body contains `marker`."""
    matching = [request for request in simulator.recorded() if marker in request["raw"]]
    assert len(matching) == 1, f"expected one upstream request containing {marker!r}, got {len(matching)}"
    return matching[0]


def test_stream_is_captured_with_assembled_text_usage_and_ttft_when_include_usage_is_set(proxy, client):
    with client.stream("POST", proxy.base_url + CHAT, json=stream_body("Where do orders ship from?"),
                       headers={"x-sim-ttft-ms": "150"}) as response:
        raw = b"".join(response.iter_bytes())
        exchange_id = response.headers["x-shadowtap-exchange-id"]
    events = json_events(raw)
    received_text = delta_text(events)
    usage = events[-1]["usage"]
    assert sse_data(raw)[-1] == b"[DONE]" and received_text and usage

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["is_stream"] == 1
    assert row["stream_incomplete"] == 0
    assert row["response_text"] == received_text
    assert row["finish_reason"] == "stop"
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])
    assert 150 <= row["ttft_ms"] <= row["latency_ms"]


def test_stream_is_captured_with_tool_call_name_and_full_arguments_when_the_model_calls_a_tool(proxy, client):
    body = stream_body("What is the weather in Leeds?", tools=[WEATHER_TOOL])
    with client.stream("POST", proxy.base_url + CHAT, json=body) as response:
        raw = b"".join(response.iter_bytes())
        exchange_id = response.headers["x-shadowtap-exchange-id"]
    fragments = [call for event in json_events(raw) for choice in event["choices"]
                 for call in choice["delta"].get("tool_calls") or []]
    received_arguments = "".join(call["function"]["arguments"] for call in fragments)
    assert len(fragments) > 2  # the arguments really arrived in pieces

    row = wait_for_exchange(proxy.store_path, exchange_id)
    calls = orjson.loads(row["response_tool_calls"])
    assert len(calls) == 1
    assert calls[0]["id"] == fragments[0]["id"]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"] == received_arguments
    assert set(orjson.loads(calls[0]["function"]["arguments"])) >= {"city", "days", "unit"}
    assert row["finish_reason"] == "tool_calls"


def test_exchange_id_header_names_the_stored_row_when_a_request_is_captured(proxy, client):
    response = client.post(proxy.base_url + CHAT, json=chat_body("When do gift cards expire?"))
    assert response.status_code == 200
    exchange_id = response.headers["x-shadowtap-exchange-id"]

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["id"] == exchange_id
    assert row["response_json"] is not None
    assert orjson.loads(row["response_json"]) == response.json()


def test_metadata_headers_are_stored_and_not_forwarded_when_the_app_sends_them(proxy, simulator, client):
    simulator.clear()
    marker = "metadata-header-marker"
    response = client.post(proxy.base_url + CHAT, json=chat_body(f"How long are returns accepted? {marker}"),
                           headers={"x-shadowtap-task": "qa", "x-shadowtap-risk-tier": "high",
                                    "x-shadowtap-team": "search"})
    assert response.status_code == 200

    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert row["task"] == "qa"
    assert row["risk_tier"] == "high"
    assert orjson.loads(row["tags"]) == {"team": "search"}
    upstream_headers = find_recorded(simulator, marker)["headers"]
    assert [name for name in upstream_headers if name.startswith("x-shadowtap-")] == []


def test_shadowtap_body_field_is_stripped_before_forwarding_and_stored_when_present(proxy, simulator, client):
    simulator.clear()
    metadata = {"contexts": [{"id": "kb-12", "source": "kb", "text": "Gift cards never expire.",
                              "updated_at": "2026-11-01T00:00:00Z", "version": "v3"}]}
    app_fields = chat_body("Do gift cards expire? body-field-marker", temperature=0.2, max_tokens=50)
    response = client.post(proxy.base_url + CHAT, json={**app_fields, "shadowtap": metadata})
    assert response.status_code == 200

    upstream_body = find_recorded(simulator, "body-field-marker")["body"]
    assert upstream_body == app_fields
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert orjson.loads(row["shadowtap_metadata"]) == metadata
    assert orjson.loads(row["request_json"]) == app_fields


def _raw_response(client: httpx.Client, url: str, body: dict, headers: dict) -> tuple[httpx.Response, bytes]:
    """POST and read the body exactly as it came off the wire, without content decoding."""
    with client.stream("POST", url, json=body, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def test_gzip_body_is_relayed_byte_for_byte_and_stored_decoded_when_the_primary_compresses(
        proxy, simulator, client):
    body = chat_body("Where is the warehouse?")
    headers = {"x-sim-gzip": "1", "accept-encoding": "gzip"}
    via_proxy, proxied_bytes = _raw_response(client, proxy.base_url + CHAT, body, headers)
    direct, direct_bytes = _raw_response(client, simulator.base_url + CHAT, body, headers)

    assert proxied_bytes == direct_bytes
    assert proxied_bytes[:2] == b"\x1f\x8b"  # still gzip on the client's side of the proxy
    assert via_proxy.headers["content-encoding"] == direct.headers["content-encoding"] == "gzip"
    assert via_proxy.headers["content-length"] == direct.headers["content-length"] == str(len(direct_bytes))

    answer = orjson.loads(gzip.decompress(direct_bytes))
    row = wait_for_exchange(proxy.store_path, via_proxy.headers["x-shadowtap-exchange-id"])
    assert orjson.loads(row["response_json"]) == answer
    assert row["response_text"] == answer["choices"][0]["message"]["content"]
    assert row["response_unparseable"] == 0


def test_gzip_stream_is_relayed_byte_for_byte_and_stored_decoded_when_the_primary_compresses(
        proxy, simulator, client):
    body = stream_body("Where is the warehouse?")
    headers = {"x-sim-gzip": "1", "accept-encoding": "gzip"}
    via_proxy, proxied_bytes = _raw_response(client, proxy.base_url + CHAT, body, headers)
    direct, direct_bytes = _raw_response(client, simulator.base_url + CHAT, body, headers)

    assert proxied_bytes == direct_bytes
    assert proxied_bytes[:2] == b"\x1f\x8b"
    assert via_proxy.headers["content-encoding"] == direct.headers["content-encoding"] == "gzip"
    assert "content-length" not in via_proxy.headers and "content-length" not in direct.headers

    plaintext = zlib.decompress(direct_bytes, 31)
    row = wait_for_exchange(proxy.store_path, via_proxy.headers["x-shadowtap-exchange-id"])
    assert row["response_raw"] == plaintext
    assert row["response_text"] == delta_text(json_events(plaintext))
    assert row["stream_incomplete"] == 0


def test_ttft_is_the_first_content_event_when_the_stream_is_gzip_compressed(proxy, client):
    # The first event carries only the role; content starts one chunk delay later.
    headers = {"x-sim-gzip": "1", "accept-encoding": "gzip", "x-sim-chunk-delay-ms": "100"}
    via_proxy, _ = _raw_response(client, proxy.base_url + CHAT, stream_body("Where is the warehouse?"), headers)

    row = wait_for_exchange(proxy.store_path, via_proxy.headers["x-shadowtap-exchange-id"])
    assert 100 <= row["ttft_ms"] <= row["latency_ms"]
    assert row["ttft_ms"] - row["ttfb_ms"] >= 50  # the role-only first event is not the first token


def test_email_and_card_number_are_redacted_in_the_store_but_forwarded_when_a_message_contains_them(
        proxy, simulator, client):
    simulator.clear()
    email, card = "jane.doe@example.com", "4111 1111 1111 1111"  # a Luhn-valid test card
    question = f"Charge card {card} and mail the receipt to {email}, please."
    response = client.post(proxy.base_url + CHAT, json=chat_body(question))
    assert response.status_code == 200

    upstream = find_recorded(simulator, email)
    assert upstream["body"]["messages"][0]["content"] == question
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    stored_question = orjson.loads(row["request_json"])["messages"][0]["content"]
    assert stored_question == "Charge card [REDACTED:card] and mail the receipt to [REDACTED:email], please."
    assert email not in row["request_json"] and card not in row["request_json"]


def test_email_is_redacted_in_tags_and_headers_when_a_metadata_header_contains_one(proxy, client):
    email = "jane.doe@example.com"
    response = client.post(proxy.base_url + CHAT, json=chat_body("Do gift cards expire?"),
                           headers={"x-shadowtap-user": email})
    assert response.status_code == 200

    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert orjson.loads(row["tags"]) == {"user": "[REDACTED:email]"}
    assert email not in row["request_headers"]


def test_truncated_stream_reaches_the_client_and_is_captured_as_incomplete_when_the_primary_drops_it(
        proxy, client):
    received = bytearray()
    with client.stream("POST", proxy.base_url + CHAT, json=stream_body("Where do orders ship from?"),
                       headers={"x-sim-drop-after": "3"}) as response:
        exchange_id = response.headers["x-shadowtap-exchange-id"]
        # The transfer must end without its terminating chunk: a clean end would be invented.
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                received += chunk
    assert b"[DONE]" not in received
    events = json_events(bytes(received))
    assert len(events) == 3  # exactly what the primary sent, nothing invented
    partial_text = delta_text(events)
    assert partial_text

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["stream_incomplete"] == 1
    assert row["response_text"] == partial_text
    assert row["finish_reason"] is None
    assert row["upstream_error"]


def test_capture_is_flagged_and_proxy_keeps_serving_when_the_client_disconnects_mid_stream(proxy, client):
    started = time.monotonic()
    with client.stream("POST", proxy.base_url + CHAT, json=stream_body("Where do orders ship from?"),
                       headers={"x-sim-chunk-delay-ms": "300"}) as response:
        exchange_id = response.headers["x-shadowtap-exchange-id"]
        first = next(response.iter_raw())
    assert first.startswith(b"data: ")

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["client_disconnected"] == 1
    assert row["latency_ms"] < 3000  # the proxy stopped, rather than relaying all ~20 paced chunks
    assert time.monotonic() - started < 5

    after = client.post(proxy.base_url + CHAT, json=chat_body("Do gift cards expire?"))
    assert after.status_code == 200
    assert after.json()["choices"][0]["message"]["content"]


def _sample(metrics_text: str, name: str, labels: dict | None = None) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
    return total


def test_health_is_ok_and_metrics_count_requests_and_captures_when_requests_were_relayed(proxy, client):
    health = client.get(proxy.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    for question in ("Where do orders ship from?", "Do gift cards expire?", "How long are returns?"):
        assert client.post(proxy.base_url + CHAT, json=chat_body(question)).status_code == 200
    assert client.post(proxy.base_url + CHAT, json=chat_body("x"), headers={"x-sim-status": "429"}
                       ).status_code == 429
    wait_for_rows(proxy.store_path, 4)

    deadline = time.monotonic() + 5
    while True:
        text = client.get(proxy.url + "/metrics").text
        written = _sample(text, "shadowtap_capture_written_total")
        if written >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert _sample(text, "shadowtap_requests_total", {"endpoint": "chat.completions", "status": "200"}) == 3
    assert _sample(text, "shadowtap_requests_total", {"endpoint": "chat.completions", "status": "429"}) == 1
    assert _sample(text, "shadowtap_requests_total") == 4
    assert written == 4
    assert len(read_rows(proxy.store_path)) == 4


def test_metrics_series_stay_bounded_when_clients_send_arbitrary_paths(proxy):
    for index in range(30):
        httpx.get(f"{proxy.base_url}/no-such-thing-{index}")
    text = httpx.get(f"{proxy.url}/metrics").text
    series = [line for line in text.splitlines() if line.startswith("shadowtap_requests_total{")]
    assert len(series) == 1 and 'endpoint="other"' in series[0]
    assert "no-such-thing" not in text


def test_raw_stream_events_are_not_kept_when_the_streamed_answer_needed_redaction(proxy):
    # The simulator echoes context sentences, so put an e-mail address in the context it answers from.
    body = {"model": "sim-large", "stream": True, "messages": [
        {"role": "system",
         "content": "<context>Write to the billing team at billing.team@example.com today.</context>"},
        {"role": "user", "content": "Who do I write to about billing?"}]}
    with httpx.stream("POST", f"{proxy.base_url}/chat/completions", json=body) as response:
        received = response.read()
        exchange_id = response.headers["x-shadowtap-exchange-id"]
    assert b"billing.team" in received  # the app gets the answer untouched
    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert "[REDACTED:email]" in row["response_text"]
    assert row["response_raw"] is None
    assert b"billing.team@example.com" not in open(proxy.store_path, "rb").read()
