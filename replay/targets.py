"""Where a replay sends requests: the primary (only with an explicit flag), a configured
candidate, or any litellm model string, optionally with a patched system prompt and parameters."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import orjson

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.config.checks import check_http_url, check_not_link_local
from shadowtap.core.errors import ConfigError, TargetError
from shadowtap.proxy.dialects import dialect_named
from shadowtap.proxy.shadow.calls import CallTarget

DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ReplayTarget:
    """Everything a run records about its target; keys are named by env var, never held."""

    kind: str                       # primary | candidate | model
    name: str                       # "primary", the candidate's name, or the model string
    model: str                      # litellm model string; "" for primary (taken from each request)
    api_base: str | None = None
    api_key_env: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tokens: int | None = None
    system_prompt: str = ""
    params: dict = field(default_factory=dict)
    anthropic_api_base: str | None = None   # primary only: where its Anthropic Messages exchanges go

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ReplayTarget:
        return cls(**data)

    def model_for(self, request: dict | None, endpoint: str | None = None) -> str:
        """The litellm model string a request is sent with. The primary answers to the request's
        model, in the API its exchange was captured in: an Anthropic Messages exchange goes back to
        the Anthropic primary, everything else to the OpenAI-compatible one."""
        if self.kind == "primary":
            return f"{self._primary_upstream(endpoint)}/{(request or {}).get('model', '')}"
        return self.model

    def call_target(self, request: dict | None, endpoint: str | None = None) -> CallTarget:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        api_base = self.api_base
        if self.kind == "primary" and self._primary_upstream(endpoint) == "anthropic":
            api_base = self.anthropic_api_base
        return CallTarget(f"replay:{self.name}", self.model_for(request, endpoint), api_base, key, self.timeout_s,
                          self.max_tokens, self.system_prompt, dict(self.params))

    def _primary_upstream(self, endpoint: str | None) -> str:
        """"anthropic" or "openai": which of the primary's two base URLs the exchange goes back to (its
        own when configured, else the one there is: litellm then speaks that one's API)."""
        upstream = dialect_named(endpoint).upstream if endpoint else "openai"
        if not self.anthropic_api_base:
            return "openai"
        return "anthropic" if upstream == "anthropic" or not self.api_base else "openai"


def replay_request(exchange: dict, request: dict) -> dict:
    """The captured request rebuilt for a replay target, by the dialect it was captured in: a Chat
    Completions request, which litellm sends to the target in the target's own API (so an
    Anthropic Messages exchange replays against an OpenAI-compatible model, and the other way round)."""
    return dialect_named(exchange.get("endpoint")).chat_request(request)


def parse_param(text: str) -> tuple[str, object]:
    """`temperature=0` -> ("temperature", 0); values are JSON, or plain strings when not JSON."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise TargetError(f"--param {text!r}: expected KEY=VALUE, e.g. temperature=0")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = value
    return name.strip(), parsed


def _check_api_base(api_base: str) -> None:
    """--api-base gets the same checks as a configured base URL (there is no allow flag on the CLI)."""
    try:
        check_http_url("--api-base", api_base)
        check_not_link_local("--api-base", api_base, allowed=False)
    except ConfigError as error:
        raise TargetError(str(error)) from None


def resolve_target(spec: str, config: ShadowtapConfig, *, allow_primary: bool = False, api_base: str | None = None,
                   api_key_env: str | None = None, system_prompt: str | None = None,
                   params: dict | None = None, timeout_s: float | None = None) -> ReplayTarget:
    """`primary`, `candidate:NAME` or `model:LITELLM_STRING`, with the variant patches applied."""
    kind, _, value = spec.partition(":")
    if api_base:
        _check_api_base(api_base)
    extra_params = dict(params or {})
    if kind == "primary" and not value:
        if not allow_primary:
            raise TargetError("--target primary sends captured traffic to the live primary again: "
                              "pass --allow-primary to do that on purpose")
        primary = config.primary
        if not primary.base_url and not primary.anthropic_base_url:
            raise TargetError("--target primary needs [primary] base_url or anthropic_base_url in the config "
                              "(--config FILE)")
        key_env = config.shadow.primary_twin_key_env or primary.api_key_env or None
        return ReplayTarget("primary", "primary", "", api_base or primary.base_url or None, api_key_env or key_env,
                            timeout_s or DEFAULT_TIMEOUT_S, None, system_prompt or "", extra_params,
                            anthropic_api_base=primary.anthropic_base_url or None)
    if kind == "candidate" and value:
        candidate = next((c for c in config.candidates if c.name == value), None)
        if candidate is None:
            names = ", ".join(c.name for c in config.candidates) or "none configured"
            raise TargetError(f"--target candidate:{value}: no [[candidates]] entry with that name ({names})")
        merged = {**candidate.params, **extra_params}
        return ReplayTarget("candidate", candidate.name, candidate.model, api_base or candidate.api_base or None,
                            api_key_env or candidate.api_key_env or None, timeout_s or candidate.timeout_s,
                            candidate.max_tokens, system_prompt or candidate.system_prompt, merged)
    if kind == "model" and value:
        return ReplayTarget("model", value, value, api_base or None, api_key_env or None,
                            timeout_s or DEFAULT_TIMEOUT_S, None, system_prompt or "", extra_params)
    raise TargetError(f"--target {spec!r}: expected primary, candidate:NAME or model:LITELLM_MODEL_STRING")
