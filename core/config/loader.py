"""Reading a TOML file into ShadowtapConfig: type checks, unknown-key errors, then validation."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtap.core.config.admin import AdminConfig
from shadowtap.core.config.canary import CanaryConfig
from shadowtap.core.config.checks import check_not_proxy_itself
from shadowtap.core.config.evaluation import ContextsConfig, ContractsConfig, EvalConfig, FreshnessConfig, JudgeConfig
from shadowtap.core.config.gate import GateConfig
from shadowtap.core.config.live import PrimaryConfig, RedactionConfig, ServerConfig
from shadowtap.core.config.outcomes import OutcomesConfig
from shadowtap.core.config.shadow import CandidateConfig, ShadowConfig
from shadowtap.core.config.store import ExportConfig, StoreConfig
from shadowtap.core.errors import ConfigError


@dataclass(frozen=True)
class ShadowtapConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    primary: PrimaryConfig = field(default_factory=PrimaryConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    candidates: list[CandidateConfig] = field(default_factory=list)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    contexts: ContextsConfig = field(default_factory=ContextsConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    source: str = "<defaults>"

    def validate(self) -> None:
        for name in _SECTIONS:
            section = getattr(self, name)
            for part in section if isinstance(section, list) else [section]:
                part.validate()
        names = [candidate.name for candidate in self.candidates]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"[[candidates]] name = {duplicates[0]!r} is used twice; names must be unique")
        if self.store.queue_max_bytes < self.server.max_body_bytes:
            # A request the proxy accepts could then never be captured.
            raise ConfigError(f"[store] queue_max_bytes = {self.store.queue_max_bytes}: expected at least "
                              f"[server] max_body_bytes ({self.server.max_body_bytes})")
        if self.server.workers > 1 and self.shadows_configured():
            # Each worker would run its own shadow worker, each with the full caps and budgets.
            raise ConfigError(f"[server] workers = {self.server.workers}: shadow mirroring ([[candidates]] or "
                              "[shadow] primary_twin_rate) needs workers = 1, since max_concurrency and "
                              "daily_budget_usd would apply per worker")
        if self.shadow.primary_twin_rate > 0 and not self.primary.base_url:
            # The twin re-asks the OpenAI-compatible primary; without one litellm would pick a default URL.
            raise ConfigError(f"[shadow] primary_twin_rate = {self.shadow.primary_twin_rate}: needs [primary] "
                              "base_url (the twin is asked as an OpenAI-compatible model)")
        for key, url in self.model_urls():
            check_not_proxy_itself(key, url, self.server.host, self.server.port)

    def model_urls(self) -> list[tuple[str, str]]:
        """Every configured upstream URL with the key that sets it (empty ones left out)."""
        urls = [("[primary] base_url", self.primary.base_url), ("[judge] api_base", self.judge.api_base),
                ("[primary] anthropic_base_url", self.primary.anthropic_base_url)]
        urls += [(f"[[candidates]] {c.name!r} api_base", c.api_base) for c in self.candidates]
        return [(key, url) for key, url in urls if url]

    def canaries_configured(self) -> bool:
        """True when an enabled candidate has a [candidates.canary] table (so a guard loop should run)."""
        return any(candidate.enabled and candidate.canary is not None for candidate in self.candidates)

    def shadows_configured(self) -> bool:
        return any(candidate.enabled for candidate in self.candidates) or self.shadow.primary_twin_rate > 0

    def with_overrides(self, **server_overrides: Any) -> ShadowtapConfig:
        """A copy with `[server]` keys replaced (for --host/--port), validated again."""
        changes = {key: value for key, value in server_overrides.items() if value is not None}
        server = dataclasses.replace(self.server, **changes)
        updated = dataclasses.replace(self, server=server)
        updated.validate()
        return updated


# Every top-level table of the file, and the array of tables [[candidates]].
_SECTIONS: tuple[str, ...] = ("server", "primary", "store", "redaction", "shadow", "candidates", "judge",
                              "eval", "contexts", "freshness", "contracts", "gate", "outcomes",
                              "admin", "export", "canary")


def load_config(path: str | Path) -> ShadowtapConfig:
    """Read, type-check and validate a config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    config = config_from_dict(raw, source=str(path))
    return config


def config_from_dict(raw: dict, *, source: str = "<dict>") -> ShadowtapConfig:
    """Build a validated config from already-parsed TOML data."""
    hints = typing.get_type_hints(ShadowtapConfig)
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(
                f"unknown section [{name}]: expected one of {', '.join(f'[{s}]' for s in _SECTIONS)}"
            )
        sections[name] = _coerce(f"[{name}]", value, hints[name])
    config = ShadowtapConfig(**sections, source=source)
    config.validate()
    return config


def _build_table(key: str, table_type: Any, values: object) -> object:
    if not isinstance(values, dict):
        raise ConfigError(f"{key} must be a table, got {_describe(values)}")
    hints = typing.get_type_hints(table_type)
    fields = {f.name: f for f in dataclasses.fields(table_type)}
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    kwargs = {}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"{key} {name}: unknown key; accepted keys are {', '.join(sorted(fields))}")
        kwargs[name] = _coerce(f"{key} {name}", value, hints[name])
    missing = [name for name in required if name not in kwargs]
    if missing:
        raise ConfigError(f"{key} {missing[0]} is missing: it is required")
    return table_type(**kwargs)


def _coerce(key: str, value: object, expected: object) -> object:
    """Check a TOML value against a field's annotation; ints are accepted where floats are."""
    if dataclasses.is_dataclass(expected):
        return _build_table(key, expected, value)
    origin = typing.get_origin(expected)
    if origin is dict or expected is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {value!r}: expected a table, got {_describe(value)}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(expected) if option is not type(None)]
        return _coerce(key, value, options[0])
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            item_name = getattr(item_type, "__name__", "values")
            raise ConfigError(f"{key} = {value!r}: expected a list of {item_name}")
        return [_coerce(f"{key}[{i}]", item, item_type) for i, item in enumerate(value)]
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: expected true or false, got {_describe(value)}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: expected an integer, got {_describe(value)}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r}: expected a number, got {_describe(value)}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"config field {key} has an unsupported annotation {expected!r}")


def _describe(value: object) -> str:
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "a list", dict: "a table",
    }.get(type(value), type(value).__name__)
