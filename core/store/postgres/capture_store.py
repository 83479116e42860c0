"""PostgresCaptureStore: the capture part of a store kept in PostgreSQL (`[store] url`)."""

from __future__ import annotations

from collections.abc import Sequence

from shadowtap.core.store.backend import safe_url, upsert_sql
from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.postgres import migrations
from shadowtap.core.store.postgres.sql import PostgresBackend, connect


class PostgresCaptureStore(CaptureStore):
    """Exchanges and shadow rows in PostgreSQL; every read is CaptureStore's own portable SQL."""

    def __init__(self, sql: PostgresBackend, url: str) -> None:  # there is no sqlite-utils Database here
        self.sql = sql
        self.backend = sql
        self.url = url
        self.path = safe_url(url)  # what messages and reports show: never the password

    @classmethod
    def open(cls, path, **_options) -> PostgresCaptureStore:
        url = str(path)
        conn = connect(url)
        migrations.apply(conn)
        return cls(PostgresBackend(conn), url)

    def close(self) -> None:
        self.backend.close()

    def insert_capture(self, exchanges: Sequence[dict], shadows: Sequence[dict]) -> None:
        """One transaction; an exchange already stored is kept, a shadow row replaces its earlier one."""
        with self.sql.transaction():
            for table, rows, replace in (("exchanges", exchanges, False), ("shadows", shadows, True)):
                if rows:
                    columns = list(dict.fromkeys(column for row in rows for column in row))  # any row's
                    self.sql.executemany(upsert_sql(table, columns, replace=replace),
                                         [[row.get(column) for column in columns] for row in rows])
