"""Guards from feedback (POST /shadowtap/feedback, `shadowtap feedback import`) on the window's
exchanges: the candidate's answers against the primary's answers to other requests of the window.

Each exchange's outcome follows the report's rule (evaluators/report/outcomes/resolution.py, a
layer above, so restated here in brief): each reviewer's latest row counts, the app's rows as one
reviewer; the most severe outcome wins; an edit above [outcomes] heavy_correction_minutes or
heavy_correction_ratio is a heavy correction.

- trusted_completion_delta: candidate minus primary share of answers completed (accepted or edited)
  without a heavy correction; red below min_trusted_completion_delta;
- correction_burden_delta: candidate minus primary mean edit ratio of completed answers (an
  accepted one without a ratio counts 0); red above max_correction_burden_delta;
- policy_violation_rate: the candidate's share of policy_violation outcomes, per risk tier and per
  task; red above max_policy_violation_rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import fmean

from shadowtap.core.config import CanaryConfig, OutcomesConfig
from shadowtap.evaluators.canary.rate_guards import cohort_rates
from shadowtap.evaluators.canary.results import GuardResult
from shadowtap.evaluators.canary.window import CanaryWindow

SEVERITY = ("accepted", "edited", "escalated", "rejected", "policy_violation")   # least to most severe
COMPLETED = frozenset({"accepted", "edited"})


@dataclass(frozen=True)
class Outcome:
    exchange: dict          # the feedback row's exchange fields (served_by, risk_tier, task...)
    outcome: str
    heavy: bool
    edit_ratio: float | None

    @property
    def trusted(self) -> bool:
        return self.outcome in COMPLETED and not self.heavy


def outcomes(rows: list[dict], config: OutcomesConfig) -> list[Outcome]:
    by_exchange: dict[str, dict[str | None, dict]] = defaultdict(dict)
    for row in sorted(rows, key=lambda r: (r["at"] or "", r["received_at"] or "", r["id"])):
        if row["outcome"] in SEVERITY:
            by_exchange[row["exchange_id"]][row["reviewer"] or None] = row
    result = []
    for latest in by_exchange.values():
        counted = list(latest.values())
        worst = max((row["outcome"] for row in counted), key=SEVERITY.index)
        heavy = any((row["edit_minutes"] is not None and row["edit_minutes"] > config.heavy_correction_minutes)
                    or (row["edit_ratio"] is not None and row["edit_ratio"] > config.heavy_correction_ratio)
                    for row in counted)
        ratios = [float(row["edit_ratio"] or 0.0) for row in counted
                  if row["edit_ratio"] is not None or row["outcome"] == "accepted"]
        result.append(Outcome(counted[-1], worst, heavy, fmean(ratios) if ratios else None))
    return result


def feedback_guards(window: CanaryWindow, config: CanaryConfig, outcomes_config: OutcomesConfig) -> list[GuardResult]:
    resolved = outcomes(window.feedback, outcomes_config)
    candidate = [o for o in resolved if o.exchange["served_by"] == window.candidate]
    primary = [o for o in resolved
               if o.exchange["served_by"] in (None, "primary") and not o.exchange["fallback_reason"]]
    results = [
        _delta("trusted_completion_delta", [float(o.trusted) for o in candidate], [float(o.trusted) for o in primary],
               config.min_trusted_completion_delta, config.min_samples, red_below=True),
        _delta("correction_burden_delta", _ratios(candidate), _ratios(primary), config.max_correction_burden_delta,
               config.min_samples, red_below=False),
    ]
    rows = [{**o.exchange, "violation": o.outcome == "policy_violation"} for o in candidate]
    results += cohort_rates("policy_violation_rate", rows, lambda row: row["violation"],
                            config.max_policy_violation_rate, config.min_samples)
    return results


def _ratios(found: list[Outcome]) -> list[float]:
    return [o.edit_ratio for o in found if o.outcome in COMPLETED and o.edit_ratio is not None]


def _delta(name: str, candidate: list[float], primary: list[float], threshold: float, min_samples: int, *,
           red_below: bool) -> GuardResult:
    if not candidate or not primary:
        side = "candidate" if not candidate else "primary"
        return GuardResult(name, None, threshold, len(candidate), False, note=f"no feedback on the {side}'s answers")
    delta = fmean(candidate) - fmean(primary)
    enough = min(len(candidate), len(primary)) >= min_samples
    crossed = delta < threshold if red_below else delta > threshold
    note = f"candidate {fmean(candidate):.3f} over {len(candidate)}, primary {fmean(primary):.3f} over {len(primary)}"
    if not enough:
        note += f"; waits for {min_samples} on each side"
    return GuardResult(name, delta, threshold, len(candidate), enough and crossed, note=note)
