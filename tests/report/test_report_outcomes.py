"""`shadowtap report` and `shadowtap gate` with human outcomes: every figure against hand arithmetic,
every format, the gate's outcome checks, and a store with no feedback at all."""

from __future__ import annotations

import math
from statistics import fmean, stdev

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import gate_command, report_command
from tests.support.outcomes_support import OUTCOMES_TOML, add_feedback, build_outcome_store
from tests.support.report_support import balanced_store, write_config

Z = 1.959964           # the normal 97.5% quantile
T6 = 2.446912          # Student t, 97.5%, 6 degrees of freedom


def wilson(count: int, n: int) -> dict:
    p = count / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return {"count": count, "n": n, "rate": p, "low": centre - half, "high": centre + half}


def assert_rate(found: dict, expected: dict) -> None:
    assert (found["count"], found["n"]) == (expected["count"], expected["n"])
    for key in ("rate", "low", "high"):
        assert found[key] == pytest.approx(expected[key], abs=1e-6), key


@pytest.fixture
def outcome_store(tmp_path):
    path = tmp_path / "outcomes.db"
    store = CaptureStore.open(path)
    build_outcome_store(store)
    store.close()
    return path


def run(tmp_path, store_path, *args, gate: str = "min_samples = 10", command=report_command, outcomes=OUTCOMES_TOML):
    config = write_config(tmp_path / "shadowtap.toml", store_path, gate)
    config.write_text(config.read_text() + outcomes)
    # Wide enough that rich never wraps a cell of the terminal tables.
    return CliRunner().invoke(command, ["--config", str(config), *args], env={"COLUMNS": "300"})


@pytest.fixture
def outcomes_json(tmp_path, outcome_store) -> dict:
    result = run(tmp_path, outcome_store, "--json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)["outcomes"]


def test_trusted_task_completion_and_outcome_rates_equal_the_hand_computation(outcomes_json):
    overall = outcomes_json["overall"]
    # Completed: E01 E02 E03 E05 E06 E08 E10. Heavy: E03 (12 min > 10), E10 (ratio .5 > .3).
    # Over the 2000 ms budget: E06. Trusted: E01 E02 E05 E08. E12 has no feedback.
    assert overall["exchanges"] == 11
    assert_rate(overall["trusted_completion"], wilson(4, 11))
    assert_rate(overall["completed"], wilson(7, 11))
    assert_rate(overall["heavy_correction"], wilson(2, 11))
    assert_rate(overall["escalation"], wilson(1, 11))           # E07: escalated beats ben's edit
    assert_rate(overall["rejection"], wilson(2, 11))            # E04, E11 (ana accepted, ben rejected)
    assert_rate(overall["policy_violation"], wilson(1, 11))     # E09
    assert overall["over_budget"] == 1
    assert overall["outcomes"] == {"accepted": 3, "edited": 4, "escalated": 1, "rejected": 2, "policy_violation": 1}
    by_task = {c["value"]: c["figures"] for c in outcomes_json["categories"]}
    assert_rate(by_task["qa"]["trusted_completion"], wilson(3, 6))     # E01 E02 E05
    assert_rate(by_task["chat"]["trusted_completion"], wilson(1, 5))   # E08


def test_correction_burden_equals_the_hand_computation(outcomes_json):
    # Per completed answer, the mean over its reviewers' latest rows; accepted without minutes = 0,
    # edited without a ratio = unknown. E05: ana's re-review (2 min) replaces her acceptance.
    minutes = [0, (4 + 6) / 2, (0 + 12) / 2, (2 + 0) / 2, 0, 0, (5 + 7) / 2]        # E01 E02 E03 E05 E06 E08 E10
    ratios = [0, (.1 + .2) / 2, 0, 0, 0, 0, (.5 + .4) / 2]
    # Intervals stop where the figure must: minutes at 0, ratios at 0 and 1.
    for key, values, top in (("edit_minutes", minutes, math.inf), ("edit_ratio", ratios, 1.0)):
        found = outcomes_json["overall"][key]
        half = T6 * stdev(values) / math.sqrt(len(values))
        assert found["n"] == 7
        assert found["mean"] == pytest.approx(fmean(values))
        expected = (max(0.0, fmean(values) - half), min(top, fmean(values) + half))
        assert (found["low"], found["high"]) == pytest.approx(expected, abs=1e-6)
    assert outcomes_json["overall"]["edit_minutes"]["mean"] == pytest.approx(18 / 7)


def test_evaluator_means_sit_beside_the_outcomes_of_the_same_exchanges(outcomes_json):
    qa = next(c["figures"] for c in outcomes_json["categories"] if c["value"] == "qa")
    assert qa["evaluator_means"]["grounding"]["mean"] == pytest.approx(fmean([.9, .8, .7, .2, .7, .6]))
    # E12 has no feedback and "small"'s score is a candidate's: neither counts.
    overall = outcomes_json["overall"]["evaluator_means"]["grounding"]
    assert overall["n"] == 11
    assert overall["mean"] == pytest.approx(fmean([.9, .8, .7, .2, .7, .6, .6, .9, .3, .8, .5]))


def test_validity_auc_and_delong_interval_equal_the_hand_computation(outcomes_json):
    # Bad outcome (positive class): escalated, rejected, policy violation, or heavily corrected.
    good = [.9, .8, .7, .6, .9]                 # E01 E02 E05 E06 E08
    bad = [.7, .2, .6, .3, .8, .5]              # E03 (heavy) E04 E07 E09 E10 (heavy) E11

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    auc = sum(psi(g, b) for g in good for b in bad) / (len(good) * len(bad))
    assert auc == pytest.approx(25.5 / 30)       # ties at .8, .7 and .6 count one half
    v_good = [fmean(psi(g, b) for b in bad) for g in good]
    v_bad = [fmean(psi(g, b) for g in good) for b in bad]
    s_good = sum((v - auc) ** 2 for v in v_good) / (len(good) - 1)
    s_bad = sum((v - auc) ** 2 for v in v_bad) / (len(bad) - 1)
    se = math.sqrt(s_good / len(good) + s_bad / len(bad))
    rows = {row["evaluator"]: row for row in outcomes_json["validity"]}
    grounding = rows["grounding"]
    assert (grounding["n"], grounding["positives"], grounding["negatives"]) == (11, 6, 5)
    assert grounding["auc"] == pytest.approx(auc)
    assert grounding["low"] == pytest.approx(auc - Z * se, abs=1e-6)
    assert grounding["high"] == pytest.approx(min(1.0, auc + Z * se), abs=1e-6)
    assert rows["faithfulness"]["auc"] == 1.0 and rows["faithfulness"]["low"] is None   # one of each class
    assert rows["contract"]["auc"] is None and rows["contract"]["positives"] == 0        # no bad outcome scored


def test_cohen_kappa_and_the_falling_category_equal_the_hand_computation(outcomes_json):
    # (ana, ben) on the ten exchanges both judged; E06 was reported by the app alone.
    pairs = {"E01": ("accepted", "accepted"), "E02": ("edited", "edited"), "E03": ("accepted", "edited"),
             "E04": ("rejected", "rejected"), "E05": ("edited", "accepted"), "E07": ("escalated", "edited"),
             "E08": ("accepted", "accepted"), "E09": ("policy_violation", "policy_violation"),
             "E10": ("edited", "edited"), "E11": ("accepted", "rejected")}

    def cohen(ids):
        chosen = [pairs[i] for i in ids]
        n = len(chosen)
        observed = sum(a == b for a, b in chosen) / n
        labels = {label for pair in chosen for label in pair}
        expected = sum(sum(a == label for a, _ in chosen) * sum(b == label for _, b in chosen)
                       for label in labels) / n ** 2
        return (observed - expected) / (1 - expected)

    assert cohen(pairs) == pytest.approx((.6 - .27) / .73)
    assert outcomes_json["agreement_method"] == "cohen"
    rows = {row["scope"]: row for row in outcomes_json["agreement"]}
    assert rows["overall"]["items"] == 10 and rows["overall"]["reviewers"] == 2
    assert rows["overall"]["kappa"] == pytest.approx(cohen(pairs))
    chat_day1, chat_day2 = cohen(["E07", "E08", "E09"]), cohen(["E10", "E11"])
    qa_day1, qa_day2 = cohen(["E01", "E02", "E03"]), cohen(["E04", "E05"])
    assert rows["chat"]["kappa"] == pytest.approx(cohen(["E07", "E08", "E09", "E10", "E11"]))
    assert [w["kappa"] for w in rows["chat"]["windows"]] == pytest.approx([chat_day1, chat_day2])
    assert rows["chat"]["drop"] == pytest.approx(chat_day1 - chat_day2)        # 4/7 - 1/3 >= 0.2
    assert rows["chat"]["falling"] is True
    assert rows["qa"]["drop"] == pytest.approx(qa_day1 - qa_day2)              # 0.4 - 1/3 < 0.2
    assert rows["qa"]["falling"] is False
    assert outcomes_json["falling_categories"] == ["chat"]


def test_the_trend_has_one_point_per_day_with_its_own_figures(outcomes_json):
    points = outcomes_json["trends"]
    assert [p["start"][:10] for p in points] == ["2026-03-02", "2026-03-03"]
    assert_rate(points[0]["figures"]["trusted_completion"], wilson(3, 6))    # E01 E02 E08 of E01-E03, E07-E09
    assert_rate(points[1]["figures"]["trusted_completion"], wilson(1, 5))    # E05 of E04-E06, E10, E11
    assert [p["agreement_items"] for p in points] == [6, 4]


@pytest.mark.parametrize("args, marker", [
    (["--details"], "trusted completion"), (["--markdown"], "| task=chat |"),
])
def test_text_formats_show_the_outcomes_section_with_the_falling_category_marked(tmp_path, outcome_store, args, marker):
    result = run(tmp_path, outcome_store, *args)
    assert result.exit_code == 0, result.output
    assert "11 exchanges with feedback" in result.output
    assert marker in result.output
    assert "36.4%" in result.output                       # trusted completion, 4 of 11
    assert "0.850" in result.output                       # grounding's AUC
    assert "▼ falling" in result.output and "Cohen's kappa" in result.output


def test_html_report_shows_the_outcomes_section(tmp_path, outcome_store):
    page = tmp_path / "report.html"
    result = run(tmp_path, outcome_store, "--html", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text()
    section = html.split("<h2>Human outcomes</h2>")[1].split("</section>")[0]
    assert "36.4% [" in section and "(4/11)" in section
    assert "0.850 [" in section
    assert '<td class="fail">▼ falling</td>' in section
    assert "<script" not in html


def test_untrusted_category_values_are_escaped_in_markdown_and_html(tmp_path):
    path = tmp_path / "evil.db"
    store = CaptureStore.open(path)
    from tests.support.report_support import StoreBuilder

    StoreBuilder(store).exchange("X1", "2026-03-02T00:00:00+00:00", task="<script>alert(1)</script>|x")
    add_feedback(store, "X1", "accepted", "ana")
    store.close()
    page = tmp_path / "report.html"
    result = run(tmp_path, path, "--markdown", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert "<script>" not in result.output and "&lt;script&gt;" in result.output
    assert "<script>" not in page.read_text() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.read_text()


@pytest.mark.parametrize("args", [["--details"], ["--markdown"], ["--json"]])
def test_report_on_a_store_without_feedback_says_there_is_none(tmp_path, args):
    path = tmp_path / "plain.db"
    store = CaptureStore.open(path)
    balanced_store(store)
    store.close()
    page = tmp_path / "report.html"
    result = run(tmp_path, path, *args, "--html", str(page))
    assert result.exit_code == 0, result.output
    if args == ["--json"]:
        outcomes = orjson.loads(result.stdout)["outcomes"]
        assert (outcomes["exchanges"], outcomes["feedback_rows"], outcomes["validity"]) == (0, 0, [])
    else:
        assert "no human outcomes for these exchanges yet" in result.output
        assert "/shadowtap/feedback" in result.output and "trusted completion" not in result.output
    section = page.read_text().split("<h2>Human outcomes</h2>")[1].split("</section>")[0]
    assert "No human outcomes" in section and "<table" not in section


# -- the gate ---------------------------------------------------------------------------------

@pytest.fixture
def gated_store(tmp_path):
    """A candidate that passes every candidate check, and 20 exchanges with feedback from two reviewers:
    15 accepted by both, 5 rejected by both (trusted completion 0.75, rejection 0.25, kappa 1)."""
    path = tmp_path / "gated.db"
    store = CaptureStore.open(path)
    balanced_store(store, "twin-like")
    for index in range(20):
        outcome = "rejected" if index % 4 == 0 else "accepted"
        for reviewer in ("ana", "ben"):
            add_feedback(store, f"x{index:03d}", outcome, reviewer, edit_minutes=2 if outcome == "accepted" else None)
    store.close()
    return path


def gate_json(tmp_path, store_path, gate: str) -> tuple[int, dict]:
    result = run(tmp_path, store_path, "--json", gate="min_samples = 10\n" + gate, command=gate_command, outcomes="")
    return result.exit_code, orjson.loads(result.output)


def outcome_checks(verdict: dict) -> dict:
    return {c["check"]: c for c in verdict["checks"] if c["scope"] == "outcomes"}


@pytest.mark.parametrize("gate, check, figure", [
    ("min_trusted_task_completion = 0.8", "min_trusted_task_completion", 15 / 20),
    ("max_correction_minutes = 1.5", "max_correction_minutes", 2.0),
    ("max_rejection_rate = 0.2", "max_rejection_rate", 5 / 20),
])
def test_gate_fails_naming_the_outcome_check_that_is_not_met(tmp_path, gated_store, gate, check, figure):
    code, verdict = gate_json(tmp_path, gated_store, gate)
    assert code == 1
    assert verdict["failed"] == [f"primary outcomes {check}"]
    found = outcome_checks(verdict)[check]
    assert found["status"] == "fail" and found["figure"] == pytest.approx(figure)
    assert "is not" in found["reason"]


def test_gate_passes_when_every_set_outcome_threshold_is_met(tmp_path, gated_store):
    code, verdict = gate_json(tmp_path, gated_store, "min_trusted_task_completion = 0.75\nmax_correction_minutes = 2\n"
                                                     "max_rejection_rate = 0.25\nmax_policy_violation_rate = 0\n"
                                                     "min_reviewer_kappa = 0.9")
    assert code == 0, verdict
    checks = outcome_checks(verdict)
    assert sorted(checks) == ["max_correction_minutes", "max_policy_violation_rate", "max_rejection_rate",
                              "min_reviewer_kappa", "min_trusted_task_completion"]
    assert {c["status"] for c in checks.values()} == {"pass"}
    assert checks["min_reviewer_kappa"]["figure"] == pytest.approx(1.0)


def test_outcome_checks_are_off_unless_set(tmp_path, gated_store):
    code, verdict = gate_json(tmp_path, gated_store, "")
    assert code == 0
    assert outcome_checks(verdict) == {}


def test_outcome_checks_are_skipped_below_outcomes_min_exchanges(tmp_path, gated_store):
    code, verdict = gate_json(tmp_path, gated_store, "min_trusted_task_completion = 0.99\noutcomes_min_exchanges = 21")
    assert code == 0
    check = outcome_checks(verdict)["min_trusted_task_completion"]
    assert check["status"] == "skipped" and "only 20 exchanges with feedback" in check["reason"]


def test_gate_text_output_names_the_failed_outcome_check(tmp_path, gated_store):
    result = run(tmp_path, gated_store, gate="min_samples = 10\nmin_trusted_task_completion = 0.8",
                 command=gate_command, outcomes="")
    assert result.exit_code == 1
    assert "FAIL    primary  outcomes  min_trusted_task_completion: 0.75 (must be >= 0.8)" in result.output


@pytest.mark.parametrize("category, expected", [
    # B: ben's later "billing" beats ana's "refunds"; C: ana's unlabelled re-review replaces her labelled row.
    ("label", {"billing": 2}),
    ("tag:team", {"search": 2}),
    ("risk_tier", {"high": 1}),
])
def test_outcomes_are_split_by_the_configured_category_dimension(tmp_path, category, expected):
    from tests.support.report_support import StoreBuilder

    path = tmp_path / "categories.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    build.exchange("A", "2026-03-02T01:00:00+00:00", tags={"team": "search"}, risk_tier="high")
    build.exchange("B", "2026-03-02T02:00:00+00:00", tags={"team": "search"})
    build.exchange("C", "2026-03-02T03:00:00+00:00")
    build.exchange("D", "2026-03-02T04:00:00+00:00")
    add_feedback(store, "A", "accepted", "ana", label="billing")
    add_feedback(store, "B", "rejected", "ana", label="refunds", at="2026-03-02T10:00:00+00:00")
    add_feedback(store, "B", "rejected", "ben", label="billing", at="2026-03-02T11:00:00+00:00")
    add_feedback(store, "C", "accepted", "ana", label="refunds", at="2026-03-02T10:00:00+00:00")
    add_feedback(store, "C", "accepted", "ana", at="2026-03-02T11:00:00+00:00")   # re-review without a label
    add_feedback(store, "D", "accepted", "ana")
    store.close()
    result = run(tmp_path, path, "--json", outcomes=f'[outcomes]\ncategory = "{category}"\n')
    assert result.exit_code == 0, result.output
    outcomes = orjson.loads(result.stdout)["outcomes"]
    assert {c["value"]: c["figures"]["exchanges"] for c in outcomes["categories"]} == expected


def test_since_and_until_choose_exchanges_by_their_own_time_not_by_the_feedbacks(tmp_path, outcome_store):
    # Every feedback row is dated day 2; only the exchanges of day 2 are in range.
    result = run(tmp_path, outcome_store, "--json", "--since", "2026-03-03T00:00:00+00:00")
    assert result.exit_code == 0, result.output
    outcomes = orjson.loads(result.stdout)["outcomes"]
    assert outcomes["exchanges"] == 5                          # E04 E05 E06 E10 E11
    assert outcomes["overall"]["trusted_completion"]["count"] == 1     # E05
