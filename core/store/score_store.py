"""ScoreStore: the only SQL for offline scores, and for reading the answers they score.

An answer is an exchange's primary response or one of its shadow rows with outcome "ok". A score
is pending for evaluator E when its answer has no `scores` row for E at E's current version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import orjson

from shadowtap.core.errors import StoreError
from shadowtap.core.store.backend import SqlBackend, backend_of, upsert_sql
from shadowtap.core.store.errors import database_errors

SCORE_COLUMNS = ("id", "exchange_id", "source", "evaluator", "evaluator_version", "outcome", "value", "label",
                 "details", "error", "scored_at", "duration_ms")

_UPSERT = upsert_sql("scores", SCORE_COLUMNS)


@dataclass(frozen=True)
class PendingScore:
    """One score to compute: evaluator `evaluator` on answer `source` of exchange `exchange_id`."""

    exchange_id: str
    source: str
    evaluator: str


def score_id(exchange_id: str, source: str, evaluator: str) -> str:
    return f"{exchange_id}:{source}:{evaluator}"


class ScoreStore:
    """Reads answers to score and writes their scores, over a CaptureStore's database."""

    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    @property
    def claims_work(self) -> bool:
        """True when several eval workers may share this store, so each must claim a page before
        scoring it (`iter_claimed`); SQLite has one writer, and `iter_pending` is enough."""
        return self.sql.dialect == "postgresql"

    # -- answers ------------------------------------------------------------------------------

    def iter_exchange_ids(self, *, since: str | None = None, page_size: int = 200) -> Iterator[list[str]]:
        """Exchange ids, oldest first, a page at a time.

        Pages are keyed on (started_at, id), so rows written while iterating never shift them.
        """
        after: tuple[str, str] | None = None
        while True:
            clause = "true"
            params: dict[str, object] = {"size": page_size}
            if since:
                clause, params["since"] = "started_at >= :since", since
            if after:
                clause += " and (started_at, id) > (:after_t, :after_id)"
                params["after_t"], params["after_id"] = after
            page = self.sql.execute(
                f"select started_at, id from exchanges where {clause} order by started_at, id limit :size",
                params).fetchall()
            if not page:
                return
            after = tuple(page[-1])
            yield [row[1] for row in page]

    def iter_pending(self, versions: Mapping[str, str], *, since: str | None = None, source: str | None = None,
                     page_size: int = 200) -> Iterator[list[PendingScore]]:
        """Pending scores, oldest exchange first, one list per page of exchanges (empty pages skipped)."""
        for ids in self.iter_exchange_ids(since=since, page_size=page_size):
            rows = self._pending_of(ids, versions, source)
            if rows:
                yield rows

    def iter_claimed(self, versions: Mapping[str, str], *, since: str | None = None, source: str | None = None,
                     page_size: int = 200) -> Iterator[list[PendingScore]]:
        """Like `iter_pending`, for one of several workers sharing a PostgreSQL store: each page is
        claimed (its exchanges locked FOR UPDATE SKIP LOCKED, so other workers pass them by) and its
        pending work read again under that lock, so an answer another worker scored meanwhile is
        not scored twice. The page's transaction stays open while the caller scores it and writes
        the scores (`write` joins it); asking for the next page, or closing the iterator, commits."""
        for ids in self.iter_exchange_ids(since=since, page_size=page_size):
            with self.sql.transaction():
                locked = [row[0] for row in self.sql.execute(
                    f"select id from exchanges where id in ({self.sql.list_values(':ids')}) "
                    "order by id for update skip locked", {"ids": orjson.dumps(ids).decode()})]
                rows = self._pending_of(locked, versions, source) if locked else []
                if rows:
                    try:
                        yield rows
                    except GeneratorExit:  # the caller stopped early: keep what it wrote
                        return

    def _pending_of(self, ids: Sequence[str], versions: Mapping[str, str],
                    source: str | None) -> list[PendingScore]:
        scope = f"select id, started_at from exchanges where id in ({self.sql.list_values(':ids')})"
        sql, values = self._pending_sql(scope, versions, source)
        sql += " select exchange_id, source, evaluator from pending order by started_at, exchange_id, source, evaluator"
        rows = self.sql.execute(sql, {**values, "ids": orjson.dumps(list(ids)).decode()}).fetchall()
        return [PendingScore(*row) for row in rows]

    def count_pending(self, versions: Mapping[str, str], *, since: str | None = None, source: str | None = None,
                      limit: int | None = None) -> int:
        """How many scores a run would compute; `limit` counts only the first N exchanges with pending work."""
        scope = "select id, started_at from exchanges" + (" where started_at >= :since" if since else "")
        sql, values = self._pending_sql(scope, versions, source)
        if since:
            values["since"] = since
        if limit is None:
            return self.sql.execute(f"{sql} select count(*) from pending", values).fetchone()[0]
        values["limit"] = int(limit)
        return self.sql.execute(
            f"{sql} select count(*) from pending where exchange_id in (select exchange_id from pending "
            "group by exchange_id order by max(started_at), exchange_id limit :limit)", values).fetchone()[0]

    def _pending_sql(self, scope: str, versions: Mapping[str, str], source: str | None) -> tuple[str, dict]:
        values: dict = {"evaluators": orjson.dumps([[name, version] for name, version in versions.items()]).decode()}
        source_clause = ""
        if source is not None:
            source_clause, values["source"] = "and a.source = :source", source
        sql = f"""
            with scope as ({scope}),
            ev as ({self.sql.list_pairs(":evaluators", "name", "version")}),
            answers as (
                select id as exchange_id, 'primary' as source, started_at from scope
                union all
                select s.exchange_id, s.candidate, scope.started_at from shadows s
                join scope on scope.id = s.exchange_id where s.outcome = 'ok'
            ),
            pending as (
                select a.exchange_id, a.source, a.started_at, ev.name as evaluator from answers a, ev
                where not exists (select 1 from scores sc
                                  where sc.id = a.exchange_id || ':' || a.source || ':' || ev.name
                                  and sc.evaluator_version = ev.version) {source_clause}
            )"""
        return sql, values

    def exchanges(self, exchange_ids: Sequence[str]) -> list[dict]:
        """Full `exchanges` rows for these ids, oldest first."""
        return list(self.sql.query(
            f"select * from exchanges where id in ({self.sql.list_values(':ids')}) order by started_at, id",
            {"ids": orjson.dumps(list(exchange_ids)).decode()}))

    def answer_shadows(self, exchange_ids: Sequence[str]) -> list[dict]:
        """Shadow rows that hold an answer (outcome "ok") for these exchanges."""
        return list(self.sql.query(
            f"select * from shadows where outcome = 'ok' and exchange_id in ({self.sql.list_values(':ids')}) "
            "order by exchange_id, candidate", {"ids": orjson.dumps(list(exchange_ids)).decode()}))

    # -- scores -------------------------------------------------------------------------------

    def write(self, rows: Sequence[dict]) -> None:
        """Upsert a batch of score rows in one transaction: all land or none do."""
        if not rows:
            return
        try:
            with self.sql.transaction():
                # executemany: sqlite-utils' insert_all costs more than the scoring for cheap evaluators.
                self.sql.executemany(_UPSERT, [[row.get(column) for column in SCORE_COLUMNS] for row in rows])
        except database_errors() as exc:
            raise StoreError(f"cannot write {len(rows)} scores: {exc}") from None

    def scores(self, *, exchange_id: str | None = None, evaluator: str | None = None,
               source: str | None = None) -> list[dict]:
        """Score rows with `details` parsed, ordered by exchange, source and evaluator."""
        clauses: list[str] = []
        params: dict[str, object] = {}
        for column, value in (("exchange_id", exchange_id), ("evaluator", evaluator), ("source", source)):
            if value is not None:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        rows = self.sql.query(f"select * from scores where {' and '.join(clauses) or 'true'} "
                             "order by exchange_id, source, evaluator", params)
        return [{**row, "details": orjson.loads(row["details"]) if row["details"] else {}} for row in rows]

    def summary(self, *, versions: Mapping[str, str] | None = None, since: str | None = None,
                source: str | None = None) -> list[dict]:
        """Per evaluator and source: scored, mean, label counts, not applicable, errors.

        With `versions`, only those evaluators, and only rows at their current version, count.
        """
        clauses, params = ["true"], {}
        if versions is not None:
            clauses.append(f"(s.evaluator, s.evaluator_version) in ({self.sql.list_pairs(':versions', 'e', 'v')})")
            params["versions"] = orjson.dumps([[k, v] for k, v in versions.items()]).decode()
        if since:
            clauses.append("e.started_at >= :since")
            params["since"] = since
        if source is not None:
            clauses.append("s.source = :source")
            params["source"] = source
        where = " and ".join(clauses)
        base = f"from scores s join exchanges e on e.id = s.exchange_id where {where}"
        summary: dict[tuple[str, str], dict] = {}
        for row in self.sql.execute(
                "select s.evaluator, s.source, count(*) filter (where s.outcome = 'score'), "
                "avg(s.value) filter (where s.outcome = 'score'), "
                "count(*) filter (where s.outcome = 'not_applicable'), "
                f"count(*) filter (where s.outcome = 'error') {base} group by s.evaluator, s.source", params):
            summary[row[0], row[1]] = {"evaluator": row[0], "source": row[1], "scored": row[2], "mean": row[3],
                                       "labels": {}, "not_applicable": row[4], "errors": row[5]}
        for evaluator, answer_source, label, count in self.sql.execute(
                f"select s.evaluator, s.source, s.label, count(*) {base} and s.outcome = 'score' "
                "group by s.evaluator, s.source, s.label order by count(*) desc, coalesce(s.label, '')", params):
            summary[evaluator, answer_source]["labels"][label or ""] = count
        return sorted(summary.values(), key=lambda row: (row["evaluator"], source_order(row["source"])))


def source_order(source: str) -> tuple[int, str]:
    """Primary first, then its twin, then candidates by name."""
    return ({"primary": 0, "primary_twin": 1}.get(source, 2), source)

