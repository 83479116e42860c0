"""Shadow mirroring with real processes: candidates never touch the live answer, and every
decision about them is recorded."""

import time

import httpx
import orjson
import pytest

from tests.support.fake_candidates import FakeCandidate
from tests.support.shadow_support import QUESTION, candidate_toml, shadow_rows, wait_for_shadows
from tests.support.store_reading import rows

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]
FORMAT = {"type": "json_schema", "json_schema": {"name": "a", "schema": {
    "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}


def test_client_gets_direct_bytes_and_each_shadow_its_outcome_when_candidates_hang_fail_or_reset(
        proxy_factory, simulator):
    with FakeCandidate("hang") as hang, FakeCandidate("error500") as failing, FakeCandidate("reset") as resetting:
        extra = (candidate_toml("hangs", hang.base_url, timeout_s=1.0, max_concurrency=2)
                 + candidate_toml("fails", failing.base_url, max_concurrency=16)
                 + candidate_toml("resets", resetting.base_url, max_concurrency=16)
                 + "[shadow]\nbreaker_failures = 100\n")
        proxy = proxy_factory(simulator.base_url, extra_config=extra)
        requests = 6
        for index in range(requests):
            body = {**QUESTION, "messages": [{"role": "user", "content": f"question {index}"}]}
            stream = index % 2 == 1
            body = {**body, "stream": True} if stream else body
            direct = httpx.post(f"{simulator.base_url}/chat/completions", json=body)
            proxied = httpx.post(f"{proxy.base_url}/chat/completions", json=body)
            assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
        found = wait_for_shadows(proxy.store_path, 3 * requests)
        by_candidate: dict[str, list[str]] = {}
        for row in found:
            by_candidate.setdefault(row["candidate"], []).append(row["outcome"] + ":" + (row["skip_reason"] or ""))
        assert sorted(by_candidate["fails"]) == ["error:"] * requests
        assert sorted(by_candidate["resets"]) == ["error:"] * requests
        # At most two calls to the hanging candidate at once; the rest were saturated or timed out.
        assert set(by_candidate["hangs"]) <= {"timeout:", "skipped:saturated"}
        assert "timeout:" in by_candidate["hangs"]
        assert hang.peak_in_flight <= 2
        timeouts = [r for r in found if r["candidate"] == "hangs" and r["outcome"] == "timeout"]
        assert all(900 <= r["latency_ms"] < 5000 for r in timeouts)  # the 1 s total deadline held
        # Never retried: one request per attempt at the failing candidate.
        assert len(failing.requests) == requests


def test_candidate_never_receives_the_client_key_and_gets_tools_and_format_intact(proxy_factory, simulator):
    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url,
                              extra_config=candidate_toml("careful", candidate.base_url, api_key_env="CANDIDATE_KEY"),
                              env={"CANDIDATE_KEY": "sk-candidate-own-key"})
        body = {**QUESTION, "tools": TOOLS, "tool_choice": "auto", "response_format": FORMAT, "temperature": 0.3,
                "seed": 11, "max_tokens": 50_000}
        response = httpx.post(f"{proxy.base_url}/chat/completions", json=body,
                              headers={"authorization": "Bearer sk-client-secret-key", "x-api-key": "client-x"})
        assert response.status_code == 200
        (row,) = wait_for_shadows(proxy.store_path, 1)
        assert row["outcome"] == "ok" and row["response_text"] == "fake answer"
        (received,) = candidate.requests
        assert received["headers"]["authorization"] == "Bearer sk-candidate-own-key"
        assert "sk-client-secret-key" not in orjson.dumps(received).decode()
        assert "client-x" not in orjson.dumps(received).decode()
        assert received["body"]["tools"] == TOOLS
        assert received["body"]["response_format"] == FORMAT
        assert (received["body"]["temperature"], received["body"]["seed"]) == (0.3, 11)
        assert received["body"]["max_tokens"] == 1024  # capped by the candidate's max_tokens


def test_streamed_requests_are_mirrored_as_streams_with_time_to_first_token(proxy_factory, simulator):
    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml("streamer", candidate.base_url))
        httpx.post(f"{proxy.base_url}/chat/completions", json={**QUESTION, "stream": True})
        (row,) = wait_for_shadows(proxy.store_path, 1)
        assert candidate.requests[0]["body"]["stream"] is True
        assert row["is_stream"] == 1 and row["response_text"] == "fake answer"
        assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_budget_cap_stops_shadowing_and_says_so_in_store_and_metrics(proxy_factory, simulator):
    with FakeCandidate("ok") as candidate:
        # Priced as gpt-4o-mini: one fake answer (1000 + 1000 tokens) costs more than the budget.
        extra = (f'[[candidates]]\nname = "pricey"\nmodel = "openai/gpt-4o-mini"\napi_base = "{candidate.base_url}"\n'
                 "daily_budget_usd = 0.0001\nmax_concurrency = 1\n")
        proxy = proxy_factory(simulator.base_url, extra_config=extra)
        for _ in range(4):
            httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION)
            wait_for_shadows(proxy.store_path, 1)
        found = wait_for_shadows(proxy.store_path, 4)
        outcomes = sorted(row["outcome"] + ":" + (row["skip_reason"] or "") for row in found)
        assert outcomes == ["ok:"] + ["skipped:over_budget"] * 3
        assert len(candidate.requests) == 1
        assert next(row for row in found if row["outcome"] == "ok")["cost_usd"] > 0.0001
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{proxy.url}/metrics").text
            if 'candidate="pricey",outcome="skipped",reason="over_budget"} 3.0' in metrics:
                break
            time.sleep(0.2)
        assert 'candidate="pricey",outcome="skipped",reason="over_budget"} 3.0' in metrics
        assert 'shadowtap_shadow_spend_today_usd{candidate="pricey"}' in metrics


def test_breaker_opens_after_consecutive_failures(proxy_factory, simulator):
    with FakeCandidate("error500") as failing:
        proxy = proxy_factory(simulator.base_url,
                              extra_config=candidate_toml("flaky", failing.base_url, max_concurrency=1)
                              + "[shadow]\nbreaker_failures = 2\nbreaker_cooldown_s = 60.0\n")
        for count in range(1, 6):
            httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION)
            wait_for_shadows(proxy.store_path, count)
        outcomes = [r["outcome"] + ":" + (r["skip_reason"] or "")
                    for r in sorted(wait_for_shadows(proxy.store_path, 5), key=lambda r: r["started_at"])]
        assert outcomes == ["error:", "error:", "skipped:breaker_open", "skipped:breaker_open", "skipped:breaker_open"]
        assert len(failing.requests) == 2


def test_sigterm_records_unfinished_shadows_as_cancelled_and_loses_no_exchange(proxy_factory, simulator):
    with FakeCandidate("hang") as hang:
        proxy = proxy_factory(simulator.base_url,
                              extra_config=candidate_toml("stuck", hang.base_url, timeout_s=300.0, max_concurrency=8)
                              + "[shadow]\ngrace_period_s = 1.0\n")
        ids = [httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION).headers["x-shadowtap-exchange-id"]
               for _ in range(5)]
        deadline = time.monotonic() + 10
        while hang.in_flight < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        assert proxy.stop() == 0
        assert time.monotonic() - started < 20
        assert sorted(r["id"] for r in rows(proxy.store_path)) == sorted(ids)
        shadows = shadow_rows(proxy.store_path)
        assert sorted(r["outcome"] for r in shadows) == ["cancelled"] * 5


@pytest.mark.parametrize("headers, body, reason", [
    ({"x-stainless-retry-count": "1"}, QUESTION, "client_retry"),
])
def test_client_retries_are_not_mirrored(proxy_factory, simulator, headers, body, reason):
    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml("c", candidate.base_url))
        httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers=headers)
        (row,) = wait_for_shadows(proxy.store_path, 1)
        assert (row["outcome"], row["skip_reason"]) == ("skipped", reason)
        assert candidate.requests == []


def test_embeddings_are_mirrored_only_to_candidates_that_list_them(proxy_factory, simulator):
    extra = (candidate_toml("embedder", simulator.base_url, endpoints=["embeddings"])
             + candidate_toml("chatter", simulator.base_url))
    proxy = proxy_factory(simulator.base_url, extra_config=extra)
    request = {"model": "sim-embed", "input": ["where do orders ship from?", "returns policy"]}
    direct = httpx.post(f"{simulator.base_url}/embeddings", json=request)
    through = httpx.post(f"{proxy.base_url}/embeddings", json=request)
    assert (through.status_code, through.content) == (direct.status_code, direct.content)
    by_candidate = {row["candidate"]: row for row in wait_for_shadows(proxy.store_path, 2)}
    embedded, skipped = by_candidate["embedder"], by_candidate["chatter"]
    assert (embedded["outcome"], embedded["model"], embedded["is_stream"]) == ("ok", "openai/fake-embedder", 0), (
        embedded["error_class"], embedded["error_message"])
    assert embedded["prompt_tokens"] and embedded["latency_ms"] is not None and embedded["response_text"] is None
    assert (skipped["outcome"], skipped["skip_reason"]) == ("skipped", "ineligible")
