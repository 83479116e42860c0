"""TrafficSummary: what was captured, counted by endpoint, status and candidate (the demo's tables)."""

from __future__ import annotations

from shadowtap.core.store.backend import SqlBackend, backend_of


class TrafficSummary:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    def exchanges_by_endpoint_and_status(self, *, except_task: str | None = None) -> list[dict]:
        """endpoint, status, n, streams, latency and ttft (mean ms), tokens, incomplete."""
        rows = self.sql.query(
            "select endpoint, status, count(*) n, cast(sum(is_stream) as bigint) streams, avg(latency_ms) latency,"
            " avg(ttft_ms) ttft, cast(sum(total_tokens) as bigint) tokens,"
            " cast(sum(stream_incomplete) as bigint) incomplete"
            " from exchanges where task is distinct from :task or task is null group by endpoint, status"
            " order by endpoint, status", {"task": except_task})
        return [{**row, "latency": _round(row["latency"]), "ttft": _round(row["ttft"])} for row in rows]

    def count_with_task(self, *, except_task: str | None = None) -> int:
        return self.sql.execute("select count(*) from exchanges where task is not null and task is distinct from ?",
                                [except_task]).fetchone()[0]

    def served_by_counts(self) -> dict[str, int]:
        """Exchanges by who answered the app: "primary" (no canary, or a fallback) or a candidate."""
        rows = self.sql.query("select coalesce(served_by, 'primary') who, count(*) n from exchanges group by 1")
        return {row["who"]: row["n"] for row in rows}

    def count_with_metadata(self) -> int:
        """Exchanges whose request carried the `shadowtap` body field (contexts, say)."""
        return self.sql.execute("select count(*) from exchanges where shadowtap_metadata is not null").fetchone()[0]

    def shadows_by_candidate(self) -> list[dict]:
        """candidate, n, ok, errors, timeouts, skipped, latency and the primary's latency (mean ms, ok rows)."""
        rows = self.sql.query(
            "select s.candidate, count(*) n, count(*) filter (where s.outcome = 'ok') ok,"
            " count(*) filter (where s.outcome = 'error') errors,"
            " count(*) filter (where s.outcome = 'timeout') timeouts,"
            " count(*) filter (where s.outcome = 'skipped') skipped,"
            " avg(case when s.outcome = 'ok' then s.latency_ms end) latency,"
            " avg(case when s.outcome = 'ok' then e.latency_ms end) primary_latency"
            " from shadows s join exchanges e on e.id = s.exchange_id group by s.candidate order by s.candidate")
        return [{**row, "latency": _round(row["latency"]), "primary_latency": _round(row["primary_latency"])}
                for row in rows]


def _round(value: float | None) -> float | None:
    # In Python, not SQL: Postgres has no round(double precision, int).
    return None if value is None else round(value, 1)
