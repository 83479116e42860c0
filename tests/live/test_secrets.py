"""Client credentials never reach the store, its WAL, the logs, the metrics or an export."""

import subprocess
import sys

import httpx

from shadowtap.proxy.local_processes import free_port
from tests.support.store_reading import wait_for_rows

CANARIES = {
    "authorization": "sk-canary-authorization-7f3a9",
    "api-key": "canary-azure-api-key-51c2",
    "x-api-key": "canary-anthropic-key-88d0",
    "cookie": "session=canary-cookie-value-0b1e",
    "x-shadowtap-key": "canary-proxy-key-4e6d",
}
QUESTION = {"model": "sim-large", "messages": [{"role": "user", "content": "support hours?"}]}


def canary_headers(**extra: str) -> dict:
    headers = {name: value for name, value in CANARIES.items()}
    headers["authorization"] = f"Bearer {CANARIES['authorization']}"
    return {**headers, **extra}


def drive_mixed_traffic(base_url: str) -> int:
    """Successes, streams, errors, malformed bodies: every path a key could leak through."""
    sent = 0
    with httpx.Client(timeout=20) as client:
        for extra in ({}, {"x-sim-status": "401"}, {"x-sim-status": "429"}, {"x-sim-status": "500"}):
            client.post(f"{base_url}/chat/completions", json=QUESTION, headers=canary_headers(**extra))
            sent += 1
        with client.stream("POST", f"{base_url}/chat/completions", json={**QUESTION, "stream": True},
                           headers=canary_headers()) as response:
            response.read()
        sent += 1
        client.post(f"{base_url}/chat/completions", content=b'{"broken": ', headers=canary_headers())
        client.post(f"{base_url}/embeddings", json={"model": "e", "input": "x"}, headers=canary_headers())
        sent += 2
    return sent


def assert_no_canary_in(label: str, data: bytes) -> None:
    for name, canary in CANARIES.items():
        assert canary.encode() not in data, f"{name} value leaked into {label}"


def test_client_keys_appear_nowhere_in_the_store_wal_logs_metrics_or_export(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url)
    dead = proxy_factory(f"http://127.0.0.1:{free_port()}/v1")
    sent = drive_mixed_traffic(proxy.base_url)
    httpx.post(f"{dead.base_url}/chat/completions", json=QUESTION, headers=canary_headers())
    found = wait_for_rows(proxy.store_path, sent)
    assert len(found) == sent and all(row["client_key_hash"] for row in found)

    # While running, the newest captures are still in the -wal file.
    wal = proxy.store_path.with_name(proxy.store_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    assert_no_canary_in("the -wal file", wal.read_bytes())
    assert_no_canary_in("/metrics", httpx.get(f"{proxy.url}/metrics").content)
    export = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "captures", "export", "--store",
                             str(proxy.store_path)], capture_output=True, timeout=30)
    assert export.returncode == 0 and export.stdout.count(b"\n") == sent
    assert_no_canary_in("the JSONL export", export.stdout)

    for running in (proxy, dead):
        running.stop()
        for path in running.workdir.iterdir():  # store, -wal, -shm, logs, stderr, config
            assert_no_canary_in(path.name, path.read_bytes())
