"""ReportReads: the range reads a report needs, over exchanges, shadows, scores and feedback.

Read-only. Callers wrap them in `snapshot()` so every read sees the store at one moment while
the proxy keeps writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import orjson

from shadowtap.core.store.backend import SqlBackend, backend_of
from shadowtap.core.store.capture_store import ExchangeFilter


class ReportReads:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)
        # `execute` and `query` take the same SQL and parameters on either backend.
        self.db = getattr(self.sql, "db", self.sql)

    def _range(self, since: str | None, until: str | None) -> tuple[str, dict]:
        """The exchanges a report compares: those in range that the primary answered. An exchange a
        canary answered live (`served_by` a candidate) holds the candidate's answer, not the
        primary's: the report's canary section reads those, every other figure leaves them out."""
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
        return f"({clause}) and (served_by is null or served_by = 'primary')", params

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees the store at one moment. Without it, a score or shadow committed
        between two reads could point at an exchange the first read never saw. The transaction is
        only as long as the reads (seconds, not the render)."""
        if self.sql.in_transaction():
            yield
            return
        if self.sql.dialect == "postgresql":  # one snapshot for every read, as SQLite's read transaction
            self.sql.execute("begin isolation level repeatable read read only")
        else:
            self.sql.execute("begin")
        try:
            yield
        finally:
            self.sql.execute("commit")

    def exchanges(self, columns: Sequence[str], *, since: str | None, until: str | None) -> Iterator[dict]:
        """Exchanges with since <= started_at < until, oldest first."""
        clause, params = self._range(since, until)
        yield from self.db.query(f"select {', '.join(columns)} from exchanges where {clause} "
                                 "order by started_at, id", params)

    def linked_exchanges(self, columns: Sequence[str], *, since: str | None,
                         until: str | None) -> Iterator[tuple]:
        """`columns` of the exchanges in range that a comparison can read, oldest first, as tuples:
        those with a shadow row, a primary agreement score (the twin noise floor) or feedback. At a
        sampled shadow share most traffic has none of these, and a report need only count it.
        (`id in (... union all ...)` is read once into a set by either database: at 1,000,000
        exchanges a quarter less work for SQLite than three `exists` probes per exchange.)"""
        clause, params = self._range(since, until)
        linked = ["select exchange_id from shadows",
                  "select exchange_id from scores where source = 'primary' and evaluator = 'agreement'"]
        if self.sql.has_table("feedback"):
            linked.append("select exchange_id from feedback")
        yield from self.sql.execute(f"select {', '.join(columns)} from exchanges where {clause} "
                                    f"and id in ({' union all '.join(linked)}) order by started_at, id", params)

    def exchange_timings(self, *, since: str | None, until: str | None) -> Iterator[tuple[float | None, float | None]]:
        """(latency_ms, ttft_ms) of every exchange in range, in no particular order."""
        clause, params = self._range(since, until)
        yield from self.sql.execute(f"select latency_ms, ttft_ms from exchanges where {clause}", params)

    def shadows(self, columns: Sequence[str], *, since: str | None, until: str | None) -> Iterator[dict]:
        """Every shadow row (skips included) of the exchanges in range, oldest first."""
        clause, params = self._range(since, until)
        yield from self.db.query(f"select {', '.join(columns)} from shadows where exchange_id in "
                                 f"(select id from exchanges where {clause}) order by started_at, exchange_id", params)

    def scores(self, evaluators: Sequence[str], *, since: str | None,
               until: str | None) -> Iterator[tuple[str, str, str, float, str | None, str | None]]:
        """(exchange, source, evaluator, value, label, details) of numeric scores in range."""
        clause, params = self._range(since, until)
        yield from self.db.execute(
            "select exchange_id, source, evaluator, value, label, details from scores "
            "where outcome = 'score' and value is not null "
            f"and exchange_id in (select id from exchanges where {clause}) "
            f"and evaluator in ({self.sql.list_values(':evaluators')})",
            {**params, "evaluators": orjson.dumps(list(evaluators)).decode()})

    def feedback(self, columns: Sequence[str], *, since: str | None, until: str | None) -> list[dict]:
        """Feedback on the exchanges in range (by the exchange's time, not the feedback's)."""
        if not self.sql.has_table("feedback"):
            return []
        clause, params = self._range(since, until)
        return list(self.db.query(f"select {', '.join(columns)} from feedback where exchange_id in "
                                  f"(select id from exchanges where {clause}) order by at, received_at, id", params))

    def source_scores_of_reviewed(self, source: str, *, since: str | None,
                                  until: str | None) -> Iterator[tuple[str, str, float]]:
        """(exchange, evaluator, value) of `source`'s numeric scores on exchanges in range with feedback."""
        clause, params = self._range(since, until)
        scope = f"select exchange_id from feedback where exchange_id in (select id from exchanges where {clause})"
        yield from self.db.execute(
            "select exchange_id, evaluator, value from scores where source = :source and outcome = 'score' "
            f"and value is not null and exchange_id in ({scope})", {**params, "source": source})
