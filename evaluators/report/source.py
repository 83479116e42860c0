"""Reads what a report needs from the capture store, in three read-only queries, into plain records.

The store classes have no range query for every shadow row (skips included) or for scores
joined to a time range, so this module holds the report's read SQL; it never writes.
"""

from __future__ import annotations

import contextlib

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from shadowtap.proxy.store.capture_store import ExchangeFilter

# Evaluators the report reads; others are ignored.
REPORT_EVALUATORS = ("agreement", "faithfulness", "grounding", "freshness", "contract", "refusal")
TWIN = "primary_twin"
PRIMARY = "primary"

_EXCHANGE_COLUMNS = ("id", "started_at", "endpoint", "task", "risk_tier", "tags", "status", "latency_ms", "ttft_ms",
                     "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens", "response_text")
_SHADOW_COLUMNS = ("exchange_id", "candidate", "model", "is_twin", "outcome", "skip_reason", "started_at",
                   "latency_ms", "ttft_ms", "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens",
                   "response_text")


@dataclass(frozen=True)
class ScoreValue:
    value: float
    label: str | None
    details: dict[str, Any]


@dataclass
class ReportInput:
    """Exchanges in range (oldest first), their shadow rows by candidate, and their scores."""

    exchanges: dict[str, dict] = field(default_factory=dict)
    shadows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))   # candidate -> rows
    scores: dict[tuple[str, str, str], ScoreValue] = field(default_factory=dict)      # (exchange, source, evaluator)

    def score(self, exchange_id: str, source: str, evaluator: str) -> ScoreValue | None:
        return self.scores.get((exchange_id, source, evaluator))

    @property
    def candidates(self) -> list[str]:
        return sorted(name for name in self.shadows if name != TWIN)


@contextlib.contextmanager
def one_snapshot(db) -> Iterator[None]:
    """Every read inside sees the store at one moment. The proxy keeps writing while a report runs;
    without this, a score or shadow committed between two reads would point at an exchange the
    first read never saw. The transaction is only as long as the reads (seconds, not the render)."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("begin")
    try:
        yield
    finally:
        db.conn.execute("commit")


def load_input(db, *, since: str | None = None, until: str | None = None) -> ReportInput:
    """Everything the report reads for exchanges with since <= started_at < until."""
    clause, params = ExchangeFilter(since=since, until=until).where()
    data = ReportInput()
    for row in db.query(f"select {', '.join(_EXCHANGE_COLUMNS)} from exchanges where {clause} "
                        "order by started_at, id", params):
        row["tags"] = _parse_tags(row["tags"])
        row["started_dt"] = parse_started_at(row["started_at"])
        data.exchanges[row["id"]] = row
    scope = f"select id from exchanges where {clause}"
    for row in db.query(f"select {', '.join(_SHADOW_COLUMNS)} from shadows where exchange_id in ({scope}) "
                        "order by started_at, exchange_id", params):
        data.shadows[row["candidate"]].append(row)
    evaluators = orjson.dumps(list(REPORT_EVALUATORS)).decode()
    for exchange_id, source, evaluator, value, label, details in db.execute(
            "select exchange_id, source, evaluator, value, label, details from scores "
            f"where outcome = 'score' and value is not null and exchange_id in ({scope}) "
            "and evaluator in (select value from json_each(:evaluators))", {**params, "evaluators": evaluators}):
        # Only agreement's details are read (method, baseline); skip parsing the rest.
        parsed = orjson.loads(details) if details and evaluator == "agreement" else {}
        data.scores[exchange_id, source, evaluator] = ScoreValue(float(value), label, parsed)
    return data


def parse_started_at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_tags(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        tags = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return {str(key): str(value) for key, value in tags.items()} if isinstance(tags, dict) else {}


def categories_of(exchange: dict) -> list[tuple[str, str]]:
    """(dimension, value) pairs an exchange belongs to; unset task or risk tier is no category."""
    pairs = [(dimension, str(exchange[dimension])) for dimension in ("endpoint", "task", "risk_tier")
             if exchange.get(dimension) not in (None, "")]
    pairs.extend((f"tag:{name}", value) for name, value in sorted(exchange["tags"].items()))
    return pairs


_FEEDBACK_COLUMNS = ("id", "exchange_id", "outcome", "edit_minutes", "edit_ratio", "reviewer", "label", "at",
                     "received_at")


@dataclass
class FeedbackInput:
    """Feedback rows on the exchanges in range, and the primary's scores (every evaluator) on those exchanges."""

    rows: list[dict] = field(default_factory=list)
    primary_scores: dict[str, dict[str, float]] = field(default_factory=dict)   # exchange -> evaluator -> value


def load_feedback(db, *, since: str | None = None, until: str | None = None) -> FeedbackInput:
    """Outcome feedback for exchanges with since <= started_at < until (by the exchange's time, not the feedback's)."""
    data = FeedbackInput()
    if not db["feedback"].exists():
        return data
    clause, params = ExchangeFilter(since=since, until=until).where()
    scope = f"select exchange_id from feedback where exchange_id in (select id from exchanges where {clause})"
    data.rows = list(db.query(f"select {', '.join(_FEEDBACK_COLUMNS)} from feedback where exchange_id in ({scope}) "
                              "order by at, received_at, id", params))
    for exchange_id, evaluator, value in db.execute(
            "select exchange_id, evaluator, value from scores where source = :primary and outcome = 'score' "
            f"and value is not null and exchange_id in ({scope})", {**params, "primary": PRIMARY}):
        data.primary_scores.setdefault(exchange_id, {})[evaluator] = float(value)
    return data
