"""`[shadow] workers = N`: each worker gets a share of every cap and budget, the shares add up to
the configured limits, and the twin's cap comes from `[shadow] twin_max_concurrency`."""

from __future__ import annotations

import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.proxy.shadow.dispatcher import merge_snapshots
from shadowtap.proxy.shadow.lag import LAG_BUCKETS_S, LagHistogram, cumulative_buckets
from shadowtap.proxy.shadow.planning import TWIN
from shadowtap.proxy.shadow.shares import WorkerShare, shares
from shadowtap.proxy.shadow.worker import ShadowWorker


def worker_states(tmp_path, share: WorkerShare, **shadow):
    config = config_from_dict({
        "primary": {"base_url": "http://127.0.0.1:9/v1"}, "store": {"path": str(tmp_path / "store.db")},
        "shadow": {"primary_twin_rate": 1.0, **shadow},
        "candidates": [{"name": "c", "model": "openai/m", "max_concurrency": 7, "daily_budget_usd": 3.0}]})
    worker = ShadowWorker(config, None, None, None, share)
    worker._build_states()
    return worker._states


@pytest.mark.parametrize("cap, count", [(7, 1), (7, 2), (7, 3), (2, 4), (64, 5)])
def test_the_shares_of_a_cap_add_up_to_the_cap_and_differ_by_at_most_one(cap, count):
    parts = [share.of_cap(cap) for share in shares(count)]
    assert sum(parts) == cap
    assert max(parts) - min(parts) <= 1


def test_each_worker_gets_its_share_of_the_candidate_and_twin_caps_and_of_the_budget(tmp_path):
    states = [worker_states(tmp_path, share, workers=2, twin_max_concurrency=9) for share in shares(2)]
    assert [s["c"].max_concurrency for s in states] == [4, 3]
    assert [s[TWIN].max_concurrency for s in states] == [5, 4]
    assert sum(s["c"].budget.limit_usd for s in states) == pytest.approx(3.0)


def test_one_worker_keeps_the_whole_caps_and_the_twin_cap_is_configurable(tmp_path):
    states = worker_states(tmp_path, WorkerShare(), twin_max_concurrency=16, twin_timeout_s=5.0)
    assert (states["c"].max_concurrency, states["c"].budget.limit_usd) == (7, 3.0)
    assert (states[TWIN].max_concurrency, states[TWIN].target.timeout_s) == (16, 5.0)


def test_the_twin_cap_defaults_to_four_calls_as_before(tmp_path):
    assert worker_states(tmp_path, WorkerShare())[TWIN].max_concurrency == 4


@pytest.mark.parametrize("shadow, message", [
    ({"workers": 0}, r"\[shadow\] workers"),
    ({"twin_max_concurrency": 0}, r"\[shadow\] twin_max_concurrency"),
    ({"workers": 4, "twin_max_concurrency": 2}, r"twin_max_concurrency = 2: expected at least \[shadow\] workers"),
    ({"twin_timeout_s": 0}, r"\[shadow\] twin_timeout_s"),
])
def test_worker_and_twin_limits_out_of_range_are_refused_with_the_key(shadow, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}, "shadow": shadow})


def test_merged_snapshots_add_counts_and_show_a_breaker_open_in_any_worker():
    lag_a, lag_b = LagHistogram(), LagHistogram()
    lag_a.observe(0.0005)
    lag_b.observe(0.2)
    lag_b.observe(30.0)
    merged = merge_snapshots([
        {"worker": 0, "ready": True, "calls": {("c", "ok"): 3}, "in_flight": {"c": 1},
         "breaker_state": {"c": "closed"}, "lag": lag_a.snapshot()},
        {"worker": 1, "ready": True, "calls": {("c", "ok"): 2, ("c", "error"): 1}, "in_flight": {"c": 2},
         "breaker_state": {"c": "open"}, "lag": lag_b.snapshot()}])
    assert merged["calls"] == {("c", "ok"): 5, ("c", "error"): 1}
    assert merged["in_flight"] == {"c": 3}
    assert merged["breaker_state"] == {"c": "open"}
    buckets = dict(cumulative_buckets(merged["lag"]))
    assert (buckets["0.001"], buckets["0.25"], buckets["10.0"], buckets["+Inf"]) == (1, 2, 2, 3)
    assert len(buckets) == len(LAG_BUCKETS_S) + 1
