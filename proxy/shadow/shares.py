"""How `[shadow] workers = N` splits one proxy's shadow limits between N worker processes.

Each worker owns its candidates' state (in flight, spend, breaker) alone, so a limit shared by
all of them would need a lock across processes on every call. Instead each worker gets a fixed
share: of every concurrency cap a near-equal whole part (the shares add up to the cap exactly),
and of every daily budget 1/N, counted from 1/N of what the store says was spent today. No worker
can go past its share, so together they stay within the configured limit (plus, as with one
worker, the calls already in flight when it was reached).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerShare:
    index: int = 0   # 0 .. count - 1
    count: int = 1

    def of_cap(self, cap: int) -> int:
        """This worker's part of `cap`; the parts of all workers add up to `cap` (some may be 0)."""
        return cap // self.count + (1 if self.index < cap % self.count else 0)

    def of_budget(self, usd: float) -> float:
        return usd / self.count

    @property
    def label(self) -> str:
        """Names the worker in logs and metrics: "" for the only one."""
        return "" if self.count == 1 else str(self.index)


def shares(count: int) -> list[WorkerShare]:
    return [WorkerShare(index, count) for index in range(count)]
