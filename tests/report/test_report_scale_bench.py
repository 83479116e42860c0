"""bench/report_scale.py: the traffic it builds has the shape it claims, and a small run times the
report and the eval over it."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bench import report_scale


def test_the_generated_traffic_has_shadows_for_a_sampled_share_and_leaves_the_newest_exchanges_unscored():
    rows = list(report_scale.generate(3000, pending=300))
    tables = Counter(table for table, _ in rows)
    assert tables["exchanges"] == 3000
    shadows = [row for table, row in rows if table == "shadows"]
    per_candidate = Counter(row[2] for row in shadows)
    assert 0.25 < per_candidate["cand-small"] / 3000 < 0.35
    assert 0.10 < per_candidate["cand-large"] / 3000 < 0.20
    assert 0.02 < per_candidate["primary_twin"] / 3000 < 0.08
    assert {row[5] for row in shadows} == {"ok", "error", "timeout", "skipped"}
    scored = {row[1] for table, row in rows if table == "scores"}
    assert scored and max(scored) < "ex0002700"
    evaluators = Counter(row[3] for table, row in rows if table == "scores")
    assert set(evaluators) == {"agreement", "grounding", "freshness", "contract"}


@pytest.mark.e2e
def test_a_small_run_times_the_report_over_every_exchange_and_the_eval_over_the_pending_slice(capsys):
    assert report_scale.main(["--exchanges", "400", "--pending", "40", "--backend", "sqlite"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"report --json: [\d.]+ s wall, [\d.]+ s CPU, peak RSS \d+ MB over 400 exchanges", out)
    written = re.search(r"eval \(pending slice, 40 exchanges, \d+ answers\): .* ([\d,]+) scores written", out)
    assert written and int(written.group(1).replace(",", "")) > 0
