"""Shared scoring on PostgreSQL: the report reads the same as over SQLite, and several eval workers
claim pages without overlap, so no answer is scored twice and none is missed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore, Store
from shadowtap.evaluators.report.build import build_report
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows
from tests.support.report_support import StoreBuilder, balanced_store

ROOT = Path(__file__).resolve().parents[2]


def copy_store(source: Path, url: str) -> str:
    result = CliRunner().invoke(cli, ["store", "copy", "--from", str(source), "--to", url])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def report_store(tmp_path) -> Path:
    path = tmp_path / "report.db"
    store = Store.open(path)
    balanced_store(store.captures, "steady", count=40, grounding_gap=0.05)
    build = StoreBuilder(store.captures)
    for index in range(12):
        exchange_id = f"y{index:03d}"
        build.exchange(exchange_id, f"2026-02-02T00:{index:02d}:00+00:00", task="qa", tags={"team": "b"})
        build.shadow(exchange_id, "risky", outcome="error" if index % 3 == 0 else "ok")
        build.score(exchange_id, "risky", "grounding", 0.5 + index / 40, "grounded")
    store.feedback.record([{"exchange_id": f"x{index:03d}", "outcome": "accepted" if index % 4 else "edited",
                            "reviewer": f"r{index % 2}", "at": "2026-02-03T00:00:00+00:00"} for index in range(20)],
                          source="import")
    store.close()
    return path


def report_json(target: str, **options) -> dict:
    store = Store.open(target)
    try:
        report = build_report(store.reports, store="the store", **options).to_json()
    finally:
        store.close()
    report.pop("generated_at")
    return report


def test_report_json_over_postgres_equals_report_json_over_the_same_data_in_sqlite(report_store, pg_url):
    output = copy_store(report_store, pg_url)
    assert "exchanges 52" in output
    sqlite_report = report_json(str(report_store))
    assert sqlite_report["exchanges"] == 52 and len(sqlite_report["candidates"]) >= 2
    assert report_json(pg_url) == sqlite_report
    window = {"since": "2026-02-01T00:10:00+00:00", "until": "2026-02-02T00:05:00+00:00", "window": "1h"}
    assert report_json(pg_url, **window) == report_json(str(report_store), **window)


def command_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1), result.output  # the gate exits 1 when a check fails
    return orjson.loads(result.stdout)


def test_the_report_gate_and_feedback_commands_read_a_postgres_store_given_by_url(report_store, pg_url):
    copy_store(report_store, pg_url)
    over_sqlite = command_json("report", "--store", str(report_store), "--json")
    over_postgres = command_json("report", "--store", pg_url, "--json")
    for report in (over_sqlite, over_postgres):
        report.pop("generated_at")
        report.pop("store")
    assert over_postgres == over_sqlite
    assert command_json("gate", "--store", pg_url, "--json") == command_json("gate", "--store", str(report_store),
                                                                              "--json")
    listed = CliRunner().invoke(cli, ["feedback", "list", "--store", pg_url, "--json"])
    assert listed.exit_code == 0 and listed.stdout.count('"exchange_id"') == 20


def test_copying_a_store_again_changes_nothing(report_store, pg_url):
    copy_store(report_store, pg_url)
    assert "copied 0 rows" in copy_store(report_store, pg_url)
    for table in ("exchanges", "shadows", "scores", "feedback"):
        in_sqlite = sqlite3.connect(report_store).execute(f"select count(*) from {table}").fetchone()[0]
        assert pg_rows(pg_url, f"select count(*) from {table}") == [(in_sqlite,)], table


@pytest.mark.e2e
def test_two_eval_workers_at_once_score_every_answer_exactly_once(tmp_path, pg_url):
    spool = CaptureStore.open(tmp_path / "s.db")
    rows = add_exchanges(spool, 60)
    for row in rows[::2]:
        add_shadow(spool, row["id"], "small")
    spool.close()
    copy_store(tmp_path / "s.db", pg_url)
    answers = {f"{row['id']}:primary:slow" for row in rows} | {f"{row['id']}:small:slow" for row in rows[::2]}
    env = {**os.environ, "SHADOWTAP_TEST_SLOW_S": "0.05"}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.support.eval_worker", pg_url], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    scored = [line.split()[0] for output in outputs for line in output.splitlines() if line.strip()]
    twice = [score for score, count in Counter(scored).items() if count > 1]
    assert twice == []
    assert set(scored) == answers
    assert all(output.strip() for output in outputs)  # both workers took a share
    assert pg_rows(pg_url, "select count(*) from scores") == [(len(answers),)]


def test_shadowtap_eval_scores_the_shared_store_named_in_the_config(tmp_path, pg_url):
    spool = CaptureStore.open(tmp_path / "s.db")
    add_exchanges(spool, 3)
    spool.close()
    copy_store(tmp_path / "s.db", pg_url)
    config = tmp_path / "shadowtap.toml"
    config.write_text('[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[store]\npath = "missing-spool.db"\n'
                      'url_env = "SHADOWTAP_TEST_SHARED_STORE"\n')
    result = CliRunner().invoke(cli, ["eval", "--config", str(config), "--evaluator", "verbosity", "--json"],
                                env={"SHADOWTAP_TEST_SHARED_STORE": pg_url})
    assert result.exit_code == 0, result.output
    assert pg_rows(pg_url, "select count(*) from scores where evaluator = 'verbosity'") == [(3,)]
