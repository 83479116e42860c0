"""Config sections for offline scoring: [judge], [eval], [contexts], [freshness], [contracts]."""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowtap.core.config.checks import check_env_name, check_http_url, check_not_link_local, check_range
from shadowtap.core.errors import ConfigError


@dataclass(frozen=True)
class JudgeConfig:
    model: str = ""                   # litellm model string, e.g. "openai/gpt-4o-mini"; empty: no judge
    api_base: str = ""                # any OpenAI-compatible endpoint; empty: the provider's default
    api_key_env: str = ""
    max_concurrency: int = 4
    timeout_s: float = 60.0
    budget_usd: float = 5.0           # most a single `shadowtap eval` run may spend on judge calls
    allow_private_network: bool = False

    def validate(self) -> None:
        if self.api_base:
            check_http_url("[judge] api_base", self.api_base)
            check_not_link_local("[judge] api_base", self.api_base, self.allow_private_network)
        check_env_name("[judge] api_key_env", self.api_key_env)
        check_range("[judge] max_concurrency", self.max_concurrency, 1, 256)
        check_range("[judge] timeout_s", self.timeout_s, 0.1)
        check_range("[judge] budget_usd", self.budget_usd, 0)


@dataclass(frozen=True)
class EvalConfig:
    max_concurrency: int = 8          # answers scored at once
    evaluators: list[str] = field(default_factory=list)  # empty: every registered evaluator

    def validate(self) -> None:
        check_range("[eval] max_concurrency", self.max_concurrency, 1, 1024)


@dataclass(frozen=True)
class ContextsConfig:
    tool_messages: bool = True        # treat tool-role messages as retrieved context
    tags: list[str] = field(default_factory=lambda: ["context", "document"])   # <context>…</context>
    delimiters: list[list[str]] = field(default_factory=list)                # [["BEGIN", "END"]]

    def validate(self) -> None:
        for index, pair in enumerate(self.delimiters):
            if len(pair) != 2 or not all(pair):
                raise ConfigError(f"[contexts] delimiters[{index}] = {pair!r}: expected two non-empty "
                                  "strings, an opening and a closing delimiter")


@dataclass(frozen=True)
class FreshnessPolicy:
    max_age_days: float
    endpoint: str = ""
    task: str = ""
    tag: str = ""                     # NAME=VALUE

    def validate(self) -> None:
        check_range("[[freshness.policies]] max_age_days", self.max_age_days, 0)


@dataclass(frozen=True)
class FreshnessConfig:
    default_max_age_days: float = 90.0
    policies: list[FreshnessPolicy] = field(default_factory=list)   # first match wins
    versions_file: str = ""           # JSON object or CSV (id,version) of current context versions

    def validate(self) -> None:
        check_range("[freshness] default_max_age_days", self.default_max_age_days, 0)
        for policy in self.policies:
            policy.validate()


@dataclass(frozen=True)
class ContractRule:
    schema_file: str                  # JSON Schema file, relative to the config file
    endpoint: str = ""
    task: str = ""
    tag: str = ""                     # NAME=VALUE

    def validate(self) -> None:
        if not self.schema_file:
            raise ConfigError("[[contracts.rules]] schema_file = '': expected a JSON Schema file path")


@dataclass(frozen=True)
class ContractsConfig:
    rules: list[ContractRule] = field(default_factory=list)

    def validate(self) -> None:
        for rule in self.rules:
            rule.validate()
