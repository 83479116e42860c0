"""[store] (where captures go: the SQLite spool, and the shared PostgreSQL store they are shipped
to) and [export.otlp] (OpenTelemetry export of exchanges, shadow calls and scores)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shadowtap.core.config.checks import check_env_name, check_http_url, check_range
from shadowtap.core.config.live import StoreConfig as LiveStoreConfig
from shadowtap.core.errors import ConfigError
from shadowtap.core.store.targets import is_postgres_url, safe_url


@dataclass(frozen=True)
class StoreConfig(LiveStoreConfig):
    """The live path's keys (core/config/live.py) plus the shared store's."""

    url: str = ""              # postgresql://... : the shared store `shadowtap ship` copies the spool into
    url_env: str = ""          # or the environment variable that holds that URL (for credentials)
    retention_days: int = 0    # the shipper prunes shared exchanges older than this; 0 keeps everything
    spool_keep_hours: float = 0  # the shipper prunes its spool of rows shipped and older than this; 0 keeps all
    key_hash_salt_env: str = ""  # variable holding the client-key salt all replicas share; "": each store's own

    def validate(self) -> None:
        super().validate()
        if self.url and self.url_env:
            raise ConfigError(f"[store] url = {safe_url(self.url)!r} and url_env = {self.url_env!r}: set one of "
                              "them, not both")
        if self.url:
            _check_postgres_url("[store] url", self.url)
        check_env_name("[store] url_env", self.url_env)
        check_range("[store] retention_days", self.retention_days, 0)
        check_range("[store] spool_keep_hours", self.spool_keep_hours, 0)
        check_env_name("[store] key_hash_salt_env", self.key_hash_salt_env)

    def read_target(self, override: str | None = None) -> str:
        """What the offline commands open: `override` (--store), else the shared store when one is
        configured, else the SQLite file at `path`."""
        return override or self.shared_url() or self.path

    def shared_url(self) -> str | None:
        """The shared store's URL ([store] url, or the variable [store] url_env names); None if neither."""
        if self.url:
            return self.url
        if not self.url_env:
            return None
        value = os.environ.get(self.url_env)
        if not value:
            raise ConfigError(f"[store] url_env = {self.url_env!r}: that environment variable is not set")
        if not is_postgres_url(value):
            raise ConfigError(f"[store] url_env = {self.url_env!r}: expected a postgresql:// URL in it, got "
                              f"{safe_url(value)!r}")
        return value


    def key_hash_salt(self) -> bytes | None:
        """The salt of `client_key_hash` shared by every replica: the hex in the variable
        [store] key_hash_salt_env names. None without that key: then each store's own salt
        (`store_meta`) is used, and one client key hashes differently on two replicas. The
        message of an error names the variable, never its value."""
        if not self.key_hash_salt_env:
            return None
        value = os.environ.get(self.key_hash_salt_env, "").strip()
        key = f"[store] key_hash_salt_env = {self.key_hash_salt_env!r}"
        if not value:
            raise ConfigError(f"{key}: that environment variable is not set")
        try:
            salt = bytes.fromhex(value)
        except ValueError:
            raise ConfigError(f"{key}: expected hex digits in it (make one with `openssl rand -hex 32`)") from None
        if len(salt) < MIN_KEY_HASH_SALT_BYTES:
            raise ConfigError(f"{key}: expected at least {2 * MIN_KEY_HASH_SALT_BYTES} hex digits in it, got "
                              f"{len(value)} (make one with `openssl rand -hex 32`)")
        return salt


# A shared salt shorter than this would let someone with the hashes guess short keys' salts.
MIN_KEY_HASH_SALT_BYTES = 16


def _check_postgres_url(key: str, url: str) -> None:
    if not is_postgres_url(url):
        raise ConfigError(f"{key} = {safe_url(url)!r}: expected a postgresql:// URL, for example "
                          "'postgresql://shadowtap@db.internal:5432/shadowtap' ([store] path is the SQLite file)")
    if ":" in url.split("://", 1)[1].rpartition("@")[0]:
        raise ConfigError(f"{key} = {safe_url(url)!r}: a password may not be written in the config file; put the "
                          "whole URL in an environment variable and name it in [store] url_env")


# gen_ai.operation.name (OpenTelemetry GenAI semantic conventions) of each captured endpoint, as
# exported; an endpoint not listed exports under its own name.
GENAI_OPERATIONS = {"chat.completions": "chat", "responses": "chat", "anthropic.messages": "chat",
                    "completions": "text_completion", "embeddings": "embeddings"}


@dataclass(frozen=True)
class OtlpExportConfig:
    endpoint: str = ""             # OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318; empty: no export
    include_content: bool = False  # send prompts and answers (redacted) as span events
    service_name: str = "shadowtap"
    timeout_s: float = 10.0

    def validate(self) -> None:
        if self.endpoint:
            check_http_url("[export.otlp] endpoint", self.endpoint)
        if not self.service_name:
            raise ConfigError("[export.otlp] service_name = '': expected a name for the exporting service")
        check_range("[export.otlp] timeout_s", self.timeout_s, 0.1, 600)


@dataclass(frozen=True)
class ExportConfig:
    otlp: OtlpExportConfig = field(default_factory=OtlpExportConfig)

    def validate(self) -> None:
        self.otlp.validate()
