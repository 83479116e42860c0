"""Shadow saturation: offered shadow load far above capacity is dropped and counted, the queue to
the worker stays bounded, and the live path neither slows into errors nor loses a capture."""

import asyncio
import time

import httpx
import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.shadow.dispatcher import ShadowDispatcher
from tests.support.fake_candidates import FakeCandidate
from tests.support.shadow_support import QUESTION, candidate_toml, shadow_rows, wait_for_metric, wait_for_shadows
from tests.support.store_reading import wait_for_rows

CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


def chat_exchange() -> RawExchange:
    return RawExchange(id=new_exchange_id(), started_at=time.time(), t_start=0.0, method="POST",
                       path="/v1/chat/completions", query="", request_headers=[], request_body=CHAT)


def metric_value(text: str, line_prefix: str) -> float:
    (value,) = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_prefix)]
    return value


def test_a_full_shadow_queue_refuses_jobs_at_once_and_counts_each_as_saturated():
    """No worker is reading, so the queue fills; offer() must still return at once every time."""
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}, "shadow": {"queue_size": 3},
                               "candidates": [{"name": "c", "model": "openai/m"}]})
    metrics = ProxyMetrics()
    dispatcher = ShadowDispatcher(config, metrics)
    exchanges = [chat_exchange() for _ in range(10)]
    try:
        for exchange in exchanges:
            started = time.monotonic()
            dispatcher.offer(exchange, {"model": "m", "messages": []}, CHAT)
            assert time.monotonic() - started < 1.0  # put_nowait: a full queue never blocks the request
        assert [e.shadow_skips for e in exchanges] == [[]] * 3 + [[("c", "saturated")]] * 7
        text = metrics.render().decode()
        assert metric_value(text, "shadowtap_shadow_queue_dropped_total") == 7
        assert metric_value(text, "shadowtap_shadow_queue_depth") == 3
        assert metric_value(text, 'shadowtap_shadow_calls_total'
                                  '{candidate="c",outcome="skipped",reason="saturated"}') == 7
    finally:
        asyncio.run(dispatcher.stop())


async def burst(base_url: str, bodies: list[dict], monitor) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        watching = asyncio.ensure_future(monitor())
        responses = await asyncio.gather(*(client.post("/chat/completions", json=body) for body in bodies))
        watching.cancel()
        return responses


@pytest.mark.timeout(240)
def test_shadow_load_far_above_capacity_is_dropped_and_counted_while_every_live_request_succeeds(
        proxy_factory, simulator):
    live_requests, cap, queue_size = 200, 2, 4
    bodies = [{**QUESTION, "messages": [{"role": "user", "content": f"burst {i % 5}"}], "stream": i % 2 == 1}
              for i in range(live_requests)]
    direct = {(b["messages"][0]["content"], b["stream"]): httpx.post(f"{simulator.base_url}/chat/completions",
                                                                      json=b).content for b in bodies[:10]}
    with FakeCandidate("hang") as hang:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml(
            "hangs", hang.base_url, timeout_s=300.0, max_concurrency=cap)
            + f"[shadow]\nqueue_size = {queue_size}\ngrace_period_s = 1.0\n")
        depths: list[float] = []
        health: list[int] = []

        async def monitor() -> None:
            async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as admin:
                while True:
                    depths.append(metric_value((await admin.get("/metrics")).text, "shadowtap_shadow_queue_depth"))
                    reply = await admin.get("/healthz")
                    health.append(reply.status_code)
                    depths.append(reply.json()["shadow_queue_depth"])
                    await asyncio.sleep(0.05)

        responses = asyncio.run(burst(proxy.base_url, bodies, monitor))

        for body, response in zip(bodies, responses):
            assert response.status_code == 200
            assert response.content == direct[(body["messages"][0]["content"], body["stream"])]
        ids = {response.headers["x-shadowtap-exchange-id"] for response in responses}
        assert len(ids) == live_requests
        assert {row["id"] for row in wait_for_rows(proxy.store_path, live_requests, timeout_s=60)} == ids
        assert depths and max(depths) <= queue_size and set(health) == {200}

        # Every exchange has its shadow decision; only `cap` calls were ever made, the rest dropped.
        saturated = wait_for_shadows(proxy.store_path, live_requests - cap, timeout_s=60)
        assert {row["skip_reason"] for row in saturated} == {"saturated"}
        assert hang.peak_in_flight <= cap and len(hang.requests) == cap
        wait_for_metric(proxy.url, f'shadowtap_shadow_calls_total{{candidate="hangs",outcome="skipped",'
                                   f'reason="saturated"}} {float(live_requests - cap)}')

        assert proxy.stop() == 0  # the calls still hanging are cancelled within the grace period
        rows = shadow_rows(proxy.store_path)
        assert {row["exchange_id"] for row in rows} == ids and len(rows) == live_requests
        assert sorted(row["outcome"] for row in rows if row["outcome"] != "skipped") == ["cancelled"] * cap
