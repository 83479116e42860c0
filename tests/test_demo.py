"""`shadowtap demo`, the README's first command, runs the whole loop and exits 0."""

import sqlite3
import subprocess
import sys


def test_demo_exits_0_with_captures_shadows_and_scores_when_run_on_a_small_workload(tmp_path):
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "demo", "--dir", str(tmp_path), "--requests", "30"],
                            capture_output=True, text=True, timeout=170, env={"COLUMNS": "160", "PATH": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo complete" in result.stdout
    db = sqlite3.connect(tmp_path / "captures.db")
    exchanges = db.execute("select count(*) from exchanges").fetchone()[0]
    assert exchanges == 30 + 220  # the workload and the overhead probes, all captured
    answered = db.execute("select count(*) from shadows where outcome = 'ok'").fetchone()[0]
    assert answered > 0
    evaluators = {row[0] for row in db.execute("select distinct evaluator from scores where outcome = 'score'")}
    assert {"grounding", "freshness", "contract", "agreement"} <= evaluators
    html = (tmp_path / "report.html").read_text()
    assert "drifty" in html and "<svg" in html
