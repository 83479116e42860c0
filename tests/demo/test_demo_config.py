"""The demo's config: every count it prints must come out the same on every run."""

from __future__ import annotations

import pytest

from shadowtap.core.config import load_config
from shadowtap.proxy.demo import _write_config


def demo_config(tmp_path, request_count: int = 120):
    return load_config(_write_config(tmp_path, 9001, 9002, tmp_path / "captures.db", request_count))


def test_the_demo_mirrors_every_request_so_its_counts_do_not_depend_on_random_exchange_ids(tmp_path):
    # Sampling hashes the exchange id, which is random: any rate below 1 mirrors a different share each run.
    config = demo_config(tmp_path)
    assert [candidate.sample_rate for candidate in config.candidates] == [1.0, 1.0, 1.0]
    assert config.shadow.primary_twin_rate == 1.0


@pytest.mark.parametrize("request_count", [30, 120, 500])
def test_no_demo_shadow_can_be_skipped_as_saturated_however_slow_the_worker(tmp_path, request_count):
    # Every request is mirrored at most once per candidate, so a cap of the workload's size is never reached.
    for candidate in demo_config(tmp_path, request_count).candidates:
        assert candidate.max_concurrency >= request_count, candidate.name


def test_the_demo_waits_until_no_shadow_is_queued_or_in_flight_twice_in_a_row(monkeypatch):
    from shadowtap.proxy import demo

    readings = iter([
        'shadowtap_shadow_in_flight{candidate="slow"} 3.0\nshadowtap_shadow_queue_depth 0.0',
        'shadowtap_shadow_in_flight{candidate="slow"} 0.0\nshadowtap_shadow_queue_depth 2.0',
        'shadowtap_shadow_in_flight{candidate="slow"} 0.0\nshadowtap_shadow_queue_depth 0.0',
        'shadowtap_shadow_in_flight{candidate="slow"} 1.0\nshadowtap_shadow_queue_depth 0.0',   # a stale zero
        'shadowtap_shadow_in_flight{candidate="slow"} 0.0\nshadowtap_shadow_queue_depth 0.0',
        'shadowtap_shadow_in_flight{candidate="slow"} 0.0\nshadowtap_shadow_queue_depth 0.0',
    ])
    asked = []

    class Reading:
        def __init__(self, text: str) -> None:
            self.text = text

    def fake_get(url):
        asked.append(url)
        return Reading(next(readings))

    monkeypatch.setattr(demo.httpx, "get", fake_get)
    monkeypatch.setattr(demo.time, "sleep", lambda seconds: None)
    demo._wait_for_shadows("http://127.0.0.1:1/metrics")
    assert len(asked) == 6
