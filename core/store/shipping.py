"""Shipping: copying a SQLite store's new rows into the shared PostgreSQL store, idempotently.

A spool's rows are read in rowid order, after the position the shared store last recorded for that
spool (by its `store_meta` store_id) and table. Each batch lands in one PostgreSQL transaction that
also moves the position, so a crash or an outage at any moment leaves either the whole batch and
its new position or neither; shipping the same rows again changes nothing (an exchange already
there is kept, a shadow row replaces its earlier version, as in the spool).

A row PostgreSQL refuses (a text where a number belongs, a missing required value: SQLite lets
them in, PostgreSQL does not) is set aside rather than blocking every row after it: the batch is
halved until the refused rows stand alone, the rest land, and each refused row is kept in
`_shadowtap_ship_rejects` with the reason, in the same transaction as the batch and its position.

SQLite hands out rowids in commit order (one writer at a time), and a shadow row that replaces an
earlier one gets a new, higher rowid, so a position never passes a row that is still to come.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from shadowtap.core.errors import StoreError
from shadowtap.core.store.capture_store import CaptureStore

# What `shadowtap ship` copies from a replica's spool (scores only if someone scored the spool;
# eval workers usually write them to the shared store directly). `store copy` moves replays too.
SHIPPED_TABLES = ("exchanges", "shadows", "feedback", "scores")
COPIED_TABLES = (*SHIPPED_TABLES, "replay_runs", "replay_results")
# Tables whose rows change after they are first written: a newer version replaces the shipped one.
_REPLACED = frozenset({"shadows", "scores", "replay_runs", "replay_results"})
# What PostgreSQL says about one row's values (class 22 data exceptions, class 23 constraint
# violations), as opposed to the server or the connection failing: only these set a row aside.
ROW_REFUSALS = (psycopg.DataError, psycopg.IntegrityError)
REJECTS_TABLE = "_shadowtap_ship_rejects"
# Taken while creating the rejects table, so two shippers' first rejects do not race (the
# migrations' lock key, core/store/postgres/migrations.py).
_LOCK_KEY = 0x5AD07A90
# Held for as long as a shipper exports the shared store's scores, so one shipper does it.
_EXPORT_LOCK_KEY = 0x5AD07A91


@dataclass(frozen=True)
class Batch:
    table: str
    columns: list[str]
    rows: list[tuple]
    last_rowid: int


@dataclass(frozen=True)
class Reject:
    """A row PostgreSQL refused, set aside. `error` names the kind (`invalid_text_representation`,
    SQLSTATE 22P02) and the column or constraint, never a value, so it is safe for a log line;
    `reason` is PostgreSQL's message, which may quote the refused value."""

    table: str
    row_id: str
    error: str
    reason: str


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
        select = f"select {', '.join(columns)} from {table} where rowid > ? and rowid <= ? order by rowid"
        try:
            rows = self.store.sql.execute(select, [after_rowid, last]).fetchall()
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            # Text that is not UTF-8 (SQLite stores what it is given) would stop the shipper here for
            # ever; read this batch again with the bad bytes as U+FFFD. Only then: it costs per value.
            rows = self._read_lossy(select, [after_rowid, last])
        return Batch(table, columns, rows, last)

    def _read_lossy(self, select: str, params: list) -> list[tuple]:
        conn = self.store.db.conn
        conn.text_factory = lambda data: data.decode("utf-8", "replace")
        try:
            return conn.execute(select, params).fetchall()
        finally:
            conn.text_factory = str

    def backlog(self, positions: dict[str, int], tables: Sequence[str] = SHIPPED_TABLES) -> int:
        """Rows not shipped yet, over `tables`."""
        return sum(self.backlog_by_table(positions, tables).values())

    def backlog_by_table(self, positions: dict[str, int], tables: Sequence[str] = SHIPPED_TABLES) -> dict[str, int]:
        return {table: self.store.sql.execute(f"select count(*) from {table} where rowid > ?",
                                              [positions.get(table, 0)]).fetchone()[0] for table in tables}


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

    def write(self, store_id: str, batch: Batch, *, direct: bool = True) -> list[Reject]:
        """The batch and the spool's new position, in one transaction; returns the rows set aside.

        `direct` copies straight into the table, falling back to a staging table and an upsert
        only when a row is already there (shipped again); without it, every batch takes the
        staging way (what shipping did before; the bench compares the two)."""
        with _as_store_error(f"ship {len(batch.rows)} {batch.table} rows"):
            with self.conn.transaction():
                # Safe without waiting for the disk: the position commits with the rows, so a server
                # crash that loses this batch loses its position too, and the batch is shipped again.
                self.conn.execute("set local synchronous_commit = off")
                rejects = self._store_rows(batch, batch.rows, direct=direct, top=True)
                if rejects:
                    self._set_aside(store_id, batch.columns, rejects)
                self.conn.execute(
                    "insert into _shadowtap_ship_positions (store_id, table_name, last_rowid) values (%s, %s, %s) "
                    "on conflict (store_id, table_name) do update set last_rowid = excluded.last_rowid, "
                    "shipped_at = now()", [store_id, batch.table, batch.last_rowid])
        return [reject for reject, _ in rejects]

    def rejects(self, store_id: str | None = None, *, limit: int = 20) -> tuple[int, list[dict]]:
        """How many rows were set aside (of one spool, or of all), and the latest `limit` of them."""
        with _as_store_error("read the rows set aside"):
            if not self.conn.execute("select to_regclass(%s) is not null", [REJECTS_TABLE]).fetchone()[0]:  # type: ignore[index]
                return 0, []
            where, params = ("where store_id = %s", [store_id]) if store_id else ("", [])
            total = self.conn.execute(f"select count(*) from {REJECTS_TABLE} {where}", params).fetchone()[0]  # type: ignore[index]
            cursor = self.conn.cursor(row_factory=dict_row)
            latest = cursor.execute(f"select store_id, table_name, row_id, error, reason, rejected_at "
                                    f"from {REJECTS_TABLE} {where} order by rejected_at desc, row_id limit %s",
                                    [*params, limit]).fetchall()
        return total, latest

    # -- writing --------------------------------------------------------------------------------

    def _store_rows(self, batch: Batch, rows: Sequence[Sequence], *, direct: bool,
                    top: bool = False) -> list[tuple[Reject, Sequence]]:
        """Store `rows`; those PostgreSQL refuses come back with the reason. Halves the rows until
        each refused one stands alone (about twice the work of the batch for one bad row)."""
        try:
            with self.conn.transaction():  # a savepoint: a refusal undoes only this attempt
                self._insert(batch, rows, direct=direct)
            return []
        except ROW_REFUSALS as exc:
            if top and any(_has_nul(row) for row in rows):
                # SQLite text may hold NUL characters, PostgreSQL text cannot: rather than set those
                # rows aside, ship them with each NUL replaced by U+FFFD.
                return self._store_rows(batch, [_without_nul(row) for row in rows], direct=direct)
            if len(rows) == 1:
                return [(_reject(batch, rows[0], exc), rows[0])]
        middle = len(rows) // 2
        return (self._store_rows(batch, rows[:middle], direct=direct)
                + self._store_rows(batch, rows[middle:], direct=direct))

    def _insert(self, batch: Batch, rows: Sequence[Sequence], *, direct: bool) -> None:
        if direct:
            try:
                with self.conn.transaction():
                    self._copy(batch.table, batch.columns, rows)
                return
            except pg_errors.UniqueViolation:
                pass  # some row was shipped before (a lost position, a replaced shadow row): upsert
        self._upsert(batch, rows)

    def _upsert(self, batch: Batch, rows: Sequence[Sequence]) -> None:
        staging = f"_ship_{batch.table}"
        columns = ", ".join(batch.columns)
        # Created inside this transaction if need be (a savepoint undone may take the creation with it).
        self.conn.execute(f"create temp table if not exists {staging} (like {batch.table}) "
                          "on commit delete rows")
        self.conn.execute(f"delete from {staging}")  # an earlier part of this batch
        self._copy(staging, batch.columns, rows)
        if batch.table in _REPLACED:
            updates = ", ".join(f"{c} = excluded.{c}" for c in batch.columns if c != "id")
            action = f"do update set {updates}"
        else:
            action = "do nothing"
        self.conn.execute(f"insert into {batch.table} ({columns}) select {columns} from {staging} "
                          f"on conflict (id) {action}")

    def _copy(self, table: str, columns: list[str], rows: Sequence[Sequence]) -> None:
        with self.conn.cursor() as cursor:
            with cursor.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)

    def _set_aside(self, store_id: str, columns: list[str], rejects: list[tuple[Reject, Sequence]]) -> None:
        """Keep each refused row, whole, with why; shipping it again replaces its earlier record."""
        self.conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        self.conn.execute(f"create table if not exists {REJECTS_TABLE} (store_id text not null, "
                          "table_name text not null, row_id text not null, error text not null, reason text not null, "
                          "row_json text not null, rejected_at timestamptz not null default now(), "
                          "primary key (store_id, table_name, row_id))")
        with self.conn.cursor() as cursor:
            cursor.executemany(
                f"insert into {REJECTS_TABLE} (store_id, table_name, row_id, error, reason, row_json) "
                "values (%s, %s, %s, %s, %s, %s) on conflict (store_id, table_name, row_id) do update set "
                "error = excluded.error, reason = excluded.reason, row_json = excluded.row_json, rejected_at = now()",
                [[store_id, reject.table, reject.row_id, reject.error, reject.reason.replace("\x00", "\ufffd"),
                  _row_json(columns, row)] for reject, row in rejects])


class ScoreOutbox:
    """Scores in the shared store not exported yet, whoever wrote them (eval workers write straight
    into PostgreSQL), for the OTLP exporter of one shipper at a time.

    A score is new when no record of (its id, its scored_at) is in `_shadowtap_otlp_scores`; a
    score written again (a new evaluator version) is new again. Only scores scored within
    `lookback_s` before the newest one exported (or now, when that is earlier: a clock ahead must
    not hide the rest) are looked at, so an eval page that takes longer than that to commit is
    missed (one hour, far above a page's minutes); the first look starts that far back from now,
    not at the beginning of the store.
    """

    TABLE = "_shadowtap_otlp_scores"

    def __init__(self, store: CaptureStore, *, lookback_s: float = 3600) -> None:
        if store.dialect != "postgresql":
            raise StoreError(f"scores are exported from a PostgreSQL store, not {store.path!r}")
        self.conn: psycopg.Connection = store.backend.conn  # type: ignore[attr-defined]
        self.lookback = timedelta(seconds=lookback_s)
        self.held = False  # whether this connection holds the export
        self._ready = False

    def claim(self) -> bool:
        """True when this connection is the one exporter (a session lock other shippers find taken;
        it goes with the connection, so another shipper takes over when this one stops)."""
        if not self.held:
            with _as_store_error("claim the score export"):
                row = self.conn.execute("select pg_try_advisory_lock(%s)", [_EXPORT_LOCK_KEY]).fetchone()
            self.held = bool(row and row[0])
        return self.held

    def release(self) -> None:
        """Give the export up now (a connection that closes gives it up too, but the server may
        notice only a moment later)."""
        if self.held:
            with _as_store_error("release the score export"):
                self.conn.execute("select pg_advisory_unlock(%s)", [_EXPORT_LOCK_KEY])
            self.held = False

    def pending(self, limit: int) -> Batch | None:
        """Up to `limit` scores not exported yet, oldest first; None when there are none."""
        with _as_store_error("read the scores to export"):
            self._create()
            newest = self.conn.execute(f"select max(scored_at) from {self.TABLE}").fetchone()[0]  # type: ignore[index]
            now = datetime.now(UTC)
            # Never past now: one score stamped in the future (a skewed clock) must not hide the rest.
            latest = min(datetime.fromisoformat(newest), now) if newest else now
            since = _iso(latest - self.lookback)
            cursor = self.conn.execute(
                f"select * from scores s where scored_at >= %s and not exists (select 1 from {self.TABLE} e "
                "where e.score_id = s.id and e.scored_at = s.scored_at) order by scored_at, id limit %s",
                [since, limit])
            rows = cursor.fetchall()
            columns = [column.name for column in cursor.description or []]
        return Batch("scores", columns, rows, 0) if rows else None

    def mark(self, batch: Batch) -> None:
        """Record the batch's scores as exported, and forget records too old to be looked at again."""
        if batch.table != "scores" or not batch.rows:
            return
        id_at, scored_at_at = batch.columns.index("id"), batch.columns.index("scored_at")
        with _as_store_error("record the exported scores"), self.conn.transaction():
            self._create()
            with self.conn.cursor() as cursor:
                cursor.executemany(f"insert into {self.TABLE} (score_id, scored_at) values (%s, %s) "
                                   "on conflict do nothing", [[row[id_at], row[scored_at_at]] for row in batch.rows])
            newest = min(datetime.fromisoformat(max(row[scored_at_at] for row in batch.rows)), datetime.now(UTC))
            self.conn.execute(f"delete from {self.TABLE} where scored_at < %s", [_iso(newest - 2 * self.lookback)])

    def _create(self) -> None:
        if self._ready:
            return
        with self.conn.transaction():
            self.conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            self.conn.execute(f"create table if not exists {self.TABLE} (score_id text not null, "
                              "scored_at text not null, exported_at timestamptz not null default now(), "
                              "primary key (score_id, scored_at))")
        self._ready = True


def _iso(moment: datetime) -> str:
    """The shape `scored_at` is stored in (evaluators/runner.py)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _reject(batch: Batch, row: Sequence, exc: psycopg.Error) -> Reject:
    values = dict(zip(batch.columns, row))
    # SQLite lets a text primary key be NULL; such a row is named by a digest of its values.
    row_id = str(values["id"]) if values.get("id") is not None else \
        "sha256:" + hashlib.sha256(_row_json(batch.columns, row).encode()).hexdigest()[:16]
    diag = exc.diag
    kind = type(exc).__name__
    # COPY names the column in its context line (`COPY t, line 3, column status: "abc"`): the name only.
    in_copy = re.search(r"\bcolumn (\w+)", diag.context or "")
    where = diag.column_name or diag.constraint_name or (in_copy.group(1) if in_copy else None)
    error = _snake(kind) + (f" ({diag.sqlstate})" if diag.sqlstate else "") + (f" on {where}" if where else "")
    reason = (diag.message_primary or str(exc).strip().splitlines()[0] or kind)
    return Reject(batch.table, row_id, error, reason)


def _row_json(columns: list[str], row: Sequence) -> str:
    """The row as JSON text (bytes as hex), kept as text: `\\u0000` escapes are valid JSON, not jsonb."""
    return orjson.dumps(dict(zip(columns, row)), default=_json_default).decode()


def _json_default(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _has_nul(row: Sequence) -> bool:
    return any(isinstance(value, str) and "\x00" in value for value in row)


def _without_nul(row: Sequence) -> tuple:
    return tuple(value.replace("\x00", "\ufffd") if isinstance(value, str) else value for value in row)


def without_rejects(batch: Batch, rejects: Sequence[Reject]) -> Batch:
    """The batch less the rows set aside (what the after-ship hook sees)."""
    if not rejects:
        return batch
    refused = {reject.row_id for reject in rejects}
    position = batch.columns.index("id")
    return replace(batch, rows=[row for row in batch.rows
                                if row[position] is not None and str(row[position]) not in refused])


@contextlib.contextmanager
def _as_store_error(what: str) -> Iterator[None]:
    """The driver's errors (connection lost, server gone) as StoreError, first line only: libpq's
    messages name host, port and user, never the password."""
    try:
        yield
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot {what}: {reason}") from None
