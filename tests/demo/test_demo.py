"""`shadowtap demo`, the README's first command, runs the whole loop and exits 0."""

import json
import sqlite3
import subprocess
import sys

import pytest

# Runs the whole demo (simulator, proxy, eval, report, replay): about a minute on an idle machine,
# minutes on a busy one, and one test runs it twice.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def run_demo(workdir):
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "demo", "--dir", str(workdir),
                             "--requests", "30"],
                            capture_output=True, text=True, timeout=400, env={"COLUMNS": "160", "PATH": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo complete" in result.stdout
    assert "$ shadowtap replay show" in result.stdout
    return workdir


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One small demo run, shared by the tests below (it takes tens of seconds)."""
    return run_demo(tmp_path_factory.mktemp("demo"))


def shadowtap_json(workdir, *arguments: str) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", *arguments, "--config",
                             str(workdir / "shadowtap.toml"), "--json"], capture_output=True, text=True, timeout=120)
    return result.returncode, json.loads(result.stdout)


# What still races the clock: slow's answers against its timeout (its latency includes the time a
# busy machine keeps the niced shadow worker waiting), and the twin, whose concurrency cap is the
# shadow worker's own (4), and so the primary's agreement with the twin (scored only where the twin
# answered). Everything else the demo measures must come out the same.
TIMED = ("slow", "primary_twin")


def figures(workdir) -> dict:
    """What the demo measured, without the timings: shadow calls and skips, scores, each candidate's verdict."""
    db = sqlite3.connect(workdir / "captures.db")
    timed = ", ".join(f"'{name}'" for name in TIMED)
    calls = db.execute("select candidate, count(*) from shadows where outcome != 'skipped' group by 1 "
                       "order by 1").fetchall()
    shadows = db.execute(f"select candidate, outcome, coalesce(skip_reason, ''), count(*) from shadows "
                         f"where candidate not in ({timed}) group by 1, 2, 3 order by 1, 2, 3").fetchall()
    scores = db.execute(f"select source, evaluator, coalesce(label, ''), count(*), round(sum(value), 6) from scores "
                        f"where evaluator not in ('latency_delta', 'cost_delta') and source not in ({timed}) "
                        "and not (source = 'primary' and evaluator = 'agreement') "
                        "group by 1, 2, 3 order by 1, 2, 3").fetchall()
    _, report = shadowtap_json(workdir, "report")
    verdicts = {item["candidate"]: item["verdict"] for item in report["gate"]["candidates"]}
    return {"calls": [row for row in calls if row[0] != "primary_twin"], "shadows": shadows, "scores": scores,
            "verdicts": verdicts}


def test_demo_exits_0_with_captures_shadows_and_scores_when_run_on_a_small_workload(demo_dir):
    db = sqlite3.connect(demo_dir / "captures.db")
    exchanges = db.execute("select count(*) from exchanges").fetchone()[0]
    assert exchanges == 30 + 220  # the workload and the overhead probes, all captured
    answered = db.execute("select count(*) from shadows where outcome = 'ok'").fetchone()[0]
    assert answered > 0
    evaluators = {row[0] for row in db.execute("select distinct evaluator from scores where outcome = 'score'")}
    assert {"grounding", "freshness", "contract", "agreement"} <= evaluators
    html = (demo_dir / "report.html").read_text()
    assert "drifty" in html and "<svg" in html


def test_demo_finishes_with_a_stored_replay_of_a_few_exchanges_against_the_primary(demo_dir):
    db = sqlite3.connect(demo_dir / "captures.db")
    runs = db.execute("select id, status, k, target from replay_runs").fetchall()
    assert len(runs) == 1
    run_id, status, k, target = runs[0]
    assert status == "complete" and k == 2 and '"kind":"primary"' in target
    results = db.execute("select outcome, count(*) from replay_results where run_id = ? group by outcome",
                         [run_id]).fetchall()
    assert results and dict(results).get("ok", 0) > 0 and sum(n for _, n in results) <= 5 * 2


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
