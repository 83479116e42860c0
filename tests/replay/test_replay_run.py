"""Replaying captured exchanges against the simulated upstream: stored runs, diffs, pass@k, resume."""

import os
import signal
import subprocess
import sys
import time

import httpx
import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.evaluators.agreement import compare_answers
from shadowtap.evaluators.base import Answer
from shadowtap.proxy.local_processes import stop_process
from shadowtap.replay.passing import pass_at_k
from tests.support.factories import capture_from_upstream
from tests.support.servers import start_simulator

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}}}]


def chat(i: int) -> dict:
    request = {"model": "sim-large", "messages": [{"role": "user", "content": f"What is item {i} about Paris?"}]}
    if i % 10 == 0:
        request.update(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "lookup"}})
    return request


def capture(store_path, base_url: str, count: int) -> list[str]:
    return capture_from_upstream(store_path, base_url, [chat(i) for i in range(count)])


def replay(*args: str) -> str:
    result = CliRunner().invoke(cli, ["replay", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0]


def test_replaying_100_exchanges_three_times_against_the_same_simulator_passes_every_one(simulator, tmp_path):
    db = tmp_path / "s.db"
    ids = capture(db, simulator.base_url, 100)
    run_id = replay("run", "--store", str(db), "--target", "model:openai/sim-large", "--api-base",
                    simulator.base_url, "-k", "3", "--concurrency", "8")
    store = ReplayStore(CaptureStore.open(db))
    run = store.get_run(run_id)
    assert run["status"] == "complete" and run["k"] == 3 and run["selection"]["exchange_ids"] == ids
    assert run["target"]["model"] == "openai/sim-large" and run["pass_criterion"] == "agreement>=0.8"
    results = store.results(run_id)
    assert len(results) == 300
    assert all(r["outcome"] == "ok" and r["passed"] == 1 and r["diff"]["identical"] for r in results)
    tool_rows = [r for r in results if r["response_tool_calls"]]
    assert len(tool_rows) == 30 and {r["response_tool_calls"][0]["function"]["name"] for r in tool_rows} == {"lookup"}

    shown = orjson.loads(CliRunner().invoke(cli, ["replay", "show", run_id, "--store", str(db), "--json"]).stdout)
    assert shown["overall"]["pass_at_k"] == 1.0 and shown["overall"]["identical_to_original"] == 300
    assert shown["overall"]["outcome_consistency"] == 1.0 and shown["overall"]["answer_consistency"] == 1.0
    assert [e["exchange_id"] for e in shown["exchanges"]] == ids
    markdown = CliRunner().invoke(cli, ["replay", "show", run_id, "--store", str(db), "--markdown"]).stdout
    assert f"Replay run `{run_id}`" in markdown


def test_a_different_model_gives_the_diffs_and_pass_at_k_the_simulator_predicts(simulator, tmp_path):
    db = tmp_path / "s.db"
    ids = capture(db, simulator.base_url, 30)
    simulator.clear()
    run_id = replay("run", "--store", str(db), "--target", "model:openai/sim-drifty", "--api-base",
                    simulator.base_url, "-k", "2", "--pass", "agreement>=0.95")
    store = ReplayStore(CaptureStore.open(db))
    exchanges = {row["id"]: row for row in store.exchanges(ids)}
    # The bodies litellm actually sent (the persona's draws hash the whole body), asked again directly.
    sent = {orjson.dumps(r["body"]["messages"]): r["body"] for r in simulator.recorded()}
    expected_identical, expected_pass = {}, {}
    with httpx.Client() as client:
        for i, exchange_id in enumerate(ids):
            body = sent[orjson.dumps(chat(i)["messages"])]
            message = client.post(f"{simulator.base_url}/chat/completions", json=body).json()["choices"][0]["message"]
            original = exchanges[exchange_id]
            expected_identical[exchange_id] = message["content"] == original["response_text"]
            value, _ = compare_answers(
                Answer("replay", message["content"], message.get("tool_calls")),
                Answer("primary", original["response_text"],
                       orjson.loads(original["response_tool_calls"]) if original["response_tool_calls"] else None))
            expected_pass[exchange_id] = value >= 0.95
    assert 0 < sum(not same for same in expected_identical.values()) < len(ids)  # the test can fail both ways
    shown = orjson.loads(CliRunner().invoke(cli, ["replay", "show", run_id, "--store", str(db), "--json"]).stdout)
    for figures in shown["exchanges"]:
        exchange_id = figures["exchange_id"]
        assert figures["identical_to_original"] == (2 if expected_identical[exchange_id] else 0)
        assert figures["pass_at_k"] == pass_at_k(2, 2 if expected_pass[exchange_id] else 0, 2)
        if not expected_identical[exchange_id]:
            assert figures["repetitions"][0]["diff"]["text_diff"]
    expected_overall = sum(expected_pass.values()) / len(ids)
    assert shown["overall"]["pass_at_k"] == pytest.approx(expected_overall)


@pytest.mark.e2e
def test_a_killed_replay_resumes_without_redoing_finished_work(tmp_path):
    slow = start_simulator("--latency-ms", "150")
    try:
        db = tmp_path / "s.db"
        capture(db, slow.base_url, 20)
        slow.clear()
        command = [sys.executable, "-m", "shadowtap.core.cli", "replay", "run", "--store", str(db), "--target",
                   "model:openai/sim-large", "--api-base", slow.base_url, "-k", "3", "--concurrency", "2"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        run_id = process.stdout.readline().decode().strip()
        store = CaptureStore.open(db)
        deadline = time.monotonic() + 60
        while store.db.execute("select count(*) from replay_results").fetchone()[0] < 15:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done_before = store.db.execute("select count(*) from replay_results").fetchone()[0]
        assert 15 <= done_before < 60
        assert ReplayStore(store).get_run(run_id)["status"] == "running"
        slow.clear()
        assert replay("resume", run_id, "--store", str(db), "--concurrency", "4") == run_id
        assert len(slow.recorded()) == 60 - done_before
        assert store.db.execute("select count(*) from replay_results").fetchone()[0] == 60
        assert ReplayStore(store).get_run(run_id)["status"] == "complete"
        # Running it once more changes nothing.
        slow.clear()
        replay("run", "--run", run_id, "--store", str(db))
        assert slow.recorded() == []
    finally:
        stop_process(slow.process)


def test_replay_against_the_primary_without_allow_primary_exits_2(tmp_path):
    db = tmp_path / "s.db"
    CaptureStore.open(db).close()
    result = CliRunner().invoke(cli, ["replay", "run", "--store", str(db), "--target", "primary"])
    assert result.exit_code == 2
    assert "--allow-primary" in result.stderr
