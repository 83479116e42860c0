"""`shadowtap eval` end to end: output, exit codes, and a run killed halfway that resumes."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest
from click.testing import CliRunner

import shadowtap.evaluators.registry as registry
from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from tests.support.eval_support import EVAL_SCRIPT, ROOT, add_exchanges, add_shadow, fake_entry_points


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", fake_entry_points)
    path = tmp_path / "captures.db"
    store = CaptureStore.open(path)
    rows = add_exchanges(store, 4, started_at=time.time() - 3 * 86400)
    add_shadow(store, rows[0]["id"], "small")
    store.close()
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, ["eval", *args], env={"COLUMNS": "200"})


def score_count(path) -> int:
    connection = sqlite3.connect(path, timeout=5)
    try:
        return connection.execute("select count(*) from scores").fetchone()[0]
    except sqlite3.OperationalError:
        return 0   # not migrated yet
    finally:
        connection.close()


def test_eval_prints_a_summary_table_when_it_has_scored(store_path):
    result = run("--store", store_path, "--evaluator", "length")
    assert result.exit_code == 0, result.output
    assert "this run: 5 scores, 0 not applicable, 0 errors" in result.output
    assert "length" in result.output and "has_text 4" in result.output


def test_eval_json_reports_the_run_and_the_summary_when_asked(store_path):
    first = orjson.loads(run("--store", store_path, "--evaluator", "length,freshness", "--json").output)
    second = orjson.loads(run("--store", store_path, "--evaluator", "length", "--evaluator", "freshness",
                              "--json").output)
    assert (first["run"]["scored"], first["run"]["not_applicable"]) == (5, 5)
    assert second["run"] == {"pending": 0, "scored": 0, "not_applicable": 0, "errors": 0, "by_evaluator": {},
                             "first_errors": {}, "failed_evaluators": []}
    assert {(row["evaluator"], row["source"], row["scored"]) for row in second["summary"]} == {
        ("freshness", "primary", 0), ("freshness", "small", 0), ("length", "primary", 4), ("length", "small", 1)}


def test_eval_exits_0_and_lists_errors_when_an_evaluator_fails_on_some_answers(store_path):
    store = CaptureStore.open(store_path)
    add_shadow(store, store.list_exchanges()[0]["id"], "primary_twin")
    store.close()
    result = run("--store", store_path, "--evaluator", "flaky")
    assert result.exit_code == 0
    assert "this run: 5 scores, 0 not applicable, 1 errors" in result.output
    assert "flaky: 1 errors, first: ValueError: cannot score a twin" in result.output


def test_eval_exits_1_when_an_evaluator_fails_on_every_answer(store_path):
    result = run("--store", store_path, "--evaluator", "broken,length", "--json")
    assert result.exit_code == 1
    report = orjson.loads(result.output)["run"]
    assert report["failed_evaluators"] == ["broken"] and report["by_evaluator"]["length"] == {"score": 5}
    assert "sk-test" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--evaluator", "nope"], "unknown evaluator 'nope'"),
    (["--since", "yesterday"], "--since 'yesterday'"),
    (["--limit", "0"], "--limit"),
])
def test_eval_exits_2_when_the_usage_is_wrong(store_path, args, message):
    result = run("--store", store_path, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_eval_exits_2_naming_the_key_when_the_config_is_bad(store_path, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[eval]\nmax_concurrency = 0\n')
    result = run("--config", str(config), "--store", store_path)
    assert result.exit_code == 2
    assert "[eval] max_concurrency" in result.output


def test_eval_exits_2_when_the_store_does_not_exist(tmp_path):
    result = run("--store", str(tmp_path / "missing.db"), "--evaluator", "freshness")
    assert result.exit_code == 2
    assert "no capture store" in result.output
    assert not (tmp_path / "missing.db").exists()


def test_eval_reads_evaluator_files_relative_to_the_config_when_configured(store_path, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "versions.json").write_text("{}")
    config = tmp_path / "conf" / "shadowtap.toml"
    config.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[store]\npath = "{store_path}"\n'
                      '[freshness]\nversions_file = "versions.json"\n[eval]\nevaluators = ["freshness"]\n')
    result = run("--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["run"]["not_applicable"] == 5


def test_dry_run_prints_judge_calls_and_cost_and_writes_nothing(store_path):
    result = run("--store", store_path, "--evaluator", "judged,length", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 10 scores pending over 4 exchanges; nothing written" in result.output
    assert "judge: judged: 10 calls, ~$0.0050" in result.output
    assert score_count(store_path) == 0
    document = orjson.loads(run("--store", store_path, "--evaluator", "judged", "--dry-run", "--json").output)
    assert (document["judge_calls"], document["estimated_cost_usd"]) == ({"judged": 10}, {"judged": 0.005})


@pytest.mark.e2e
def test_killed_run_resumes_where_it_stopped_when_run_again(tmp_path):
    path = tmp_path / "big.db"
    store = CaptureStore.open(path)
    add_exchanges(store, 200)
    store.close()
    command = [sys.executable, "-c", EVAL_SCRIPT, "eval", "--store", str(path), "--evaluator", "slow", "--json"]
    env = {**os.environ, "SHADOWTAP_TEST_SLOW_S": "0.1", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while score_count(path) < 50 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    committed = score_count(path)
    assert 50 <= committed < 200, committed   # killed halfway, after some batches landed
    before = dict(sqlite3.connect(path).execute("select id, scored_at from scores").fetchall())

    second = subprocess.run(command, cwd=ROOT, env={**env, "SHADOWTAP_TEST_SLOW_S": "0"},
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    report = orjson.loads(second.stdout)["run"]
    assert (report["pending"], report["scored"]) == (200 - committed, 200 - committed)
    after = dict(sqlite3.connect(path).execute("select id, scored_at from scores").fetchall())
    assert len(after) == 200
    assert {key: after[key] for key in before} == before   # nothing that landed was scored twice
