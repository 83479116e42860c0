"""Which candidates should answer a live request: eligibility and sampling, on the live path.

This runs per request in the live process, so it only reads what the request already carries.
Budget, concurrency and breaker checks belong to the shadow worker, which owns that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowtap.core.config import CandidateConfig, ShadowConfig
from shadowtap.proxy.dialects import Dialect, dialect_for_path
from shadowtap.proxy.headers import SHADOWTAP_PREFIX, header_value
from shadowtap.proxy.shadow.sampling import is_sampled

TWIN = "primary_twin"
SERVED_LIVE = "served_live"  # skip reason: the candidate answers this request live (a canary)


@dataclass(slots=True)
class ShadowJob:
    """What the worker needs to call candidates: never the client's headers or credentials.

    The request travels as the JSON bytes forwarded to the primary, not as a parsed dict: the live
    process then only frames bytes it already has (proxy/shadow/handoff.py)."""

    exchange_id: str
    started_at: float
    endpoint: str
    body: bytes | bytearray  # a bytearray when the request arrived in several pieces
    candidates: list[str]
    twin: bool = False


@dataclass(slots=True)
class ShadowPlan:
    job: ShadowJob | None = None
    skips: list[tuple[str, str]] = field(default_factory=list)  # (candidate, reason)


class ShadowPlanner:
    def __init__(self, candidates: list[CandidateConfig], shadow: ShadowConfig) -> None:
        self._candidates = [candidate for candidate in candidates if candidate.enabled]
        self._shadow = shadow

    @property
    def active(self) -> bool:
        return bool(self._candidates) or self._shadow.primary_twin_rate > 0

    def plan(self, exchange_id: str, started_at: float, path: str, headers: list[tuple[bytes, bytes]],
             body: dict | None, body_bytes: bytes | bytearray = b"", *, serving: str | None = None) -> ShadowPlan:
        """`body` is the parsed request (for the decisions), `body_bytes` what goes to the worker.
        `serving` names the canary candidate answering the request live: that candidate is not
        mirrored again, and the primary's twin always is (the reverse shadow, so the report
        compares the two on the same requests)."""
        dialect = dialect_for_path(path)
        request_reason = self._request_ineligible(dialect, headers, body)
        model = dialect.request_model(body) if body is not None else None
        plan = ShadowPlan()
        admitted: list[str] = []
        tags = None
        for candidate in self._candidates:
            reason = request_reason
            if candidate.name == serving:
                reason = SERVED_LIVE
            if reason is None and dialect.name not in candidate.endpoints:
                reason = "ineligible"
            if reason is None and candidate.models and model not in candidate.models:
                reason = "ineligible"
            if reason is None and candidate.tags:
                tags = tags if tags is not None else _request_tags(headers)
                if not all(tag in tags for tag in candidate.tags):
                    reason = "ineligible"
            if reason is None and not is_sampled(exchange_id, candidate.name, candidate.sample_rate):
                reason = "sampled_out"
            if reason is None:
                admitted.append(candidate.name)
            else:
                plan.skips.append((candidate.name, reason))
        twin = (request_reason is None and dialect.twin_capable and self._shadow.primary_twin_rate > 0
                and (not self._shadow.primary_twin_models or model in self._shadow.primary_twin_models)
                and is_sampled(exchange_id, TWIN, self._shadow.primary_twin_rate))
        if serving is not None and body is not None and dialect.twin_capable:
            twin = True  # the reverse shadow: the primary answers every canaried request too
        if admitted or twin:
            plan.job = ShadowJob(exchange_id, started_at, dialect.name, body_bytes, admitted, twin)
        return plan

    def _request_ineligible(self, dialect: Dialect, headers, body: dict | None) -> str | None:
        if body is None or not dialect.mirrorable:
            return "ineligible"
        retry = header_value(headers, b"x-stainless-retry-count")
        if retry is not None and retry.strip() not in (b"", b"0"):
            return "client_retry"  # the first attempt was already mirrored
        return dialect.mirror_refusal(body)


def _request_tags(headers: list[tuple[bytes, bytes]]) -> set[str]:
    tags = set()
    for name, value in headers:
        name = name.lower()
        if name.startswith(SHADOWTAP_PREFIX):
            tags.add(f"{name[len(SHADOWTAP_PREFIX):].decode('latin-1')}={value.decode('latin-1')}")
    return tags
