"""Shared by the outcome tests (no tests here): feedback rows inserted directly, and a dozen-exchange store.

The store (`outcome_store`), [outcomes] heavy_correction_minutes = 10, heavy_correction_ratio = 0.3,
max_latency_ms = 2000, window = "day", category = "task", falling_min_items = 2:

| ex  | day | task | ana (latest)            | ben                     | grounding | note                        |
| E01 | 1   | qa   | accepted                | accepted                | 0.9       |                             |
| E02 | 1   | qa   | edited 4 min, ratio .1  | edited 6 min, ratio .2  | 0.8       |                             |
| E03 | 1   | qa   | accepted                | edited 12 min           | 0.7       | heavy (minutes)             |
| E04 | 2   | qa   | rejected                | rejected                | 0.2       |                             |
| E05 | 2   | qa   | edited 2 min (re-review; accepted before) | accepted | 0.7  |                             |
| E06 | 2   | qa   | (the app) accepted      |                         | 0.6       | latency 3000 ms: over budget |
| E07 | 1   | chat | escalated               | edited 3 min            | 0.6       |                             |
| E08 | 1   | chat | accepted                | accepted                | 0.9       |                             |
| E09 | 1   | chat | policy_violation        | policy_violation        | 0.3       |                             |
| E10 | 2   | chat | edited 5 min, ratio .5  | edited 7 min, ratio .4  | 0.8       | heavy (ratio)               |
| E11 | 2   | chat | accepted                | rejected                | 0.5       |                             |
| E12 | 2   | chat | (no feedback)           |                         | 0.4       |                             |

Also: faithfulness on E01 (0.9) and E04 (0.1) only; contract on E01 and E02 only (both good outcomes).
"""

from __future__ import annotations

import itertools

from shadowtap.core.store import CaptureStore
from tests.support.report_support import StoreBuilder

DAY1, DAY2 = "2026-03-02", "2026-03-03"      # a Monday and a Tuesday
OUTCOMES_TOML = """
[outcomes]
heavy_correction_minutes = 10
heavy_correction_ratio = 0.3
max_latency_ms = 2000
window = "day"
category = "task"
falling_kappa_drop = 0.2
falling_min_items = 2
"""
_ids = itertools.count()


def add_feedback(store: CaptureStore, exchange_id: str, outcome: str, reviewer: str | None = None, *,
                 at: str = f"{DAY2}T12:00:00+00:00", edit_minutes: float | None = None,
                 edit_ratio: float | None = None, label: str | None = None) -> None:
    store.db["feedback"].insert({
        "id": f"fb{next(_ids)}", "exchange_id": exchange_id, "outcome": outcome, "edit_minutes": edit_minutes,
        "edit_distance": None, "edit_ratio": edit_ratio, "reviewer": reviewer, "label": label, "comment": None,
        "source": "api", "at": at, "received_at": at, "fingerprint": "f",
    })


def build_outcome_store(store: CaptureStore) -> None:
    build = StoreBuilder(store)
    plan = [("E01", DAY1, "qa"), ("E02", DAY1, "qa"), ("E03", DAY1, "qa"), ("E04", DAY2, "qa"), ("E05", DAY2, "qa"),
            ("E06", DAY2, "qa"), ("E07", DAY1, "chat"), ("E08", DAY1, "chat"), ("E09", DAY1, "chat"),
            ("E10", DAY2, "chat"), ("E11", DAY2, "chat"), ("E12", DAY2, "chat")]
    for hour, (exchange_id, day, task) in enumerate(plan):
        build.exchange(exchange_id, f"{day}T{hour:02d}:00:00+00:00", task=task,
                       latency_ms=3000.0 if exchange_id == "E06" else 500.0)
    grounding = {"E01": .9, "E02": .8, "E03": .7, "E04": .2, "E05": .7, "E06": .6, "E07": .6, "E08": .9, "E09": .3,
                 "E10": .8, "E11": .5, "E12": .4}
    for exchange_id, value in grounding.items():
        build.score(exchange_id, "primary", "grounding", value)
    build.score("E01", "primary", "faithfulness", 0.9)
    build.score("E04", "primary", "faithfulness", 0.1)
    build.score("E01", "primary", "contract", 1.0, "valid")
    build.score("E02", "primary", "contract", 1.0, "valid")
    build.score("E03", "small", "grounding", 0.1)          # a candidate's score: never an outcome figure

    both = [("E01", "accepted", {}, "accepted", {}),
            ("E02", "edited", {"edit_minutes": 4, "edit_ratio": .1}, "edited", {"edit_minutes": 6, "edit_ratio": .2}),
            ("E03", "accepted", {}, "edited", {"edit_minutes": 12}),
            ("E04", "rejected", {}, "rejected", {}),
            ("E07", "escalated", {}, "edited", {"edit_minutes": 3}),
            ("E08", "accepted", {}, "accepted", {}),
            ("E09", "policy_violation", {}, "policy_violation", {}),
            ("E10", "edited", {"edit_minutes": 5, "edit_ratio": .5}, "edited", {"edit_minutes": 7, "edit_ratio": .4}),
            ("E11", "accepted", {}, "rejected", {})]
    for exchange_id, ana, ana_edit, ben, ben_edit in both:
        add_feedback(store, exchange_id, ana, "ana", **ana_edit)
        add_feedback(store, exchange_id, ben, "ben", **ben_edit)
    add_feedback(store, "E05", "accepted", "ana", at=f"{DAY2}T10:00:00+00:00")
    add_feedback(store, "E05", "edited", "ana", at=f"{DAY2}T11:00:00+00:00", edit_minutes=2)
    add_feedback(store, "E05", "accepted", "ben")
    add_feedback(store, "E06", "accepted")
