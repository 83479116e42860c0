"""Config sections for shadow mirroring: [shadow] and [[candidates]]."""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowtap.core.config.canary import CandidateCanaryConfig
from shadowtap.core.config.checks import check_env_name, check_http_url, check_not_link_local, check_range
from shadowtap.core.errors import ConfigError

# What the shadow worker can mirror; requests to other endpoints are recorded as ineligible.
# Embeddings only when a candidate lists them; the conversational dialects by default.
CONVERSATIONAL_ENDPOINTS = ("chat.completions", "responses", "anthropic.messages")
ENDPOINTS = (*CONVERSATIONAL_ENDPOINTS, "embeddings")
# How a candidate is called: Chat Completions through litellm's acompletion (which reaches any
# provider in its own API), or the Responses API through litellm's aresponses.
CHAT_API, RESPONSES_API = "chat", "responses"
CANDIDATE_APIS = (CHAT_API, RESPONSES_API)
# litellm providers whose model strings mean "Chat Completions at api_base, model after the slash":
# what [shadow] direct_providers may list (proxy/shadow/direct.py calls them without litellm).
DIRECT_CAPABLE_PROVIDERS = ("openai", "hosted_vllm", "openai_like", "custom_openai", "lm_studio")


@dataclass(frozen=True)
class CandidateConfig:
    name: str
    model: str                        # litellm model string: openai/…, anthropic/…, hosted_vllm/…
    api_base: str = ""
    api_key_env: str = ""
    enabled: bool = True
    sample_rate: float = 1.0
    endpoints: list[str] = field(default_factory=lambda: list(CONVERSATIONAL_ENDPOINTS))
    api: str = "chat"
    tags: list[str] = field(default_factory=list)      # NAME=VALUE; empty: any
    models: list[str] = field(default_factory=list)    # primary models to mirror; empty: any
    max_concurrency: int = 4
    timeout_s: float = 60.0
    max_tokens: int = 1024
    daily_budget_usd: float = 1.0
    system_prompt: str = ""           # replaces the request's system message when set
    params: dict = field(default_factory=dict)         # request overrides, e.g. {temperature = 0}
    allow_private_network: bool = False
    canary: CandidateCanaryConfig | None = None        # [candidates.canary]; None: never serves live

    def validate(self) -> None:
        key = f"[[candidates]] {self.name!r}"
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"[[candidates]] name = {self.name!r}: expected letters, digits, - or _")
        if self.name == "primary_twin" or self.name == "primary":
            raise ConfigError(f"[[candidates]] name = {self.name!r}: reserved; choose another name")
        if "/" not in self.model:
            raise ConfigError(f"{key} model = {self.model!r}: expected a litellm model string "
                              "with a provider, such as 'openai/gpt-4o-mini'")
        if self.api_base:
            check_http_url(f"{key} api_base", self.api_base)
            check_not_link_local(f"{key} api_base", self.api_base, self.allow_private_network)
        check_env_name(f"{key} api_key_env", self.api_key_env)
        check_range(f"{key} sample_rate", self.sample_rate, 0, 1)
        for endpoint in self.endpoints:
            if endpoint not in ENDPOINTS:
                raise ConfigError(f"{key} endpoints: {endpoint!r} cannot be mirrored yet; accepted: "
                                  f"{', '.join(ENDPOINTS)}")
        if self.api not in CANDIDATE_APIS:
            raise ConfigError(f"{key} api = {self.api!r}: expected one of {', '.join(CANDIDATE_APIS)}")
        for tag in self.tags:
            if "=" not in tag:
                raise ConfigError(f"{key} tags: {tag!r}: expected NAME=VALUE")
        check_range(f"{key} max_concurrency", self.max_concurrency, 1, 1024)
        check_range(f"{key} timeout_s", self.timeout_s, 0.1)
        check_range(f"{key} max_tokens", self.max_tokens, 1)
        check_range(f"{key} daily_budget_usd", self.daily_budget_usd, 0)
        if self.canary is not None:
            if not self.api_base:
                raise ConfigError(f"{key} canary: needs the candidate's api_base, the URL that answers live "
                                  "requests in their own dialect (the live process never calls through litellm)")
            self.canary.validate(f"{key} canary")


@dataclass(frozen=True)
class ShadowConfig:
    queue_size: int = 1000            # shadow requests waiting for the shadow worker
    breaker_failures: int = 5         # consecutive failures that open a candidate's breaker
    breaker_cooldown_s: float = 30.0  # then one trial call (half-open)
    grace_period_s: float = 10.0      # on shutdown, time for in-flight shadows; the rest are "cancelled"
    primary_twin_rate: float = 0.0    # share of requests also re-sent to the primary (noise floor)
    primary_twin_key_env: str = ""    # the proxy's own key for twin calls (never the client's)
    primary_twin_models: list[str] = field(default_factory=list)  # models to twin; empty: any
    worker_nice: int = 10             # the shadow worker's scheduling niceness: live requests win the CPU
    workers: int = 1                  # shadow worker processes; caps and budgets are split between them
    twin_max_concurrency: int = 4     # primary twin calls in flight (per proxy, like a candidate's cap)
    twin_timeout_s: float = 120.0     # the twin's total deadline per call
    # Chat candidates of these litellm providers, with an api_base, are called without litellm.
    direct_providers: list[str] = field(default_factory=lambda: ["openai", "hosted_vllm"])
    litellm_candidates: list[str] = field(default_factory=list)  # names always called through litellm

    def validate(self) -> None:
        check_range("[shadow] queue_size", self.queue_size, 1)
        check_range("[shadow] workers", self.workers, 1, 64)
        check_range("[shadow] twin_max_concurrency", self.twin_max_concurrency, 1, 1024)
        check_range("[shadow] twin_timeout_s", self.twin_timeout_s, 0.1)
        if self.twin_max_concurrency < self.workers:
            raise ConfigError(f"[shadow] twin_max_concurrency = {self.twin_max_concurrency}: expected at least "
                              f"[shadow] workers ({self.workers}), since each worker takes a share of it")
        for provider in self.direct_providers:
            if provider not in DIRECT_CAPABLE_PROVIDERS:
                raise ConfigError(f"[shadow] direct_providers: {provider!r} cannot be called without litellm; "
                                  f"accepted: {', '.join(DIRECT_CAPABLE_PROVIDERS)}")
        check_range("[shadow] breaker_failures", self.breaker_failures, 1)
        check_range("[shadow] breaker_cooldown_s", self.breaker_cooldown_s, 0)
        check_range("[shadow] grace_period_s", self.grace_period_s, 0)
        check_range("[shadow] primary_twin_rate", self.primary_twin_rate, 0, 1)
        check_range("[shadow] worker_nice", self.worker_nice, 0, 19)
        check_env_name("[shadow] primary_twin_key_env", self.primary_twin_key_env)
