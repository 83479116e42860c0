"""Config for canaries: [canary] (the guards and how the live processes read the state) and the
[candidates.canary] table that lets one candidate answer live traffic.

A candidate without a canary table never serves live. The `high` risk tier is eligible only when a
candidate's `risk_tiers` lists it by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shadowtap.core.config.checks import check_env_name, check_http_url, check_range
from shadowtap.core.errors import ConfigError

# The dialects a candidate can answer live: its api_base must speak the request's own dialect.
LIVE_ENDPOINTS = ("chat.completions", "completions", "responses", "anthropic.messages", "embeddings")
HIGH_RISK_TIER = "high"
_HEADER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class CandidateCanaryConfig:
    """[candidates.canary]: which live requests this candidate may answer, and how it is called."""

    risk_tiers: list[str] = field(default_factory=list)   # empty: any tier except "high"; untagged is eligible
    tasks: list[str] = field(default_factory=list)        # x-shadowtap-task values; empty: any
    tags: list[str] = field(default_factory=list)         # NAME=VALUE, all must match
    endpoints: list[str] = field(default_factory=lambda: ["chat.completions"])
    upstream_model: str = ""          # model sent to api_base; "": `model` after its first "/"
    api_key_env: str = ""             # "": the candidate's api_key_env
    timeout_s: float = 30.0           # the candidate's answer deadline before the primary answers instead
    max_share: float = 0.5            # `shadowtap canary promote` refuses above this unless --force

    def validate(self, key: str) -> None:
        """`key` names the table in messages, e.g. "[[candidates]] 'small' canary"."""
        for tier in self.risk_tiers:
            if not tier.strip():
                raise ConfigError(f"{key} risk_tiers: {tier!r}: expected a risk tier name")
        for task in self.tasks:
            if not task.strip():
                raise ConfigError(f"{key} tasks: {task!r}: expected a task name")
        for tag in self.tags:
            if "=" not in tag or not tag.partition("=")[0]:
                raise ConfigError(f"{key} tags: {tag!r}: expected NAME=VALUE")
        if not self.endpoints:
            raise ConfigError(f"{key} endpoints = []: expected at least one of {', '.join(LIVE_ENDPOINTS)}")
        for endpoint in self.endpoints:
            if endpoint not in LIVE_ENDPOINTS:
                raise ConfigError(f"{key} endpoints: {endpoint!r} cannot be served live; accepted: "
                                  f"{', '.join(LIVE_ENDPOINTS)}")
        if self.upstream_model != self.upstream_model.strip():
            raise ConfigError(f"{key} upstream_model = {self.upstream_model!r}: expected a model name "
                              "without surrounding spaces")
        check_env_name(f"{key} api_key_env", self.api_key_env)
        check_range(f"{key} timeout_s", self.timeout_s, 0.1)
        check_range(f"{key} max_share", self.max_share, 0, 1)

    def eligible_tier(self, risk_tier: str | None) -> bool:
        """Whether a request of this risk tier may be canaried (untagged requests may)."""
        if self.risk_tiers:
            return risk_tier is None or risk_tier in self.risk_tiers
        return risk_tier != HIGH_RISK_TIER


@dataclass(frozen=True)
class CanaryConfig:
    """[canary]: the live processes' state polling, the guard loop and its thresholds."""

    session_header: str = "x-shadowtap-session"   # sticky assignment key when present
    opt_out_header: str = "x-shadowtap-canary"     # value "off" keeps the request on the primary
    state_poll_s: float = 1.0         # how often each live process re-reads canary state
    state_stale_s: float = 15.0       # state unreadable this long: live processes serve nothing from candidates
    guard_interval_s: float = 5.0     # how often the guard loop evaluates
    window_s: float = 600.0           # the guards' sliding window
    min_samples: int = 30             # per guard, before it can fire
    max_error_rate: float = 0.05      # candidate errors and timeouts among canaried requests
    max_fallback_rate: float = 0.10   # per risk tier and per task
    max_contract_invalid_rate: float = 0.05
    max_grounding_drop: float = 0.10  # primary minus candidate, LLM-free grounding
    max_agreement_drop: float = 0.15  # 1 minus the candidate's agreement with the primary's answer
    min_trusted_completion_delta: float = -0.05   # from feedback, candidate minus primary
    max_correction_burden_delta: float = 0.10     # from feedback, candidate minus primary
    max_policy_violation_rate: float = 0.02
    webhook_url: str = ""             # optional: POST a JSON event on every automatic rollback

    def validate(self) -> None:
        for name in ("session_header", "opt_out_header"):
            value = getattr(self, name)
            if not _HEADER_NAME.match(value):
                raise ConfigError(f"[canary] {name} = {value!r}: expected a lower-case HTTP header name "
                                  "(letters, digits, -)")
        check_range("[canary] state_poll_s", self.state_poll_s, 0.05, 3600)
        check_range("[canary] state_stale_s", self.state_stale_s, 0.1)
        if self.state_stale_s < self.state_poll_s:
            raise ConfigError(f"[canary] state_stale_s = {self.state_stale_s!r}: expected at least "
                              f"[canary] state_poll_s ({self.state_poll_s})")
        check_range("[canary] guard_interval_s", self.guard_interval_s, 0.05, 3600)
        check_range("[canary] window_s", self.window_s, 1)
        check_range("[canary] min_samples", self.min_samples, 1)
        for name in ("max_error_rate", "max_fallback_rate", "max_contract_invalid_rate", "max_grounding_drop",
                     "max_agreement_drop", "max_policy_violation_rate"):
            check_range(f"[canary] {name}", getattr(self, name), 0, 1)
        check_range("[canary] min_trusted_completion_delta", self.min_trusted_completion_delta, -1, 1)
        check_range("[canary] max_correction_burden_delta", self.max_correction_burden_delta, -1, 1)
        if self.webhook_url:
            check_http_url("[canary] webhook_url", self.webhook_url)
