"""CaptureStore: the only code that runs SQL against the capture database."""

from __future__ import annotations

import contextlib
import functools
import operator
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.db import jsonify_if_needed

from shadowtap.core.errors import StoreError
from shadowtap.core.store.backend import SqlBackend, SqliteBackend, is_postgres_url
from shadowtap.core.store.migrations import migrations

# Once a checkpoint restarts the WAL, its file is cut back to this size. The store checkpoints
# every WAL_CHECKPOINT_BYTES, so a WAL past this size has been held open by a long reader.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024
# A new store's page size (one that exists keeps its own). A captured exchange is about 2 KB, so a
# 4 KiB page (SQLite's default) holds one, half empty, and each page is one more write to the WAL
# and one more at its checkpoint: with 16 KiB pages the recorder spends about 15 us less CPU per
# exchange (from about 48 us to 33 us to insert one, the kernel's share halved), for the same rows.
NEW_STORE_PAGE_BYTES = 16 * 1024

# Values SQLite stores as they are; any other is converted as sqlite-utils' insert_all would.
_PLAIN_VALUES = frozenset({str, int, float, bytes, bytearray, bool, type(None)})

# Columns a `captures list` row shows; `show` and `export` read every column.
LIST_COLUMNS = (
    "id", "started_at", "endpoint", "model", "is_stream", "status", "latency_ms",
    "ttft_ms", "total_tokens", "cost_usd", "tags",
    "client_disconnected", "stream_incomplete", "request_unparseable",
)


@dataclass(frozen=True)
class ExchangeFilter:
    """What `captures list` and `captures export` can select on; every field is optional."""

    since: str | None = None        # ISO timestamp, inclusive
    until: str | None = None        # ISO timestamp, exclusive
    endpoint: str | None = None
    model: str | None = None
    status: int | None = None
    tag: tuple[str, str] | None = None  # (name, value)
    limit: int | None = None

    def where(self, sql: SqlBackend | None = None) -> tuple[str, dict]:
        """A WHERE clause (":name" parameters) and its values, in `sql`'s dialect (SQLite's by default)."""
        clauses: list[str] = []
        params: dict[str, object] = {}
        if self.since:
            clauses.append("started_at >= :since")
            params["since"] = self.since
        if self.until:
            clauses.append("started_at < :until")
            params["until"] = self.until
        if self.endpoint:
            clauses.append("endpoint = :endpoint")
            params["endpoint"] = self.endpoint
        if self.model:
            clauses.append("model = :model")
            params["model"] = self.model
        if self.status is not None:
            clauses.append("status = :status")
            params["status"] = self.status
        if self.tag:
            field = sql.json_field("tags", ":tag_name") if sql else "json_extract(tags, '$.' || :tag_name)"
            clauses.append(f"{field} = :tag_value")
            params["tag_name"], params["tag_value"] = self.tag
        return (" and ".join(clauses) or "true"), params


@functools.lru_cache(maxsize=64)
def _insert_sql(verb: str, table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join('"' + column.replace('"', '""') + '"' for column in columns)
    return f'{verb} "{table}" ({names}) values ({", ".join("?" * len(columns))})'


class CaptureStore:
    """A SQLite capture store in WAL mode, migrated to the current schema when opened."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self.sql: SqlBackend = SqliteBackend(db)

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000,
             wal_size_limit_bytes: int = WAL_SIZE_LIMIT_BYTES) -> CaptureStore:
        """Open (creating and migrating) the store at `path`: a SQLite file, or a postgresql:// URL."""
        if is_postgres_url(path):
            from shadowtap.core.store.postgres.capture_store import PostgresCaptureStore

            return PostgresCaptureStore.open(str(path))
        path = str(path)
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot open capture store {path!r}: directory {str(parent)!r} does not exist")
        try:
            db = Database(path)
            # Only takes effect while the file is still empty: before WAL mode writes its header.
            db.execute(f"PRAGMA page_size = {NEW_STORE_PAGE_BYTES}")
            # Writers from other processes (the shadow worker, other uvicorn workers) wait this long
            # for the write lock instead of failing with "database is locked".
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if path != ":memory:":
                db.enable_wal()
            # NORMAL in WAL mode: a power loss can lose the last committed batches, never corrupt.
            db.execute("PRAGMA synchronous = NORMAL")
            # A long reader stops checkpoints from reaching the end of the WAL, so it grows; once the
            # reader is gone the next checkpoint restarts it and this cuts the file back down.
            db.execute(f"PRAGMA journal_size_limit = {int(wal_size_limit_bytes)}")
            # SQLite counts the checkpoint interval in pages (1,000 by default): the same bytes
            # whatever this store's page size.
            page_bytes = db.execute("PRAGMA page_size").fetchone()[0]
            db.execute(f"PRAGMA wal_autocheckpoint = {max(1, WAL_CHECKPOINT_BYTES // page_bytes)}")
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open capture store {path!r}: {exc}") from None
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    @property
    def dialect(self) -> str:
        return self.sql.dialect

    def client_key_salt(self) -> bytes:
        return bytes.fromhex(self.meta("client_key_salt") or "")

    def meta(self, key: str) -> str | None:
        """A `store_meta` value (the client-key salt, the store id), None when unset."""
        row = self.sql.execute("select value from store_meta where key = ?", [key]).fetchone()
        return row[0] if row else None

    def insert_exchanges(self, rows: Sequence[dict]) -> None:
        self.insert_capture(rows, ())

    def insert_capture(self, exchanges: Sequence[dict], shadows: Sequence[dict]) -> None:
        """Insert a batch in one transaction: all rows land or none do. A shadow row replaces an
        earlier one for the same (exchange, candidate), so a late answer supersedes a placeholder."""
        with self._write_transaction():
            if exchanges:
                self._insert_rows("insert into", "exchanges", exchanges)
            if shadows:
                self._insert_rows("insert or replace into", "shadows", shadows)

    def _insert_rows(self, verb: str, table: str, rows: Sequence[dict]) -> None:
        """One prepared statement run for every row (what sqlite-utils' insert_all stores, for a
        third of its CPU: it builds, and SQLite parses, a new multi-row statement per 24 rows).
        The columns are those of any row; a row without one stores NULL there."""
        every_column: dict = {}
        for row in rows:
            every_column.update(row)  # the keys, in the order first seen
        columns = tuple(every_column)
        values_of = operator.itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
        values: list[Sequence] = []
        for row in rows:
            try:
                row_values: Sequence = values_of(row)
            except KeyError:
                row_values = [row.get(column) for column in columns]
            if not _PLAIN_VALUES.issuperset(map(type, row_values)):
                row_values = [jsonify_if_needed(value) for value in row_values]
            values.append(row_values)
        self.db.conn.executemany(_insert_sql(verb, table, columns), values)

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front, waiting up to busy_timeout for another
        writer. A deferred transaction that reads first can instead fail at once with "database is
        locked" when another process committed in between, whatever the timeout."""
        if self.db.conn.in_transaction:  # a caller's own transaction: join it
            with self.db.atomic():
                yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def shadow_spend_today(self, day: str) -> dict[str, float]:
        """Candidate -> US dollars spent on shadow calls started on `day` (YYYY-MM-DD, UTC)."""
        rows = self.sql.execute(
            "select candidate, coalesce(sum(cost_usd), 0) from shadows where started_at >= ? and started_at < ?"
            " group by candidate", [day, day + "T99"]).fetchall()
        return {candidate: spent for candidate, spent in rows}

    def count_exchanges(self, where: ExchangeFilter | None = None) -> int:
        clause, params = (where or ExchangeFilter()).where(self.sql)
        return self.sql.execute(f"select count(*) from exchanges where {clause}", params).fetchone()[0]

    def list_exchanges(self, where: ExchangeFilter | None = None, columns: Sequence[str] = LIST_COLUMNS) -> list[dict]:
        where = where or ExchangeFilter()
        clause, params = where.where(self.sql)
        sql = f"select {', '.join(columns)} from exchanges where {clause} order by started_at desc, id desc"
        if where.limit:
            sql += f" limit {int(where.limit)}"
        return list(self.sql.query(sql, params))

    def iter_exchanges(self, where: ExchangeFilter | None = None) -> Iterator[dict]:
        where = where or ExchangeFilter()
        clause, params = where.where(self.sql)
        sql = f"select * from exchanges where {clause} order by started_at, id"
        if where.limit:
            sql += f" limit {int(where.limit)}"
        yield from self.sql.query(sql, params)

    def get_exchange(self, exchange_id: str) -> dict | None:
        rows = list(self.sql.query("select * from exchanges where id = ?", [exchange_id]))
        if rows:
            return rows[0]
        # Let people paste a unique prefix of a long id.
        rows = list(self.sql.query("select * from exchanges where id like ? limit 2", [exchange_id + "%"]))
        return rows[0] if len(rows) == 1 else None
