"""Bad input gets the documented behaviour, and the proxy keeps serving afterwards."""

import httpx
import orjson

from shadowtap.proxy.local_processes import free_port
from tests.support.store_reading import wait_for_exchange

QUESTION = {"model": "sim-large", "messages": [{"role": "user", "content": "support hours?"}]}


def assert_still_serving(proxy) -> None:
    assert httpx.get(f"{proxy.url}/healthz").json()["status"] == "ok"
    assert httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION).status_code == 200


def test_malformed_json_is_forwarded_and_captured_as_unparseable(proxy, simulator):
    simulator.clear()
    body = b'{"model": "sim-large", "messages": [ oops'
    response = httpx.post(f"{proxy.base_url}/chat/completions", content=body,
                          headers={"content-type": "application/json"})
    direct = httpx.post(f"{simulator.base_url}/chat/completions", content=body,
                        headers={"content-type": "application/json"})
    assert (response.status_code, response.content) == (direct.status_code, direct.content) == (400, direct.content)
    assert simulator.recorded()[0]["raw"].encode("latin-1") == body  # the primary decided
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert row["request_unparseable"] == 1 and row["request_raw"] == body and row["request_json"] is None
    assert_still_serving(proxy)


def test_oversized_body_gets_413_json_and_is_not_forwarded(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config="[server]\nmax_body_bytes = 1000")
    simulator.clear()
    big = orjson.dumps({**QUESTION, "padding": "x" * 5000})
    response = httpx.post(f"{proxy.base_url}/chat/completions", content=big,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and "1000 bytes" in error["message"]
    assert simulator.recorded() == []
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert 'shadowtap_requests_total{endpoint="chat.completions",status="413"} 1.0' in metrics
    assert_still_serving(proxy)


def test_oversized_body_without_content_length_is_cut_off_at_the_limit(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config="[server]\nmax_body_bytes = 1000")
    simulator.clear()

    def chunked_body():
        for _ in range(10):
            yield b"x" * 500

    response = httpx.post(f"{proxy.base_url}/chat/completions", content=chunked_body())
    assert response.status_code == 413
    assert simulator.recorded() == []
    assert_still_serving(proxy)


def test_invalid_utf8_is_forwarded_byte_for_byte_and_captured_raw(proxy, simulator):
    simulator.clear()
    body = b'{"model": "sim-large", "messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}]}'
    response = httpx.post(f"{proxy.base_url}/chat/completions", content=body,
                          headers={"content-type": "application/json"})
    direct = httpx.post(f"{simulator.base_url}/chat/completions", content=body,
                        headers={"content-type": "application/json"})
    assert (response.status_code, response.content) == (direct.status_code, direct.content)
    assert simulator.recorded()[0]["raw"].encode("latin-1") == body
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert row["request_unparseable"] == 1 and row["request_raw"] == body
    assert_still_serving(proxy)


def test_refused_connection_becomes_502_json_naming_the_upstream(proxy_factory):
    dead_port = free_port()  # nothing listens here
    proxy = proxy_factory(f"http://127.0.0.1:{dead_port}/v1")
    response = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION,
                          headers={"authorization": "Bearer sk-test-dead-upstream"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert f"127.0.0.1:{dead_port}" in error["message"]
    assert "Traceback" not in response.text and "sk-test-dead-upstream" not in response.text
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    assert row["status"] == 502 and f"127.0.0.1:{dead_port}" in row["upstream_error"]
    # Still serving: health answers and the next request gets the same clear error.
    assert httpx.get(f"{proxy.url}/healthz").status_code == 200
    assert httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION).status_code == 502


def test_unknown_paths_outside_v1_get_a_json_404(proxy):
    response = httpx.get(f"{proxy.url}/v2/chat/completions")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
