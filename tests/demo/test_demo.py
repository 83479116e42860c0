"""`shadowtap demo`, the README's first command, runs the whole loop and exits 0."""

import sqlite3
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e  # runs the whole demo: simulator, proxy, eval, report, replay


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One small demo run, shared by the tests below (it takes tens of seconds)."""
    workdir = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "demo", "--dir", str(workdir),
                             "--requests", "30"],
                            capture_output=True, text=True, timeout=170, env={"COLUMNS": "160", "PATH": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo complete" in result.stdout
    assert "$ shadowtap replay show" in result.stdout
    return workdir


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
