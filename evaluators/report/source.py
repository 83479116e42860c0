"""What a report needs from the store (its range reads, `ReportReads`), as plain records."""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from shadowtap.core.store.report_reads import ReportReads

# Evaluators the report reads; others are ignored.
REPORT_EVALUATORS = ("agreement", "faithfulness", "grounding", "freshness", "contract", "refusal")
TWIN = "primary_twin"
PRIMARY = "primary"

# Response texts are not read here: a report shows a few (reads.texts), and at 1,000,000 exchanges
# reading them all was a tenth of a report's time.
_TOKENS = "coalesce(total_tokens, prompt_tokens + completion_tokens)"  # total tokens, else prompt + completion
_EXCHANGE_COLUMNS = {"id": "id", "started_at": "started_at", "endpoint": "endpoint", "task": "task",
                     "risk_tier": "risk_tier", "tags": "tags", "latency_ms": "latency_ms", "ttft_ms": "ttft_ms",
                     "cost_usd": "cost_usd", "tokens": _TOKENS}
_SHADOW_COLUMNS = {"id": "id", "exchange_id": "exchange_id", "candidate": "candidate", "model": "model",
                   "outcome": "outcome", "skip_reason": "skip_reason", "latency_ms": "latency_ms", "ttft_ms": "ttft_ms",
                   "cost_usd": "cost_usd", "tokens": _TOKENS, "error_class": "error_class",
                   "error_message": "error_message"}

class ScoreValue(NamedTuple):
    # A tuple, not a dataclass: a report at 1,000,000 exchanges holds over a million of these.
    value: float
    label: str | None
    details: Mapping[str, Any]


_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})
new_score = tuple.__new__  # ScoreValue(...) without the Python-level __new__ a NamedTuple adds: a third faster


_NO_SCORES: Mapping[str, ScoreValue] = MappingProxyType({})


@dataclass
class ReportInput:
    """The exchanges in range (in no particular order) that a comparison can read, their shadow
    rows by candidate (oldest first), and their scores by (source, evaluator) and exchange; every
    exchange in range is counted in `exchange_count` and timed in `primary_latency` / `primary_ttft`.

    `exchanges` holds the exchanges with a shadow row, a primary agreement score or feedback: no
    figure reads any other (see ReportReads.linked_exchanges)."""

    exchanges: dict[str, dict] = field(default_factory=dict)
    shadows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))   # candidate -> rows
    # (source, evaluator) -> exchange -> score: a figure reads one evaluator's scores of one source
    # for every row of a candidate, and skips evaluators nobody ran.
    scores: dict[tuple[str, str], dict[str, ScoreValue]] = field(default_factory=dict)
    exchange_count: int = 0
    primary_latency: list[float] = field(default_factory=list)   # every exchange in range, unordered
    primary_ttft: list[float] = field(default_factory=list)

    def score(self, exchange_id: str, source: str, evaluator: str) -> ScoreValue | None:
        return self.scores_of(source, evaluator).get(exchange_id)

    def scores_of(self, source: str, evaluator: str) -> Mapping[str, ScoreValue]:
        """Exchange id -> `source`'s `evaluator` score (empty when there is none)."""
        return self.scores.get((source, evaluator), _NO_SCORES)

    @property
    def candidates(self) -> list[str]:
        return sorted(name for name in self.shadows if name != TWIN)

    @property
    def twin_scored(self) -> list[str]:
        """Exchanges with a primary agreement score: the twin noise floor's."""
        exchanges = self.exchanges
        return [exchange_id for exchange_id in self.scores_of(PRIMARY, "agreement") if exchange_id in exchanges]


def load_input(reads: ReportReads, *, since: str | None = None, until: str | None = None) -> ReportInput:
    """Everything the report reads for exchanges with since <= started_at < until."""
    # The scores and shadow rows are read beside the rest (on PostgreSQL, by the server at the same time).
    with reads.beside(lambda other: other.scores(REPORT_EVALUATORS, since=since, until=until,
                                                 details_of=("agreement",))) as scores_read, \
            reads.beside(lambda other: other.shadows(list(_SHADOW_COLUMNS.values()), since=since,
                                                     until=until)) as shadows_read:
        return _load_input(reads, scores_read, shadows_read, since=since, until=until)


def _load_input(reads: ReportReads, scores_read: Callable[[], list[tuple]], shadows_read: Callable[[], list[tuple]],
                *, since: str | None, until: str | None) -> ReportInput:
    data = ReportInput()
    timings = reads.exchange_timings(since=since, until=until)
    data.exchange_count = len(timings)
    data.primary_latency = [latency for latency, _ in timings if latency is not None]
    data.primary_ttft = [ttft for _, ttft in timings if ttft is not None]
    del timings
    # One string object per exchange id, and interned names (as the code's own "primary", "agreement"),
    # wherever they are read: the figures look scores up by exchange millions of times, and a key
    # that is the same object compares by identity.
    same: dict[str, str] = {}
    tags = _TagParser()
    exchanges = data.exchanges
    for values in reads.linked_exchanges(list(_EXCHANGE_COLUMNS.values()), since=since, until=until):
        row = dict(zip(_EXCHANGE_COLUMNS, values))
        exchange_id = same[row["id"]] = row["id"]  # ids are unique here
        row["tags"] = tags(row["tags"])
        moment = datetime.fromisoformat(row["started_at"])
        row["started_dt"] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # a naive time is UTC
        exchanges[exchange_id] = row
    names: dict[str, str] = {}
    for values in shadows_read():
        row = dict(zip(_SHADOW_COLUMNS, values))
        row["exchange_id"] = same.setdefault(row["exchange_id"], row["exchange_id"])
        candidate = names.get(row["candidate"])
        if candidate is None:
            candidate = names[row["candidate"]] = sys.intern(row["candidate"])
        row["candidate"] = candidate
        data.shadows[candidate].append(row)
    details_of = functools.lru_cache(maxsize=4096)(orjson.loads)  # agreement's details repeat a few shapes
    scores = data.scores
    for exchange_id, source, evaluator, value, label, details in scores_read():
        # Only agreement's details are read (method, baseline).
        by_exchange = scores.get((source, evaluator))
        if by_exchange is None:
            by_exchange = scores[sys.intern(source), sys.intern(evaluator)] = {}
        by_exchange[same.setdefault(exchange_id, exchange_id)] = new_score(
            ScoreValue, (float(value), label, details_of(details) if details else _NO_DETAILS))
    return data


def _parse_tags(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        tags = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return {str(key): str(value) for key, value in tags.items()} if isinstance(tags, dict) else {}


class _TagParser:
    """`_parse_tags`, once per distinct text: traffic repeats a few tag sets. The parsed dicts are
    shared between exchanges, so nothing may change them."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.seen: dict[str | None, dict[str, str]] = {}

    def __call__(self, text: str | None) -> dict[str, str]:
        found = self.seen.get(text)
        if found is None:
            found = _parse_tags(text)
            if len(self.seen) < self.LIMIT:
                self.seen[text] = found
        return found


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
    if not data.rows:  # the scores query below would still pass over every exchange in range
        return data
    for exchange_id, evaluator, value in reads.source_scores_of_reviewed(PRIMARY, since=since, until=until):
        data.primary_scores.setdefault(exchange_id, {})[evaluator] = float(value)
    return data
