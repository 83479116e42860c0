"""POST /shadowtap/feedback on a real `shadowtap serve` in front of the simulated upstream: outcomes
posted right after an exchange land column by column; unknown ids, missing or wrong tokens, bad
bodies and conflicting ids are refused with clear errors and leave the store untouched."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shadowtap.proxy.local_processes import free_port, proxy_command, stop_process, wait_until_serving
from tests.support.reference import levenshtein
from tests.support.servers import Proxy, start_proxy, write_config
from tests.support.store_reading import rows as exchange_rows

TOKEN = "adm-4f1c9e-test-token"
ADMIN_ENV = {"SHADOWTAP_ADMIN_TOKEN": TOKEN}
AUTH = {"authorization": f"Bearer {TOKEN}"}
FEEDBACK = "/shadowtap/feedback"


@pytest.fixture(scope="module")
def admin_proxy(simulator, tmp_path_factory):
    """One proxy with the admin API on, shared by the tests that only add rows of their own."""
    proxy = start_proxy(tmp_path_factory.mktemp("admin"), simulator.base_url, env=ADMIN_ENV,
                        extra_config="[admin]\nmax_feedback_batch = 5\n[server]\nmax_body_bytes = 20000\n")
    yield proxy
    stop_process(proxy.process)


@pytest.fixture
def client():
    with httpx.Client(timeout=30) as client:
        yield client


def ask(client, proxy, question: str) -> tuple[str, str]:
    """One chat exchange through the proxy: (exchange id, the answer text the app received)."""
    response = client.post(proxy.base_url + "/chat/completions",
                           json={"model": "sim-small", "messages": [{"role": "user", "content": question}]})
    response.raise_for_status()
    return response.headers["x-shadowtap-exchange-id"], response.json()["choices"][0]["message"]["content"]


def feedback_rows(proxy, where: str = "1", params: tuple = ()) -> list[dict]:
    connection = sqlite3.connect(proxy.store_path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"select * from feedback where {where} order by id", params)]
    finally:
        connection.close()


def post(client, proxy, body, headers=AUTH, **kwargs) -> httpx.Response:
    return client.post(proxy.url + FEEDBACK, json=body, headers=headers, **kwargs)


def test_feedback_posted_right_after_an_exchange_is_stored_column_by_column(admin_proxy, client):
    exchange_id, answer = ask(client, admin_proxy, "When are invoices issued?")
    edited = answer.replace("monthly", "every month") + " Contact billing for details."
    item = {"feedback_id": "review-1001", "exchange_id": exchange_id, "outcome": "edited", "edit_minutes": 3.5,
            "edited_text": edited, "reviewer": "ana", "label": "billing",
            "comment": "asked ana@example.com to confirm", "at": "2026-11-23T09:15:00-05:00"}
    posted_at = datetime.now(UTC)

    response = post(client, admin_proxy, item)

    assert response.status_code == 200, response.text
    assert response.json() == {"results": [{"feedback_id": "review-1001", "status": "created"}],
                               "created": 1, "unchanged": 0}
    (row,) = feedback_rows(admin_proxy, "id = ?", ("review-1001",))
    distance = levenshtein(answer, edited)
    assert row["exchange_id"] == exchange_id
    assert row["outcome"] == "edited"
    assert row["edit_minutes"] == 3.5
    assert row["edit_distance"] == distance
    assert row["edit_ratio"] == pytest.approx(distance / max(len(answer), len(edited)))
    assert row["reviewer"] == "ana"
    assert row["label"] == "billing"
    assert row["comment"] == "asked [REDACTED:email] to confirm"
    assert row["source"] == "api"
    assert row["at"] == "2026-11-23T14:15:00.000000+00:00"
    received = datetime.fromisoformat(row["received_at"])
    assert posted_at - timedelta(seconds=5) <= received <= datetime.now(UTC)
    assert len(row["fingerprint"]) == 64 and int(row["fingerprint"], 16) >= 0
    assert set(row) == {"id", "exchange_id", "outcome", "edit_minutes", "edit_distance", "edit_ratio", "reviewer",
                        "label", "comment", "source", "at", "received_at", "fingerprint"}


@pytest.mark.parametrize("wrap", [lambda items: items, lambda items: {"feedback": items}], ids=["array", "object"])
def test_a_batch_is_stored_and_each_item_reported_in_order(admin_proxy, client, wrap):
    first, _ = ask(client, admin_proxy, "What is the refund policy?")
    second, _ = ask(client, admin_proxy, "How long are deleted projects kept?")
    items = [{"exchange_id": first, "outcome": "accepted", "reviewer": "ana"},
             {"exchange_id": second, "outcome": "rejected", "reviewer": "ana"},
             {"exchange_id": second, "outcome": "policy_violation", "reviewer": "ben"}]

    response = post(client, admin_proxy, wrap(items))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["status"] for result in results] == ["created"] * 3
    stored = {row["id"]: row for row in feedback_rows(admin_proxy, "exchange_id in (?, ?)", (first, second))}
    assert [(stored[r["feedback_id"]]["exchange_id"], stored[r["feedback_id"]]["outcome"],
             stored[r["feedback_id"]]["reviewer"]) for r in results] == [
        (first, "accepted", "ana"), (second, "rejected", "ana"), (second, "policy_violation", "ben")]
    assert all(row["at"] == row["received_at"] for row in stored.values())


def test_reposting_the_same_feedback_is_unchanged_and_reusing_its_id_for_other_content_is_409(admin_proxy, client):
    exchange_id, _ = ask(client, admin_proxy, "Which regions are supported?")
    item = {"feedback_id": "ticket-88", "exchange_id": exchange_id, "outcome": "escalated", "label": "regions"}
    assert post(client, admin_proxy, item).json()["results"][0]["status"] == "created"

    again = post(client, admin_proxy, item)
    conflicting = post(client, admin_proxy, {**item, "outcome": "accepted"})

    assert again.status_code == 200 and again.json()["results"] == [{"feedback_id": "ticket-88", "status": "unchanged"}]
    assert conflicting.status_code == 409
    error = conflicting.json()["error"]
    assert error["code"] == "feedback_id_conflict" and "ticket-88" in error["message"]
    assert [row["outcome"] for row in feedback_rows(admin_proxy, "id = ?", ("ticket-88",))] == ["escalated"]


def test_feedback_without_a_feedback_id_is_idempotent_by_content(admin_proxy, client):
    exchange_id, _ = ask(client, admin_proxy, "Is there an uptime guarantee?")
    item = {"exchange_id": exchange_id, "outcome": "accepted", "reviewer": "ben"}
    first = post(client, admin_proxy, [item]).json()["results"][0]
    again = post(client, admin_proxy, [item]).json()["results"][0]
    assert first["status"] == "created" and again == {"feedback_id": first["feedback_id"], "status": "unchanged"}
    assert len(feedback_rows(admin_proxy, "exchange_id = ?", (exchange_id,))) == 1


def test_an_unknown_exchange_id_gets_404_naming_it_and_the_batch_stores_nothing(admin_proxy, client):
    known, _ = ask(client, admin_proxy, "How do I rotate API keys?")
    response = post(client, admin_proxy, [{"exchange_id": known, "outcome": "accepted", "label": "keys-404"},
                                          {"exchange_id": "ex_never_captured", "outcome": "accepted"}])
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_exchange" and error["param"] == "exchange_id"
    assert error["message"].startswith("shadowtap: item 1: ")
    assert "no captured exchange with id 'ex_never_captured'" in error["message"]
    assert "x-shadowtap-exchange-id" in error["message"] and "item 1" in error["message"]
    assert feedback_rows(admin_proxy, "exchange_id in (?, ?)", (known, "ex_never_captured")) == []


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-token"},
                                     {"x-shadowtap-admin-token": "wrong-token"}, {"authorization": TOKEN}],
                         ids=["none", "wrong-bearer", "wrong-header", "not-bearer"])
def test_a_missing_or_wrong_admin_token_gets_401_and_stores_nothing(admin_proxy, client, headers):
    exchange_id, _ = ask(client, admin_proxy, "Who can see audit logs?")
    response = post(client, admin_proxy, {"exchange_id": exchange_id, "outcome": "accepted"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_admin_token"
    assert feedback_rows(admin_proxy, "exchange_id = ?", (exchange_id,)) == []


def test_the_token_is_also_accepted_in_the_x_shadowtap_admin_token_header(admin_proxy, client):
    exchange_id, _ = ask(client, admin_proxy, "Can I export my data?")
    response = post(client, admin_proxy, {"exchange_id": exchange_id, "outcome": "accepted"},
                    headers={"x-shadowtap-admin-token": TOKEN})
    assert response.status_code == 200, response.text
    assert len(feedback_rows(admin_proxy, "exchange_id = ?", (exchange_id,))) == 1


@pytest.mark.parametrize("content, status, code", [
    (b"{not json", 400, "invalid_json"),
    (b'{"exchange_id": "\xff\xfe"}', 400, "invalid_body"),
    (b'"just a string"', 400, "invalid_body"),
    (b"[]", 400, "invalid_body"),
    (b'{"feedback": {"exchange_id": "x"}}', 400, "invalid_body"),
    (b"[" + b",".join([b'{"exchange_id": "x", "outcome": "accepted"}'] * 6) + b"]", 413, "batch_too_large"),
    (b'{"comment": "' + b"x" * 30000 + b'"}', 413, "body_too_large"),
])
def test_a_malformed_or_oversized_body_gets_an_openai_style_error(admin_proxy, client, content, status, code):
    response = client.post(admin_proxy.url + FEEDBACK, content=content,
                           headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"].startswith("shadowtap:")
    assert set(error) == {"message", "type", "param", "code"}


def test_a_bad_field_gets_422_naming_the_field_and_the_item(admin_proxy, client):
    exchange_id, _ = ask(client, admin_proxy, "What does the enterprise plan include?")
    response = post(client, admin_proxy, [{"exchange_id": exchange_id, "outcome": "accepted"},
                                          {"exchange_id": exchange_id, "outcome": "edited", "edit_minutes": -2}])
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "edit_minutes" and "item 1" in error["message"] and "0 or more" in error["message"]
    assert feedback_rows(admin_proxy, "exchange_id = ?", (exchange_id,)) == []


def test_feedback_is_counted_by_outcome_and_the_token_never_reaches_logs_or_store(admin_proxy, client):
    exchange_id, _ = ask(client, admin_proxy, "How is usage billed?")
    post(client, admin_proxy, {"exchange_id": exchange_id, "outcome": "rejected", "reviewer": "counted"})
    post(client, admin_proxy, {"exchange_id": exchange_id, "outcome": "rejected", "reviewer": "counted"})
    post(client, admin_proxy, {"exchange_id": exchange_id, "outcome": "rejected"},
         headers={"authorization": "Bearer x"})

    samples = {(sample.labels["outcome"], sample.labels["result"]): sample.value
               for family in text_string_to_metric_families(client.get(admin_proxy.url + "/metrics").text)
               if family.name == "shadowtap_feedback_received" for sample in family.samples
               if sample.name.endswith("_total")}
    assert samples[("rejected", "created")] >= 1 and samples[("rejected", "unchanged")] >= 1
    assert TOKEN not in admin_proxy.log_text()
    assert TOKEN.encode() not in admin_proxy.store_path.read_bytes()


def test_the_admin_api_is_disabled_with_403_saying_how_to_enable_it_when_no_token_is_set(proxy_factory, simulator,
                                                                                          client):
    proxy = proxy_factory(simulator.base_url, env={"SHADOWTAP_ADMIN_TOKEN": ""})
    exchange_id, _ = ask(client, proxy, "What are the support hours?")
    response = post(client, proxy, {"exchange_id": exchange_id, "outcome": "accepted"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "admin_api_disabled" and "SHADOWTAP_ADMIN_TOKEN" in error["message"]
    assert feedback_rows(proxy, "1") == []


def test_feedback_for_an_exchange_still_waiting_in_the_capture_queue_is_stored_not_refused(simulator, tmp_path,
                                                                                          client):
    proxy = start_slow_flush_proxy(tmp_path, simulator.base_url)
    try:
        exchange_id, _ = ask(client, proxy, "Where are backups stored?")
        # The writer holds captures for up to 3 s: the exchange cannot be in the store yet.
        assert exchange_rows(proxy.store_path, "id = ?", (exchange_id,)) == []

        response = post(client, proxy, {"exchange_id": exchange_id, "outcome": "accepted"})

        assert response.status_code == 200, response.text
        assert [row["exchange_id"] for row in feedback_rows(proxy)] == [exchange_id]
    finally:
        stop_process(proxy.process)


def start_slow_flush_proxy(workdir, primary_base_url: str) -> Proxy:
    """Like tests.support.servers.start_proxy, with the capture writer's flush timer at 3 s."""
    port = free_port()
    config = write_config(workdir, primary_base_url, port)
    config.write_text(config.read_text().replace("flush_interval_ms = 20", "flush_interval_ms = 3000"))
    process = subprocess.Popen(proxy_command(config), env={**os.environ, **ADMIN_ENV},
                               stderr=open(workdir / "stderr.log", "wb"))
    proxy = Proxy(process, port, workdir, workdir / "captures.db", workdir / "proxy.log", ADMIN_ENV)
    wait_until_serving(f"{proxy.url}/healthz", process)
    return proxy


@pytest.mark.parametrize("admin, words", [
    ({"token_env": "sk-live-123"}, ["[admin] token_env", "NAME of an environment variable"]),
    ({"max_feedback_batch": 0}, ["[admin] max_feedback_batch", "between 1 and 100000"]),
    ({"token": "s3cret"}, ["[admin] token", "unknown key", "token_env"]),
])
def test_a_bad_admin_section_is_refused_naming_the_key(admin, words):
    from shadowtap.core.config import config_from_dict
    from shadowtap.core.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}, "admin": admin})
    assert all(word in str(raised.value) for word in words), str(raised.value)
