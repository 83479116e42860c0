"""`shadowtap gate` and `report --gate`: exit codes, named failures, skipped checks, per-category checks."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import gate_command, report_command
from tests.support.report_support import StoreBuilder, balanced_store, write_config

LENIENT = "min_samples = 10"


@pytest.fixture
def passing_store(tmp_path):
    path = tmp_path / "pass.db"
    store = CaptureStore.open(path)
    balanced_store(store, "twin-like")
    store.close()
    return path


@pytest.fixture
def failing_store(tmp_path):
    path = tmp_path / "fail.db"
    store = CaptureStore.open(path)
    balanced_store(store, "worse", contract_invalid_in="qa", grounding_gap=0.3)
    store.close()
    return path


def run_gate(tmp_path, store_path, gate: str, *args, command=gate_command):
    config = write_config(tmp_path / "shadowtap.toml", store_path, gate)
    return CliRunner().invoke(command, ["--config", str(config), *args])


def checks_by_name(verdict: dict, scope: str = "overall") -> dict:
    return {check["check"]: check for check in verdict["checks"] if check["scope"] == scope}


def test_gate_exits_0_and_prints_every_check_when_the_candidate_matches_the_primary(tmp_path, passing_store):
    result = run_gate(tmp_path, passing_store, LENIENT)
    assert result.exit_code == 0, result.output
    for check in ("min_samples", "min_agreement_above_noise", "max_grounding_drop", "max_contract_invalid_rate",
                  "max_latency_p95_ratio", "max_cost_ratio", "max_error_rate"):
        assert check in result.output
    assert "gate passed" in result.output


def test_gate_exits_1_naming_the_failed_checks_when_the_candidate_is_worse(tmp_path, failing_store):
    result = run_gate(tmp_path, failing_store, LENIENT, "--json")
    assert result.exit_code == 1, result.output
    verdict = orjson.loads(result.output)
    assert verdict["passed"] is False
    assert verdict["failed"] == ["worse overall max_grounding_drop", "worse overall max_contract_invalid_rate"]
    checks = checks_by_name(verdict)
    # 15 of 30 answers break the contract; the mean grounding gap is 0.3 - 0.005 (odd rows get +0.01).
    assert checks["max_contract_invalid_rate"]["figure"] == pytest.approx(0.5)
    assert checks["max_grounding_drop"]["figure"] == pytest.approx(0.295)
    assert (checks["max_grounding_drop"]["threshold"], checks["max_grounding_drop"]["comparison"]) == (0.05, "<=")
    assert checks["min_samples"]["status"] == "pass"


def test_gate_fails_min_samples_when_there_are_too_few_answers(tmp_path, passing_store):
    result = run_gate(tmp_path, passing_store, "min_samples = 31", "--json")
    assert result.exit_code == 1
    check = checks_by_name(orjson.loads(result.output))["min_samples"]
    assert (check["figure"], check["threshold"], check["status"]) == (30, 31, "fail")


def test_a_missing_figure_is_skipped_with_its_reason_not_passed_when_there_are_no_scores(tmp_path, passing_store):
    result = run_gate(tmp_path, passing_store, LENIENT, "--json")
    verdict = orjson.loads(result.output)
    faithfulness = checks_by_name(verdict)["max_faithfulness_drop"]
    assert faithfulness["status"] == "skipped"
    assert faithfulness["figure"] is None
    assert "faithfulness" in faithfulness["reason"]
    assert verdict["skipped"] >= 1
    assert result.exit_code == 0


def test_agreement_check_is_skipped_when_there_is_no_twin(tmp_path):
    path = tmp_path / "s.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    for index in range(3):
        build.exchange(f"x{index}", f"2026-01-01T0{index}:00:00+00:00")
        build.shadow(f"x{index}", "small")
        build.score(f"x{index}", "small", "agreement", 0.2)
    store.close()
    verdict = orjson.loads(run_gate(tmp_path, path, "min_samples = 1", "--json").output)
    check = checks_by_name(verdict)["min_agreement_above_noise"]
    assert (check["status"], check["figure"]) == ("skipped", None)
    assert "twin" in check["reason"]


def test_gate_fails_when_the_store_has_no_candidate(tmp_path):
    path = tmp_path / "empty.db"
    CaptureStore.open(path).close()
    result = run_gate(tmp_path, path, LENIENT, "--json")
    assert result.exit_code == 1
    assert orjson.loads(result.output)["failed"] == ["(none) overall candidates"]


def test_per_category_checks_fail_only_the_bad_category_when_per_category_is_on(tmp_path):
    path = tmp_path / "s.db"
    store = CaptureStore.open(path)
    balanced_store(store, "small", count=40, contract_invalid_in="qa")
    store.close()
    gate = ("min_samples = 10\nmax_contract_invalid_rate = 0.6\nper_category = true\n"
            "category_min_samples = 5\ncategories = [\"task\"]")
    result = run_gate(tmp_path, path, gate, "--json")
    verdict = orjson.loads(result.output)
    assert result.exit_code == 1
    assert verdict["failed"] == ["small task=qa max_contract_invalid_rate"]
    assert checks_by_name(verdict, "task=chat")["max_contract_invalid_rate"]["status"] == "pass"
    assert not [check for check in verdict["checks"] if check["scope"].startswith("endpoint=")]


def test_small_categories_are_skipped_not_gated_when_below_category_min_samples(tmp_path, passing_store):
    gate = "min_samples = 10\nper_category = true\ncategory_min_samples = 16"
    verdict = orjson.loads(run_gate(tmp_path, passing_store, gate, "--json").output)
    skipped = [check for check in verdict["checks"] if check["check"] == "category_min_samples"]
    assert {check["scope"] for check in skipped} == {"task=qa", "task=chat"}
    assert all(check["status"] == "skipped" for check in skipped)
    assert checks_by_name(verdict, "endpoint=chat.completions")["max_grounding_drop"]["status"] == "pass"


def test_report_gate_adds_the_verdict_to_the_json_and_exits_1_when_a_check_fails(tmp_path, failing_store):
    result = run_gate(tmp_path, failing_store, LENIENT, "--json", "--gate", command=report_command)
    assert result.exit_code == 1
    report = orjson.loads(result.output)
    assert report["candidates"][0]["name"] == "worse"
    assert report["gate"]["passed"] is False


def test_report_without_gate_exits_0_when_the_candidate_is_worse_and_still_shows_its_verdict(tmp_path, failing_store):
    result = run_gate(tmp_path, failing_store, LENIENT, "--json", command=report_command)
    assert result.exit_code == 0
    gate = orjson.loads(result.output)["gate"]
    assert gate["passed"] is False and [item["verdict"] for item in gate["candidates"]] == ["not_ready"]


def test_terminal_gate_output_names_failed_checks_when_the_gate_fails(tmp_path, failing_store):
    result = run_gate(tmp_path, failing_store, LENIENT)
    assert result.exit_code == 1
    assert "failed: worse overall max_grounding_drop; worse overall max_contract_invalid_rate" in result.output
    assert "FAIL" in result.output


@pytest.mark.parametrize("gate", ["min_samples = -1", "per_category = true\ncategories = [\"colour\"]",
                                  "nonsense = 1"])
def test_gate_exits_2_when_the_gate_config_is_invalid(tmp_path, passing_store, gate):
    result = run_gate(tmp_path, passing_store, gate)
    assert result.exit_code == 2
    assert "config error" in result.output
