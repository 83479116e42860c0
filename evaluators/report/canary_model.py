"""The report's canary section as data (model.py names CanarySection for type checking only)."""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.evaluators.report.model import Interval, Rate


@dataclass(frozen=True)
class ShareChange:
    """One change of a canary's share (a canary_events row)."""

    candidate: str
    at: str                         # ISO 8601 UTC
    share_before: float
    share_after: float
    changed_by: str
    reason: str | None
    guard: str | None               # the guard that fired, for an automatic rollback
    window: dict | None             # what the guard saw (value, threshold, samples, every red guard)


@dataclass(frozen=True)
class CanaryFallbacks:
    """Canaried requests of one cohort (risk tier or task) of one candidate, and how many fell back."""

    candidate: str
    dimension: str                  # risk_tier | task
    value: str
    canaried: int                   # answered by the candidate, or fallen back to the primary
    fallbacks: int
    rate: float | None
    low: float | None               # 95% Wilson interval
    high: float | None
    reasons: dict[str, int]         # fallback reason -> count


@dataclass(frozen=True)
class CanaryOutcomes:
    """Feedback on a candidate's live answers against feedback on the primary's, same time range."""

    candidate: str
    trusted_completion: Rate
    primary_trusted_completion: Rate
    trusted_completion_delta: Interval      # candidate minus primary, 95% MOVER (Newcombe) interval
    edit_ratio: Interval                    # mean edit ratio of completed answers
    primary_edit_ratio: Interval
    edit_ratio_delta: Interval
    policy_violation: Rate
    primary_policy_violation: Rate


@dataclass(frozen=True)
class CanarySection:
    changes: list[ShareChange]      # every share change in the range, oldest first
    served: dict[str, int]          # candidate -> requests it answered in the range
    fallbacks: list[CanaryFallbacks]
    unattributed_fallbacks: int     # fallbacks no candidate could be named for (several canaries, state_stale)
    outcomes: list[CanaryOutcomes]  # one per candidate whose live answers have feedback

    @property
    def rollbacks(self) -> list[ShareChange]:
        return [change for change in self.changes if change.share_after == 0 and change.share_before > 0]
