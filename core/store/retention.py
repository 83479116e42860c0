"""Retention: deleting old exchanges with their shadows, scores and feedback, a batch at a time.

Each batch is its own short transaction, so writers (the capture writer, a shipper, eval workers)
wait at most one batch, never the whole prune.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from shadowtap.core.store.backend import backend_of

# Tables that hang off an exchange by `exchange_id`; replay results stay with their run.
_DEPENDENT_TABLES = ("shadows", "scores", "feedback")
# When each dependent row was written, for the ones whose exchange is gone from a spool.
_WRITTEN_AT = {"shadows": "started_at", "scores": "scored_at", "feedback": "received_at"}


@dataclass
class PruneResult:
    exchanges: int = 0
    dependents: int = 0
    more: bool = False  # stopped at its time budget with rows still to prune


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


def prune_shipped(spool: object, cutoff: str, positions: dict[str, int], *, batch_size: int = 1000,
                  budget_s: float | None = None) -> PruneResult:
    """Delete from a spool the exchanges that started before `cutoff` and were shipped (rowid at or
    below the shared store's position for them), with their rows that were shipped too. A row not
    shipped yet is never deleted: it stays, and goes at a later prune once it has been shipped.
    Then the shipped rows, older than `cutoff` too, whose exchange is not in the spool (feedback
    that came after its exchange was pruned). SQLite only: rowids are the shipping positions.
    With `budget_s`, stops after the batch that passes it, with `more` set."""
    sql = backend_of(spool)
    result = PruneResult()
    shipped_exchanges = positions.get("exchanges", 0)
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            result.more = True
            return result
        with sql.transaction(immediate=True):
            ids = [row[0] for row in sql.execute(
                "select id from exchanges where rowid <= ? and started_at < ? limit ?",
                [shipped_exchanges, cutoff, batch_size])]
            if not ids:
                break
            values = {"ids": orjson.dumps(ids).decode()}
            for table in _DEPENDENT_TABLES:
                cursor = sql.execute(f"delete from {table} where rowid <= :shipped and exchange_id in "
                                     f"({sql.list_values(':ids')})", {**values, "shipped": positions.get(table, 0)})
                result.dependents += max(cursor.rowcount, 0)
            sql.execute(f"delete from exchanges where id in ({sql.list_values(':ids')})", values)
            result.exchanges += len(ids)
    for table in _DEPENDENT_TABLES:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                result.more = True
                return result
            with sql.transaction(immediate=True):
                cursor = sql.execute(
                    f"delete from {table} where rowid in (select rowid from {table} where rowid <= ? and "
                    f"{_WRITTEN_AT[table]} < ? and not exists "
                    f"(select 1 from exchanges where exchanges.id = {table}.exchange_id) limit ?)",
                    [positions.get(table, 0), cutoff, batch_size])
                deleted = max(cursor.rowcount, 0)
            result.dependents += deleted
            if deleted < batch_size:
                break
    return result
