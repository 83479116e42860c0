"""ReportReads: the range reads a report needs, over exchanges, shadows, scores and feedback.

Read-only. Callers wrap them in `snapshot()` so every read sees the store at one moment while
the proxy keeps writing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import orjson

from shadowtap.core.store.backend import SqlBackend, backend_of
from shadowtap.core.store.capture_store import ExchangeFilter

REPORT_WORK_MEM = "64MB"  # PostgreSQL's memory per hash or sort, within a report's snapshot
T = TypeVar("T")


class ReportReads:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)
        # `execute` and `query` take the same SQL and parameters on either backend.
        self.db = getattr(self.sql, "db", self.sql)
        self.url: str | None = getattr(store_or_db, "url", None)  # a PostgreSQL store's, for a second connection
        self._exported: str | None = None   # the snapshot() PostgreSQL exported for a second connection

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
            # The reads hash a million exchange ids; at the default 4 MB the hashes spill to disk
            # in batches (at 1,000,000 exchanges, a third of the linked read's time).
            self.sql.execute(f"set local work_mem = '{REPORT_WORK_MEM}'")
            [(self._exported,)] = self.sql.execute("select pg_export_snapshot()").fetchall()
        else:
            self.sql.execute("begin")
        try:
            yield
        finally:
            self._exported = None
            self.sql.execute("commit")

    @contextlib.contextmanager
    def beside(self, read: Callable[[ReportReads], T]) -> Iterator[Callable[[], T]]:
        """Starts `read(reads)` and gives a function that waits for its result. On PostgreSQL, inside
        a snapshot, it runs in a thread over a second connection that sees the same snapshot
        (`set transaction snapshot`): the server works on it while this process reads and builds the
        rest (at 1,000,000 exchanges, the scores and shadow reads are 2.3 s of the server's time on
        top of the client's). Elsewhere `read` runs when its result is asked for."""
        if self._exported is None or self.url is None:
            yield lambda: read(self)
            return
        from shadowtap.core.store.postgres.sql import PostgresBackend, connect

        conn = connect(self.url)
        outcome: dict[str, object] = {}
        try:
            conn.execute("begin isolation level repeatable read read only")
            conn.execute(f"set transaction snapshot '{self._exported}'")  # an id PostgreSQL made: no quotes in it
            conn.execute(f"set local work_mem = '{REPORT_WORK_MEM}'")
            other = ReportReads(PostgresBackend(conn))

            def run() -> None:
                try:
                    outcome["result"] = read(other)
                except BaseException as error:  # raised in the caller's thread, by wait()
                    outcome["error"] = error

            thread = threading.Thread(target=run, name="report-read", daemon=True)
            thread.start()

            def wait() -> T:
                thread.join()
                if "error" in outcome:
                    raise outcome["error"]  # type: ignore[misc]
                return outcome["result"]  # type: ignore[return-value]

            try:
                yield wait
            finally:
                thread.join()
        finally:
            conn.close()

    def exchanges(self, columns: Sequence[str], *, since: str | None, until: str | None) -> Iterator[dict]:
        """Exchanges with since <= started_at < until, oldest first."""
        clause, params = self._range(since, until)
        yield from self.db.query(f"select {', '.join(columns)} from exchanges where {clause} "
                                 "order by started_at, id", params)

    def linked_exchanges(self, columns: Sequence[str], *, since: str | None,
                         until: str | None) -> list[tuple]:
        """`columns` (expressions over an exchange) of the exchanges in range that a comparison can
        read, in no particular order, as tuples: those with a shadow row, a primary agreement score
        (the twin noise floor) or feedback. At a sampled shadow share most traffic has none of
        these, and a report need only count it. (`id in (... union all ...)` is read once into a set
        by either database: at 1,000,000 exchanges a quarter less work for SQLite than three
        `exists` probes per exchange; sorting them by time cost SQLite a third more again, and
        nothing reads them in order.)"""
        clause, params = self._range(since, until)
        linked = ["select exchange_id from shadows",
                  "select exchange_id from scores where source = 'primary' and evaluator = 'agreement'"]
        if self.sql.has_table("feedback"):
            linked.append("select exchange_id from feedback")
        with self._hash_joins():
            return self.sql.execute(f"select {', '.join(columns)} from exchanges where {clause} "
                                    f"and id in ({' union all '.join(linked)})", params).fetchall()

    @contextlib.contextmanager
    def _hash_joins(self) -> Iterator[None]:
        """PostgreSQL guesses 200 distinct ids out of the `union all` and probes the exchanges'
        primary key once per linked exchange: at 1,000,000 exchanges 7 s, against under 3 s for
        one hash join over a scan. Within the transaction only (`set local`: a failed read rolls
        it back too); no effect on SQLite."""
        if self.sql.dialect != "postgresql":
            yield
            return
        [(was,)] = self.sql.execute("show enable_nestloop").fetchall()
        self.sql.execute("set local enable_nestloop = off")
        yield
        self.sql.execute(f"set local enable_nestloop = {'on' if was == 'on' else 'off'}")

    def exchange_timings(self, *, since: str | None, until: str | None) -> list[tuple[float | None, float | None]]:
        """(latency_ms, ttft_ms) of every exchange in range, in no particular order."""
        clause, params = self._range(since, until)
        return self.sql.execute(f"select latency_ms, ttft_ms from exchanges where {clause}", params).fetchall()

    def shadows(self, columns: Sequence[str], *, since: str | None, until: str | None) -> list[tuple]:
        """`columns` (expressions over a shadow row) of every shadow row (skips included) of the
        exchanges in range, oldest first, as tuples. (A join with the range, not `exchange_id in
        (...)`: SQLite would build a set of every exchange id in range first, at 1,000,000 exchanges
        40% of the read.)"""
        clause, params = self._range(since, until)
        return self.sql.execute(
            f"select {', '.join(columns)} from shadows "
            f"join (select id as range_id from exchanges where {clause}) in_range on range_id = exchange_id "
            "order by started_at, exchange_id", params).fetchall()

    def scores(self, evaluators: Sequence[str], *, since: str | None, until: str | None,
               details_of: Sequence[str] = ()) -> list[tuple[str, str, str, float, str | None, str | None]]:
        """(exchange, source, evaluator, value, label, details) of numeric scores in range, in no
        particular order; details only of the evaluators in `details_of` (else None: at a million
        scores, reading every details text is a fifth of the read)."""
        clause, params = self._range(since, until)
        evaluator_list, details_list = self.sql.list_values(":evaluators"), self.sql.list_values(":details_of")
        return self.sql.execute(
            f"select s.exchange_id, s.source, s.evaluator, s.value, s.label, "
            f"case when s.evaluator in ({details_list}) then s.details end from scores s "
            f"join (select id from exchanges where {clause}) e on e.id = s.exchange_id "
            f"where s.outcome = 'score' and s.value is not null and s.evaluator in ({evaluator_list})",
            {**params, "evaluators": orjson.dumps(list(evaluators)).decode(),
             "details_of": orjson.dumps(list(details_of)).decode()}).fetchall()

    def texts(self, table: str, ids: Sequence[str]) -> dict[str, str | None]:
        """id -> response_text of these rows of `table` (exchanges or shadows): a report shows a few."""
        if table not in ("exchanges", "shadows"):
            raise ValueError(f"texts of {table!r}: expected exchanges or shadows")
        found = self.sql.execute(f"select id, response_text from {table} where id in ({self.sql.list_values(':ids')})",
                                 {"ids": orjson.dumps(list(ids)).decode()})
        return dict(found.fetchall())

    def feedback(self, columns: Sequence[str], *, since: str | None, until: str | None) -> list[dict]:
        """Feedback on the exchanges in range (by the exchange's time, not the feedback's)."""
        if not self.sql.has_table("feedback"):
            return []
        clause, params = self._range(since, until)
        # A join with the range: `exchange_id in (select ...)` has SQLite read every id in range
        # first, even when there is no feedback at all.
        return list(self.db.query(f"select {', '.join(f'f.{column}' for column in columns)} from feedback f "
                                  f"join (select id from exchanges where {clause}) e on e.id = f.exchange_id "
                                  "order by f.at, f.received_at, f.id", params))

    def source_scores_of_reviewed(self, source: str, *, since: str | None,
                                  until: str | None) -> Iterator[tuple[str, str, float]]:
        """(exchange, evaluator, value) of `source`'s numeric scores on exchanges in range with feedback."""
        clause, params = self._range(since, until)
        scope = f"select exchange_id from feedback where exchange_id in (select id from exchanges where {clause})"
        yield from self.db.execute(
            "select exchange_id, evaluator, value from scores where source = :source and outcome = 'score' "
            f"and value is not null and exchange_id in ({scope})", {**params, "source": source})
