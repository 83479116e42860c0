"""Which candidate, if any, answers a live request: deterministic, sticky per session, on the live path.

One hash point per request, from the session header's value when the app sends one (so a session
always lands on the same side while the shares stay put), else from the exchange id. Each canary
candidate owns a fixed region of [0, 1) in config order, `max_share` long, and serves the first
`share` of it, so slices never overlap: a request falls in at most one slice, and is served by that
candidate only if it is eligible for it (endpoint, risk tier, task, tags, not opted out). A
candidate therefore answers its share of the requests eligible for it, and never a request another
candidate's slice holds.

Requests that stay on the primary while no canary runs pay for one attribute read: the forwarder
asks `CanaryShares.running` before anything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.core.config import CanaryConfig, CandidateConfig
from shadowtap.core.config.canary import CandidateCanaryConfig
from shadowtap.proxy.dialects import Dialect
from shadowtap.proxy.headers import SHADOWTAP_PREFIX, header_value
from shadowtap.proxy.shadow.sampling import sample_point

# One salt for every candidate: the request has one point, and the slices share it.
_CANARY_SALT = "canary"
_RISK_TIER = SHADOWTAP_PREFIX + b"risk-tier"
_TASK = SHADOWTAP_PREFIX + b"task"
OPT_OUT_VALUE = b"off"


@dataclass(frozen=True, slots=True)
class Slice:
    """The part [start, end) of the hash range a running candidate serves."""

    candidate: str
    start: float
    end: float


def regions_of(max_shares: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """Each canary candidate's fixed region of the hash range, in config order: `max_share` long,
    the last one reaching to 1. A region never moves when another candidate's share changes, so a
    rollback of one candidate leaves every session of the others where it was."""
    regions = []
    start = 0.0
    for index, (candidate, max_share) in enumerate(max_shares):
        end = 1.0 if index == len(max_shares) - 1 else min(1.0, start + max_share)
        regions.append((candidate, start, end))
        start = end
    return regions


def slices_for(regions: list[tuple[str, float, float]], shares: dict[str, float]) -> tuple[Slice, ...]:
    """The part of its region each candidate with a positive share serves: from the region's start,
    so raising a share keeps every session already served where it was. A share larger than the
    region (above `max_share`, forced) is cut to the region."""
    slices = []
    for candidate, start, end in regions:
        share = shares.get(candidate, 0.0)
        if share > 0 and end > start:
            slices.append(Slice(candidate, start, min(end, start + share)))
    return tuple(slices)


def assignment_point(exchange_id: str, headers: list[tuple[bytes, bytes]], session_header: bytes) -> float:
    """The request's point in [0, 1): from the session header's value when present, else the id."""
    session = header_value(headers, session_header)
    key = session.decode("latin-1") if session else exchange_id
    return sample_point(key, _CANARY_SALT)


def slice_at(slices: tuple[Slice, ...], point: float) -> Slice | None:
    for candidate_slice in slices:
        if candidate_slice.start <= point < candidate_slice.end:
            return candidate_slice
    return None


class CanaryAssigner:
    """Decides per request, from its headers and dialect only (the body is not needed to decide)."""

    def __init__(self, candidates: list[CandidateConfig], canary: CanaryConfig) -> None:
        self.rules: dict[str, CandidateCanaryConfig] = {
            candidate.name: candidate.canary for candidate in candidates
            if candidate.canary is not None and candidate.enabled}
        self._session_header = canary.session_header.encode()
        self._opt_out_header = canary.opt_out_header.encode()

    def assign(self, exchange_id: str, headers: list[tuple[bytes, bytes]], dialect: Dialect,
               slices: tuple[Slice, ...]) -> str | None:
        """The candidate that answers this request, or None (the primary does)."""
        opt_out = header_value(headers, self._opt_out_header)
        if opt_out is not None and opt_out.strip().lower() == OPT_OUT_VALUE:
            return None
        hit = slice_at(slices, assignment_point(exchange_id, headers, self._session_header))
        if hit is None:
            return None
        rules = self.rules.get(hit.candidate)
        if rules is None or not eligible(rules, headers, dialect):
            return None
        return hit.candidate


def eligible(rules: CandidateCanaryConfig, headers: list[tuple[bytes, bytes]], dialect: Dialect) -> bool:
    """Whether the candidate's [candidates.canary] table admits this request."""
    if dialect.name not in rules.endpoints:
        return False
    tier = header_value(headers, _RISK_TIER)
    if not rules.eligible_tier(tier.decode("latin-1") if tier is not None else None):
        return False
    if rules.tasks:
        task = header_value(headers, _TASK)
        if task is None or task.decode("latin-1") not in rules.tasks:
            return False
    for tag in rules.tags:
        name, _, value = tag.partition("=")
        found = header_value(headers, SHADOWTAP_PREFIX + name.strip().lower().encode("latin-1"))
        if found is None or found.decode("latin-1") != value.strip():
            return False
    return True
