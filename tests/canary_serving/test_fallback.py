"""Deterministic fallback: when the candidate cannot be used, nothing reaches the app and the reason is kept.

Each test calls `CanaryServing.serve` in-process against a fake candidate on loopback and collects
what would have been sent to the app.
"""

import asyncio
import time

import pytest

from shadowtap.core.config import (
    CanaryConfig,
    CandidateCanaryConfig,
    CandidateConfig,
    PrimaryConfig,
    ServerConfig,
    ShadowtapConfig,
)
from shadowtap.core.store import Store
from shadowtap.proxy.canary import serving as serving_module
from shadowtap.proxy.canary.candidate_call import with_model
from shadowtap.proxy.canary.serving import Assignment, CanaryServing
from shadowtap.proxy.dialects import dialect_for_path
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics
from tests.support.fake_candidates import FakeCandidate

pytestmark = pytest.mark.e2e  # a fake candidate server on loopback

CHAT = dialect_for_path("/v1/chat/completions")
PLAIN = b'{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}'
STRUCTURED = PLAIN[:-1] + b',"response_format":{"type":"json_object"}}'


def serving_for(api_base: str, tmp_path, timeout_s: float = 5.0,
                max_body_bytes: int = 1 << 20) -> tuple[CanaryServing, ProxyMetrics]:
    candidate = CandidateConfig(name="cand", model="openai/cand-model", api_base=api_base,
                                canary=CandidateCanaryConfig(timeout_s=timeout_s))
    config = ShadowtapConfig(server=ServerConfig(max_body_bytes=max_body_bytes),
                             primary=PrimaryConfig(base_url="http://127.0.0.1:9/v1"), candidates=[candidate],
                             canary=CanaryConfig(), source=str(tmp_path / "c.toml"))
    metrics = ProxyMetrics()
    return CanaryServing(config, metrics, open_state_store=lambda: Store.open(tmp_path / "s.db")), metrics


def served(serving: CanaryServing, body: bytes) -> tuple[bool, RawExchange, list[dict]]:
    exchange = RawExchange(new_exchange_id(), time.time(), 0.0, "POST", "/v1/chat/completions", "", [], body)
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def relay(response, exchange, send, watcher) -> None:
        await send({"type": "http.response.start", "status": response.status, "headers": []})
        body = b"".join([chunk async for chunk in response.chunks()])
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def run() -> bool:
        await serving.start()
        watcher = asyncio.get_running_loop().create_future()
        try:
            assignment = Assignment("cand", *with_model(body, "cand-model"))
            return await serving.serve(assignment, exchange, CHAT, "/chat/completions", b"", send, relay, watcher)
        finally:
            await serving.close()

    return asyncio.run(run()), exchange, sent


@pytest.mark.parametrize("behaviour", ["error500", "error429", "reset"])
def test_a_candidate_error_sends_nothing_and_records_candidate_error(tmp_path, behaviour):
    with FakeCandidate(behaviour) as candidate:
        serving, metrics = serving_for(candidate.base_url, tmp_path)
        answered, exchange, sent = served(serving, PLAIN)
    assert answered is False and sent == []
    assert (exchange.served_by, exchange.fallback_reason) == ("primary", "candidate_error")
    assert metrics.canary_fallbacks.labels("cand", "candidate_error")._value.get() == 1


def test_a_candidate_missing_its_deadline_sends_nothing_and_records_candidate_timeout(tmp_path):
    with FakeCandidate("hang") as candidate:
        serving, _ = serving_for(candidate.base_url, tmp_path, timeout_s=0.3)
        answered, exchange, sent = served(serving, PLAIN)
    assert answered is False and sent == []
    assert exchange.fallback_reason == "candidate_timeout"


def test_a_contract_bound_answer_that_trickles_past_the_deadline_falls_back(tmp_path):
    with FakeCandidate("trickle", trickle_interval_s=0.05) as candidate:
        serving, _ = serving_for(candidate.base_url, tmp_path, timeout_s=0.3)
        answered, exchange, sent = served(serving, STRUCTURED)
    assert answered is False and sent == []
    assert exchange.fallback_reason == "candidate_timeout"


def test_a_contract_breaking_answer_sends_nothing_and_records_contract_invalid(tmp_path):
    with FakeCandidate("ok") as candidate:  # answers "fake answer": not JSON
        serving, _ = serving_for(candidate.base_url, tmp_path)
        answered, exchange, sent = served(serving, STRUCTURED)
    assert answered is False and sent == []
    assert exchange.fallback_reason == "contract_invalid"


def test_a_contract_bound_answer_too_large_to_hold_falls_back_as_a_candidate_error(tmp_path):
    with FakeCandidate("ok") as candidate:
        serving, _ = serving_for(candidate.base_url, tmp_path, max_body_bytes=64)
        answered, exchange, sent = served(serving, STRUCTURED)
    assert answered is False and sent == []
    assert exchange.fallback_reason == "candidate_error"


def test_an_answer_without_a_contract_is_relayed_and_recorded_as_served_by_the_candidate(tmp_path):
    with FakeCandidate("ok") as candidate:
        serving, metrics = serving_for(candidate.base_url, tmp_path)
        answered, exchange, sent = served(serving, PLAIN)
        received = candidate.requests[-1]
    assert answered is True and b"fake answer" in sent[-1]["body"]
    assert (exchange.served_by, exchange.fallback_reason) == ("cand", None)
    assert metrics.canary_served.labels("cand")._value.get() == 1
    assert received["body"] == {"model": "cand-model", "messages": [{"role": "user", "content": "hi"}]}


def test_a_bug_in_the_canary_code_falls_back_instead_of_failing_the_request(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(serving_module, "answer_errors", broken)
    with FakeCandidate("ok") as candidate:
        serving, _ = serving_for(candidate.base_url, tmp_path)
        answered, exchange, sent = served(serving, STRUCTURED)
    assert answered is False and sent == []
    assert exchange.fallback_reason == "canary_error"
