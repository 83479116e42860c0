"""Config sections for the live path: [server], [primary], [store], [redaction]."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from shadowtap.core.config.checks import check_env_name, check_http_url, check_range
from shadowtap.core.errors import ConfigError

_LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_WORKERS = 64


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
    workers: int = 1
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    max_connections: int = 2048

    def validate(self) -> None:
        check_range("[server] port", self.port, 0, 65535)
        check_range("[server] max_body_bytes", self.max_body_bytes, 1)
        check_env_name("[server] client_keys_env", self.client_keys_env)
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(
                f"[server] log_level = {self.log_level!r}: expected one of {', '.join(_LOG_LEVELS)}"
            )
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"[server] log_format = {self.log_format!r}: expected 'json' or 'text'")
        check_range("[server] graceful_shutdown_s", self.graceful_shutdown_s, 0)
        check_range("[server] workers", self.workers, 1, MAX_WORKERS)
        check_range("[server] header_timeout_s", self.header_timeout_s, 0.001)
        check_range("[server] body_timeout_s", self.body_timeout_s, 0.001)
        check_range("[server] max_header_bytes", self.max_header_bytes, 1024)
        check_range("[server] max_header_count", self.max_header_count, 1)
        check_range("[server] max_connections", self.max_connections, 1)


@dataclass(frozen=True)
class PrimaryConfig:
    base_url: str = ""
    anthropic_base_url: str = ""      # where /v1/messages goes, e.g. https://api.anthropic.com
    api_key_env: str = ""
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0
    max_connections: int = 1000

    def validate(self) -> None:
        if not self.base_url and not self.anthropic_base_url:
            raise ConfigError(
                "[primary] base_url is missing: expected the primary's OpenAI-compatible base URL, "
                "for example 'http://127.0.0.1:9000/v1', or anthropic_base_url for an Anthropic "
                "Messages primary, for example 'https://api.anthropic.com'"
            )
        if self.base_url:
            check_http_url("[primary] base_url", self.base_url)
        if self.anthropic_base_url:
            check_http_url("[primary] anthropic_base_url", self.anthropic_base_url)
        check_env_name("[primary] api_key_env", self.api_key_env)
        check_range("[primary] connect_timeout_s", self.connect_timeout_s, 0.001)
        check_range("[primary] read_timeout_s", self.read_timeout_s, 0.001)
        check_range("[primary] max_connections", self.max_connections, 1)

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
    queue_max_bytes: int = 256 * 1024 * 1024
    batch_size: int = 200
    flush_interval_ms: int = 100
    max_capture_body_bytes: int = 4 * 1024 * 1024
    hash_client_keys: bool = True
    capture_all_endpoints: bool = False

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("[store] path = '': expected a file path for the SQLite capture store")
        check_range("[store] queue_size", self.queue_size, 1)
        check_range("[store] queue_max_bytes", self.queue_max_bytes, 1)
        check_range("[store] batch_size", self.batch_size, 1, 10_000)
        check_range("[store] flush_interval_ms", self.flush_interval_ms, 1, 60_000)
        check_range("[store] max_capture_body_bytes", self.max_capture_body_bytes, 0)


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
