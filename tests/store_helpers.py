"""Reading a live proxy's capture store from a test: rows land asynchronously, so poll for them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def read_rows(store_path: Path, where: str = "1", params: tuple = ()) -> list[dict]:
    """Rows of `exchanges` matching `where`, oldest first; [] while the store is not there yet."""
    if not Path(store_path).exists():
        return []
    connection = sqlite3.connect(store_path, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        query = f"select * from exchanges where {where} order by started_at, id"
        return [dict(row) for row in connection.execute(query, params)]
    except sqlite3.OperationalError:
        return []  # the proxy has not migrated the store yet
    finally:
        connection.close()


def wait_for_rows(store_path: Path, n: int, where: str = "1", params: tuple = (),
                  timeout_s: float = 5.0) -> list[dict]:
    """Poll until at least `n` rows match; fail the test, naming what was found, if they never do."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = read_rows(store_path, where, params)
        if len(found) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(found) >= n, f"expected {n} captured exchanges where {where} {params}, found {len(found)}"
    return found


def wait_for_exchange(store_path: Path, exchange_id: str, timeout_s: float = 5.0) -> dict:
    """The captured row with this id, once the writer has stored it."""
    return wait_for_rows(store_path, 1, "id = ?", (exchange_id,), timeout_s)[0]
