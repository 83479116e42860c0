"""The report's canary section: each canary's share over time, its rollbacks with their reasons,
its fallback rates by risk tier and by task, read from canary_events and the exchanges' served_by
and fallback_reason; and the trust metrics from feedback on its live answers against feedback on
the primary's in the same range (trusted completion, edit ratio, policy violations), resolved as the
report's outcome figures are, with 95% intervals. Absent (None) when the range holds no canary.

The interval of a difference is the MOVER (Newcombe) combination of the two sides' intervals:
difference - sqrt((a - a_low)^2 + (b_high - b)^2) .. difference + sqrt((a_high - a)^2 + (b - b_low)^2).

A fallback is attributed as the guard loop attributes it (evaluators/canary/window.py): to the
candidate its reason names, else to the only canary running (share above 0, by canary_events) when
it started; with none or several running then, to no one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime

from shadowtap.core.config import OutcomesConfig
from shadowtap.core.store.canary_store import canaried_counts, canary_events, window_feedback
from shadowtap.evaluators.canary.window import fallback_reason, running_at
from shadowtap.evaluators.report.canary_model import CanaryFallbacks, CanaryOutcomes, CanarySection, ShareChange
from shadowtap.evaluators.report.model import Interval, Rate
from shadowtap.evaluators.report.outcomes.completion import is_trusted
from shadowtap.evaluators.report.outcomes.resolution import ExchangeOutcome, resolve_outcomes
from shadowtap.evaluators.report.stats import SCORE_RANGE, mean_interval, wilson
from shadowtap.evaluators.report.tables import NONE, TextTable

EVENTS_READ = 10_000
PRIMARY = "primary"
COHORTS = ("risk_tier", "task")
UNTAGGED = "(none)"


def build_canary_section(reads: object, *, since: str | None = None, until: str | None = None,
                         outcomes: OutcomesConfig | None = None) -> CanarySection | None:
    events = canary_events(reads, limit=EVENTS_READ)
    changes = [_change(event) for event in events]
    changes = [c for c in changes if (since is None or c.at >= since) and (until is None or c.at < until)]
    counts = canaried_counts(reads, since, until)
    if not changes and not counts:
        return None
    running = running_at(events)
    served: dict[str, int] = defaultdict(int)
    cohorts: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, 0, defaultdict(int)])
    unattributed = 0
    for row in counts:
        if row["fallback_reason"]:
            owner, reason = fallback_reason(row["fallback_reason"], running(row["started_at"]))
            if owner is None:
                unattributed += row["n"]
                continue
        else:
            owner, reason = row["served_by"], None
            served[owner] += row["n"]
        for dimension in COHORTS:
            cohort = cohorts[owner, dimension, row[dimension] or UNTAGGED]
            cohort[0] += row["n"]
            if reason is not None:
                cohort[1] += row["n"]
                cohort[2][reason] += row["n"]
    fallbacks = []
    for (candidate, dimension, value), (canaried, fell_back, reasons) in sorted(cohorts.items()):
        rate = wilson(fell_back, canaried)
        fallbacks.append(CanaryFallbacks(candidate, dimension, value, canaried, fell_back, rate.rate, rate.low,
                                         rate.high, dict(sorted(reasons.items()))))
    return CanarySection(changes=changes, served=dict(sorted(served.items())), fallbacks=fallbacks,
                         unattributed_fallbacks=unattributed,
                         outcomes=canary_outcomes(window_feedback(reads, since, until), outcomes or OutcomesConfig()))


def canary_outcomes(rows: list[dict], config: OutcomesConfig) -> list[CanaryOutcomes]:
    """Per candidate with feedback on its live answers: its figures, the primary's, the differences."""
    exchanges = {row["exchange_id"]: row for row in rows}
    resolved = resolve_outcomes(rows, config)
    by_side: dict[str, list[ExchangeOutcome]] = defaultdict(list)
    for exchange_id, outcome in resolved.items():
        row = exchanges[exchange_id]
        if row["served_by"] in (None, PRIMARY):
            if not row["fallback_reason"]:
                by_side[PRIMARY].append(outcome)
        else:
            by_side[row["served_by"]].append(outcome)
    primary = _figures(by_side.get(PRIMARY, []), exchanges, config)
    result = []
    for name in sorted(side for side in by_side if side != PRIMARY):
        figures = _figures(by_side[name], exchanges, config)
        result.append(CanaryOutcomes(
            candidate=name, trusted_completion=figures[0], primary_trusted_completion=primary[0],
            trusted_completion_delta=_difference(_as_interval(figures[0]), _as_interval(primary[0])),
            edit_ratio=figures[1], primary_edit_ratio=primary[1], edit_ratio_delta=_difference(figures[1], primary[1]),
            policy_violation=figures[2], primary_policy_violation=primary[2]))
    return result


def _figures(found: list[ExchangeOutcome], exchanges: dict[str, dict],
             config: OutcomesConfig) -> tuple[Rate, Interval, Rate]:
    trusted = sum(is_trusted(outcome, exchanges[outcome.exchange_id], config) for outcome in found)
    ratios = [o.edit_ratio for o in found if o.completed and o.edit_ratio is not None]
    violations = sum(outcome.outcome == "policy_violation" for outcome in found)
    return (wilson(trusted, len(found)), mean_interval(ratios, within=SCORE_RANGE), wilson(violations, len(found)))


def _as_interval(rate: Rate) -> Interval:
    return Interval(rate.rate, rate.low, rate.high, rate.n)


def _difference(a: Interval, b: Interval) -> Interval:
    if a.mean is None or b.mean is None:
        return Interval(None, None, None, a.n)
    difference = a.mean - b.mean
    if None in (a.low, a.high, b.low, b.high):
        return Interval(difference, None, None, a.n)
    low = difference - math.sqrt((a.mean - a.low) ** 2 + (b.high - b.mean) ** 2)  # type: ignore[operator]
    high = difference + math.sqrt((a.high - a.mean) ** 2 + (b.mean - b.low) ** 2)  # type: ignore[operator]
    return Interval(difference, low, high, a.n)


def _change(event: dict) -> ShareChange:
    return ShareChange(candidate=event["candidate"], at=datetime.fromtimestamp(event["at"], UTC).isoformat(),
                       share_before=event["share_before"], share_after=event["share_after"],
                       changed_by=event["changed_by"], reason=event["reason"], guard=event["guard"],
                       window=event["window"])


def canary_tables(section: CanarySection | dict | None) -> list[TextTable]:
    """The section as text tables (for the terminal and Markdown); none without a section."""
    if section is None:
        return []
    data = section if isinstance(section, dict) else asdict(section)
    changes = data["changes"]
    tables = [TextTable("canary: share over time", ["at", "candidate", "share", "by", "reason"],
                        [[c["at"][:19], c["candidate"], f"{_share(c['share_before'])} → {_share(c['share_after'])}",
                          c["changed_by"], c["reason"] or ""] for c in changes])]
    rollbacks = [c for c in changes if c["share_after"] == 0 and c["share_before"] > 0]
    if rollbacks:
        rows = []
        for change in rollbacks:
            window = change["window"] or {}
            rows.append([change["at"][:19], change["candidate"], change["changed_by"], change["guard"] or "by hand",
                         _number(window.get("value")), str(window.get("samples", "")), change["reason"] or ""])
        tables.append(TextTable("canary: rollbacks", ["at", "candidate", "by", "guard", "value", "samples", "reason"],
                                rows))
    rows = [[f["candidate"], f"{f['dimension']}={f['value']}", str(f["canaried"]), str(f["fallbacks"]),
             _rate(f["rate"], f["low"], f["high"]),
             ", ".join(f"{reason} {count}" for reason, count in f["reasons"].items())] for f in data["fallbacks"]]
    title = "canary: fallbacks to the primary by risk tier and task"
    if data["unattributed_fallbacks"]:
        title += f" (and {data['unattributed_fallbacks']} not attributable to one candidate)"
    tables.append(TextTable(title, ["candidate", "cohort", "canaried", "fallbacks", "rate [95%]", "reasons"], rows))
    if data.get("outcomes"):
        tables.append(TextTable(
            "canary: trust metrics from feedback, its live answers against the primary's [95%]",
            ["candidate", "with feedback", "trusted completion", "primary", "Δ", "edit ratio", "primary", "Δ",
             "policy violations", "primary"],
            [[o["candidate"], f"{o['trusted_completion']['n']} / {o['primary_trusted_completion']['n']}",
              _rate_cell(o["trusted_completion"]), _rate_cell(o["primary_trusted_completion"]),
              _interval_cell(o["trusted_completion_delta"], signed=True), _interval_cell(o["edit_ratio"]),
              _interval_cell(o["primary_edit_ratio"]), _interval_cell(o["edit_ratio_delta"], signed=True),
              _rate_cell(o["policy_violation"]), _rate_cell(o["primary_policy_violation"])]
             for o in data["outcomes"]]))
    return tables


def _rate_cell(rate: dict) -> str:
    return _rate(rate["rate"], rate["low"], rate["high"])


def _interval_cell(interval: dict, *, signed: bool = False) -> str:
    mean, low, high = interval["mean"], interval["low"], interval["high"]
    if mean is None:
        return NONE
    sign = "+" if signed else ""
    bounds = f" [{low:{sign}.3f}, {high:{sign}.3f}]" if low is not None and high is not None else ""
    return f"{mean:{sign}.3f}{bounds}"


def _share(share: float) -> str:
    return f"{share * 100:g}%"


def _number(value: float | None) -> str:
    return NONE if value is None else f"{value:.3f}"


def _rate(rate: float | None, low: float | None, high: float | None) -> str:
    if rate is None:
        return NONE
    return f"{rate:.1%}" + (f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else "")
