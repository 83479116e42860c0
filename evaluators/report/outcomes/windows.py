"""The trend windows of the outcome figures: UTC days, or ISO weeks starting on Monday 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_LENGTH = {"day": timedelta(days=1), "week": timedelta(weeks=1)}


def window_start(moment: datetime, window: str) -> datetime:
    """The start of the `window` ("day" or "week") holding `moment`, in UTC."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if window == "day" else day - timedelta(days=day.weekday())


def window_end(start: datetime, window: str) -> datetime:
    return start + _LENGTH[window]
