"""The SQL seam between the store's parts and a database: one small interface, two backends.

Every part writes portable SQL (named `:name` or positional `?` parameters, `true` not `1`,
`on conflict ... do update` not `insert or replace`, `count(*) filter (where ...)` not `sum(x = y)`)
and asks its backend for the few things the two dialects spell differently: the elements of a JSON
list passed as one parameter, a field of a JSON object column, and whether a table exists. The
SQLite backend wraps a sqlite-utils `Database`; the PostgreSQL one is `core/store/postgres/sql.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from sqlite_utils import Database

# Where the store's parts and the CLI import them from (targets.py keeps them free of sqlite-utils).
from shadowtap.core.store.targets import is_postgres_url as is_postgres_url
from shadowtap.core.store.targets import safe_url as safe_url
from shadowtap.core.store.targets import store_missing as store_missing


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list: ...
    def __iter__(self) -> Iterator: ...


class SqlBackend(Protocol):
    """What a store part needs from its database."""

    dialect: str  # "sqlite" or "postgresql"

    def execute(self, sql: str, params: Sequence | dict | None = None) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None: ...
    def query(self, sql: str, params: Sequence | dict | None = None) -> Iterator[dict]: ...
    def transaction(self, *, immediate: bool = False) -> contextlib.AbstractContextManager[None]: ...
    def in_transaction(self) -> bool: ...
    def list_values(self, param: str) -> str: ...
    def list_pairs(self, param: str, first: str, second: str) -> str: ...
    def json_field(self, column: str, key_param: str) -> str: ...
    def has_table(self, table: str) -> bool: ...
    def columns(self, table: str) -> list[str]: ...


class SqliteBackend:
    """SQLite through a sqlite-utils Database (the embedded default)."""

    dialect = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    def execute(self, sql: str, params: Sequence | dict | None = None):
        return self.db.execute(sql, params if params is not None else [])

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        self.db.conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence | dict | None = None) -> Iterator[dict]:
        return self.db.query(sql, params)

    @contextlib.contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[None]:
        """One transaction; `immediate` takes the write lock up front (BEGIN IMMEDIATE), waiting up to
        busy_timeout for another writer, where a deferred one that reads first can fail at once with
        "database is locked" when another process committed in between. Inside a caller's own
        transaction, joins it."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("begin immediate" if immediate else "begin")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise
        conn.execute("commit")

    def in_transaction(self) -> bool:
        return self.db.conn.in_transaction

    def list_values(self, param: str) -> str:
        return f"select value from json_each({param})"

    def list_pairs(self, param: str, first: str, second: str) -> str:
        return (f"select json_extract(value, '$[0]') as {first}, json_extract(value, '$[1]') as {second} "
                f"from json_each({param})")

    def json_field(self, column: str, key_param: str) -> str:
        return f"json_extract({column}, '$.' || {key_param})"

    def has_table(self, table: str) -> bool:
        return self.db[table].exists()

    def columns(self, table: str) -> list[str]:
        return [column.name for column in self.db[table].columns]


def backend_of(store_or_db: object) -> SqlBackend:
    """The backend behind a store, a part, a sqlite-utils Database or a backend itself."""
    if isinstance(store_or_db, Database):
        return SqliteBackend(store_or_db)
    sql = getattr(store_or_db, "sql", None)
    if sql is not None:
        return sql
    if hasattr(store_or_db, "list_values") and hasattr(store_or_db, "dialect"):
        return store_or_db  # type: ignore[return-value]
    db = getattr(store_or_db, "db", None)
    if isinstance(db, Database):
        return SqliteBackend(db)
    raise TypeError(f"expected a store or a sqlite_utils Database, got {type(store_or_db).__name__}")


def upsert_sql(table: str, columns: Sequence[str], *, key: str = "id", replace: bool = True) -> str:
    """An insert of `columns` (`?` parameters) that, on a duplicate `key`, replaces the row's other
    columns (`replace`) or leaves the stored row alone. The same text runs on both backends."""
    marks = ", ".join("?" for _ in columns)
    if replace:
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != key)
        action = f"do update set {updates}"
    else:
        action = "do nothing"
    return f"insert into {table} ({', '.join(columns)}) values ({marks}) on conflict ({key}) {action}"
