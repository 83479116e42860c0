"""Canary serving end to end: a real `shadowtap serve` in front of the simulator, with candidates on loopback.

Four candidates own regions of the hash range (max_share 0.2 each, in config order) and serve:
`good` (a second simulator, answering as `cand-model`) [0, 0.2), `sloppy` (always answers "fake
answer", which keeps no JSON contract) [0.2, 0.4), `down` (nothing listening) [0.4, 0.6) and `stuck`
(never answers; timeout_s 0.5) [0.6, 0.65). The state is written with canary_store, as `shadowtap canary start` would.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time

import httpx
import orjson
import pytest

from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import set_canary_share
from shadowtap.proxy.canary.assignment import assignment_point
from shadowtap.proxy.local_processes import stop_process
from tests.support.fake_candidates import FakeCandidate, refused_base_url
from tests.support.servers import start_proxy, start_simulator
from tests.support.store_reading import wait_for_exchange

pytestmark = pytest.mark.e2e

SESSION = "x-shadowtap-session"
SLICES = {"good": (0.0, 0.2), "sloppy": (0.2, 0.4), "down": (0.4, 0.6), "stuck": (0.6, 0.65)}
PRIMARY_MODEL, GOOD_MODEL, SLOPPY_MODEL = "sim-small", "cand-model", "fake"
PLAIN = {"model": PRIMARY_MODEL, "messages": [{"role": "user", "content": "What is a canary release?"}]}
STRUCTURED = {**PLAIN, "response_format": {"type": "json_object"}}


def session_in(candidate: str | None) -> str:
    """A session value whose hash point falls in `candidate`'s slice (None: in no slice)."""
    low, high = SLICES[candidate] if candidate else (0.65, 1.0)
    for number in range(100_000):
        value = f"user-{number}"
        if low <= assignment_point("", [(SESSION.encode(), value.encode())], SESSION.encode()) < high:
            return value
    raise AssertionError("no session value found")


@pytest.fixture(scope="module")
def good():
    candidate = start_simulator()
    yield candidate
    stop_process(candidate.process)


@pytest.fixture(scope="module")
def stack(simulator, good, tmp_path_factory):
    with FakeCandidate("ok") as sloppy, FakeCandidate("hang") as stuck:
        candidates = {"good": good.base_url, "sloppy": sloppy.base_url, "down": refused_base_url(),
                      "stuck": stuck.base_url}
        blocks = []
        for name, base in candidates.items():
            timeout = 0.5 if name == "stuck" else 5
            model = GOOD_MODEL if name == "good" else name
            blocks.append(f'[[candidates]]\nname = "{name}"\nmodel = "openai/{model}"\napi_base = "{base}"\n'
                          f"sample_rate = 0.0\ncanary = {{ timeout_s = {timeout}, max_share = 0.2 }}\n")
        # No twin rate: the twin answers canaried requests (the reverse shadow) all the same.
        extra = "[canary]\nstate_poll_s = 0.1\nstate_stale_s = 30\n" + "".join(blocks)
        proxy = start_proxy(tmp_path_factory.mktemp("canary"), simulator.base_url, extra_config=extra)
        try:
            with Store.open(proxy.store_path) as store:
                for name, (low, high) in SLICES.items():
                    set_canary_share(store, name, round(high - low, 6), status="running", changed_by="test",
                                     reason="canary test")
            wait_until(lambda: all(c["status"] == "running" for c in health(proxy)["canary"]["candidates"].values()))
            yield proxy
        finally:
            proxy.stop()


def health(proxy) -> dict:
    return httpx.get(f"{proxy.url}/healthz").json()


def wait_until(condition, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def chat(proxy, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers=headers, timeout=30)


def answering_model(response: httpx.Response) -> str:
    return response.json()["model"]


async def send_many(proxy, count: int, headers: dict) -> list[httpx.Response]:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30) as client:
        async def one() -> httpx.Response:
            async with limit:
                return await client.post(f"{proxy.base_url}/chat/completions", json=PLAIN, headers=headers)
        return await asyncio.gather(*(one() for _ in range(count)))


def test_healthz_shows_each_candidates_share_and_status_as_last_read(stack):
    canary = health(stack)["canary"]
    assert canary["stale"] is False
    assert canary["candidates"]["good"] == {"share": 0.2, "status": "running", "guard": None, "serving": True}


def test_a_20_percent_canary_serves_close_to_20_percent_of_eligible_requests_and_none_of_tier_high(stack):
    count = 300
    responses = asyncio.run(send_many(stack, count, {}))
    assert all(response.status_code == 200 for response in responses)
    served = sum(answering_model(response) == GOOD_MODEL for response in responses)
    sigma = math.sqrt(count * 0.2 * 0.8)
    assert abs(served - count * 0.2) < 4 * sigma, served
    high = asyncio.run(send_many(stack, 60, {"x-shadowtap-risk-tier": "high"}))
    assert {answering_model(response) for response in high} == {PRIMARY_MODEL}
    last = wait_for_exchange(stack.store_path, high[-1].headers["x-shadowtap-exchange-id"])
    assert last["served_by"] is None and last["fallback_reason"] is None


def test_a_sticky_session_always_gets_the_same_side(stack):
    on_candidate, on_primary = session_in("good"), session_in(None)
    assert {answering_model(chat(stack, PLAIN, **{SESSION: on_candidate})) for _ in range(10)} == {GOOD_MODEL}
    assert {answering_model(chat(stack, PLAIN, **{SESSION: on_primary})) for _ in range(10)} == {PRIMARY_MODEL}


def test_the_exchange_records_the_candidate_that_answered_and_the_candidate_got_its_own_model(stack, good):
    good.clear()
    response = chat(stack, PLAIN, **{SESSION: session_in("good")}, authorization="Bearer sk-client-secret")
    assert answering_model(response) == GOOD_MODEL
    (received,) = [request for request in good.recorded() if request["method"] == "POST"]
    assert received["body"] == {**PLAIN, "model": GOOD_MODEL}
    assert "authorization" not in received["headers"] and "sk-client-secret" not in received["raw"]
    row = wait_for_exchange(stack.store_path, response.headers["x-shadowtap-exchange-id"])
    assert (row["served_by"], row["fallback_reason"]) == ("good", None)
    assert orjson.loads(row["response_json"])["model"] == GOOD_MODEL


def test_a_canaried_request_is_answered_by_the_primary_too_as_its_twin(stack):
    response = chat(stack, PLAIN, **{SESSION: session_in("good")})
    exchange_id = response.headers["x-shadowtap-exchange-id"]
    deadline = time.monotonic() + 30
    while True:
        shadows = {row["candidate"]: row for row in shadow_rows(stack.store_path, exchange_id)}
        if "primary_twin" in shadows and shadows["primary_twin"]["outcome"] != "skipped":
            break
        assert time.monotonic() < deadline, shadows
        time.sleep(0.1)
    assert shadows["primary_twin"]["outcome"] == "ok"
    assert shadows["good"]["skip_reason"] == "served_live"


def shadow_rows(store_path, exchange_id: str) -> list[dict]:
    connection = sqlite3.connect(store_path, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute("select * from shadows where exchange_id = ?", (exchange_id,))]
    finally:
        connection.close()


def test_the_opt_out_header_keeps_the_request_on_the_primary(stack):
    response = chat(stack, PLAIN, **{SESSION: session_in("good"), "x-shadowtap-canary": "off"})
    assert answering_model(response) == PRIMARY_MODEL


def test_a_stream_from_the_candidate_is_relayed_event_by_event(stack):
    with httpx.stream("POST", f"{stack.base_url}/chat/completions", json={**PLAIN, "stream": True},
                      headers={SESSION: session_in("good")}, timeout=30) as response:
        text = "".join(response.iter_text())
    assert response.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    assert f'"model":"{GOOD_MODEL}"' in text.replace(" ", "")


def test_a_contract_bound_stream_that_keeps_its_contract_is_served_by_the_candidate_whole(stack):
    with httpx.stream("POST", f"{stack.base_url}/chat/completions", json={**STRUCTURED, "stream": True},
                      headers={SESSION: session_in("good")}, timeout=30) as response:
        text = "".join(response.iter_text())
    assert response.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    row = wait_for_exchange(stack.store_path, response.headers["x-shadowtap-exchange-id"])
    assert (row["served_by"], row["fallback_reason"]) == ("good", None)


def test_a_contract_breaking_candidate_answer_is_never_returned_the_primarys_is(stack):
    for body in (STRUCTURED, {**STRUCTURED, "stream": True}):
        response = chat(stack, body, **{SESSION: session_in("sloppy")})
        assert response.status_code == 200
        assert "fake answer" not in response.text
        row = wait_for_exchange(stack.store_path, response.headers["x-shadowtap-exchange-id"])
        assert (row["served_by"], row["fallback_reason"]) == ("primary", "contract_invalid")
    plain = chat(stack, PLAIN, **{SESSION: session_in("sloppy")})  # no contract: the candidate answers
    assert plain.json()["choices"][0]["message"]["content"] == "fake answer"


def test_a_candidate_that_is_down_falls_back_to_the_primary(stack):
    response = chat(stack, PLAIN, **{SESSION: session_in("down")})
    assert response.status_code == 200 and answering_model(response) == PRIMARY_MODEL
    row = wait_for_exchange(stack.store_path, response.headers["x-shadowtap-exchange-id"])
    assert (row["served_by"], row["fallback_reason"]) == ("primary", "candidate_error")


def test_a_candidate_that_misses_its_deadline_falls_back_to_the_primary(stack):
    response = chat(stack, PLAIN, **{SESSION: session_in("stuck")})
    assert response.status_code == 200 and answering_model(response) == PRIMARY_MODEL
    row = wait_for_exchange(stack.store_path, response.headers["x-shadowtap-exchange-id"])
    assert (row["served_by"], row["fallback_reason"]) == ("primary", "candidate_timeout")


def test_fallbacks_and_served_requests_are_counted_in_metrics(stack):
    chat(stack, PLAIN, **{SESSION: session_in("down")})
    text = httpx.get(f"{stack.url}/metrics").text
    assert 'shadowtap_canary_fallbacks_total{candidate="down",reason="candidate_error"}' in text
    assert 'shadowtap_canary_served_total{candidate="good"}' in text


def test_a_rollback_in_the_store_stops_the_candidate_within_a_poll(stack):
    session = session_in("good")
    with Store.open(stack.store_path) as store:
        set_canary_share(store, "good", 0.0, status="rolled_back", changed_by="guard", reason="test rollback")
    try:
        wait_until(lambda: health(stack)["canary"]["candidates"]["good"]["status"] == "rolled_back")
        assert answering_model(chat(stack, PLAIN, **{SESSION: session})) == PRIMARY_MODEL
    finally:
        with Store.open(stack.store_path) as store:
            set_canary_share(store, "good", 0.2, status="running", changed_by="test", reason="restore")
        wait_until(lambda: health(stack)["canary"]["candidates"]["good"]["status"] == "running")
