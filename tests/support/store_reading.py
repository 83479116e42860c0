"""Reading what a running proxy captured: captures land asynchronously, so wait for them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def rows(store_path: Path, where: str = "1", params: tuple = ()) -> list[dict]:
    if not Path(store_path).exists():
        return []
    connection = sqlite3.connect(store_path, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"select * from exchanges where {where}", params)]
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        connection.close()


def wait_for_rows(store_path: Path, count: int, where: str = "1", params: tuple = (),
                  timeout_s: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = rows(store_path, where, params)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} captured exchanges where {where} {params}, found {len(found)}")


def wait_for_exchange(store_path: Path, exchange_id: str, timeout_s: float = 10.0) -> dict:
    return wait_for_rows(store_path, 1, "id = ?", (exchange_id,), timeout_s)[0]
