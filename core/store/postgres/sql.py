"""PostgresBackend: the store's SQL seam over one psycopg 3 connection.

The parts write `:name` and `?` parameters (SQLite's styles); this turns them into psycopg's
`%(name)s` and `%s` once per statement text. Numbers come back as SQLite returns them (an integral
sum is an int, not a Decimal), so a report reads the same on both backends.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Iterator, Sequence

import psycopg
from psycopg.adapt import Loader
from psycopg.rows import dict_row

from shadowtap.core.errors import StoreError
from shadowtap.core.store.backend import safe_url

# A shared store that does not answer within this is reported as unreachable (the shipper retries).
CONNECT_TIMEOUT_S = 5
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """`:name` -> `%(name)s`, `?` -> `%s`, `%` -> `%%`, leaving string literals and `::` casts alone."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == "'":
            end = sql.index("'", i + 1)
            while end + 1 < n and sql[end + 1] == "'":  # '' inside a literal
                end = sql.index("'", end + 2)
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif char == ":" and i + 1 < n and sql[i + 1] == ":":
            out.append("::")
            i += 2
        elif char == ":" and (match := _NAME.match(sql, i + 1)):
            out.append(f"%({match.group()})s")
            i = match.end()
        elif char == "?":
            out.append("%s")
            i += 1
        elif char == "%":
            out.append("%%")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _NumericLoader(Loader):
    """numeric (what sum() of integers returns) as int when integral, else float: SQLite's types."""

    def load(self, data) -> int | float:
        text = bytes(data).decode()
        if text.lstrip("-").isdigit():
            return int(text)
        return float(text)


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit), with numbers loaded as SQLite's."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the PostgreSQL store {safe_url(url)!r}: {_reason(exc)}") from None
    conn.adapters.register_loader("numeric", _NumericLoader)
    return conn


def _reason(exc: BaseException) -> str:
    # libpq's messages name host, port and user, never the password; keep the first line only.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresBackend:
    """The SqlBackend of core/store/backend.py over a psycopg connection."""

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._depth = 0

    def execute(self, sql: str, params: Sequence | dict | None = None) -> psycopg.Cursor:
        return self.conn.execute(to_psycopg(sql), params if params is not None else None, prepare=False)

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), list(rows))

    def query(self, sql: str, params: Sequence | dict | None = None) -> Iterator[dict]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(to_psycopg(sql), params if params is not None else None)
            yield from cursor

    @contextlib.contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[None]:
        """One transaction (a savepoint inside another). `immediate` means nothing here: Postgres
        serialises writers per row, not per database."""
        self._depth += 1
        try:
            with self.conn.transaction():
                yield
        finally:
            self._depth -= 1

    def in_transaction(self) -> bool:
        return self._depth > 0

    def list_values(self, param: str) -> str:
        return f"select jsonb_array_elements_text(cast({param} as jsonb))"

    def list_pairs(self, param: str, first: str, second: str) -> str:
        return (f"select item ->> 0 as {first}, item ->> 1 as {second} "
                f"from jsonb_array_elements(cast({param} as jsonb)) as pairs(item)")

    def json_field(self, column: str, key_param: str) -> str:
        return f"(cast({column} as jsonb) ->> cast({key_param} as text))"

    def has_table(self, table: str) -> bool:
        row = self.conn.execute("select to_regclass(%s) is not null", [table]).fetchone()
        return bool(row and row[0])

    def columns(self, table: str) -> list[str]:
        rows = self.conn.execute(
            "select column_name from information_schema.columns where table_schema = current_schema() "
            "and table_name = %s order by ordinal_position", [table]).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self.conn.close()
