"""TableRows: whole rows of any store table, by key, for bundles that move records between
stores (export to a file, import into another store). Tables and columns the store lacks are
reported, never created."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlite_utils import Database

# SQLite allows at most 999 parameters per statement in older builds.
_CHUNK = 500


class TableRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def has_table(self, table: str) -> bool:
        return self.db[table].exists()

    def columns(self, table: str) -> set[str]:
        return set(self.db[table].columns_dict)

    def primary_key(self, table: str) -> str:
        pks = self.db.table(table).pks
        return pks[0] if pks else "rowid"

    def rows_where(self, table: str, column: str, values: Sequence) -> list[dict]:
        """Every row of `table` whose `column` is one of `values`, in insertion order."""
        rows: list[dict] = []
        for chunk in _chunks(list(values), _CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows += self.db.query(f"select * from [{table}] where [{column}] in ({marks}) order by rowid", chunk)
        return rows

    def upsert(self, table: str, rows: Sequence[dict]) -> None:
        """Insert or replace by primary key, so importing the same rows twice changes nothing."""
        pks = self.db.table(table).pks
        self.db.table(table).upsert_all(rows, pk=pks[0] if len(pks) == 1 else tuple(pks), batch_size=200)


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
