"""Which feedback counts when an exchange has several rows (reviewers, re-reviews), and what it says.

The per-exchange rule, applied to the exchange's feedback rows:

1. Each reviewer's latest row counts (latest `at`, ties broken by `received_at`, then id): a
   re-review replaces the reviewer's earlier verdict. Rows without a reviewer (reported by the
   app) count together as one more source, "the app". Rows with an unknown outcome are ignored.
2. The exchange's outcome is the most severe of the counted rows:
   policy_violation > rejected > escalated > edited > accepted.
3. It was heavily corrected if any counted row's edit took more than [outcomes]
   heavy_correction_minutes, or had an edit ratio above heavy_correction_ratio.
4. Its edit minutes (and edit ratio) are the mean over the counted rows that give one; an
   `accepted` row without one counts as 0 (accepted as it was), an `edited` row without one is
   unknown and left out.
5. Its label is the latest counted row's non-empty label.
6. For reviewer agreement only named reviewers' counted rows are used: the app is not a reviewer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import fmean

from shadowtap.core.config import OutcomesConfig

SEVERITY = ("accepted", "edited", "escalated", "rejected", "policy_violation")   # least to most severe
COMPLETED = frozenset({"accepted", "edited"})
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ExchangeOutcome:
    exchange_id: str
    outcome: str                        # one of SEVERITY
    heavy_correction: bool
    edit_minutes: float | None
    edit_ratio: float | None
    label: str | None
    verdicts: dict[str, str]            # named reviewer -> the outcome of their latest row

    @property
    def completed(self) -> bool:
        return self.outcome in COMPLETED

    @property
    def needed_correction(self) -> bool:
        """The bad outcome evaluators are judged on: not completed (escalated, rejected, policy
        violation), or completed only after a heavy correction."""
        return not self.completed or self.heavy_correction


def resolve_outcomes(rows: Iterable[Mapping], config: OutcomesConfig) -> dict[str, ExchangeOutcome]:
    """Feedback rows (any order, any exchanges) -> one outcome per exchange that has a usable row."""
    by_exchange: dict[str, list[Mapping]] = defaultdict(list)
    for row in rows:
        if row["outcome"] in SEVERITY:
            by_exchange[row["exchange_id"]].append(row)
    return {exchange_id: resolve_exchange(exchange_id, found, config) for exchange_id, found in by_exchange.items()}


def resolve_exchange(exchange_id: str, rows: Sequence[Mapping], config: OutcomesConfig) -> ExchangeOutcome:
    counted = latest_per_reviewer(rows)
    labels = [row["label"] for row in counted if row.get("label")]
    return ExchangeOutcome(
        exchange_id=exchange_id,
        outcome=max((row["outcome"] for row in counted), key=SEVERITY.index),
        heavy_correction=any(_is_heavy(row, config) for row in counted),
        edit_minutes=_mean_effort(counted, "edit_minutes"),
        edit_ratio=_mean_effort(counted, "edit_ratio"),
        label=labels[-1] if labels else None,
        verdicts={row["reviewer"]: row["outcome"] for row in counted if row.get("reviewer")},
    )


def latest_per_reviewer(rows: Sequence[Mapping]) -> list[Mapping]:
    """Each reviewer's latest row (the app's rows, reviewer None, as one reviewer), oldest first."""
    latest: dict[str | None, Mapping] = {}
    for row in sorted(rows, key=_order):
        latest[row.get("reviewer") or None] = row
    return sorted(latest.values(), key=_order)


def _order(row: Mapping) -> tuple:
    return (_moment(row.get("at")), _moment(row.get("received_at")), str(row.get("id") or ""))


def _moment(text: str | None) -> datetime:
    """An ISO 8601 time; a naive one is UTC, an unreadable or missing one sorts first."""
    try:
        moment = datetime.fromisoformat(text) if text else _EARLIEST
    except ValueError:
        return _EARLIEST
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_heavy(row: Mapping, config: OutcomesConfig) -> bool:
    minutes, ratio = row.get("edit_minutes"), row.get("edit_ratio")
    return ((minutes is not None and minutes > config.heavy_correction_minutes)
            or (ratio is not None and ratio > config.heavy_correction_ratio))


def _mean_effort(rows: Sequence[Mapping], column: str) -> float | None:
    values = [float(row[column]) if row.get(column) is not None else 0.0
              for row in rows if row.get(column) is not None or row["outcome"] == "accepted"]
    return fmean(values) if values else None
