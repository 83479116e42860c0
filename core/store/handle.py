"""Store: one handle on the capture store, with a typed part per kind of record.

`Store.open(path)` opens (creating and migrating) the SQLite file once; every part shares that
connection. A second backend is a second set of parts behind the same attributes, not edits
across the packages that use them. Only code under core/store runs SQL.
"""

from __future__ import annotations

from pathlib import Path

from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.feedback_store import FeedbackStore
from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.core.store.report_reads import ReportReads
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
        self.reports = ReportReads(captures.db)
        self.summary = TrafficSummary(captures.db)
        self.tables = TableRows(captures.db)

    @classmethod
    def open(cls, path: str | Path, **options) -> Store:
        return cls(CaptureStore.open(path, **options))

    @property
    def path(self) -> str:
        return self.captures.path

    def close(self) -> None:
        self.captures.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
