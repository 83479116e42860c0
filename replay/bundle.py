"""Incident bundles: one gzip-compressed JSON file of exchanges, their answers, scores and replay
runs, plus the config snapshot with secrets removed, that a colleague can import into another store.

Document shape (format "shadowtap-bundle", version 1):

    {"format": "shadowtap-bundle", "version": 1, "created_at": ISO time,
     "selection": {"exchange_ids": [...], "run_ids": [...]},
     "config": {...secrets removed...}, "config_removed": ["primary.api_key", ...],
     "tables": {"exchanges": [rows], "shadows": [...], "scores": [...],
                "replay_runs": [...], "replay_results": [...]},
     "base64_columns": {"exchanges": ["request_raw", "response_raw"], ...}}
"""

from __future__ import annotations

import base64
import gzip
import logging
import os
import re
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlite_utils import Database

from shadowtap.core.errors import StoreError
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.table_rows import TableRows

log = logging.getLogger(__name__)

FORMAT = "shadowtap-bundle"
VERSION = 1
TABLES = ("exchanges", "shadows", "scores", "replay_runs", "replay_results")

_SECRET_NAME = re.compile(r"(?i)(?:^|_)(?:keys?|token|secrets?|passwords?|apikey)$|^authorization$")
_SECRET_VALUE = re.compile(
    r"(?i)\b(?:sk|rk|pk|sess)-[A-Za-z0-9_\-]{8,}"      # provider key shapes
    r"|\bbearer\s+\S{8,}"
    r"|^(?=[A-Za-z0-9_\-+=]*\d)(?=[A-Za-z0-9_\-+=]*[A-Za-z])[A-Za-z0-9_\-+=]{32,}$")  # long opaque token


def export_bundle(db: CaptureStore | Database, path, *, exchange_ids: list[str], run_ids: list[str],
                  config_snapshot: dict) -> dict:
    """Write the bundle to `path` (atomically) and return {table: rows written}.

    `db` is a CaptureStore or a sqlite-utils Database. Exchanges referenced by the runs' results
    are included too, so the bundle is self-contained. Tables the store lacks are skipped; an
    exchange or run id the store does not hold raises StoreError.
    """
    store = _table_rows(db)
    tables: dict[str, list[dict]] = {}
    run_ids = list(dict.fromkeys(run_ids))
    if run_ids and store.has_table("replay_runs"):
        run_key = store.primary_key("replay_runs")
        tables["replay_runs"] = store.rows_where("replay_runs", run_key, run_ids)
        _require_all(run_ids, {row[run_key] for row in tables["replay_runs"]}, "replay run")
        for row in tables["replay_runs"]:
            _scrub_config_columns(row)
    if run_ids and store.has_table("replay_results") and "run_id" in store.columns("replay_results"):
        tables["replay_results"] = store.rows_where("replay_results", "run_id", run_ids)
    referenced = [row["exchange_id"] for row in tables.get("replay_results", []) if row.get("exchange_id")]
    wanted = list(dict.fromkeys([*exchange_ids, *referenced]))
    tables["exchanges"] = store.rows_where("exchanges", "id", wanted)
    _require_all(exchange_ids, {row["id"] for row in tables["exchanges"]}, "exchange")
    for table in ("shadows", "scores"):
        if store.has_table(table):
            tables[table] = store.rows_where(table, "exchange_id", wanted)

    config, removed = scrub_config(config_snapshot)
    base64_columns = {table: _encode_bytes(rows) for table, rows in tables.items()}
    bundled = {table: tables[table] for table in TABLES if table in tables}
    document = {
        "format": FORMAT, "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "selection": {"exchange_ids": list(exchange_ids), "run_ids": run_ids},
        "config": config, "config_removed": removed,
        "tables": bundled,
        "base64_columns": {table: columns for table, columns in base64_columns.items() if columns},
    }
    data = gzip.compress(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), mtime=0)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return {table: len(rows) for table, rows in bundled.items()}


def read_bundle(path) -> dict:
    """The bundle's document with bytes columns decoded; StoreError if it is not a bundle we read."""
    try:
        document = orjson.loads(gzip.decompress(Path(path).read_bytes()))
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
        raise StoreError(f"{str(path)!r} is not a readable shadowtap bundle (expected gzip-compressed JSON "
                         f"with format {FORMAT!r} version {VERSION}): {exc}") from None
    found = (document.get("format"), document.get("version")) if isinstance(document, dict) else (None, None)
    if found != (FORMAT, VERSION):
        raise StoreError(f"{str(path)!r}: unsupported bundle format {found[0]!r} version {found[1]!r}; "
                         f"this shadowtap reads format {FORMAT!r} version {VERSION}")
    tables = document.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(rows, list) for rows in tables.values()):
        raise StoreError(f"{str(path)!r}: bundle format {FORMAT!r} version {VERSION} has no valid 'tables' object")
    for table, columns in (document.get("base64_columns") or {}).items():
        for row in tables.get(table, []):
            for column in columns:
                if isinstance(row.get(column), str):
                    row[column] = base64.b64decode(row[column])
    return document


def import_bundle(db: CaptureStore | Database, path) -> dict:
    """Upsert the bundle's rows into `db` by primary key; return {table: rows}.

    Upserting makes a re-run after a failure safe. Nothing is created: a table the target schema
    lacks is skipped, and columns it lacks are dropped, each with a warning in the log.
    """
    store = _table_rows(db)
    document = read_bundle(path)
    counts = {}
    # Parents first, so an interrupted import never leaves scores without their exchange.
    for table in sorted(document["tables"], key=lambda t: TABLES.index(t) if t in TABLES else len(TABLES)):
        rows = document["tables"][table]
        if table not in TABLES or not store.has_table(table):
            log.warning("bundle %s: skipping %d %s rows: the target store has no such table", path, len(rows), table)
            continue
        columns = store.columns(table)
        dropped = sorted({column for row in rows for column in row} - columns)
        if dropped:
            log.warning("bundle %s: dropping %s columns the target store lacks: %s", path, table, dropped)
        rows = [{k: v for k, v in row.items() if k in columns} for row in rows]
        if rows:
            store.upsert(table, rows)
        counts[table] = len(rows)
    return counts


def scrub_config(config: object, path: str = "") -> tuple[object, list[str]]:
    """(copy of `config` without secrets, dotted paths of what was removed).

    Drops keys named like *_key, *_token, *_secret, *_password and values shaped like keys;
    keeps *_env keys, which name an environment variable rather than hold a secret.
    """
    removed: list[str] = []
    if isinstance(config, dict):
        kept = {}
        for key, value in config.items():
            child = f"{path}.{key}" if path else str(key)
            if not str(key).lower().endswith("_env") and _SECRET_NAME.search(str(key)):
                removed.append(child)
                continue
            value, inner = scrub_config(value, child)
            if value is _REMOVED:
                removed.append(child)
                continue
            kept[key] = value
            removed += inner
        return kept, removed
    if isinstance(config, (list, tuple)):
        kept_items = []
        for index, value in enumerate(config):
            value, inner = scrub_config(value, f"{path}[{index}]")
            if value is _REMOVED:
                removed.append(f"{path}[{index}]")
                continue
            kept_items.append(value)
            removed += inner
        return kept_items, removed
    if isinstance(config, (str, bytes)):
        text = config.decode(errors="replace") if isinstance(config, bytes) else config
        return (_REMOVED if _SECRET_VALUE.search(text.strip()) else text), removed
    return config, removed


_REMOVED = object()


# --- helpers -----------------------------------------------------------------------------------

def _table_rows(db: CaptureStore | Database) -> TableRows:
    return TableRows(db.db if isinstance(db, CaptureStore) else db)


def _require_all(wanted: Iterable[str], found: set, what: str) -> None:
    missing = [value for value in wanted if value not in found]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise StoreError(f"cannot export: no {what} with id {shown} in this store")


def _encode_bytes(rows: list[dict]) -> list[str]:
    columns = sorted({column for row in rows for column, value in row.items() if isinstance(value, bytes)})
    for row in rows:
        for column in columns:
            if isinstance(row.get(column), bytes):
                row[column] = base64.b64encode(row[column]).decode("ascii")
    return columns


def _scrub_config_columns(row: dict) -> None:
    """A run's stored config snapshot should already be clean; scrub it again on the way out."""
    for column, value in row.items():
        if "config" in column and isinstance(value, str):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, (dict, list)):
                row[column] = orjson.dumps(scrub_config(parsed)[0]).decode()
