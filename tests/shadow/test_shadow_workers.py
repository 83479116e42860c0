"""`[shadow] workers = 2` on a real proxy: every job is called by exactly one worker, the proxy is
ready once both are, and the workers' lag is served on /metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.fake_candidates import FakeCandidate
from tests.support.shadow_support import QUESTION, candidate_toml, wait_for_metric, wait_for_shadows

REQUESTS = 12


def wait_until_ready(proxy, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    health: dict = {}
    while time.monotonic() < deadline:
        health = httpx.get(f"{proxy.url}/healthz").json()
        if health.get("shadow_worker") == "ready":
            return health
        time.sleep(0.2)
    raise AssertionError(f"the shadow workers never became ready: {health}")


@pytest.mark.timeout(240)
def test_two_workers_call_each_candidate_once_per_request_and_report_their_lag(proxy_factory, simulator):
    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml(
            "pair", candidate.base_url, max_concurrency=8) + "[shadow]\nworkers = 2\nprimary_twin_rate = 1.0\n"
            "twin_max_concurrency = 8\n")
        wait_until_ready(proxy)
        ids = []
        for index in range(REQUESTS):
            body = {**QUESTION, "messages": [{"role": "user", "content": f"question {index}"}]}
            response = httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=30)
            assert response.status_code == 200
            ids.append(response.headers["x-shadowtap-exchange-id"])
        rows = wait_for_shadows(proxy.store_path, 2 * REQUESTS)
        assert sorted((row["exchange_id"], row["candidate"], row["outcome"]) for row in rows) == sorted(
            [(exchange_id, "pair", "ok") for exchange_id in ids]
            + [(exchange_id, "primary_twin", "ok") for exchange_id in ids])
        assert len(candidate.requests) == REQUESTS  # no job was called by both workers
        assert proxy.log_text().count("shadow worker ready") == 2
        wait_for_metric(proxy.url, f"shadowtap_shadow_worker_lag_seconds_count {2 * REQUESTS}.0")
