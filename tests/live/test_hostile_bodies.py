"""A body built to be expensive to capture never freezes the proxy for other clients: rows are
built in a child process, and redaction is linear however the digits are laid out."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from shadowtap.core import redaction
from shadowtap.core.redaction import Redactor
from shadowtap.proxy.capture.builder_process import RowBuilderProcess, RowBuilderSettings
from tests.support.factories import raw_exchange, row_builder
from tests.support.fault_processes import wait_until

TWENTY_MB_OF_DIGITS = b"1 " * 10_000_000


_PROBE = """
import sys, time, httpx
url, latencies = sys.argv[1], []
with httpx.Client(timeout=30) as client:
    print("ready", flush=True)
    while not sys.stdin.closed and time.monotonic() < float(sys.argv[2]):
        started = time.perf_counter()
        assert client.get(url).status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.01)
        if select.select([sys.stdin], [], [], 0)[0]:
            break
print(" ".join(f"{latency:.6f}" for latency in latencies), flush=True)
""".replace("import sys,", "import select, sys,")


class HealthProbe:
    """Requests /healthz every 10 ms from a process of its own (so the test's own work, sending
    20 MB, cannot delay it) and keeps every latency."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.latencies_s: list[float] = []
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> HealthProbe:
        self._process = subprocess.Popen([sys.executable, "-c", _PROBE, self._url, str(time.monotonic() + 120)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc) -> None:
        output, _ = self._process.communicate("stop\n", timeout=60)
        self.latencies_s = [float(value) for value in output.split()]


def _stored_count(store_path) -> int:
    connection = sqlite3.connect(store_path)
    try:
        return connection.execute("select count(*) from exchanges").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize("body", [
    TWENTY_MB_OF_DIGITS,
    b'{"model":"sim-small","messages":[{"role":"user","content":"' + TWENTY_MB_OF_DIGITS + b'"}]}',
], ids=["raw-digits", "digits-in-json"])
def test_healthz_stays_fast_while_a_20mb_body_of_digits_is_captured(proxy, body):
    with HealthProbe(f"{proxy.url}/healthz") as probe:
        time.sleep(0.2)
        answer = httpx.post(f"{proxy.base_url}/chat/completions", content=body, timeout=60,
                            headers={"content-type": "application/json"})
        assert answer.status_code in (200, 400)
        wait_until(lambda: _stored_count(proxy.store_path) == 1, 60, "the 20 MB exchange was not captured")
        time.sleep(0.2)
    assert len(probe.latencies_s) > 20
    assert max(probe.latencies_s) < 0.050, sorted(probe.latencies_s)[-5:]


def test_a_body_over_the_capture_limit_is_stored_cut_redacted_and_flagged():
    builder = row_builder()
    limit = 1 << 20
    card = "4111 1111 1111 1111"
    # The card straddles the limit: it must be recognised whole, then cut.
    content = "x" * (limit - 60) + " " + card + " " + "y" * 200
    row = builder.build(raw_exchange(request={"model": "m", "messages": [{"role": "user", "content": content}]}))
    assert row["capture_truncated"] == 1
    assert row["model"] == "m" and row.get("request_json") is None
    assert len(row["request_raw"]) == limit
    assert b"4111" not in row["request_raw"] and b" [REDACTE" in row["request_raw"][-100:]


def test_a_body_within_the_capture_limit_is_stored_whole_as_json():
    row = row_builder().build(raw_exchange(request={"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
    assert row["capture_truncated"] == 0 and row.get("request_raw") is None
    assert orjson.loads(row["request_json"])["messages"][0]["content"] == "hi"


def _random_texts(seed: int, count: int):
    rng = random.Random(seed)
    shapes = ["4111 1111 1111 1111", "+44 20 7946 0958", "555-123-4567", "(555) 123-4567", "020 7946 0958",
              "4111111111111111", "1-555-123-4567", "+1 (555) 123 4567"]
    alphabet = "0123456789" * 6 + " -+().:/_aZ\n,"
    for _ in range(count):
        parts: list[str] = []
        length = rng.choice([5, 30, 80, 300, 2000])
        while sum(map(len, parts)) < length:
            kind = rng.random()
            if kind < 0.2:
                parts.append(rng.choice(shapes))
            elif kind < 0.5:
                parts.append(" ".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60))))
            else:
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
            if rng.random() < 0.3:
                parts.append(rng.choice(" -.,/:a"))
        yield "".join(parts)


@pytest.mark.parametrize("block", [8, 64, 4096])
def test_linear_scan_finds_exactly_what_the_plain_patterns_find(monkeypatch, block):
    monkeypatch.setattr(redaction._NearEndsPattern, "_BLOCK", block)
    redactor = Redactor()
    for text in _random_texts(seed=block, count=1500):
        assert redaction._CARDS.sub(redactor._card_or_original, text) == \
            redaction._CARD.sub(redactor._card_or_original, text), text
        assert redaction._PHONES.sub(redactor._phone_or_original, text) == \
            redaction._PHONE.sub(redactor._phone_or_original, text), text


def test_a_card_and_a_phone_at_the_end_of_a_long_run_of_digits_are_still_redacted():
    text = "1 " * 100_000 + "x 4111 1111 1111 1111 and 555-123-4567."
    assert Redactor().redact_text(text).endswith("x [REDACTED:card] and [REDACTED:phone].")


def _settings() -> RowBuilderSettings:
    return RowBuilderSettings(emails=True, phones=True, card_numbers=True, patterns=(), replacement="[REDACTED:{kind}]",
                              client_key_salt=b"salt", max_body_bytes=1 << 20)


@pytest.mark.e2e
def test_rows_built_in_the_child_process_match_rows_built_in_process():
    exchange = raw_exchange(request={"model": "m", "messages": [{"role": "user", "content": "mail a@b.example"}]})
    builder = RowBuilderProcess(_settings())
    try:
        [rows] = builder.build_batch([exchange])
    finally:
        builder.close()
    expected = row_builder().build_rows(exchange).exchanges[0]
    assert rows.exchanges[0]["request_json"] == expected["request_json"]
    assert "[REDACTED:email]" in rows.exchanges[0]["request_json"]


@pytest.mark.e2e
def test_a_dead_builder_process_is_restarted_and_the_batch_still_built():
    builder = RowBuilderProcess(_settings())
    try:
        builder.build_batch([raw_exchange()])
        builder._process.kill()
        builder._process.join()
        results = builder.build_batch([raw_exchange(), raw_exchange()])
    finally:
        builder.close()
    assert builder.restarts == 1
    assert [len(rows.exchanges) for rows in results] == [1, 1]
