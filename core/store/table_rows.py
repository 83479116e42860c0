"""TableRows: whole rows of any store table, by key, for bundles that move records between
stores (export to a file, import into another store). Tables and columns the store lacks are
reported, never created."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from shadowtap.core.store.backend import SqlBackend, backend_of, upsert_sql

# SQLite allows at most 999 parameters per statement in older builds.
_CHUNK = 500
# Every table's key, by the migrations; what is not here has SQLite's rowid alone.
_KEYS = {"exchanges": "id", "shadows": "id", "scores": "id", "feedback": "id", "replay_runs": "id",
         "replay_results": "id", "store_meta": "key"}


class TableRows:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    def has_table(self, table: str) -> bool:
        return self.sql.has_table(table)

    def columns(self, table: str) -> set[str]:
        return set(self.sql.columns(table))

    def primary_key(self, table: str) -> str:
        return _KEYS.get(table, "rowid")

    def rows_where(self, table: str, column: str, values: Sequence) -> list[dict]:
        """Every row of `table` whose `column` is one of `values`, in insertion order (key order on
        PostgreSQL, which keeps none)."""
        order = "rowid" if self.sql.dialect == "sqlite" else self.primary_key(table)
        rows: list[dict] = []
        for chunk in _chunks(list(values), _CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows += self.sql.query(f'select * from "{table}" where "{column}" in ({marks}) order by {order}', chunk)
        return rows

    def upsert(self, table: str, rows: Sequence[dict]) -> None:
        """Insert or replace by primary key, so importing the same rows twice changes nothing."""
        if not rows:
            return
        columns = list(dict.fromkeys(column for row in rows for column in row))
        statement = upsert_sql(table, columns, key=self.primary_key(table))
        with self.sql.transaction():
            self.sql.executemany(statement, [[row.get(column) for column in columns] for row in rows])


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
