"""Fault injection on the shadow path: a candidate that hangs, trickles, refuses, resets or answers
429/503 never changes what the client gets, is recorded with its outcome at its total deadline, is
called once per request (never retried), and is cut off by its breaker.

Every request is sent both buffered and streamed, as Envoy's shadowing suite does.
"""

import contextlib
import time

import httpx
import pytest

from shadowtap.proxy.process_names import SHADOW_WORKER
from tests.support.fake_candidates import FakeCandidate, refused_base_url
from tests.support.shadow_support import QUESTION, candidate_toml, shadow_rows, shadows_of, wait_for_metric

TIMEOUT_S = 2.0
BREAKER_FAILURES = 3
# Requests in order; the first BREAKER_FAILURES reach each candidate (buffered, streamed, buffered),
# the rest find its breaker open.
STREAMED = [False, True, False, True, False]
# fault -> (outcome, error classes litellm may report for it)
FAULTS = {
    "hang": ("timeout", {"TimeoutError", "Timeout", "APITimeoutError"}),
    "trickle": ("timeout", {"TimeoutError"}),
    "refused": ("error", {"APIConnectionError", "InternalServerError"}),
    "reset": ("error", {"APIConnectionError", "InternalServerError"}),
    "error429": ("error", {"RateLimitError"}),
    "error503": ("error", {"ServiceUnavailableError", "InternalServerError"}),
}


@pytest.mark.timeout(180)
def test_each_candidate_fault_leaves_the_client_bytes_direct_and_is_recorded_once_until_the_breaker_opens(
        proxy_factory, simulator):
    with contextlib.ExitStack() as stack:
        fakes = {fault: stack.enter_context(FakeCandidate(fault)) for fault in FAULTS if fault != "refused"}
        urls = {fault: fake.base_url for fault, fake in fakes.items()} | {"refused": refused_base_url()}
        extra = "".join(candidate_toml(fault, urls[fault], timeout_s=TIMEOUT_S, max_concurrency=1) for fault in FAULTS)
        extra += f"[shadow]\nbreaker_failures = {BREAKER_FAILURES}\nbreaker_cooldown_s = 600.0\n"
        proxy = proxy_factory(simulator.base_url, extra_config=extra)

        rows_by_request = []
        for index, streamed in enumerate(STREAMED):
            body = {**QUESTION, "messages": [{"role": "user", "content": f"fault question {index}"}],
                    "stream": streamed}
            direct = httpx.post(f"{simulator.base_url}/chat/completions", json=body, timeout=30)
            proxied = httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=30)
            assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
            assert proxied.headers["content-type"] == direct.headers["content-type"]
            # One request at a time, so each candidate's breaker sees its failures in order.
            rows_by_request.append(shadows_of(proxy.store_path, proxied.headers["x-shadowtap-exchange-id"],
                                              len(FAULTS)))

        for fault, (outcome, error_classes) in FAULTS.items():
            rows = [by_candidate[fault] for by_candidate in rows_by_request]
            called, refused = rows[:BREAKER_FAILURES], rows[BREAKER_FAILURES:]
            assert [(r["outcome"], r["skip_reason"]) for r in called] == [(outcome, None)] * BREAKER_FAILURES, fault
            assert [r["is_stream"] for r in called] == [int(s) for s in STREAMED[:BREAKER_FAILURES]], fault
            assert all(r["error_class"] in error_classes for r in called), (fault, [r["error_class"] for r in called])
            assert [(r["outcome"], r["skip_reason"]) for r in refused] == [("skipped", "breaker_open")] * len(refused)
            if outcome == "timeout":
                # The total deadline held once: not cut early, not restarted by a retry.
                assert all(TIMEOUT_S * 950 <= r["latency_ms"] < TIMEOUT_S * 2000 for r in called), \
                    (fault, [r["latency_ms"] for r in called])
            if fault in fakes:
                assert len(fakes[fault].requests) == BREAKER_FAILURES, f"{fault} was retried or skipped"
                assert fakes[fault].peak_in_flight <= 1
            wait_for_metric(proxy.url, f'shadowtap_shadow_breaker_open{{candidate="{fault}"}} 1.0')


@pytest.mark.timeout(120)
def test_concurrent_requests_never_put_more_shadows_in_flight_than_the_cap(proxy_factory, simulator):
    """Trickling calls hold their slots to the deadline (long enough for the whole burst on a loaded
    machine); requests beyond the cap meanwhile are recorded as saturated, never queued."""
    cap = 3
    with FakeCandidate("trickle") as slow:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml(
            "slow", slow.base_url, timeout_s=8.0, max_concurrency=cap) + "[shadow]\nbreaker_failures = 1000\n")
        with httpx.Client(base_url=proxy.base_url, timeout=30) as client:
            ids = [client.post("/chat/completions", json={**QUESTION, "stream": i % 2 == 0}).headers[
                "x-shadowtap-exchange-id"] for i in range(12)]
        rows = [shadows_of(proxy.store_path, exchange_id, 1)["slow"] for exchange_id in ids]
        outcomes = [(r["outcome"], r["skip_reason"]) for r in rows]
        assert set(outcomes) <= {("timeout", None), ("skipped", "saturated")}
        assert outcomes.count(("skipped", "saturated")) >= 1
        assert 1 <= outcomes.count(("timeout", None)) == len(slow.requests)
        assert slow.peak_in_flight <= cap


def _name_of(pid: int) -> str:
    from pathlib import Path

    return Path(f"/proc/{pid}/comm").read_text().strip()


def _child_pids(pid: int) -> list[int]:
    from pathlib import Path

    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


@pytest.mark.timeout(120)
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/task"), reason="reads the process tree from /proc")
def test_a_dead_shadow_worker_never_fails_a_live_request_and_later_shadows_say_so(proxy_factory, simulator):
    import os
    import signal

    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml("c", candidate.base_url))
        assert httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION).status_code == 200
        # The shadow worker alone (the kernel keeps 15 characters of its name): the capture recorder,
        # another child, must go on writing the skips.
        workers = [pid for pid in _child_pids(proxy.process.pid) if _name_of(pid) == SHADOW_WORKER[:15]]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while httpx.get(f"{proxy.url}/healthz").json()["shadow_worker"] != "stopped":
            assert time.monotonic() < deadline, "the proxy should notice its shadow worker is gone"
            time.sleep(0.1)
        direct = httpx.post(f"{simulator.base_url}/chat/completions", json=QUESTION).json()["choices"]
        for stream in (False, True) * 5:
            response = httpx.post(f"{proxy.base_url}/chat/completions", json={**QUESTION, "stream": stream})
            assert response.status_code == 200
            if stream:
                assert response.text.rstrip().endswith("data: [DONE]")
            else:
                assert response.json()["choices"] == direct
        # The first request's own shadow row died with the worker's unwritten batch; the ten after
        # it are each recorded by the live process as skipped.
        deadline = time.monotonic() + 30
        while len(later := [row for row in shadow_rows(proxy.store_path) if row["outcome"] == "skipped"]) < 10:
            assert time.monotonic() < deadline, f"expected 10 skipped shadow rows, found {len(later)}"
            time.sleep(0.1)
        assert len(later) == 10 and {row["skip_reason"] for row in later} == {"worker_unavailable"}


def test_a_failure_while_handing_a_request_to_the_shadows_still_answers_from_the_primary(simulator):
    import asyncio

    from shadowtap.core.config import PrimaryConfig
    from shadowtap.proxy.forwarder import PrimaryForwarder
    from shadowtap.proxy.metrics import ProxyMetrics
    from shadowtap.proxy.upstream import PrimaryClient

    class BrokenShadows:
        def offer(self, exchange, body, body_bytes, *, serving=None):
            raise RuntimeError("planning blew up")

    captured = []

    class Sink:
        def submit(self, exchange):
            captured.append(exchange)
            return True

    async def scenario():
        primary = PrimaryClient(PrimaryConfig(base_url=simulator.base_url))
        await primary.start()
        forwarder = PrimaryForwarder(primary, Sink(), ProxyMetrics(), max_body_bytes=1 << 20,
                                     primary_api_key=None, shadows=BrokenShadows())
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=forwarder),
                                         base_url="http://proxy") as client:
                return await client.post("/v1/chat/completions", json=QUESTION)
        finally:
            await primary.close()

    response = asyncio.run(scenario())
    direct = httpx.post(f"{simulator.base_url}/chat/completions", json=QUESTION)
    assert response.status_code == 200 and response.json()["choices"] == direct.json()["choices"]
    assert len(captured) == 1 and captured[0].status == 200
