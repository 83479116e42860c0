"""Which captured exchanges a replay takes: filters from the command line, a deterministic sample,
and the dry-run estimate of what replaying them would cost."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from shadowtap.core.errors import SelectionError
from shadowtap.core.store.replay_store import COMPARISONS, FLAG_COLUMNS, ExchangeQuery, ReplayStore, ScoreCondition

_WHERE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(<=|>=|!=|==|<|>|=)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Selection:
    """A query on the store plus an optional sample size; `to_json` is what a run records."""

    query: ExchangeQuery = field(default_factory=ExchangeQuery)
    sample: int | None = None

    def to_json(self) -> dict:
        query = asdict(self.query)
        query["scores"] = [f"{c['evaluator']} {c['op']} {c['value']:g}" for c in query["scores"]]
        query["tags"] = [f"{name}={value}" for name, value in query["tags"]]
        return {"filters": {key: value for key, value in query.items() if value not in (None, [], ())},
                "sample": self.sample}


def parse_where(text: str) -> ScoreCondition:
    """`faithfulness < 0.5` -> ScoreCondition("faithfulness", "<", 0.5)."""
    match = _WHERE.match(text)
    if not match:
        raise SelectionError(f"--where {text!r}: expected EVALUATOR OP NUMBER, e.g. \"faithfulness < 0.5\" "
                             f"(OP one of {', '.join(COMPARISONS)})")
    name, op, value = match.groups()
    return ScoreCondition(name, "=" if op == "==" else op, float(value))


def parse_tag(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SelectionError(f"--tag {text!r}: expected NAME=VALUE")
    return name.strip().lower(), value.strip()


def parse_flag(text: str) -> str:
    if text not in FLAG_COLUMNS:
        raise SelectionError(f"--flag {text!r}: expected one of {', '.join(FLAG_COLUMNS)}")
    return text


def sample_ids(ids: list[str], size: int | None, seed: str = "shadowtap-replay") -> list[str]:
    """`size` ids chosen by a hash of each id (the same store always gives the same sample), in input order."""
    if size is None or size >= len(ids):
        return list(ids)
    if size < 0:
        raise SelectionError(f"--sample {size}: expected a positive number")
    ranked = sorted(ids, key=lambda exchange_id: hashlib.sha256(f"{seed}:{exchange_id}".encode()).hexdigest())
    chosen = set(ranked[:size])
    return [exchange_id for exchange_id in ids if exchange_id in chosen]


def select(store: ReplayStore, selection: Selection) -> list[dict]:
    """Matching exchange summaries (id, started_at, model, tokens, cost), oldest first, sampled."""
    rows = store.select_exchanges(selection.query)
    kept = set(sample_ids([row["id"] for row in rows], selection.sample))
    return [row for row in rows if row["id"] in kept]


@dataclass
class CostEstimate:
    usd: float = 0.0
    unknown: int = 0   # exchanges without token counts or a price for the target's model


def estimate_cost(rows: list[dict], model_for, k: int, prices) -> CostEstimate:
    """The captured token counts priced at the target model's rates, times k.

    `model_for(row)` gives the litellm model string the row would be replayed with.
    """
    estimate = CostEstimate()
    for row in rows:
        cost = prices.cost_usd(model_for(row), row.get("prompt_tokens"), row.get("completion_tokens"))
        if cost is None:
            estimate.unknown += 1
        else:
            estimate.usd += cost * k
    return estimate
