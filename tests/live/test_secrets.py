"""Client credentials never reach the store, its WAL, the logs, the metrics or an export: neither
in a header (by name, or any name that suggests a credential) nor in the query string."""

import subprocess
import sys

import httpx

from shadowtap.proxy.local_processes import free_port
from tests.support.fake_candidates import FakeCandidate
from tests.support.store_reading import wait_for_exchange, wait_for_rows

CANARIES = {
    "authorization": "sk-canary-authorization-7f3a9",
    "api-key": "canary-azure-api-key-51c2",
    "x-api-key": "canary-anthropic-key-88d0",
    "cookie": "session=canary-cookie-value-0b1e",
    "x-shadowtap-key": "canary-proxy-key-4e6d",
    "x-client-credential": "canary-client-credential-2d7b",  # named in no list, only suggestive
}
# A key in the query string, as Google's APIs take it, and other parameters named like credentials.
QUERY_CANARIES = {"key": "canary-query-key-a9c3", "access_token": "canary-query-token-61fe",
                  "sig": "canary-query-sig-0c58"}
QUERY = "alt=sse&" + "&".join(f"{name}={value}" for name, value in QUERY_CANARIES.items())
# Every place below is also checked with debug logging and the access log on.
LOUD_LOGS = '[server]\nlog_level = "debug"\naccess_log = true'
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
            client.post(f"{base_url}/chat/completions?{QUERY}", json=QUESTION, headers=canary_headers(**extra))
            sent += 1
        with client.stream("POST", f"{base_url}/chat/completions?{QUERY}", json={**QUESTION, "stream": True},
                           headers=canary_headers()) as response:
            response.read()
        sent += 1
        client.post(f"{base_url}/chat/completions?{QUERY}", content=b'{"broken": ', headers=canary_headers())
        client.post(f"{base_url}/embeddings?{QUERY}", json={"model": "e", "input": "x"}, headers=canary_headers())
        sent += 2
    return sent


def assert_no_canary_in(label: str, data: bytes) -> None:
    for name, canary in (CANARIES | QUERY_CANARIES).items():
        assert canary.encode() not in data, f"{name} value leaked into {label}"


def test_client_keys_appear_nowhere_in_the_store_wal_logs_metrics_or_export(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config=LOUD_LOGS)
    dead = proxy_factory(f"http://127.0.0.1:{free_port()}/v1", extra_config=LOUD_LOGS)
    sent = drive_mixed_traffic(proxy.base_url)
    httpx.post(f"{dead.base_url}/chat/completions?{QUERY}", json=QUESTION, headers=canary_headers())
    found = wait_for_rows(proxy.store_path, sent)
    assert len(found) == sent and all(row["client_key_hash"] for row in found)
    assert all(row["query"] == "alt=sse&key=[secret]&access_token=[secret]&sig=[secret]" for row in found)

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
        assert "/chat/completions?alt=sse&key=[secret]" in running.log_text(), "no access log: it proves nothing"
        for path in running.workdir.iterdir():  # store, -wal, -shm, logs, stderr, config
            assert_no_canary_in(path.name, path.read_bytes())


def test_the_primary_gets_the_query_and_headers_as_sent_while_the_store_keeps_neither_credential(proxy_factory):
    with FakeCandidate("ok") as primary:  # it records the request target, query string and all
        proxy = proxy_factory(primary.base_url)
        response = httpx.post(f"{proxy.base_url}/chat/completions?{QUERY}", json=QUESTION,
                              headers={"x-client-credential": CANARIES["x-client-credential"], "x-request-id": "r-1"})
        assert response.status_code == 200
        row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"])
    (received,) = primary.requests
    assert received["path"] == f"/v1/chat/completions?{QUERY}"
    assert received["headers"]["x-client-credential"] == CANARIES["x-client-credential"]
    assert row["query"] == "alt=sse&key=[secret]&access_token=[secret]&sig=[secret]"
    assert "x-client-credential" not in row["request_headers"] and '"x-request-id":"r-1"' in row["request_headers"]
