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
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
        yield from self.db.query(f"select {', '.join(columns)} from exchanges where {clause} "
                                 "order by started_at, id", params)

    def shadows(self, columns: Sequence[str], *, since: str | None, until: str | None) -> Iterator[dict]:
        """Every shadow row (skips included) of the exchanges in range, oldest first."""
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
        yield from self.db.query(f"select {', '.join(columns)} from shadows where exchange_id in "
                                 f"(select id from exchanges where {clause}) order by started_at, exchange_id", params)

    def scores(self, evaluators: Sequence[str], *, since: str | None,
               until: str | None) -> Iterator[tuple[str, str, str, float, str | None, str | None]]:
        """(exchange, source, evaluator, value, label, details) of numeric scores in range."""
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
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
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
        return list(self.db.query(f"select {', '.join(columns)} from feedback where exchange_id in "
                                  f"(select id from exchanges where {clause}) order by at, received_at, id", params))

    def source_scores_of_reviewed(self, source: str, *, since: str | None,
                                  until: str | None) -> Iterator[tuple[str, str, float]]:
        """(exchange, evaluator, value) of `source`'s numeric scores on exchanges in range with feedback."""
        clause, params = ExchangeFilter(since=since, until=until).where(self.sql)
        scope = f"select exchange_id from feedback where exchange_id in (select id from exchanges where {clause})"
        yield from self.db.execute(
            "select exchange_id, evaluator, value from scores where source = :source and outcome = 'score' "
            f"and value is not null and exchange_id in ({scope})", {**params, "source": source})
