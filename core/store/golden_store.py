"""GoldenStore: named, versioned golden sets built from production exchanges, and their runs.

A set's items are snapshots (the request as captured and the reference answer), not pointers,
so a set outlives the exchanges it came from (retention, `store prune`) and travels between stores
(`golden export` / `import`). Adding or removing items makes a new version; a version never
changes once written, so results kept per version and target show regressions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from shadowtap.core.store.backend import SqlBackend, backend_of
from shadowtap.core.timefmt import stored_time


@dataclass(frozen=True)
class GoldenItem:
    exchange_id: str
    endpoint: str | None
    path: str | None
    request_json: str
    reference_text: str | None
    reference_tool_calls: str | None   # JSON list, OpenAI shape
    reference_source: str              # "primary", or "review:<reviewer>" for a reviewer's edit
    shadowtap_metadata: str | None = None

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class GoldenStore:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    def latest_version(self, name: str) -> int:
        row = self.sql.execute("select max(version) from golden_sets where name = ?", [name]).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def write_version(self, name: str, items: Sequence[GoldenItem], *, description: str | None,
                      pass_criterion: str, min_pass_rate: float, created_by: str | None = None) -> dict:
        """A new version of `name` holding exactly `items`; returns its row."""
        with self.sql.transaction(immediate=True):
            version = self.latest_version(name) + 1
            set_id = f"{name}@{version}"
            row = {"id": set_id, "name": name, "version": version, "created_at": stored_time(),
                   "created_by": created_by, "description": description, "pass_criterion": pass_criterion,
                   "min_pass_rate": min_pass_rate, "items": len(items)}
            self._insert("golden_sets", row)
            for item in items:
                self._insert("golden_items", {"id": f"{set_id}:{item.exchange_id}", "set_id": set_id,
                                              **item.to_json()})
        return row

    def sets(self) -> list[dict]:
        """The latest version of every set, by name."""
        return list(self.sql.query(
            "select s.* from golden_sets s where s.version = (select max(version) from golden_sets v "
            "where v.name = s.name) order by s.name"))

    def versions(self, name: str) -> list[dict]:
        return list(self.sql.query("select * from golden_sets where name = :name order by version",
                                   {"name": name}))

    def get(self, name: str, version: int | None = None) -> dict | None:
        """A version of a set (the latest when `version` is None), or None."""
        version = version or self.latest_version(name)
        rows = list(self.sql.query("select * from golden_sets where id = :id", {"id": f"{name}@{version}"}))
        return rows[0] if rows else None

    def items(self, set_id: str) -> list[GoldenItem]:
        rows = self.sql.query("select exchange_id, endpoint, path, request_json, reference_text, "
                              "reference_tool_calls, reference_source, shadowtap_metadata from golden_items "
                              "where set_id = :set_id order by exchange_id", {"set_id": set_id})
        return [GoldenItem(**row) for row in rows]

    def record_run(self, row: dict) -> None:
        self._insert("golden_runs", row)

    def runs(self, name: str, *, target: str | None = None) -> list[dict]:
        """Runs of every version of the set, newest first (optionally of one target)."""
        clause = " and target_name = :target" if target else ""
        return list(self.sql.query(
            "select r.*, s.version from golden_runs r join golden_sets s on s.id = r.set_id "
            f"where s.name = :name{clause} order by r.created_at desc, r.id", {"name": name, "target": target}))

    def _insert(self, table: str, row: dict) -> None:
        columns = list(row)
        self.sql.execute(f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
                         [row[column] for column in columns])


def tool_calls_json(value: object) -> str | None:
    """A reference's tool calls as stored: JSON text, or None."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
