"""Graceful shutdown of a real `shadowtap serve`: in-flight requests finish, and every exchange a
client received in full is in the store when the process has exited."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import orjson

from tests.support.store_reading import rows as read_rows

IN_FLIGHT = 50


def _request(index: int) -> tuple[dict, dict]:
    """A mix of paced streams and slow plain answers, so all are mid-way when SIGTERM lands."""
    body = {"model": "sim-small", "messages": [{"role": "user", "content": f"Where do orders ship from? #{index}"}]}
    kind = index % 3
    if kind == 0:
        return {**body, "stream": True}, {"x-sim-chunk-delay-ms": "40"}
    if kind == 1:
        return ({**body, "stream": True, "stream_options": {"include_usage": True}},
                {"x-sim-ttft-ms": "300", "x-sim-chunk-delay-ms": "20"})
    return body, {"x-sim-latency-ms": "600"}


async def _exchange(client: httpx.AsyncClient, url: str, index: int) -> str | None:
    """The exchange id of a response received completely, else None."""
    body, headers = _request(index)
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            raw = b"".join([chunk async for chunk in response.aiter_bytes()])
            exchange_id = response.headers.get("x-shadowtap-exchange-id")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    if body.get("stream"):
        complete = raw.rstrip().endswith(b"data: [DONE]")
    else:
        complete = bool(orjson.loads(raw)["choices"][0]["message"]["content"])
    return exchange_id if complete else None


async def _wait_until_upstream_saw(simulator_url: str, count: int, timeout_s: float = 5.0) -> int:
    async with httpx.AsyncClient(timeout=5) as admin:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = len((await admin.get(f"{simulator_url}/sim/requests")).json())
            if seen >= count or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.02)


async def _sigterm_mid_flight(proxy, simulator) -> tuple[list[str | None], int, int]:
    url = proxy.base_url + "/chat/completions"
    limits = httpx.Limits(max_connections=IN_FLIGHT * 2, max_keepalive_connections=IN_FLIGHT * 2)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        tasks = [asyncio.create_task(_exchange(client, url, index)) for index in range(IN_FLIGHT)]
        seen_upstream = await _wait_until_upstream_saw(simulator.url, IN_FLIGHT)
        stored_before = len(read_rows(proxy.store_path))
        proxy.process.send_signal(signal.SIGTERM)
        return list(await asyncio.gather(*tasks)), seen_upstream, stored_before


def test_every_completed_response_is_stored_and_exit_is_clean_when_sigterm_arrives_mid_flight(
        proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config="[server]\ngraceful_shutdown_s = 8")
    simulator.clear()

    results, seen_upstream, stored_before = asyncio.run(_sigterm_mid_flight(proxy, simulator))
    returncode = proxy.process.wait(timeout=15)

    # Every request really was in flight when the signal came, so every capture happened after it.
    assert seen_upstream == IN_FLIGHT
    assert stored_before == 0
    completed = [exchange_id for exchange_id in results if exchange_id is not None]
    # In-flight requests are allowed to finish within graceful_shutdown_s.
    assert len(completed) == IN_FLIGHT
    stored_ids = {row["id"] for row in read_rows(proxy.store_path)}
    assert set(completed) <= stored_ids
    assert len(stored_ids) == len(completed)

    assert returncode in (0, -signal.SIGTERM)
    log_entries = [orjson.loads(line) for line in proxy.log_text().splitlines() if line.startswith("{")]
    drained = [entry for entry in log_entries if entry.get("message") == "capture drained"]
    assert len(drained) == 1
    assert drained[0]["lost_at_shutdown"] == 0
