"""QueueStore: review queues of the review UI — exchanges chosen by a filter, each labelled by N
reviewers under one guideline version, and which feedback row is which reviewer's label."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from shadowtap.core.store.backend import SqlBackend, backend_of
from shadowtap.core.timefmt import stored_time

# Exchange columns agreement can be broken down by (named in SQL, so only these).
CATEGORIES = ("task", "risk_tier", "endpoint")


class QueueStore:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    def create(self, name: str, *, filter_json: str, exchange_ids: Sequence[str], reviewers_per_item: int,
               guideline_path: str | None, guideline_hash: str | None, category: str,
               created_by: str | None) -> dict:
        if category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
        queue_id = secrets.token_hex(4)
        row = {"id": queue_id, "name": name, "filter": filter_json, "reviewers_per_item": reviewers_per_item,
               "guideline_path": guideline_path, "guideline_hash": guideline_hash, "category": category,
               "created_at": stored_time(), "created_by": created_by, "items": len(exchange_ids)}
        with self.sql.transaction(immediate=True):
            self._insert("review_queues", row)
            for position, exchange_id in enumerate(exchange_ids):
                self._insert("review_queue_items", {"id": f"{queue_id}:{exchange_id}", "queue_id": queue_id,
                                                    "exchange_id": exchange_id, "position": position})
        return row

    def queues(self) -> list[dict]:
        """Every queue, newest first, with how many labels it has."""
        return list(self.sql.query(
            "select q.*, (select count(*) from review_queue_labels l where l.queue_id = q.id) as labels "
            "from review_queues q order by q.created_at desc, q.id"))

    def get(self, queue_id: str) -> dict | None:
        rows = list(self.sql.query("select * from review_queues where id = :id", {"id": queue_id}))
        return rows[0] if rows else None

    def next_item(self, queue_id: str, reviewer: str) -> str | None:
        """The first item, in queue order, that still needs labels and that `reviewer` has not labelled."""
        rows = list(self.sql.query(
            "select i.exchange_id from review_queue_items i join review_queues q on q.id = i.queue_id "
            "where i.queue_id = :queue and not exists (select 1 from review_queue_labels l where l.queue_id = :queue "
            "and l.exchange_id = i.exchange_id and l.reviewer = :reviewer) "
            "and (select count(*) from review_queue_labels l where l.queue_id = :queue "
            "and l.exchange_id = i.exchange_id) < q.reviewers_per_item order by i.position limit 1",
            {"queue": queue_id, "reviewer": reviewer}))
        return rows[0]["exchange_id"] if rows else None

    def position(self, queue_id: str, exchange_id: str) -> int | None:
        rows = list(self.sql.query("select position from review_queue_items where id = :id",
                                   {"id": f"{queue_id}:{exchange_id}"}))
        return rows[0]["position"] if rows else None

    def record_label(self, queue_id: str, exchange_id: str, reviewer: str, feedback_id: str,
                     guideline_hash: str | None) -> None:
        """A reviewer's label on a queue item; labelling it again points at the newer feedback row."""
        self.sql.execute(
            "insert into review_queue_labels (id, queue_id, exchange_id, reviewer, feedback_id, guideline_hash, "
            "labelled_at) values (?, ?, ?, ?, ?, ?, ?) on conflict (id) do update set feedback_id = "
            "excluded.feedback_id, guideline_hash = excluded.guideline_hash, labelled_at = excluded.labelled_at",
            [f"{queue_id}:{exchange_id}:{reviewer}", queue_id, exchange_id, reviewer, feedback_id, guideline_hash,
             stored_time()])

    def labels(self, queue_id: str, category: str) -> list[dict]:
        """(exchange_id, reviewer, outcome, category value) of every label in the queue."""
        if category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
        return list(self.sql.query(
            f"select l.exchange_id, l.reviewer, f.outcome, e.{category} as category from review_queue_labels l "
            "join feedback f on f.id = l.feedback_id join exchanges e on e.id = l.exchange_id "
            "where l.queue_id = :queue order by l.exchange_id, l.reviewer", {"queue": queue_id}))

    def _insert(self, table: str, row: dict) -> None:
        columns = list(row)
        self.sql.execute(f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
                         [row[column] for column in columns])
