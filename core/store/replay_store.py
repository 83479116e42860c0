"""ReplayStore: the only SQL for replay runs, their results, and choosing exchanges to replay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from shadowtap.core.errors import StoreError
from shadowtap.core.store.backend import SqlBackend, backend_of, upsert_sql
from shadowtap.core.store.errors import database_errors

RESULT_COLUMNS = ("id", "run_id", "exchange_id", "repetition", "perturbation", "outcome", "started_at", "latency_ms",
                  "response_text", "response_tool_calls", "finish_reason", "prompt_tokens", "completion_tokens",
                  "total_tokens", "cost_usd", "error", "passed", "pass_value", "diff")
_INSERT_RESULT = upsert_sql("replay_results", RESULT_COLUMNS)

# Outcome flags an exchange can be selected on: column -> SQL that is true when the flag is set.
FLAG_COLUMNS = {
    "client_disconnected": "client_disconnected = 1",
    "stream_incomplete": "stream_incomplete = 1",
    "request_unparseable": "request_unparseable = 1",
    "response_unparseable": "response_unparseable = 1",
    "capture_truncated": "capture_truncated = 1",
    "upstream_error": "upstream_error is not null",
}
COMPARISONS = ("<=", ">=", "!=", "<", ">", "=")
# A result row with this repetition records a paraphrase-writer call, not a replay of the exchange.
PARAPHRASE_WRITER_REPETITION = -1


@dataclass(frozen=True)
class ScoreCondition:
    """`evaluator op value`, tested against the primary's latest score from that evaluator."""

    evaluator: str
    op: str
    value: float


@dataclass(frozen=True)
class ExchangeQuery:
    """Filters on captured exchanges; every field is optional and they all must hold."""

    ids: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    endpoint: str | None = None
    model: str | None = None
    status: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    scores: tuple[ScoreCondition, ...] = field(default=())

    def where(self, sql: SqlBackend | None = None) -> tuple[str, dict]:
        """A WHERE clause (":name" parameters) and its values, in `sql`'s dialect (SQLite's by default)."""
        clauses: list[str] = []
        params: dict[str, object] = {}
        if self.ids:
            clauses.append(f"id in ({sql.list_values(':ids') if sql else 'select value from json_each(:ids)'})")
            params["ids"] = orjson.dumps(list(self.ids)).decode()
        for column, op, value in (("started_at", ">=", self.since), ("started_at", "<", self.until),
                                  ("endpoint", "=", self.endpoint), ("model", "=", self.model),
                                  ("status", "=", self.status)):
            if value is not None:
                name = f"p_{column}_{len(params)}"
                clauses.append(f"{column} {op} :{name}")
                params[name] = value
        for index, (tag, value) in enumerate(self.tags):
            field = (sql.json_field("tags", f":tag_name{index}") if sql
                     else f"json_extract(tags, '$.' || :tag_name{index})")
            clauses.append(f"{field} = :tag_value{index}")
            params[f"tag_name{index}"], params[f"tag_value{index}"] = tag, value
        for flag in self.flags:
            clauses.append(FLAG_COLUMNS[flag])
        for index, condition in enumerate(self.scores):
            if condition.op not in COMPARISONS:
                raise ValueError(f"comparison {condition.op!r}: expected one of {', '.join(COMPARISONS)}")
            clauses.append(f"exists (select 1 from scores s where s.exchange_id = exchanges.id and s.source = 'primary'"
                           f" and s.evaluator = :score_ev{index} and s.outcome = 'score'"
                           f" and s.value {condition.op} :score_value{index})")
            params[f"score_ev{index}"], params[f"score_value{index}"] = condition.evaluator, condition.value
        return (" and ".join(clauses) or "true"), params


class ReplayStore:
    """Reads exchanges to replay and writes replay runs and results, over a CaptureStore's database."""

    def __init__(self, store_or_db: object) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)
        # `execute` and `query` take the same SQL and parameters on either backend.
        self.db = getattr(self.sql, "db", self.sql)

    # -- exchanges ----------------------------------------------------------------------------

    def select_exchanges(self, query: ExchangeQuery) -> list[dict]:
        """id, started_at, endpoint, model, token counts and cost of matching exchanges, oldest first."""
        clause, params = query.where(self.sql)
        return list(self.db.query(
            "select id, started_at, endpoint, model, prompt_tokens, completion_tokens, cost_usd from exchanges "
            f"where {clause} order by started_at, id", params))

    def exchanges(self, exchange_ids: Sequence[str]) -> list[dict]:
        """Full rows for these ids, in the order given (ids the store lacks are left out)."""
        rows = {row["id"]: row for row in self.db.query(
            f"select * from exchanges where id in ({self.sql.list_values(':ids')})",
            {"ids": orjson.dumps(list(exchange_ids)).decode()})}
        return [rows[exchange_id] for exchange_id in exchange_ids if exchange_id in rows]

    # -- runs ---------------------------------------------------------------------------------

    def create_run(self, row: dict) -> None:
        columns = list(row)
        self._write(lambda: self.sql.execute(
            f"insert into replay_runs ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
            [row[column] for column in columns]), "create replay run")

    def get_run(self, run_id: str) -> dict | None:
        rows = list(self.db.query("select * from replay_runs where id = ?", [run_id]))
        if not rows:  # a unique prefix is enough, as for exchanges
            rows = list(self.db.query("select * from replay_runs where id like ? limit 2", [run_id + "%"]))
            if len(rows) != 1:
                return None
        row = rows[0]
        for column in ("selection", "target", "config"):
            row[column] = orjson.loads(row[column]) if row[column] else {}
        return row

    def finish_run(self, run_id: str, status: str, finished_at: str | None) -> None:
        self._write(lambda: self.db.execute("update replay_runs set status = ?, finished_at = ? where id = ?",
                                            [status, finished_at, run_id]), "update replay run")

    # -- results ------------------------------------------------------------------------------

    def done_result_ids(self, run_id: str) -> set[str]:
        return {row[0] for row in self.db.execute("select id from replay_results where run_id = ?", [run_id])}

    def spent_usd(self, run_id: str) -> float:
        return self.db.execute("select coalesce(sum(cost_usd), 0) from replay_results where run_id = ?",
                               [run_id]).fetchone()[0]

    def write_results(self, rows: Sequence[dict]) -> None:
        """Insert a batch in one transaction: all land or none do."""
        if rows:
            self._write(lambda: self.sql.executemany(
                _INSERT_RESULT, [[row.get(column) for column in RESULT_COLUMNS] for row in rows]),
                f"write {len(rows)} replay results")

    def results(self, run_id: str) -> list[dict]:
        """Every replayed result of the run, `diff` and `response_tool_calls` parsed, by exchange then
        repetition (the rows that record a paraphrase being written are left to `paraphrase_rows`)."""
        rows = self.db.query("select * from replay_results where run_id = ? and repetition >= 0 "
                             "order by exchange_id, coalesce(perturbation, ''), repetition", [run_id])
        return [{**row, "diff": orjson.loads(row["diff"]) if row["diff"] else None,
                 "response_tool_calls": orjson.loads(row["response_tool_calls"]) if row["response_tool_calls"]
                 else None} for row in rows]

    def call_outcomes(self, run_id: str) -> list[tuple[str, str | None]]:
        """(outcome, error) of every model call the run stored: replays and paraphrase writing, not skips."""
        return [(row[0], row[1]) for row in self.db.execute(
            "select outcome, error from replay_results where run_id = ? and outcome != 'skipped'", [run_id])]

    def forget_failed(self, run_id: str) -> int:
        """Delete the run's failed calls (error or timeout), and the repetitions skipped because their
        paraphrase could not be written, so resuming the run makes them again. Returns rows deleted."""
        failed = "('error', 'timeout')"
        where = (f"where run_id = :run and (outcome in {failed} or (outcome = 'skipped' and repetition >= 0 "
                 "and perturbation is not null and exists (select 1 from replay_results w where w.run_id = :run "
                 "and w.exchange_id = replay_results.exchange_id and w.perturbation = replay_results.perturbation "
                 f"and w.repetition = {PARAPHRASE_WRITER_REPETITION} and w.outcome in {failed})))")
        count = self.db.execute(f"select count(*) from replay_results {where}", {"run": run_id}).fetchone()[0]
        if count:
            self._write(lambda: self.db.execute(f"delete from replay_results {where}", {"run": run_id}),
                        "forget failed replay results")
        return count

    def paraphrase_rows(self, run_id: str) -> list[dict]:
        """The run's paraphrase-writer calls (repetition PARAPHRASE_WRITER_REPETITION): the text each wrote
        is its `response_text`, its perturbation names the paraphrase."""
        return list(self.db.query("select * from replay_results where run_id = ? and repetition = ? "
                                  "order by exchange_id, perturbation", [run_id, PARAPHRASE_WRITER_REPETITION]))

    def _write(self, action, what: str) -> None:
        try:
            with self.sql.transaction():
                action()
        except database_errors() as exc:
            raise StoreError(f"cannot {what}: {exc}") from None
