"""Shipping: copying a SQLite store's new rows into the shared PostgreSQL store, idempotently.

A spool's rows are read in rowid order, after the position the shared store last recorded for that
spool (by its `store_meta` store_id) and table. Each batch lands in one PostgreSQL transaction that
also moves the position, so a crash or an outage at any moment leaves either the whole batch and
its new position or neither; shipping the same rows again changes nothing (an exchange already
there is kept, a shadow row replaces its earlier version, as in the spool).

SQLite hands out rowids in commit order (one writer at a time), and a shadow row that replaces an
earlier one gets a new, higher rowid, so a position never passes a row that is still to come.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg

from shadowtap.core.errors import StoreError
from shadowtap.core.store.capture_store import CaptureStore

# What `shadowtap ship` copies from a replica's spool (scores only if someone scored the spool;
# eval workers usually write them to the shared store directly). `store copy` moves replays too.
SHIPPED_TABLES = ("exchanges", "shadows", "feedback", "scores")
COPIED_TABLES = (*SHIPPED_TABLES, "replay_runs", "replay_results")
# Tables whose rows change after they are first written: a newer version replaces the shipped one.
_REPLACED = frozenset({"shadows", "scores", "replay_runs", "replay_results"})


@dataclass(frozen=True)
class Batch:
    table: str
    columns: list[str]
    rows: list[tuple]
    last_rowid: int


class SpoolReader:
    """Reads a SQLite store's rows by rowid, for shipping. Read-only; never blocks the writers (WAL)."""

    def __init__(self, store: CaptureStore) -> None:
        if store.dialect != "sqlite":
            raise StoreError(f"can only ship from a SQLite store, not {store.path!r}")
        self.store = store

    @property
    def store_id(self) -> str:
        value = self.store.meta("store_id")
        if value is None:  # pragma: no cover - every migrated store has one (m007)
            raise StoreError(f"capture store {self.store.path!r} has no store_id; open it once to migrate it")
        return value

    def batch(self, table: str, after_rowid: int, limit: int) -> Batch | None:
        """Up to `limit` rows of `table` with rowid > after_rowid, in rowid order; None when none."""
        columns = self.store.sql.columns(table)
        # The last rowid apart, so the rows go to COPY as sqlite3 returns them (no copying per row).
        last = self.store.sql.execute(f"select max(rowid) from (select rowid from {table} where rowid > ? "
                                      "order by rowid limit ?)", [after_rowid, limit]).fetchone()[0]
        if last is None:
            return None
        rows = self.store.sql.execute(f"select {', '.join(columns)} from {table} where rowid > ? and rowid <= ? "
                                      "order by rowid", [after_rowid, last]).fetchall()
        return Batch(table, columns, rows, last)

    def backlog(self, positions: dict[str, int], tables: Sequence[str] = SHIPPED_TABLES) -> int:
        """Rows not shipped yet, over `tables`."""
        total = 0
        for table in tables:
            total += self.store.sql.execute(f"select count(*) from {table} where rowid > ?",
                                            [positions.get(table, 0)]).fetchone()[0]
        return total


class ShipTarget:
    """The shared store's side: positions per (spool, table), and batches written with COPY."""

    def __init__(self, store: CaptureStore) -> None:
        if store.dialect != "postgresql":
            raise StoreError(f"can only ship into a PostgreSQL store, not {store.path!r}")
        self.store = store
        self.conn: psycopg.Connection = store.backend.conn  # type: ignore[attr-defined]

    def positions(self, store_id: str) -> dict[str, int]:
        with _as_store_error("read the shipping positions"):
            rows = self.conn.execute("select table_name, last_rowid from _shadowtap_ship_positions "
                                     "where store_id = %s", [store_id]).fetchall()
        return {table: rowid for table, rowid in rows}

    def write(self, store_id: str, batch: Batch) -> None:
        """The batch and the spool's new position, in one transaction."""
        with _as_store_error(f"ship {len(batch.rows)} {batch.table} rows"):
            try:
                self._write(store_id, batch, batch.rows)
            except psycopg.DataError:  # for other bad data, the second try fails as the first
                # SQLite text may hold NUL characters, PostgreSQL text cannot: rather than stop
                # shipping at this batch for ever, ship it with each NUL replaced by U+FFFD.
                self._write(store_id, batch, [_without_nul(row) for row in batch.rows])

    def _write(self, store_id: str, batch: Batch, rows: Sequence[Sequence]) -> None:
        staging = f"_ship_{batch.table}"
        columns = ", ".join(batch.columns)
        with self.conn.transaction():
            # Safe without waiting for the disk: the position commits with the rows, so a server crash
            # that loses this batch loses its position too, and the batch is shipped again.
            self.conn.execute("set local synchronous_commit = off")
            self.conn.execute(f"create temp table if not exists {staging} (like {batch.table}) "
                              "on commit delete rows")
            with self.conn.cursor() as cursor:
                with cursor.copy(f"copy {staging} ({columns}) from stdin") as copy:
                    for row in rows:
                        copy.write_row(row)
                if batch.table in _REPLACED:
                    updates = ", ".join(f"{c} = excluded.{c}" for c in batch.columns if c != "id")
                    action = f"do update set {updates}"
                else:
                    action = "do nothing"
                cursor.execute(f"insert into {batch.table} ({columns}) select {columns} from {staging} "
                               f"on conflict (id) {action}")
                cursor.execute("insert into _shadowtap_ship_positions (store_id, table_name, last_rowid) "
                               "values (%s, %s, %s) on conflict (store_id, table_name) do update set "
                               "last_rowid = excluded.last_rowid, shipped_at = now()",
                               [store_id, batch.table, batch.last_rowid])


def _without_nul(row: Sequence) -> tuple:
    return tuple(value.replace("\x00", "\ufffd") if isinstance(value, str) else value for value in row)


@contextlib.contextmanager
def _as_store_error(what: str) -> Iterator[None]:
    """The driver's errors (connection lost, server gone) as StoreError, first line only: libpq's
    messages name host, port and user, never the password."""
    try:
        yield
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot {what}: {reason}") from None
