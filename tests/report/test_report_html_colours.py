"""Every chart of the HTML report gives each of its series a colour of its own, however many there are,
and the outcome charts never wear a candidate's colour."""

from __future__ import annotations

import re

from shadowtap.evaluators.report.html_assets import CANDIDATE_COLOURS
from shadowtap.evaluators.report.render_html import render_html

WEEKS = ["2026-10-26T00:00:00+00:00", "2026-11-02T00:00:00+00:00"]
CANDIDATES = [f"candidate-{i}" for i in range(len(CANDIDATE_COLOURS) + 3)]
CATEGORIES = [f"task-{i}" for i in range(len(CANDIDATE_COLOURS) + 3)]


def crowded_report() -> dict:
    """More candidates and more reviewer-agreement categories than either palette has colours."""
    trends = [{"candidate": name, "start": week, "end": week,
               "figures": {"agreement": {"candidate": {"mean": 0.5 + i / 50}}}}
              for i, name in enumerate(CANDIDATES) for week in WEEKS]
    outcome_points = [{"start": week, "end": week, "agreement_items": 3, "kappa": 0.5, "figures": {
        "exchanges": 4, "trusted_completion": {"rate": 0.5}, "escalation": {"rate": 0.1}, "rejection": {"rate": 0.2},
        "policy_violation": {"rate": 0.05}}} for week in WEEKS]
    agreement = [{"scope": scope, "items": 4, "reviewers": 2, "kappa": 0.5,
                  "windows": [{"start": week, "end": week, "items": 4, "kappa": 0.4 + i / 50} for week in WEEKS]}
                 for i, scope in enumerate(["overall", *CATEGORIES])]
    return {"candidates": [{"name": name, "overall": {}, "categories": []} for name in CANDIDATES], "trends": trends,
            "window": "1w", "outcomes": {"exchanges": 4, "feedback_rows": 8, "window": "week", "category": "task",
                                         "overall": {}, "categories": [], "trends": outcome_points, "validity": [],
                                         "agreement_method": "fleiss", "agreement": agreement, "thresholds": {}}}


def chart_colours(page: str) -> dict[str, dict[str, str]]:
    """aria label of each line chart -> series -> its line's colour."""
    charts = {}
    for svg in re.findall(r'<svg class="chart trend".*?</svg>', page, re.DOTALL):
        label = re.search(r'aria-label="([^"]*)"', svg).group(1)
        charts[label] = dict(re.findall(r'<path class="trend-line" data-source="([^"]*)" d="[^"]*" fill="none" '
                                        r'stroke="(#[0-9a-f]{6})"', svg))
    return charts


def test_no_two_series_of_a_chart_share_a_colour_when_there_are_more_than_the_palette_holds():
    charts = chart_colours(render_html(crowded_report()))
    assert set(charts) == {"agreement per window", "outcome shares per window", "reviewer kappa per window"}
    assert len(charts["agreement per window"]) == len(CANDIDATES)
    assert len(charts["reviewer kappa per window"]) == len(CATEGORIES) + 1
    for label, colours in charts.items():
        assert len(set(colours.values())) == len(colours), label


def test_outcome_and_reviewer_series_never_wear_a_candidates_colour():
    charts = chart_colours(render_html(crowded_report()))
    candidate_colours = set(charts["agreement per window"].values())
    for label in ("outcome shares per window", "reviewer kappa per window"):
        assert not set(charts[label].values()) & candidate_colours, label
