"""Canary state shared by replicas: with `[store] url` every `shadowtap serve` reads the shares from
the one Postgres store, so a rollback there stops the candidate on every replica, and a replica
started after the rollback never serves it."""

from __future__ import annotations

import time

import httpx
import pytest

from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import set_canary_share
from tests.support.postgres import pg_schema, pg_url  # noqa: F401  (fixtures)
from tests.support.servers import proxy_factory, simulator  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e   # two `shadowtap serve` replicas, the simulator, Postgres

QUESTION = {"model": "sim-small", "messages": [{"role": "user", "content": "What is a canary release?"}]}


def canary_config(url: str, candidate_base: str) -> str:
    return (f'[store]\nurl = "{url}"\n[canary]\nstate_poll_s = 0.1\nstate_stale_s = 30\n'
            f'[[candidates]]\nname = "good"\nmodel = "openai/cand-model"\napi_base = "{candidate_base}"\n'
            "sample_rate = 0.0\ncanary = { max_share = 1.0 }\n")


def status_on(proxy) -> str | None:
    return httpx.get(f"{proxy.url}/healthz").json()["canary"]["candidates"]["good"]["status"]


def wait_for_status(proxies, wanted: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(status_on(proxy) != wanted for proxy in proxies):
        assert time.monotonic() < deadline, [status_on(proxy) for proxy in proxies]
        time.sleep(0.05)


def answering_models(proxy, count: int = 10) -> set[str]:
    return {httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION, timeout=30).json()["model"]
            for _ in range(count)}


def test_a_rollback_in_the_shared_store_stops_every_replica_and_holds_for_one_started_later(
        proxy_factory, simulator, pg_url):  # noqa: F811
    candidate = simulator   # the simulator answers with the model it was asked for: cand-model
    config = canary_config(pg_url, candidate.base_url)
    replicas = [proxy_factory(simulator.base_url, extra_config=config) for _ in range(2)]
    with Store.open(pg_url) as store:
        set_canary_share(store, "good", 1.0, status="running", changed_by="test", reason="all traffic")
    wait_for_status(replicas, "running")
    assert all(answering_models(replica) == {"cand-model"} for replica in replicas)

    with Store.open(pg_url) as store:
        set_canary_share(store, "good", 0.0, status="rolled_back", changed_by="guard", reason="test rollback",
                         guard="error_rate")
    wait_for_status(replicas, "rolled_back")
    assert all(answering_models(replica) == {"sim-small"} for replica in replicas)

    replicas[0].stop()
    restarted = proxy_factory(simulator.base_url, extra_config=config)
    wait_for_status([restarted], "rolled_back")
    assert answering_models(restarted) == {"sim-small"}
