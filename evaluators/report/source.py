"""What a report needs from the store (its range reads, `ReportReads`), as plain records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shadowtap.core.store.report_reads import ReportReads

# Evaluators the report reads; others are ignored.
REPORT_EVALUATORS = ("agreement", "faithfulness", "grounding", "freshness", "contract", "refusal")
TWIN = "primary_twin"
PRIMARY = "primary"

_EXCHANGE_COLUMNS = ("id", "started_at", "endpoint", "task", "risk_tier", "tags", "status", "latency_ms", "ttft_ms",
                     "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens", "response_text")
_SHADOW_COLUMNS = ("exchange_id", "candidate", "model", "is_twin", "outcome", "skip_reason", "started_at",
                   "latency_ms", "ttft_ms", "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens",
                   "response_text", "error_class", "error_message")


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


def load_input(reads: ReportReads, *, since: str | None = None, until: str | None = None) -> ReportInput:
    """Everything the report reads for exchanges with since <= started_at < until."""
    data = ReportInput()
    for row in reads.exchanges(_EXCHANGE_COLUMNS, since=since, until=until):
        row["tags"] = _parse_tags(row["tags"])
        row["started_dt"] = parse_started_at(row["started_at"])
        data.exchanges[row["id"]] = row
    for row in reads.shadows(_SHADOW_COLUMNS, since=since, until=until):
        data.shadows[row["candidate"]].append(row)
    for exchange_id, source, evaluator, value, label, details in reads.scores(REPORT_EVALUATORS, since=since,
                                                                               until=until):
        # Only agreement's details are read (method, baseline); skip parsing the rest.
        parsed = orjson.loads(details) if details and evaluator == "agreement" else {}
        data.scores[exchange_id, source, evaluator] = ScoreValue(float(value), label, parsed)
    return data


def parse_started_at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


def load_feedback(reads: ReportReads, *, since: str | None = None, until: str | None = None) -> FeedbackInput:
    """Outcome feedback for exchanges with since <= started_at < until (by the exchange's time, not the feedback's)."""
    data = FeedbackInput(rows=reads.feedback(_FEEDBACK_COLUMNS, since=since, until=until))
    for exchange_id, evaluator, value in reads.source_scores_of_reviewed(PRIMARY, since=since, until=until):
        data.primary_scores.setdefault(exchange_id, {})[evaluator] = float(value)
    return data
