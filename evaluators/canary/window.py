"""What the store holds for one candidate's guard window.

A canaried request is one the candidate answered (`served_by` = its name) or one that fell back to
the primary (`fallback_reason` set). A fallback names no candidate unless its reason is written
"NAME:reason"; otherwise it belongs to the only canary that was running (share above 0, by
canary_events) when the request started, and with several running then, to none. Fallbacks because
the live process could not read the canary state (`state_stale`) are nobody's fault.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from shadowtap.core.store.canary_store import (
    canaried_exchanges,
    canary_events,
    twinned_primary_exchanges,
    window_feedback,
)
from shadowtap.core.timefmt import stored_time

CONTRACT_INVALID, CANDIDATE_ERROR, CANDIDATE_TIMEOUT, STATE_STALE = (
    "contract_invalid", "candidate_error", "candidate_timeout", "state_stale")
ERROR_REASONS = frozenset({CANDIDATE_ERROR, CANDIDATE_TIMEOUT})
NOBODYS_FAULT = frozenset({STATE_STALE})
EVENTS_READ = 10_000  # share changes read to tell which canaries were running when


@dataclass(frozen=True)
class CanaryWindow:
    candidate: str
    since: str                      # ISO 8601: the window's start
    served: list[dict]              # exchanges the candidate answered (TRAFFIC_COLUMNS, no bodies)
    fallbacks: list[dict]           # its canaried exchanges the primary answered instead; "reason" says why
    baseline: list[dict]            # primary-answered exchanges with their twin's answer: agreement's noise floor
    feedback: list[dict]            # feedback rows on the window's exchanges, with served_by

    @property
    def canaried(self) -> list[dict]:
        return [*self.served, *self.fallbacks]


def fallback_reason(reason: str, running: Collection[str]) -> tuple[str | None, str]:
    """(the candidate a fallback belongs to, the bare reason)."""
    name, sep, bare = reason.partition(":")
    if sep and name in running:
        return name, bare
    if reason in NOBODYS_FAULT or len(running) != 1:
        return None, reason
    return next(iter(running)), reason


def running_at(events: Sequence[dict]) -> Callable[[str], set[str]]:
    """From canary_events rows: a stored time (ISO 8601 UTC) -> the candidates whose share was
    above 0 then."""
    timeline = sorted((stored_time(event["at"]), event["candidate"], event["share_after"]) for event in events)

    def running(moment: str) -> set[str]:
        shares: dict[str, float] = {}
        for at, candidate, share in timeline:
            if at > moment:
                break
            shares[candidate] = share
        return {candidate for candidate, share in shares.items() if share > 0}

    return running


def read_window(store: object, candidate: str, *, window_s: float, now: float) -> CanaryWindow:
    since = stored_time(now - window_s)
    running = running_at(canary_events(store, limit=EVENTS_READ))
    served, fallbacks = [], []
    for row in canaried_exchanges(store, since):
        if row["served_by"] == candidate:
            served.append(row)
        elif row["fallback_reason"]:
            owner, reason = fallback_reason(row["fallback_reason"], running(row["started_at"]))
            if owner == candidate:
                fallbacks.append({**row, "reason": reason})
    return CanaryWindow(
        candidate=candidate, since=since, served=served, fallbacks=fallbacks,
        baseline=twinned_primary_exchanges(store, since),
        feedback=window_feedback(store, since),
    )
