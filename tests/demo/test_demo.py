"""`shadowtap demo`, the README's first command, runs the whole loop and exits 0."""

import json
import re
import sqlite3
import subprocess
import sys

import pytest

# Runs the whole demo (simulator, proxy, eval, report, replay): about a minute on an idle machine,
# minutes on a busy one, and one test runs it twice.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


# Enough requests that every persona's flaw shows (sloppy breaks one structured answer in four).
REQUESTS = 60


def run_demo(workdir):
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "demo", "--dir", str(workdir),
                             "--requests", str(REQUESTS)],
                            capture_output=True, text=True, timeout=400, env={"COLUMNS": "160", "PATH": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo complete" in result.stdout
    assert "$ shadowtap replay show" in result.stdout
    (workdir / "demo-output.txt").write_text(result.stdout)
    return workdir


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One small demo run, shared by the tests below (it takes tens of seconds)."""
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def demo_output(demo_dir) -> str:
    return (demo_dir / "demo-output.txt").read_text()


def shadowtap_json(workdir, *arguments: str) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", *arguments, "--config",
                             str(workdir / "shadowtap.toml"), "--json"], capture_output=True, text=True, timeout=120)
    return result.returncode, json.loads(result.stdout)


def figures(workdir) -> dict:
    """What the demo measured, without the timings: shadow calls and skips, scores, each candidate's
    verdict. Nothing here races the clock: slow's hangs (30 s) always pass its 10 s timeout and its
    other answers (0.3-0.8 s) never do, and the twin's cap (`[shadow] twin_max_concurrency`) is the
    workload's size, so two runs must agree on all of it."""
    db = sqlite3.connect(workdir / "captures.db")
    calls = db.execute("select candidate, count(*) from shadows where outcome != 'skipped' group by 1 "
                       "order by 1").fetchall()
    shadows = db.execute("select candidate, outcome, coalesce(skip_reason, ''), count(*) from shadows "
                         "group by 1, 2, 3 order by 1, 2, 3").fetchall()
    scores = db.execute("select source, evaluator, coalesce(label, ''), count(*), round(sum(value), 6) from scores "
                        "where evaluator not in ('latency_delta', 'cost_delta') "
                        "group by 1, 2, 3 order by 1, 2, 3").fetchall()
    _, report = shadowtap_json(workdir, "report")
    verdicts = {item["candidate"]: item["verdict"] for item in report["gate"]["candidates"]}
    return {"calls": calls, "shadows": shadows, "scores": scores, "verdicts": verdicts}


def test_demo_exits_0_with_captures_shadows_and_scores_when_run_on_a_small_workload(demo_dir):
    db = sqlite3.connect(demo_dir / "captures.db")
    exchanges = db.execute("select count(*) from exchanges").fetchone()[0]
    assert exchanges == REQUESTS + 220  # the workload and the overhead probes, all captured
    answered = db.execute("select count(*) from shadows where outcome = 'ok'").fetchone()[0]
    assert answered > 0
    evaluators = {row[0] for row in db.execute("select distinct evaluator from scores where outcome = 'score'")}
    assert {"grounding", "freshness", "contract", "agreement"} <= evaluators
    html = (demo_dir / "report.html").read_text()
    assert "drifty" in html and "<svg" in html


def test_demo_finishes_with_drifty_replayed_twice_and_perturbed_on_a_few_exchanges(demo_dir):
    db = sqlite3.connect(demo_dir / "captures.db")
    runs = db.execute("select id, status, k, target from replay_runs").fetchall()
    assert len(runs) == 1
    run_id, status, k, target = runs[0]
    assert status == "complete" and k == 2 and '"kind":"candidate","name":"drifty"' in target
    results = db.execute("select outcome, count(*) from replay_results where run_id = ? group by outcome",
                         [run_id]).fetchall()
    assert results and dict(results).get("ok", 0) > 0
    perturbed = db.execute("select count(*) from replay_results where run_id = ? and perturbation is not null",
                           [run_id]).fetchone()[0]
    assert perturbed > 0


def test_demo_output_fits_a_screen_and_names_each_personas_flaw(demo_output):
    lines = demo_output.splitlines()
    assert len(lines) <= 80, demo_output
    verdicts = {line.split()[0]: line for line in lines if line.split()[:1] in (["drifty"], ["sloppy"], ["slow"])
                and "READY" in line}
    assert "max_grounding_drop" in verdicts["drifty"]
    assert "max_contract_invalid_rate" in verdicts["sloppy"]
    assert "max_error_rate" in verdicts["slow"] or "max_latency_p95_ratio" in verdicts["slow"]
    assert "perturbation sensitivity" in demo_output and "pass@k" in demo_output


def test_demo_canary_is_rolled_back_by_a_guard_and_the_app_never_gets_a_broken_answer(demo_dir, demo_output):
    assert re.search(r"rolled back by itself \d+ requests later: guard \w+", demo_output), demo_output
    assert re.search(r"the app received \d+ answers, 0 of them broken", demo_output), demo_output
    db = sqlite3.connect(demo_dir / "canary" / "canary.db")
    served = dict(db.execute("select coalesce(served_by, 'none'), count(*) from exchanges group by 1").fetchall())
    assert served.get("souring", 0) > 0 and served.get("primary", 0) > 0
    reasons = {row[0] for row in db.execute("select fallback_reason from exchanges where served_by = 'primary'")}
    assert "contract_invalid" in reasons
    (status, share, guard), = db.execute("select status, share, guard from canary_state where candidate = 'souring'")
    assert (status, share) == ("rolled_back", 0.0) and guard


def test_the_report_and_the_gate_give_every_demo_candidate_the_same_verdict(demo_dir):
    _, report = shadowtap_json(demo_dir, "report")
    code, gate = shadowtap_json(demo_dir, "gate")
    assert report["gate"]["candidates"] == gate["candidates"]
    assert {item["candidate"] for item in gate["candidates"]} == {"drifty", "slow", "sloppy"}
    for item in gate["candidates"]:
        failed = [name for name in gate["failed"] if name.startswith(item["candidate"] + " ")]
        assert (item["verdict"] == "ready") == (not failed)
    assert code == (0 if all(item["verdict"] == "ready" for item in gate["candidates"]) else 1)


def test_a_second_demo_run_measures_the_same_figures(demo_dir, tmp_path):
    assert figures(run_demo(tmp_path / "again")) == figures(demo_dir)
