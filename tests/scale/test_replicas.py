"""Acceptance: several `shadowtap serve` replicas, each with its shipper, on one PostgreSQL store.

Every exchange a replica answered reaches PostgreSQL exactly once, under concurrent load and
across an outage of PostgreSQL (made unreachable through a loopback relay the test stops and
starts; the real server keeps running), and the outage never touches a live request.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.local_processes import shadowtap_command, stop_process
from tests.support.postgres import pg_rows, schema_url

pytestmark = pytest.mark.e2e

REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ship me"}]}


def start_shipper(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(shadowtap_command("ship", "--config", str(config), "--interval", "0.1",
                                              "--batch-size", "50"), stderr=open(log, "wb"))


def send(base_url: str, count: int, results: list) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            started = time.monotonic()
            response = client.post(f"{base_url}/chat/completions", json=REQUEST)
            results.append((response.status_code, response.headers.get("x-shadowtap-exchange-id"),
                            time.monotonic() - started, started))


def load(proxies, per_thread: int, threads_per_proxy: int) -> list:
    results: list = []
    with ThreadPoolExecutor(len(proxies) * threads_per_proxy) as pool:
        for proxy in proxies:
            for _ in range(threads_per_proxy):
                pool.submit(send, proxy.base_url, per_thread, results)
    return results


def wait_for_log(path: Path, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.1)


def wait_for_rows(url: str, expected: int, timeout_s: float = 90) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        count = pg_rows(url, "select count(*) from exchanges")[0][0]
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


@pytest.fixture
def replicas(proxy_factory, simulator, pg_schema, pg_relay, tmp_path):
    """Two replicas, each with a shipper into PostgreSQL through the relay."""
    url = schema_url(pg_schema, port=pg_relay.port)
    CaptureStore.open(url).close()  # the tables exist before anyone counts their rows
    extra = f'[store]\nurl = "{url}"\n'
    proxies = [proxy_factory(simulator.base_url, extra_config=extra) for _ in range(2)]
    shippers = [start_shipper(proxy.workdir / "shadowtap.toml", proxy.workdir / "ship.log") for proxy in proxies]
    for proxy in proxies:  # started (imports take seconds on a loaded machine) and stoppable by SIGTERM
        wait_for_log(proxy.workdir / "ship.log", "shipping ")
    yield proxies, url
    codes = [stop_process(shipper) for shipper in shippers]
    logs = [(proxy.workdir / "ship.log").read_text() for proxy in proxies]
    assert codes == [0, 0], logs
    assert not any("Traceback" in log for log in logs), logs


def assert_each_exchange_shipped_once(url: str, results: list) -> None:
    ids = [exchange_id for _, exchange_id, _, _ in results]
    assert None not in ids and len(set(ids)) == len(ids)
    assert wait_for_rows(url, len(ids)) == len(ids)
    assert sorted(row[0] for row in pg_rows(url, "select id from exchanges")) == sorted(ids)


def test_two_replicas_under_concurrent_load_ship_every_exchange_exactly_once(replicas):
    proxies, url = replicas
    results = load(proxies, per_thread=40, threads_per_proxy=3)
    assert [status for status, *_ in results] == [200] * 240
    assert_each_exchange_shipped_once(url, results)
    spooled = [sqlite3.connect(proxy.store_path).execute("select count(*) from exchanges").fetchone()[0]
               for proxy in proxies]
    assert sum(spooled) == 240 and min(spooled) > 0  # both replicas took a share, and kept their spools


def test_an_outage_of_postgres_leaves_live_requests_alone_and_loses_no_exchange(replicas, pg_relay):
    proxies, url = replicas
    results: list = []
    outage: dict[str, float] = {}

    def partition() -> None:
        time.sleep(1.0)
        outage["start"] = time.monotonic()
        pg_relay.stop()
        time.sleep(3.0)
        pg_relay.start()
        outage["end"] = time.monotonic()

    cutter = threading.Thread(target=partition)
    cutter.start()
    with ThreadPoolExecutor(4) as pool:
        for proxy in proxies:
            for _ in range(2):
                pool.submit(send_for, proxy.base_url, 5.5, results)
    cutter.join()
    assert results and all(status == 200 for status, *_ in results)
    during = [elapsed for _, _, elapsed, started in results if outage["start"] <= started <= outage["end"]]
    before = [elapsed for _, _, elapsed, started in results if started < outage["start"]]
    assert len(during) >= 10  # the load went on through the outage, as fast as before it (allowing
    assert statistics.median(during) < max(3 * statistics.median(before), 0.5)  # for a busy machine)
    assert_each_exchange_shipped_once(url, results)
    logs = "".join((proxy.workdir / "ship.log").read_text() for proxy in proxies)
    assert "shared store unavailable" in logs  # the shippers did see the outage


def send_for(base_url: str, seconds: float, results: list) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = client.post(f"{base_url}/chat/completions", json=REQUEST)
            results.append((response.status_code, response.headers.get("x-shadowtap-exchange-id"),
                            time.monotonic() - started, started))
            time.sleep(0.02)


def test_a_serving_app_with_a_shared_store_configured_never_loads_the_postgres_driver(tmp_path):
    """The live process cannot wait on PostgreSQL: it does not even import the driver."""
    script = f"""
import asyncio, sys
from shadowtap.core.config import config_from_dict
from shadowtap.proxy.app import create_app
import shadowtap.proxy.serve_command
config = config_from_dict({{"primary": {{"base_url": "http://127.0.0.1:9/v1"}},
                            "store": {{"path": {str(tmp_path / 's.db')!r}, "url": "postgresql://u@127.0.0.1:9/db"}}}})
app = create_app(config)

async def lifespan():
    messages = iter([{{"type": "lifespan.startup"}}, {{"type": "lifespan.shutdown"}}])
    async def receive():
        return next(messages)
    async def send(message):
        pass
    await app({{"type": "lifespan", "asgi": {{"version": "3.0"}}}}, receive, send)

asyncio.run(lifespan())
loaded = sorted(name for name in sys.modules if name.startswith(("psycopg", "shadowtap.core.store.postgres",
                                                                   "shadowtap.core.ship", "opentelemetry")))
print(",".join(loaded))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
