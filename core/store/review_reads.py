"""ReviewReads: what the review UI shows — pages of exchanges chosen by filters, and one exchange
with everything recorded about it.

Read-only. A page is one indexed query with a LIMIT, never a load of the whole table, so it stays
quick over a million exchanges; the next page is asked for by offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.core.store.backend import SqlBackend, backend_of

# Columns a list row shows; the answers are cut to a preview in SQL, not in Python.
_LIST_COLUMNS = ("e.id", "e.started_at", "e.endpoint", "e.model", "e.task", "e.risk_tier", "e.status",
                 "e.latency_ms", "substr(e.response_text, 1, 160) as preview")
SORTS = {"newest": "e.started_at desc, e.id desc", "oldest": "e.started_at, e.id",
         "slowest": "e.latency_ms desc, e.id desc"}
SCORE_SORTS = {"score_low": "score_value, e.id", "score_high": "score_value desc, e.id"}


@dataclass(frozen=True)
class ReviewFilter:
    """What the exchange list can be narrowed by; every field is optional.

    `candidate` keeps exchanges a candidate answered (or, with `failed`, whose call to it erred or
    timed out); `evaluator` (with `source`, the primary or a candidate) adds that score to each row
    and `min_score`/`max_score` bound it; `disagreement` keeps exchanges where the candidate's
    agreement label is not `agree`.
    """

    candidate: str | None = None
    evaluator: str | None = None
    source: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    disagreement: bool = False
    failed: bool = False            # with `candidate`: its call erred or timed out
    outcome: str | None = None      # a feedback outcome; "none" for exchanges nobody reviewed
    tag: str | None = None          # "name=value"
    task: str | None = None
    risk_tier: str | None = None
    endpoint: str | None = None     # the dialect's endpoint name, e.g. chat.completions
    since: str | None = None
    until: str | None = None
    search: str | None = None       # words in the request or the primary's answer


@dataclass(frozen=True)
class ExchangePage:
    rows: list[dict]
    offset: int
    has_more: bool


class ReviewReads:
    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)

    def exchanges(self, chosen: ReviewFilter, *, sort: str = "newest", offset: int = 0,
                  limit: int = 50) -> ExchangePage:
        """One page of exchanges matching `chosen`, in `sort` order (SORTS, or SCORE_SORTS when an
        evaluator is chosen)."""
        clauses, params = self._clauses(chosen)
        columns = list(_LIST_COLUMNS)
        if chosen.evaluator:
            columns.append("s.value as score_value")
            columns.append("s.label as score_label")
            join = ("join scores s on s.exchange_id = e.id and s.evaluator = :evaluator and s.source = :source "
                    "and s.outcome = 'score'")
            params["evaluator"] = chosen.evaluator
            params["source"] = chosen.source or chosen.candidate or "primary"
            if chosen.min_score is not None:
                clauses.append("s.value >= :min_score")
                params["min_score"] = chosen.min_score
            if chosen.max_score is not None:
                clauses.append("s.value <= :max_score")
                params["max_score"] = chosen.max_score
        else:
            join = ""
        order = SCORE_SORTS.get(sort) if chosen.evaluator else None
        order = order or SORTS.get(sort) or SORTS["newest"]
        where = " and ".join(clauses) or "true"
        params["limit"], params["offset"] = limit + 1, max(offset, 0)
        rows = list(self.sql.query(f"select {', '.join(columns)} from exchanges e {join} where {where} "
                                   f"order by {order} limit :limit offset :offset", params))
        return ExchangePage(rows[:limit], max(offset, 0), len(rows) > limit)

    def _clauses(self, chosen: ReviewFilter) -> tuple[list[str], dict]:
        clauses: list[str] = []
        params: dict[str, object] = {}
        for column in ("task", "risk_tier", "endpoint"):
            value = getattr(chosen, column)
            if value:
                clauses.append(f"e.{column} = :{column}")
                params[column] = value
        if chosen.since:
            clauses.append("e.started_at >= :since")
            params["since"] = chosen.since
        if chosen.until:
            clauses.append("e.started_at < :until")
            params["until"] = chosen.until
        if chosen.tag:
            name, _, value = chosen.tag.partition("=")
            clauses.append(f"{self.sql.json_field('e.tags', ':tag_name')} = :tag_value")
            params["tag_name"], params["tag_value"] = name.strip(), value.strip()
        if chosen.search:
            clauses.append("(e.request_json like :search or e.response_text like :search)")
            params["search"] = f"%{chosen.search}%"
        if chosen.candidate:
            outcomes = "('error', 'timeout')" if chosen.failed else "('ok')"
            clauses.append("exists (select 1 from shadows sh where sh.exchange_id = e.id "
                           f"and sh.candidate = :candidate and sh.outcome in {outcomes})")
            params["candidate"] = chosen.candidate
        if chosen.disagreement:
            clauses.append("exists (select 1 from scores a where a.exchange_id = e.id and a.evaluator = 'agreement' "
                           "and a.outcome = 'score' and a.label <> 'agree'"
                           + (" and a.source = :candidate)" if chosen.candidate else " and a.source <> 'primary')"))
        if chosen.outcome == "none":
            clauses.append(self._unreviewed())
        elif chosen.outcome:
            clauses.append("exists (select 1 from feedback f where f.exchange_id = e.id and f.outcome = :outcome)"
                           if self.sql.has_table("feedback") else "false")
            params["outcome"] = chosen.outcome
        return clauses, params

    def _unreviewed(self) -> str:
        if not self.sql.has_table("feedback"):
            return "true"
        return "not exists (select 1 from feedback f where f.exchange_id = e.id)"

    def exchange(self, exchange_id: str) -> dict | None:
        """The exchange row, or None."""
        rows = list(self.sql.query("select * from exchanges where id = :id", {"id": exchange_id}))
        return rows[0] if rows else None

    def shadows(self, exchange_id: str) -> list[dict]:
        """Every shadow row of the exchange (answers, errors and skips), by candidate."""
        return list(self.sql.query("select * from shadows where exchange_id = :id order by candidate, id",
                                   {"id": exchange_id}))

    def scores(self, exchange_id: str) -> list[dict]:
        """Every score of every answer of the exchange, by source then evaluator."""
        return list(self.sql.query("select source, evaluator, evaluator_version, outcome, value, label, details, "
                                   "error from scores where exchange_id = :id order by source, evaluator",
                                   {"id": exchange_id}))

    def feedback(self, exchange_id: str) -> list[dict]:
        """Feedback on the exchange, oldest first."""
        if not self.sql.has_table("feedback"):
            return []
        return list(self.sql.query("select * from feedback where exchange_id = :id order by at, received_at, id",
                                   {"id": exchange_id}))

    def replay_results(self, exchange_id: str) -> list[dict]:
        """Replayed answers of the exchange with their run's target, newest run first."""
        if not self.sql.has_table("replay_results"):
            return []
        return list(self.sql.query(
            "select r.run_id, r.repetition, r.perturbation, r.outcome, r.response_text, r.passed, r.pass_value, "
            "r.error, r.latency_ms, runs.target, runs.pass_criterion from replay_results r "
            "join replay_runs runs on runs.id = r.run_id where r.exchange_id = :id "
            "order by runs.created_at desc, r.repetition, r.perturbation", {"id": exchange_id}))

    def reviewer_outcomes(self) -> list[dict]:
        """(exchange_id, reviewer, outcome) of every feedback row with a reviewer, for agreement."""
        if not self.sql.has_table("feedback"):
            return []
        return list(self.sql.query("select exchange_id, reviewer, outcome from feedback "
                                   "where reviewer is not null order by at, id"))
