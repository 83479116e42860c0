"""A candidate's latency is compared with the primary twin's when the twin answered enough of the
same exchanges (both timed by the shadow worker), else with the primary's live latency; the
report says which."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import report_command
from shadowtap.evaluators.report.figures import TWIN_BASELINE_MIN_PAIRS
from tests.support.report_support import StoreBuilder

EXCHANGES = 30
PRIMARY_MS, TWIN_MS, CANDIDATE_MS = 100.0, 300.0, 330.0   # the twin pays the worker's overhead too


def build(tmp_path, twin_answers: int):
    path = tmp_path / "store.db"
    store = CaptureStore.open(path)
    builder = StoreBuilder(store)
    for index in range(EXCHANGES):
        exchange_id = f"E{index:02d}"
        builder.exchange(exchange_id, f"2026-01-01T00:{index:02d}:00+00:00", latency_ms=PRIMARY_MS)
        builder.shadow(exchange_id, "same", latency_ms=CANDIDATE_MS)
        if index < twin_answers:
            builder.shadow(exchange_id, "primary_twin", latency_ms=TWIN_MS)
    store.close()
    return path


def run_report(path, *args) -> CliRunner:
    result = CliRunner().invoke(report_command, ["--store", str(path), *args])
    assert result.exit_code == 0, result.output
    return result


def latency_of(path) -> dict:
    report = orjson.loads(run_report(path, "--json").output)
    (candidate,) = report["candidates"]
    return candidate["overall"]["latency"]


def test_the_ratio_is_against_the_twin_when_it_answered_enough_of_the_same_exchanges(tmp_path):
    latency = latency_of(build(tmp_path, twin_answers=TWIN_BASELINE_MIN_PAIRS))
    assert latency["baseline"] == "primary_twin"
    assert (latency["n"], latency["primary_p95_ms"]) == (TWIN_BASELINE_MIN_PAIRS, TWIN_MS)
    assert latency["p95_ratio"] == pytest.approx(CANDIDATE_MS / TWIN_MS)


def test_the_ratio_is_against_the_primary_when_the_twin_answered_too_few(tmp_path):
    latency = latency_of(build(tmp_path, twin_answers=TWIN_BASELINE_MIN_PAIRS - 1))
    assert latency["baseline"] == "primary"
    assert (latency["n"], latency["primary_p95_ms"]) == (EXCHANGES, PRIMARY_MS)
    assert latency["p95_ratio"] == pytest.approx(CANDIDATE_MS / PRIMARY_MS)


def test_the_terminal_report_names_the_twin_when_it_is_the_baseline(tmp_path):
    (tmp_path / "twin").mkdir()
    (tmp_path / "none").mkdir()
    with_twin = run_report(build(tmp_path / "twin", twin_answers=EXCHANGES), "--details").output
    without = run_report(build(tmp_path / "none", twin_answers=0), "--details").output
    assert "1.10× vs twin" in with_twin
    assert "3.30×" in without and "vs twin" not in without
