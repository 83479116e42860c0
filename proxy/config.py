"""Typed configuration: one TOML file, loaded and validated once at start-up.

Every section is a frozen dataclass. Unknown keys, wrong types and bad values raise
`ConfigError` with the key, the value and what would be accepted; the CLI turns that into exit 2.
Secrets are never written in the file, only the names of environment variables that hold them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from proxy.errors import ConfigError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _check_env_name(key: str, value: str) -> None:
    if value and not _ENV_NAME.match(value):
        raise ConfigError(
            f"{key} = {value!r}: expected the NAME of an environment variable "
            "(letters, digits, underscores); secrets are never written in the config file"
        )


def _check_http_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} = {value!r}: expected an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ConfigError(
            f"{key} = {value!r}: credentials in the URL are not accepted; "
            "name an environment variable in api_key_env instead"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{key} = {value!r}: expected a base URL without a query or fragment")


def _check_range(key: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        accepted = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key} = {value!r}: expected a number {accepted}")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024
    client_keys_env: str = ""
    log_level: str = "info"
    log_format: str = "json"
    log_file: str = ""
    access_log: bool = False
    graceful_shutdown_s: float = 30.0

    def validate(self) -> None:
        _check_range("[server] port", self.port, 0, 65535)
        _check_range("[server] max_body_bytes", self.max_body_bytes, 1)
        _check_env_name("[server] client_keys_env", self.client_keys_env)
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(
                f"[server] log_level = {self.log_level!r}: expected one of {', '.join(_LOG_LEVELS)}"
            )
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"[server] log_format = {self.log_format!r}: expected 'json' or 'text'")
        _check_range("[server] graceful_shutdown_s", self.graceful_shutdown_s, 0)


@dataclass(frozen=True)
class PrimaryConfig:
    base_url: str = ""
    api_key_env: str = ""
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0
    max_connections: int = 1000

    def validate(self) -> None:
        if not self.base_url:
            raise ConfigError(
                "[primary] base_url is missing: expected the primary's OpenAI-compatible base URL, "
                "for example 'http://127.0.0.1:9000/v1'"
            )
        _check_http_url("[primary] base_url", self.base_url)
        _check_env_name("[primary] api_key_env", self.api_key_env)
        _check_range("[primary] connect_timeout_s", self.connect_timeout_s, 0.001)
        _check_range("[primary] read_timeout_s", self.read_timeout_s, 0.001)
        _check_range("[primary] max_connections", self.max_connections, 1)

    def api_key(self) -> str | None:
        """The configured primary key, read from the environment; None when not configured."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ConfigError(
                f"[primary] api_key_env = {self.api_key_env!r}: that environment variable is not set"
            )
        return value


@dataclass(frozen=True)
class StoreConfig:
    path: str = "shadowtap.db"
    queue_size: int = 10_000
    batch_size: int = 200
    flush_interval_ms: int = 100
    max_capture_body_bytes: int = 4 * 1024 * 1024
    hash_client_keys: bool = True
    capture_all_endpoints: bool = False

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("[store] path = '': expected a file path for the SQLite capture store")
        _check_range("[store] queue_size", self.queue_size, 1)
        _check_range("[store] batch_size", self.batch_size, 1, 10_000)
        _check_range("[store] flush_interval_ms", self.flush_interval_ms, 1, 60_000)
        _check_range("[store] max_capture_body_bytes", self.max_capture_body_bytes, 0)


@dataclass(frozen=True)
class RedactionConfig:
    emails: bool = True
    phones: bool = True
    card_numbers: bool = True
    patterns: list[str] = field(default_factory=list)
    replacement: str = "[REDACTED:{kind}]"

    def validate(self) -> None:
        for index, pattern in enumerate(self.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"[redaction] patterns[{index}] = {pattern!r}: not a valid regular expression ({exc})"
                ) from None


@dataclass(frozen=True)
class ShadowtapConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    primary: PrimaryConfig = field(default_factory=PrimaryConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    source: str = "<defaults>"

    def validate(self) -> None:
        for section in (self.server, self.primary, self.store, self.redaction):
            section.validate()

    def with_overrides(self, **server_overrides: object) -> ShadowtapConfig:
        """A copy with `[server]` keys replaced (for --host/--port), validated again."""
        changes = {key: value for key, value in server_overrides.items() if value is not None}
        server = dataclasses.replace(self.server, **changes)
        updated = dataclasses.replace(self, server=server)
        updated.validate()
        return updated


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "primary": PrimaryConfig,
    "store": StoreConfig,
    "redaction": RedactionConfig,
}


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
    sections: dict[str, object] = {}
    for name, value in raw.items():
        section_type = _SECTIONS.get(name)
        if section_type is None:
            raise ConfigError(
                f"unknown section [{name}]: expected one of {', '.join(f'[{s}]' for s in _SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table, got {_describe(value)}")
        sections[name] = _build_section(name, section_type, value)
    config = ShadowtapConfig(**sections, source=source)
    config.validate()
    return config


def _build_section(name: str, section_type: type, values: dict) -> object:
    hints = typing.get_type_hints(section_type)
    known = {f.name for f in dataclasses.fields(section_type)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"[{name}] {key}: unknown key; accepted keys are {', '.join(sorted(known))}"
            )
        kwargs[key] = _coerce(f"[{name}] {key}", value, hints[key])
    return section_type(**kwargs)


def _coerce(key: str, value: object, expected: object) -> object:
    """Check a TOML value against a field's annotation; ints are accepted where floats are."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(expected) if option is not type(None)]
        return _coerce(key, value, options[0])
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"{key} = {value!r}: expected a list of {item_type.__name__}")
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
