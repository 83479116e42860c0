"""Daily spend per candidate, in US dollars, reset at midnight UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_day(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d")


class DailyBudget:
    """Admits calls while today's spend is under the limit. Calls already in flight may overshoot
    by at most (concurrency x cost of one call); unknown prices count as zero, and say so."""

    def __init__(self, limit_usd: float, spent_today_usd: float = 0.0, day: str | None = None) -> None:
        self.limit_usd = limit_usd
        self._day = day or utc_day()
        self._spent = spent_today_usd

    def _roll(self) -> None:
        today = utc_day()
        if today != self._day:
            self._day, self._spent = today, 0.0

    @property
    def spent_usd(self) -> float:
        self._roll()
        return self._spent

    def allows_another_call(self) -> bool:
        return self.spent_usd < self.limit_usd

    def record(self, cost_usd: float | None) -> None:
        self._roll()
        self._spent += cost_usd or 0.0
