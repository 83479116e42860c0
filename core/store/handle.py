"""Store: one handle on the capture store, with a typed part per kind of record.

`Store.open(target)` opens (creating and migrating) a SQLite file, or a PostgreSQL database when
the target is a postgresql:// URL; every part shares that one connection. Each part writes
portable SQL over the connection's backend (core/store/backend.py), so the second backend is the
files under core/store/postgres/, not edits across the packages that use the store. Only code
under core/store runs SQL.
"""

from __future__ import annotations

from pathlib import Path

from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.feedback_store import FeedbackStore
from shadowtap.core.store.golden_store import GoldenStore
from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.core.store.report_reads import ReportReads
from shadowtap.core.store.review_queues import QueueStore
from shadowtap.core.store.review_reads import ReviewReads
from shadowtap.core.store.score_store import ScoreStore
from shadowtap.core.store.table_rows import TableRows
from shadowtap.core.store.traffic_summary import TrafficSummary


class Store:
    """captures (exchanges and shadow rows), scores, feedback, replays; the report's reads, the
    traffic summary, and whole rows by table for bundles."""

    def __init__(self, captures: CaptureStore) -> None:
        self.captures = captures
        self.scores = ScoreStore(captures)
        self.feedback = FeedbackStore(captures)
        self.replays = ReplayStore(captures)
        self.reports = ReportReads(captures)
        self.review = ReviewReads(captures)
        self.golden = GoldenStore(captures)
        self.queues = QueueStore(captures)
        self.summary = TrafficSummary(captures)
        self.tables = TableRows(captures)

    @classmethod
    def open(cls, target: str | Path, **options) -> Store:
        """A SQLite file path, or a postgresql:// URL ([store] url)."""
        return cls(CaptureStore.open(target, **options))

    @property
    def path(self) -> str:
        """The SQLite file, or the PostgreSQL URL without its password."""
        return self.captures.path

    @property
    def dialect(self) -> str:
        return self.captures.dialect

    def close(self) -> None:
        self.captures.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
