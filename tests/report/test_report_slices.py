"""The report at scale: it keeps in memory only the exchanges a figure reads, counts and times all of
them, and adds each category's and window's figures up from cells (categories x window), with the
same figures as `key_figures` takes over the whole input restricted to that slice."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest

from shadowtap.core.store import CaptureStore, Store
from shadowtap.evaluators.report.build import build_report
from shadowtap.evaluators.report.figures import key_figures
from shadowtap.evaluators.report.slices import ReportSlices, window_start
from shadowtap.evaluators.report.source import categories_of, load_input
from tests.support.report_support import StoreBuilder

TASKS = ("qa", "chat", "extract")


@pytest.fixture
def store_path(tmp_path):
    """120 exchanges over two days. "small" shadows two in three, "large" one in four (with errors
    and skips); the twin answers one in three, some of them where no candidate did; every fifth
    exchange has nothing but itself (no shadow, no score)."""
    path = tmp_path / "s.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    for index in range(120):
        exchange_id = f"x{index:03d}"
        task = TASKS[index % 3]
        moment = f"2026-02-0{1 + index // 60}T{(index % 60) // 3:02d}:{(index % 3) * 20:02d}:00+00:00"
        build.exchange(exchange_id, moment, task=task,
                       risk_tier="high" if index % 4 == 0 else "low", tags={"team": "ab"[index % 2]},
                       latency_ms=100.0 + index, ttft_ms=20.0 + index if index % 2 else None)
        if index % 5 == 4:
            continue
        if index % 3 != 2:
            build.shadow(exchange_id, "small", latency_ms=90.0 + index * 1.5)
            build.score(exchange_id, "small", "agreement", 0.5 + (index % 7) / 14, "agree")
            build.score(exchange_id, "small", "grounding", 0.6 + (index % 5) / 20)
            build.score(exchange_id, "primary", "grounding", 0.7 + (index % 3) / 20)
        if index % 4 == 1:
            outcome = ("ok", "error", "skipped")[index % 3]
            build.shadow(exchange_id, "large", outcome, skip_reason="over_budget" if outcome == "skipped" else None)
            if outcome == "ok":
                build.score(exchange_id, "large", "contract", 1.0 if index % 2 else 0.0,
                            "valid" if index % 2 else "invalid")
                build.score(exchange_id, "primary", "contract", 1.0, "valid")
        if index % 3 == 0 or index % 5 == 2:
            build.shadow(exchange_id, "primary_twin", latency_ms=95.0 + index)
            build.score(exchange_id, "primary", "agreement", 0.8 + (index % 4) / 20, "agree",
                        {"baseline": "primary_twin"})
    store.close()
    return path


def read(store_path):
    store = Store.open(store_path)
    try:
        with store.reports.snapshot():
            return load_input(store.reports)
    finally:
        store.close()


def test_only_exchanges_with_a_shadow_or_a_twin_score_are_kept_but_every_exchange_is_counted(store_path):
    data = read(store_path)
    assert data.exchange_count == 120
    linked = [index for index in range(120) if index % 5 != 4  # the fixture's rule for a shadow row
              and (index % 3 != 2 or index % 4 == 1 or index % 3 == 0 or index % 5 == 2)]
    assert 60 < len(linked) < 96
    assert sorted(data.exchanges) == [f"x{index:03d}" for index in linked]
    assert sorted(data.primary_latency) == [100.0 + index for index in range(120)]
    assert sorted(data.primary_ttft) == [20.0 + index for index in range(1, 120, 2)]


def test_the_report_counts_and_times_exchanges_without_any_shadow(store_path):
    store = Store.open(store_path)
    report = build_report(store.reports, store="s").to_json()
    store.close()
    assert report["exchanges"] == 120
    primary = next(samples for samples in report["latency_samples"] if samples["source"] == "primary")
    assert primary["n"] == 120 and primary["latency_ms"] == [100.0 + index for index in range(120)]
    assert primary["ttft_n"] == 60


def whole_input_members(data, keys_of):
    """What the report did before slices: every exchange with the key, and the whole input."""
    members: dict = defaultdict(set)
    for exchange_id, exchange in data.exchanges.items():
        for key in keys_of(exchange):
            members[key].add(exchange_id)
    return members


@pytest.mark.parametrize("candidate", ["small", "large", "primary_twin", "absent"])
def test_every_slice_gives_the_figures_of_the_whole_input_taken_over_that_slice(store_path, candidate):
    data = read(store_path)
    step = timedelta(hours=6)
    slices = ReportSlices(data, step).candidate(candidate)
    assert slices.overall == key_figures(data, candidate)
    if candidate == "small":  # enough twin answers: the twin's rows are the latency baseline
        assert slices.overall.latency.baseline == "primary_twin"

    def window_of(exchange):
        return (window_start(exchange["started_dt"], step),)

    rows = data.shadows.get(candidate, [])
    for keys_of, by_key in ((categories_of, slices.categories), (window_of, slices.windows)):
        members = whole_input_members(data, keys_of)
        with_rows = {key for row in rows for key in keys_of(data.exchanges[row["exchange_id"]])}
        assert set(by_key) == with_rows
        for key, figures in by_key.items():
            assert figures == key_figures(data, candidate, members[key])
    if candidate in ("small", "large"):
        assert len(slices.categories) > 3 and len(slices.windows) > 3


def test_a_category_slice_reads_the_twin_noise_of_exchanges_the_candidate_has_no_row_for(store_path):
    data = read(store_path)
    qa = ReportSlices(data, timedelta(days=1)).candidate("large").categories["task", "qa"]
    twin_scored_qa = [exchange_id for exchange_id, exchange in data.exchanges.items() if exchange["task"] == "qa"
                      and data.score(exchange_id, "primary", "agreement") is not None]
    twin_only = [exchange_id for exchange_id in twin_scored_qa
                 if not any(row["exchange_id"] == exchange_id for row in data.shadows["large"])]
    assert twin_only
    assert qa.agreement.noise.n == len(twin_scored_qa)
