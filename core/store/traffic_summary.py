"""TrafficSummary: what was captured, counted by endpoint, status and candidate (the demo's tables)."""

from __future__ import annotations

from sqlite_utils import Database


class TrafficSummary:
    def __init__(self, db: Database) -> None:
        self.db = db

    def exchanges_by_endpoint_and_status(self, *, except_task: str | None = None) -> list[dict]:
        """endpoint, status, n, streams, latency and ttft (mean ms), tokens, incomplete."""
        return list(self.db.query(
            "select endpoint, status, count(*) n, sum(is_stream) streams, round(avg(latency_ms), 1) latency,"
            " round(avg(ttft_ms), 1) ttft, sum(total_tokens) tokens, sum(stream_incomplete) incomplete"
            " from exchanges where task is not :task or task is null group by endpoint, status"
            " order by endpoint, status", {"task": except_task}))

    def count_with_task(self, *, except_task: str | None = None) -> int:
        return self.db.execute("select count(*) from exchanges where task is not null and task is not ?",
                               [except_task]).fetchone()[0]

    def count_with_metadata(self) -> int:
        """Exchanges whose request carried the `shadowtap` body field (contexts, say)."""
        return self.db.execute("select count(*) from exchanges where shadowtap_metadata is not null").fetchone()[0]

    def shadows_by_candidate(self) -> list[dict]:
        """candidate, n, ok, errors, timeouts, skipped, latency and the primary's latency (mean ms, ok rows)."""
        return list(self.db.query(
            "select s.candidate, count(*) n, sum(s.outcome = 'ok') ok, sum(s.outcome = 'error') errors,"
            " sum(s.outcome = 'timeout') timeouts, sum(s.outcome = 'skipped') skipped,"
            " round(avg(case when s.outcome = 'ok' then s.latency_ms end), 1) latency,"
            " round(avg(case when s.outcome = 'ok' then e.latency_ms end), 1) primary_latency"
            " from shadows s join exchanges e on e.id = s.exchange_id group by s.candidate order by s.candidate"))
