"""`shadowtap report --json` on a store of known rows: every figure checked against hand arithmetic."""

from __future__ import annotations

import math

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import report_command
from tests.support.report_support import StoreBuilder

Z = 1.959964  # the normal 97.5% quantile
T3 = 3.182446  # Student t, 97.5%, 3 degrees of freedom
SCRIPT = "<script>alert('owned')</script> I cannot say"
DAY1, DAY2 = "2026-01-01", "2026-01-02"


@pytest.fixture
def store_path(tmp_path):
    """Eight exchanges over two days; candidate "small" and the primary's twin, with known scores.

    | ex | day | task      | risk | tag team | small     | twin | primary latency | small latency |
    | E1 | 1   | qa        | high | search   | ok        | ok   | 100             | 100           |
    | E2 | 1   | qa        | high | search   | ok        | ok   | 100             | 200           |
    | E3 | 1   | qa        | high |          | ok        | ok   | 100             | 300           |
    | E4 | 1   | qa        |      |          | ok        |      | 100             | 400           |
    | E5 | 2   | summarise |      |          | ok        |      | 1000            | 500           |
    | E6 | 2   | summarise |      |          | error     |      |                 |               |
    | E7 | 2   | summarise |      |          | skipped   |      |                 |               |
    | E8 | 2   | summarise |      |          | timeout   |      |                 |               |
    """
    path = tmp_path / "report.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    day1 = {"task": "qa"}
    build.exchange("E1", f"{DAY1}T01:00:00+00:00", **day1, risk_tier="high", tags={"team": "search"}, ttft_ms=25)
    build.exchange("E2", f"{DAY1}T02:00:00+00:00", **day1, risk_tier="high", tags={"team": "search"}, ttft_ms=35)
    build.exchange("E3", f"{DAY1}T03:00:00+00:00", **day1, risk_tier="high", ttft_ms=40)
    build.exchange("E4", f"{DAY1}T04:00:00+00:00", **day1)
    build.exchange("E5", f"{DAY2}T01:00:00+00:00", task="summarise", latency_ms=1000, text="the primary's summary")
    for exchange_id, hour in (("E6", 2), ("E7", 3), ("E8", 4)):
        build.exchange(exchange_id, f"{DAY2}T0{hour}:00:00+00:00", task="summarise")

    for exchange_id, latency in (("E1", 100), ("E2", 200), ("E3", 300), ("E4", 400)):
        build.shadow(exchange_id, "small", latency_ms=latency, cost_usd=0.002, prompt_tokens=10, completion_tokens=20,
                     ttft_ms={"E1": 50, "E2": 70}.get(exchange_id))
    build.shadow("E5", "small", latency_ms=500, cost_usd=None, prompt_tokens=10, completion_tokens=20, text=SCRIPT)
    build.shadow("E6", "small", "error")
    build.shadow("E7", "small", "skipped", skip_reason="sampled_out")
    build.shadow("E8", "small", "timeout")
    for exchange_id in ("E1", "E2", "E3"):
        build.shadow(exchange_id, "primary_twin")

    for exchange_id, value in (("E1", 1.0), ("E2", 0.8), ("E3", 0.6), ("E4", 0.95), ("E5", 0.4)):
        build.score(exchange_id, "small", "agreement", value, details={"method": "text", "against": "primary"})
    for exchange_id, value in (("E1", 1.0), ("E2", 0.92), ("E3", 0.86)):
        build.score(exchange_id, "primary", "agreement", value, details={"baseline": "primary_twin"})
    for exchange_id, value in (("E1", 0.9), ("E2", 0.7), ("E3", 0.8), ("E4", 0.6)):
        build.score(exchange_id, "small", "faithfulness", value)
    for exchange_id, value in (("E1", 1.0), ("E2", 0.9), ("E3", 0.8), ("E4", 0.9), ("E5", 0.7)):
        build.score(exchange_id, "primary", "faithfulness", value)
    for exchange_id, mine, theirs in (("E1", .2, .8), ("E2", .3, .85), ("E3", .25, .9), ("E4", .35, .8),
                                      ("E5", .3, .85)):
        build.score(exchange_id, "small", "grounding", mine)
        build.score(exchange_id, "primary", "grounding", theirs)
    for exchange_id, label in (("E1", "stale"), ("E2", "fresh"), ("E3", "unknown"), ("E4", "fresh"), ("E6", "stale")):
        build.score(exchange_id, "primary", "freshness", 0.0 if label == "stale" else 1.0, label)
    for exchange_id, label in (("E1", "valid"), ("E2", "invalid"), ("E3", "valid"), ("E4", "valid")):
        build.score(exchange_id, "small", "contract", 1.0 if label == "valid" else 0.0, label)
        build.score(exchange_id, "primary", "contract", 1.0, "valid")
    for exchange_id, mine, theirs in (("E1", "both_answered", "answered"),
                                      ("E2", "refused_where_primary_answered", "answered"),
                                      ("E3", "both_answered", "answered"), ("E4", "both_answered", "answered"),
                                      ("E5", "both_refused", "refused")):
        build.score(exchange_id, "small", "refusal", 1.0 if mine.startswith("both") else 0.0, mine)
        build.score(exchange_id, "primary", "refusal", 1.0 if theirs == "answered" else 0.0, theirs)
    # Not a score: must not count anywhere.
    build.score("E5", "small", "faithfulness", 0, outcome="not_applicable")
    store.close()
    return path


def wilson(count, n):
    p = count / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return {"count": count, "n": n, "rate": p, "low": centre - half, "high": centre + half}


def t_interval(values, t):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "low": mean - t * sd / math.sqrt(n), "high": mean + t * sd / math.sqrt(n), "n": n}


def assert_close(actual, expected, path="$"):
    """Every key in `expected` is in `actual` with an equal value (floats to 1e-5)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            assert_close(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1e-5), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def report_json(store_path, *args) -> dict:
    result = CliRunner().invoke(report_command, ["--store", str(store_path), "--json", *args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)


def test_every_overall_figure_matches_hand_arithmetic_when_rows_are_known(store_path):
    report = report_json(store_path)
    assert report["exchanges"] == 8
    assert [c["name"] for c in report["candidates"]] == ["small"]
    small = report["candidates"][0]
    assert small["model"] == "openai/small"
    overall = small["overall"]

    # Agreement 1.0, .8, .6, .95, .4 against the twin's 1.0, .92, .86 (Diffy: below 0.9 counts as differing).
    agreement_mean, noise_mean = 3.75 / 5, 2.78 / 3
    faithfulness_diffs = [0.9 - 1.0, 0.7 - 0.9, 0.8 - 0.8, 0.6 - 0.9]
    grounding_diffs = [.2 - .8, .3 - .85, .25 - .9, .35 - .8, .3 - .85]
    expected = {
        "samples": 5,
        "calls": {"made": 7, "answered": 5, "errors": 1, "timeouts": 1, "cancelled": 0,
                  "skipped": {"sampled_out": 1}, "error_rate": wilson(1, 7), "timeout_rate": wilson(1, 7),
                  "failure_rate": wilson(2, 7)},
        "agreement": {
            "candidate": {"mean": agreement_mean, "n": 5},
            "noise": {"mean": noise_mean, "n": 3},
            "above_noise": agreement_mean - noise_mean,
            "disagreement": wilson(3, 5),
            "noise_disagreement": wilson(1, 3),
            "disagreement_above_noise": 3 / 5 - 1 / 3,
        },
        "faithfulness": {
            "n": 4,
            "candidate": {"mean": 0.75, "n": 4},
            "primary": {"mean": 0.9, "n": 4},  # E5's primary score has no candidate partner: left out
            "difference": t_interval(faithfulness_diffs, T3),
        },
        "grounding": {"n": 5, "candidate": {"mean": 0.28}, "primary": {"mean": 0.84},
                      "difference": {"mean": -0.56, "n": 5}},
        "stale_context": wilson(1, 4),          # E1 stale of E1..E4 scored; E6 was not answered
        "contract_valid": wilson(3, 4),
        "primary_contract_valid": wilson(4, 4),
        "refusal": wilson(2, 5),
        "primary_refusal": wilson(1, 5),
        "latency": {"n": 5, "candidate_p50_ms": 300.0, "candidate_p95_ms": 480.0, "primary_p50_ms": 100.0,
                    "primary_p95_ms": 820.0, "p50_ratio": 3.0, "p95_ratio": 480 / 820,
                    "ttft_n": 2, "candidate_ttft_p50_ms": 60.0, "primary_ttft_p50_ms": 30.0, "ttft_p50_ratio": 2.0},
        "cost": {"n": 4, "candidate_per_1k_usd": 2.0, "primary_per_1k_usd": 1.0, "ratio": 2.0,
                 "tokens_n": 5, "candidate_tokens_mean": 30.0, "primary_tokens_mean": 20.0, "tokens_ratio": 1.5},
    }
    assert_close(overall, expected)
    # The hand-written interval, spelled out: mean -0.15, sd sqrt(0.05 / 3), t(3) = 3.182446.
    assert overall["faithfulness"]["difference"]["low"] == pytest.approx(-0.355427, abs=1e-6)
    assert overall["faithfulness"]["difference"]["high"] == pytest.approx(0.055427, abs=1e-6)
    # Only grounding is significantly worse: its paired interval is wholly below zero. Agreement
    # (3/5 vs 1/3, z = 0.73) and contract (1/4 vs 0/4, z = 1.07) are not.
    assert [finding["metric"] for finding in overall["significantly_worse"]] == ["grounding"]
    grounding_interval = t_interval(grounding_diffs, 2.776445)
    assert overall["significantly_worse"][0]["statistic"] == pytest.approx(grounding_interval["high"], abs=1e-6)
    assert_close(overall["grounding"]["difference"], grounding_interval)


def test_noise_floor_is_null_not_zero_when_there_are_no_twin_samples(store_path):
    report = report_json(store_path, "--since", f"{DAY2}T00:00:00+00:00")
    agreement = report["candidates"][0]["overall"]["agreement"]
    assert agreement["candidate"]["mean"] == pytest.approx(0.4)
    assert agreement["noise"] == {"mean": None, "low": None, "high": None, "n": 0}
    assert agreement["above_noise"] is None
    assert agreement["disagreement_above_noise"] is None


def test_disagreement_above_noise_is_zero_when_the_candidate_differs_less_than_the_twin(tmp_path):
    store = CaptureStore.open(tmp_path / "s.db")
    build = StoreBuilder(store)
    for index, (mine, twin) in enumerate([(0.95, 0.5), (0.95, 0.5), (0.5, 0.95)]):
        build.exchange(f"x{index}", f"{DAY1}T0{index}:00:00+00:00")
        build.shadow(f"x{index}", "small")
        build.score(f"x{index}", "small", "agreement", mine)
        build.score(f"x{index}", "primary", "agreement", twin, details={"baseline": "primary_twin"})
    store.close()
    agreement = report_json(tmp_path / "s.db")["candidates"][0]["overall"]["agreement"]
    assert agreement["disagreement"]["rate"] == pytest.approx(1 / 3)
    assert agreement["noise_disagreement"]["rate"] == pytest.approx(2 / 3)
    assert agreement["disagreement_above_noise"] == 0.0
    assert agreement["above_noise"] == pytest.approx(0.8 - 0.65)


def test_categories_cover_endpoint_task_risk_tier_and_tags_when_exchanges_carry_them(store_path):
    categories = {(c["dimension"], c["value"]): c["figures"]
                  for c in report_json(store_path)["candidates"][0]["categories"]}
    assert list(categories) == [("endpoint", "chat.completions"), ("task", "qa"), ("task", "summarise"),
                                ("risk_tier", "high"), ("tag:team", "search")]
    assert categories["task", "qa"]["samples"] == 4
    assert categories["task", "summarise"]["samples"] == 1
    assert categories["task", "summarise"]["calls"]["made"] == 3
    assert categories["risk_tier", "high"]["samples"] == 3
    assert categories["tag:team", "search"]["samples"] == 2
    # The category's noise floor comes from its own twin pairs: E1 and E2 only.
    assert categories["tag:team", "search"]["agreement"]["noise"]["mean"] == pytest.approx(0.96)


def test_a_category_is_marked_worse_only_when_its_difference_is_significant(store_path):
    categories = {(c["dimension"], c["value"]): c["figures"]
                  for c in report_json(store_path)["candidates"][0]["categories"]}
    # qa: four grounding differences -.6, -.55, -.65, -.45; the t-interval's upper bound is
    # -.5625 + 3.182446 x sd / 2 < 0. summarise: one pair, no interval, nothing to mark.
    qa = categories["task", "qa"]["significantly_worse"]
    assert [finding["metric"] for finding in qa] == ["grounding"]
    assert qa[0]["statistic"] == pytest.approx(t_interval([-.6, -.55, -.65, -.45], T3)["high"], abs=1e-6)
    assert categories["task", "summarise"]["significantly_worse"] == []


def test_windows_split_the_figures_by_day_when_window_is_1d(store_path):
    report = report_json(store_path, "--window", "1d")
    assert report["window"] == "1d"
    points = report["trends"]
    assert [(p["candidate"], p["start"], p["end"]) for p in points] == [
        ("small", f"{DAY1}T00:00:00+00:00", f"{DAY2}T00:00:00+00:00"),
        ("small", f"{DAY2}T00:00:00+00:00", "2026-01-03T00:00:00+00:00")]
    first, second = points[0]["figures"], points[1]["figures"]
    assert (first["samples"], first["calls"]["made"]) == (4, 4)
    assert first["agreement"]["candidate"]["mean"] == pytest.approx((1.0 + .8 + .6 + .95) / 4)
    assert first["agreement"]["above_noise"] == pytest.approx((1.0 + .8 + .6 + .95) / 4 - 2.78 / 3)
    assert (second["samples"], second["calls"]["made"], second["calls"]["skipped"]) == (1, 3, {"sampled_out": 1})
    assert second["agreement"]["above_noise"] is None


def test_windows_of_six_hours_bucket_on_utc_boundaries_when_window_is_6h(store_path):
    points = report_json(store_path, "--window", "6h")["trends"]
    assert [p["start"] for p in points] == [f"{DAY1}T00:00:00+00:00", f"{DAY2}T00:00:00+00:00"]
    assert points[0]["end"] == f"{DAY1}T06:00:00+00:00"


def test_chart_data_holds_distributions_latencies_heatmap_and_worst_answers_when_reported(store_path):
    report = report_json(store_path)
    distributions = {(d["evaluator"], d["source"]): d for d in report["distributions"]}
    agreement = distributions["agreement", "small"]
    assert agreement["n"] == 5
    assert agreement["counts"] == [0, 0, 0, 0, 1, 0, 1, 0, 1, 2]  # .4, .6, .8, then .95 and 1.0 in the top bin
    assert distributions["agreement", "primary"]["n"] == 3
    latencies = {entry["source"]: entry for entry in report["latency_samples"]}
    assert latencies["small"]["latency_ms"] == [100, 200, 300, 400, 500]
    assert latencies["primary"]["n"] == 8
    cells = {(c["dimension"], c["value"]): c for c in report["heatmap"]}
    assert cells["task", "qa"]["significantly_worse"] == ["grounding"]
    assert cells["task", "qa"]["samples"] == 4
    worst = report["worst_disagreements"]
    assert [(w["exchange_id"], w["agreement"]) for w in worst] == [
        ("E5", 0.4), ("E3", 0.6), ("E2", 0.8), ("E4", 0.95), ("E1", 1.0)]
    assert worst[0]["primary_text"] == "the primary's summary"
    assert worst[0]["method"] == "text"


def test_candidate_text_with_a_script_tag_survives_as_data_when_reported_as_json(store_path):
    worst = report_json(store_path)["worst_disagreements"][0]
    assert worst["candidate_text"] == SCRIPT


def test_only_the_named_candidate_is_reported_when_candidate_is_given(store_path):
    report = report_json(store_path, "--candidate", "nobody")
    assert [c["name"] for c in report["candidates"]] == ["nobody"]
    assert report["candidates"][0]["overall"]["samples"] == 0
    assert report["candidates"][0]["overall"]["agreement"]["candidate"]["mean"] is None


def test_a_score_mean_interval_never_reaches_outside_what_a_score_can_be():
    from shadowtap.evaluators.report.stats import SCORE_RANGE, mean_interval

    scores = [1.0, 1.0, 1.0, 0.2]  # mean 0.8; the raw t-interval runs from about 0.16 to 1.44
    half = 3.182446 * math.sqrt(sum((s - 0.8) ** 2 for s in scores) / 3) / 2
    raw = mean_interval(scores)
    clipped = mean_interval(scores, within=SCORE_RANGE)
    assert raw.high == pytest.approx(0.8 + half) and raw.high > 1
    assert (clipped.mean, clipped.low, clipped.high) == (pytest.approx(0.8), pytest.approx(0.8 - half), 1.0)
