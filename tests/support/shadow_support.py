"""Shadow rows as a real proxy writes them: waiting for them, reading them, and candidate config."""

from __future__ import annotations

import sqlite3
import time

import httpx
import orjson

QUESTION = {"model": "sim-large", "messages": [{"role": "user", "content": "How long are backups kept?"}]}


def candidate_toml(name: str, base_url: str, **options) -> str:
    lines = [f'[[candidates]]\nname = "{name}"\nmodel = "openai/fake-{name}"\napi_base = "{base_url}"']
    lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def wait_for_shadows(store_path, count: int, timeout_s: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = [dict(r) for r in shadow_rows(store_path)]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} shadow rows, found {len(found)}: {found}")


def shadow_rows(store_path):
    if not store_path.exists():
        return []
    connection = sqlite3.connect(store_path, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        return list(connection.execute("select * from shadows"))
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def shadows_of(store_path, exchange_id: str, count: int, timeout_s: float = 30.0) -> dict[str, dict]:
    """The exchange's shadow rows by candidate, once `count` of them are written."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict] = {}
    while time.monotonic() < deadline:
        found = {row["candidate"]: dict(row) for row in shadow_rows(store_path) if row["exchange_id"] == exchange_id}
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} shadow rows for {exchange_id}, found {sorted(found)}")


def wait_for_metric(proxy_url: str, expected_line: str, timeout_s: float = 10.0) -> None:
    """Poll /metrics until it shows `expected_line` (the worker reports once a second)."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = httpx.get(f"{proxy_url}/metrics").text.splitlines()
        if expected_line in lines:
            return
        time.sleep(0.2)
    name = expected_line.split("{")[0]
    raise AssertionError(f"/metrics never showed {expected_line!r}: {[x for x in lines if x.startswith(name)]}")


