"""freshness: were the retrieved contexts current when the request was made?

Each context item is stale when older than the max age of the first `[freshness] policies` entry
matching the exchange (else `default_max_age_days`), or when its version differs from the one in
`versions_file`. It is fresh when its age is within the policy (or its version is confirmed current
by the registry), and "unknown" when neither can be told: items without a timestamp are never
counted as fresh. Score = fresh items / all items. Contexts belong to the request, not to an answer,
so only the primary answer is scored; candidate and twin answers get "not applicable".
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import orjson

from shadowtap.core.config import FreshnessPolicy, ShadowtapConfig
from shadowtap.core.errors import ConfigError
from shadowtap.core.timefmt import parse_moment
from shadowtap.evaluators.base import ContextItem, EvalItem, NotApplicable, Score
from shadowtap.evaluators.items import rule_matches


class FreshnessEvaluator:
    name = "freshness"
    version = "1"
    needs_judge = False

    def __init__(self, *, default_max_age_days: float = 90.0, policies: list[FreshnessPolicy] | None = None,
                 current_versions: dict[str, str] | None = None) -> None:
        self.default_max_age_days = default_max_age_days
        self.policies = list(policies or [])
        self.current_versions = current_versions

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> FreshnessEvaluator:
        section = config.freshness
        versions = load_versions(config_dir / section.versions_file) if section.versions_file else None
        return cls(default_max_age_days=section.default_max_age_days, policies=section.policies,
                   current_versions=versions)

    def applies(self, item: EvalItem) -> bool:
        return bool(item.contexts)

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        if not item.is_primary:
            return NotApplicable("freshness is a property of the request's contexts; "
                                 "it is scored on the primary answer only")
        requested_at = context_time(item.exchange.get("started_at"))
        max_age_days, policy = self._max_age(item.exchange)
        stale, unknown, fresh = [], [], 0
        for index, context in enumerate(item.contexts):
            verdict = self._judge_item(context, requested_at, max_age_days)
            entry = {"id": context.id if context.id is not None else f"#{index}", **verdict}
            if verdict["status"] == "stale":
                stale.append(entry)
            elif verdict["status"] == "unknown":
                unknown.append(entry)
            else:
                fresh += 1
        label = "stale" if stale else "unknown" if unknown else "fresh"
        details = {"items": len(item.contexts), "fresh": fresh, "max_age_days": max_age_days, "policy": policy,
                   "stale": stale, "unknown": unknown, "scope": "request contexts; scored on the primary only"}
        return Score(fresh / len(item.contexts), label, details)

    def _judge_item(self, context: ContextItem, requested_at: datetime | None, max_age_days: float) -> dict:
        current = (self.current_versions or {}).get(context.id) if context.id is not None else None
        if current is not None and context.version is not None and context.version != current:
            return {"status": "stale", "reason": "outdated_version", "version": context.version,
                    "current_version": current, "max_age_days": max_age_days}
        updated_at = context_time(context.updated_at)
        if updated_at is None or requested_at is None:
            if current is not None and context.version == current:
                return {"status": "fresh", "reason": "current_version"}
            reason = "no_timestamp" if context.updated_at is None else "unparseable_timestamp"
            return {"status": "unknown", "reason": reason, "updated_at": context.updated_at}
        # A timestamp after the request is clock skew between systems, not a negative age.
        age_days = max(0.0, (requested_at - updated_at).total_seconds() / 86400)
        if age_days > max_age_days:
            return {"status": "stale", "reason": "too_old", "age_days": round(age_days, 3),
                    "max_age_days": max_age_days, "updated_at": context.updated_at}
        return {"status": "fresh", "age_days": round(age_days, 3)}

    def _max_age(self, exchange: dict) -> tuple[float, str]:
        for index, policy in enumerate(self.policies):
            if rule_matches(policy, exchange):
                return policy.max_age_days, f"policies[{index}]"
        return self.default_max_age_days, "default"


def context_time(value: str | None) -> datetime | None:
    """A context's or an exchange's ISO 8601 time; None when absent or unreadable (then unknown)."""
    if not value:
        return None
    try:
        return parse_moment(value)
    except ValueError:
        return None


def load_versions(path: Path) -> dict[str, str]:
    """Current context versions: a JSON object {id: version}, or CSV rows `id,version` (header optional)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[freshness] versions_file = {str(path)!r}: cannot be read ({exc})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"[freshness] versions_file = {str(path)!r}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"[freshness] versions_file = {str(path)!r}: expected a JSON object of id -> version")
        return {str(key): str(value) for key, value in data.items()}
    versions = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not "".join(row).strip():
            continue
        if number == 1 and [cell.strip().lower() for cell in row] == ["id", "version"]:
            continue
        if len(row) != 2:
            raise ConfigError(f"[freshness] versions_file = {str(path)!r}: line {number} has {len(row)} fields, "
                              "expected two: id,version")
        versions[row[0].strip()] = row[1].strip()
    return versions
