"""The shadow worker's own lag: time from a job being offered on the live path to its call
starting in the worker. It grows when the worker cannot keep up (its queue, its event loop), long
before jobs are dropped as saturated, and it is not part of any candidate's latency."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds in seconds, as Prometheus histogram buckets (+Inf is implied).
LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class LagHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS_S) + 1))  # last: above all
    sum_s: float = 0.0

    def observe(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)  # wall clocks of two processes: never report a negative lag
        self.counts[bisect_left(LAG_BUCKETS_S, lag_s)] += 1
        self.sum_s += lag_s

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> dict:
        return {"counts": list(self.counts), "sum_s": self.sum_s}


def merged(snapshots: list[dict]) -> dict:
    """Several workers' histograms as one."""
    counts = [0] * (len(LAG_BUCKETS_S) + 1)
    total = 0.0
    for snapshot in snapshots:
        for index, count in enumerate(snapshot.get("counts") or []):
            if index < len(counts):
                counts[index] += count
        total += snapshot.get("sum_s") or 0.0
    return {"counts": counts, "sum_s": total}


def cumulative_buckets(snapshot: dict) -> list[tuple[str, int]]:
    """(le, cumulative count) pairs for a Prometheus histogram, +Inf last."""
    running, buckets = 0, []
    counts = snapshot.get("counts") or [0] * (len(LAG_BUCKETS_S) + 1)
    for bound, count in zip((*(repr(b) for b in LAG_BUCKETS_S), "+Inf"), counts, strict=False):
        running += count
        buckets.append((bound, running))
    return buckets
