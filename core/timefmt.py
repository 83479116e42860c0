"""Times as shadowtap stores and reads them: ISO 8601 in UTC, one way everywhere.

The store compares timestamps as text, so every writer must use the same shape:
`2026-11-23T10:15:00.123456+00:00` (`stored_time`). Every reader of a user's time goes through
`parse_moment`: ISO 8601 (a trailing Z or a bare date allowed, no offset meaning UTC) and, where
a command accepts it, an age such as 30m, 2h or 7d meaning that long ago.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def stored_time(moment: datetime | float | None = None, *, timespec: str = "microseconds") -> str:
    """A moment (a datetime, epoch seconds, or now) in the store's ISO 8601 UTC shape."""
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec)


def utc_day(moment: datetime | None = None) -> str:
    """The UTC calendar day, YYYY-MM-DD (daily budgets reset at midnight UTC)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def parse_moment(value: str, *, ages: bool = False, now: datetime | None = None) -> datetime:
    """An aware datetime from ISO 8601 (or, with `ages`, an age such as 7d); ValueError otherwise."""
    text = value.strip()
    age = _AGE.match(text) if ages else None
    if age:
        amount, unit = int(age.group(1)), _UNITS[age.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
