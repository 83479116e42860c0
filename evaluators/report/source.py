"""What a report needs from the store (its range reads, `ReportReads`), as plain records."""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from collections.abc import Mapping
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

_EXCHANGE_COLUMNS = ("id", "started_at", "endpoint", "task", "risk_tier", "tags", "status", "latency_ms", "ttft_ms",
                     "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens", "response_text")
_SHADOW_COLUMNS = ("exchange_id", "candidate", "model", "is_twin", "outcome", "skip_reason", "started_at",
                   "latency_ms", "ttft_ms", "cost_usd", "prompt_tokens", "completion_tokens", "total_tokens",
                   "response_text", "error_class", "error_message")


class ScoreValue(NamedTuple):
    # A tuple, not a dataclass: a report at 1,000,000 exchanges holds over a million of these.
    value: float
    label: str | None
    details: Mapping[str, Any]


_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})
new_score = tuple.__new__  # ScoreValue(...) without the Python-level __new__ a NamedTuple adds: a third faster


@dataclass
class ReportInput:
    """The exchanges in range (oldest first) that a comparison can read, their shadow rows by
    candidate, and their scores; every exchange in range is counted in `exchange_count` and timed
    in `primary_latency` / `primary_ttft`.

    `exchanges` holds the exchanges with a shadow row, a primary agreement score or feedback: no
    figure reads any other (see ReportReads.linked_exchanges)."""

    exchanges: dict[str, dict] = field(default_factory=dict)
    shadows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))   # candidate -> rows
    scores: dict[tuple[str, str, str], ScoreValue] = field(default_factory=dict)      # (exchange, source, evaluator)
    exchange_count: int = 0
    primary_latency: list[float] = field(default_factory=list)   # every exchange in range, unordered
    primary_ttft: list[float] = field(default_factory=list)

    def score(self, exchange_id: str, source: str, evaluator: str) -> ScoreValue | None:
        return self.scores.get((exchange_id, source, evaluator))

    @property
    def candidates(self) -> list[str]:
        return sorted(name for name in self.shadows if name != TWIN)

    # Read once per report by every candidate's slices (evaluators/report/slices.py); the input is
    # not changed after load_input.
    @functools.cached_property
    def twin_scored(self) -> list[str]:
        """Exchanges (oldest first) with a primary agreement score: the twin noise floor's."""
        scores = self.scores
        return [exchange_id for exchange_id in self.exchanges if (exchange_id, PRIMARY, "agreement") in scores]

    @functools.cached_property
    def twin_rows(self) -> dict[str, list[dict]]:
        """The twin's shadow rows by exchange, each exchange's in stored order."""
        by_exchange: dict[str, list[dict]] = {}
        for row in self.shadows.get(TWIN, ()):
            by_exchange.setdefault(row["exchange_id"], []).append(row)
        return by_exchange


def load_input(reads: ReportReads, *, since: str | None = None, until: str | None = None) -> ReportInput:
    """Everything the report reads for exchanges with since <= started_at < until."""
    data = ReportInput()
    for latency, ttft in reads.exchange_timings(since=since, until=until):
        data.exchange_count += 1
        if latency is not None:
            data.primary_latency.append(latency)
        if ttft is not None:
            data.primary_ttft.append(ttft)
    # One string object per exchange id, and interned names (as the code's own "primary", "agreement"),
    # wherever they are read: the figures look scores up by (exchange, source, evaluator) millions of
    # times, and a key made of the same objects compares by identity.
    same: dict[str, str] = {}
    tags = _TagParser()
    for values in reads.linked_exchanges(_EXCHANGE_COLUMNS, since=since, until=until):
        row = dict(zip(_EXCHANGE_COLUMNS, values))
        row["id"] = same.setdefault(row["id"], row["id"])
        row["tags"] = tags(row["tags"])
        row["started_dt"] = parse_started_at(row["started_at"])
        data.exchanges[row["id"]] = row
    for row in reads.shadows(_SHADOW_COLUMNS, since=since, until=until):
        row["exchange_id"] = same.setdefault(row["exchange_id"], row["exchange_id"])
        row["candidate"] = sys.intern(row["candidate"])
        data.shadows[row["candidate"]].append(row)
    details_of = functools.lru_cache(maxsize=4096)(orjson.loads)  # agreement's details repeat a few shapes
    scores = data.scores
    for exchange_id, source, evaluator, value, label, details in reads.scores(REPORT_EVALUATORS, since=since,
                                                                               until=until):
        # Only agreement's details are read (method, baseline); skip parsing the rest.
        parsed = details_of(details) if details and evaluator == "agreement" else _NO_DETAILS
        key = (same.setdefault(exchange_id, exchange_id), sys.intern(source), sys.intern(evaluator))
        scores[key] = new_score(ScoreValue, (float(value), label, parsed))
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
    for exchange_id, evaluator, value in reads.source_scores_of_reviewed(PRIMARY, since=since, until=until):
        data.primary_scores.setdefault(exchange_id, {})[evaluator] = float(value)
    return data
