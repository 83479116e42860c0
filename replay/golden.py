"""Golden sets from production: build versions from captured exchanges, move them between stores,
and run a target against one to decide, for CI, whether it still gives the reference answers.

A run is a replay run over the set's snapshots instead of the store's exchanges: the target is
asked each item's request k times, and each answer is judged by the set's pass criterion against
the item's reference answer (agreement compares with the reference; any other evaluator scores
the answer on its own). An item passes when every one of its k answers passes; the run passes when
the share of items that pass is at least the set's minimum. A call that fails leaves its item
unjudged, and a run with unjudged items does not pass: it did not measure what it was asked to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from shadowtap.core.errors import SelectionError
from shadowtap.core.store.golden_store import GoldenItem, GoldenStore, tool_calls_json
from shadowtap.core.timefmt import stored_time

EXPORT_FORMAT = "shadowtap-golden-set"
EXPORT_VERSION = 1
DEFAULT_MIN_PASS_RATE = 1.0


def items_from_exchanges(exchanges: Sequence[dict], *, reference_text: str | None = None,
                         reviewer: str | None = None) -> list[GoldenItem]:
    """Snapshots of captured exchanges, the primary's answer as the reference unless a reviewer
    gives their own (one exchange only)."""
    if reference_text is not None and len(exchanges) != 1:
        raise SelectionError(f"a reference text is for one exchange; {len(exchanges)} were selected")
    items = []
    for exchange in exchanges:
        if not exchange.get("request_json"):
            raise SelectionError(f"exchange {exchange['id']} has no JSON request to replay; it cannot be golden")
        reviewed = reference_text is not None
        items.append(GoldenItem(
            exchange_id=exchange["id"], endpoint=exchange.get("endpoint"), path=exchange.get("path"),
            request_json=exchange["request_json"],
            reference_text=reference_text if reviewed else exchange.get("response_text"),
            reference_tool_calls=None if reviewed else tool_calls_json(exchange.get("response_tool_calls")),
            reference_source=f"review:{reviewer or 'unnamed'}" if reviewed else "primary",
            shadowtap_metadata=exchange.get("shadowtap_metadata")))
    return items


def add_items(golden: GoldenStore, name: str, items: Sequence[GoldenItem], *, description: str | None = None,
              pass_criterion: str | None = None, min_pass_rate: float | None = None,
              created_by: str | None = None) -> dict:
    """A new version: the latest version's items with these added (an item for the same exchange
    is replaced), its description and criterion kept unless given."""
    previous = golden.get(name)
    kept = {item.exchange_id: item for item in golden.items(previous["id"])} if previous else {}
    kept.update({item.exchange_id: item for item in items})
    return golden.write_version(
        name, sorted(kept.values(), key=lambda item: item.exchange_id),
        description=description if description is not None else (previous or {}).get("description"),
        pass_criterion=pass_criterion or (previous or {}).get("pass_criterion") or "agreement>=0.8",
        min_pass_rate=min_pass_rate if min_pass_rate is not None else
        (previous or {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE), created_by=created_by)


def remove_items(golden: GoldenStore, name: str, exchange_ids: Sequence[str]) -> dict:
    previous = golden.get(name)
    if previous is None:
        raise SelectionError(f"no golden set {name!r}")
    items = [item for item in golden.items(previous["id"]) if item.exchange_id not in set(exchange_ids)]
    return golden.write_version(name, items, description=previous["description"],
                                pass_criterion=previous["pass_criterion"], min_pass_rate=previous["min_pass_rate"])


def export_set(golden: GoldenStore, name: str, version: int | None = None) -> dict:
    row = golden.get(name, version)
    if row is None:
        raise SelectionError(f"no golden set {name!r}" + (f" version {version}" if version else ""))
    return {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
            "set": {key: row[key] for key in ("name", "version", "description", "pass_criterion", "min_pass_rate")},
            "items": [item.to_json() for item in golden.items(row["id"])]}


def import_set(golden: GoldenStore, data: object, *, name: str | None = None) -> dict:
    """A new version of the set (under `name` if given) holding the exported items."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise SelectionError(f"not a golden set export (expected \"format\": \"{EXPORT_FORMAT}\")")
    if data.get("format_version") != EXPORT_VERSION:
        raise SelectionError(f"golden set export version {data.get('format_version')!r}: this shadowtap reads "
                             f"version {EXPORT_VERSION}")
    header = data.get("set") or {}
    try:
        items = [GoldenItem(**item) for item in data.get("items") or []]
    except TypeError as exc:
        raise SelectionError(f"golden set export: an item is malformed ({exc})") from None
    return golden.write_version(name or header["name"], items, description=header.get("description"),
                                pass_criterion=header.get("pass_criterion") or "agreement>=0.8",
                                min_pass_rate=float(header.get("min_pass_rate", DEFAULT_MIN_PASS_RATE)))


def exchange_rows(items: Sequence[GoldenItem]) -> Callable[[Sequence[str]], list[dict]]:
    """What the replay runner reads instead of the store's exchanges: each snapshot as an exchange
    row whose answer is the reference."""
    by_id = {}
    for item in items:
        request = orjson.loads(item.request_json)
        by_id[item.exchange_id] = {
            "id": item.exchange_id, "method": "POST", "path": item.path, "endpoint": item.endpoint, "status": 200,
            "model": request.get("model") if isinstance(request, dict) else None,
            "request_json": item.request_json, "response_text": item.reference_text,
            "response_tool_calls": item.reference_tool_calls, "shadowtap_metadata": item.shadowtap_metadata,
            "prompt_tokens": None, "completion_tokens": None}
    return lambda ids: [by_id[exchange_id] for exchange_id in ids if exchange_id in by_id]


@dataclass
class GoldenOutcome:
    items: int
    judged: int = 0
    passed: int = 0
    errors: dict[str, int] = field(default_factory=dict)   # reason -> calls
    failing_items: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None

    def passes(self, min_pass_rate: float) -> bool:
        return not self.errors and self.judged == self.items and (self.pass_rate or 0.0) >= min_pass_rate


def judge_results(items: Sequence[GoldenItem], results: Sequence[dict]) -> GoldenOutcome:
    """Items passed, judged and failed from a run's results (the request as captured only)."""
    outcome = GoldenOutcome(items=len(items))
    by_item: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        if result.get("perturbation") is None:
            by_item[result["exchange_id"]].append(result)
    for item in items:
        answers = by_item.get(item.exchange_id, [])
        errors = [answer for answer in answers if answer["outcome"] != "ok"]
        for answer in errors:
            reason = (answer.get("error") or answer["outcome"]).split(":")[0]
            outcome.errors[reason] = outcome.errors.get(reason, 0) + 1
        verdicts = [answer.get("passed") for answer in answers if answer["outcome"] == "ok"]
        if errors or not verdicts or any(verdict is None for verdict in verdicts):
            continue
        outcome.judged += 1
        if all(verdicts):
            outcome.passed += 1
        else:
            outcome.failing_items.append(item.exchange_id)
    return outcome


def record_run(golden: GoldenStore, set_row: dict, *, run_id: str, target_name: str, target: dict,
               k: int, outcome: GoldenOutcome) -> dict:
    row = {"id": run_id, "set_id": set_row["id"], "target_name": target_name,
           "target": orjson.dumps(target).decode(), "k": k, "created_at": stored_time(), "items": outcome.items,
           "items_judged": outcome.judged, "items_passed": outcome.passed, "pass_rate": outcome.pass_rate,
           "min_pass_rate": set_row["min_pass_rate"], "passed": int(outcome.passes(set_row["min_pass_rate"])),
           "errors": orjson.dumps(outcome.errors).decode()}
    golden.record_run(row)
    return row
