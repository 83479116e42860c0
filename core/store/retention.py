"""Retention: deleting old exchanges with their shadows, scores and feedback, a batch at a time.

Each batch is its own short transaction, so writers (the capture writer, a shipper, eval workers)
wait at most one batch, never the whole prune.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from shadowtap.core.store.backend import backend_of

# Tables that hang off an exchange by `exchange_id`; replay results stay with their run.
_DEPENDENT_TABLES = ("shadows", "scores", "feedback")


@dataclass
class PruneResult:
    exchanges: int = 0
    dependents: int = 0


def cutoff_days_ago(days: float, *, now: datetime | None = None) -> str:
    """The ISO timestamp `days` before now, in the shape `started_at` is stored in."""
    return ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="microseconds")


def count_before(store: object, cutoff: str) -> int:
    sql = backend_of(store)
    return sql.execute("select count(*) from exchanges where started_at < ?", [cutoff]).fetchone()[0]


def prune_before(store: object, cutoff: str, *, batch_size: int = 1000) -> PruneResult:
    """Delete every exchange that started before `cutoff`, with the rows that belong to it."""
    sql = backend_of(store)
    result = PruneResult()
    while True:
        with sql.transaction(immediate=True):
            ids = [row[0] for row in sql.execute(
                "select id from exchanges where started_at < ? order by started_at limit ?", [cutoff, batch_size])]
            if not ids:
                return result
            values = {"ids": orjson.dumps(ids).decode()}
            for table in _DEPENDENT_TABLES:
                cursor = sql.execute(f"delete from {table} where exchange_id in ({sql.list_values(':ids')})", values)
                result.dependents += max(cursor.rowcount, 0)
            sql.execute(f"delete from exchanges where id in ({sql.list_values(':ids')})", values)
            result.exchanges += len(ids)
