"""The slices a candidate's figures are taken over (all traffic, each category, each time window),
each as a ReportInput narrowed to the slice, built in one pass over the candidate's rows.

`key_figures(data, candidate, ids)` filters every row of the candidate by `ids`, and reads the
twin noise floor over every exchange in `ids`. Called on the whole input once per category and
per window, that is a pass over all the candidate's rows and all the traffic per slice: at
1,000,000 exchanges, most of a report's time. A narrowed input holds only the slice's rows of the
candidate and of the twin, and `ids` only the slice's exchanges that a figure reads (those the
candidate has a row for, and those with a primary agreement score, the noise floor). Every figure
is the same as over the whole input: the rows a figure reads are the same, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from shadowtap.evaluators.report.source import TWIN, ReportInput

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Slice:
    """A narrowed input and the ids of its exchanges (an insertion-ordered dict used as a set),
    the two arguments `key_figures` takes besides the candidate."""

    data: ReportInput
    exchange_ids: dict[str, None]


@dataclass
class _Parts:
    rows: list[dict] = field(default_factory=list)
    ids: dict[str, None] = field(default_factory=dict)


def overall_slice(data: ReportInput, candidate: str) -> Slice:
    """All traffic: the candidate's rows, and the noise floor over every twin-scored exchange
    (even when the candidate has no row at all)."""
    parts = _Parts(rows=list(data.shadows.get(candidate, ())))
    parts.ids = dict.fromkeys(row["exchange_id"] for row in parts.rows)
    parts.ids.update(dict.fromkeys(data.twin_scored))
    return _narrowed(data, candidate, parts)


def slices_by(data: ReportInput, candidate: str, keys_of: Callable[[dict], Iterable[K]]) -> dict[K, Slice]:
    """The slices the candidate has a row in (skips included), keyed by `keys_of(exchange)`: an
    exchange is in every slice whose key it yields. A slice's noise floor is over every
    twin-scored exchange with that key, not only those the candidate has a row for."""
    keys: dict[str, list[K]] = {}

    def keys_of_id(exchange_id: str) -> list[K]:
        found = keys.get(exchange_id)
        if found is None:
            found = keys[exchange_id] = list(keys_of(data.exchanges[exchange_id]))
        return found

    slices: dict[K, _Parts] = {}
    for row in data.shadows.get(candidate, ()):
        exchange_id = row["exchange_id"]
        for key in keys_of_id(exchange_id):
            parts = slices.get(key)
            if parts is None:
                parts = slices[key] = _Parts()
            parts.rows.append(row)
            parts.ids[exchange_id] = None
    if not slices:
        return {}
    for exchange_id in data.twin_scored:
        for key in keys_of_id(exchange_id):
            if key in slices:
                slices[key].ids[exchange_id] = None
    return {key: _narrowed(data, candidate, parts) for key, parts in slices.items()}


def _narrowed(data: ReportInput, candidate: str, parts: _Parts) -> Slice:
    shadows = {candidate: parts.rows}
    if candidate != TWIN:  # the twin's rows of the slice: the latency baseline
        twins = data.twin_rows
        shadows[TWIN] = [row for exchange_id in parts.ids for row in twins.get(exchange_id, ())]
    narrowed = ReportInput(exchanges=data.exchanges, shadows=shadows, scores=data.scores)
    return Slice(narrowed, parts.ids)
