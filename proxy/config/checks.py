"""Value checks shared by the config sections; each raises ConfigError naming key, value and what is accepted."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from proxy.errors import ConfigError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(key: str, value: str) -> None:
    if value and not _ENV_NAME.match(value):
        raise ConfigError(
            f"{key} = {value!r}: expected the NAME of an environment variable "
            "(letters, digits, underscores); secrets are never written in the config file"
        )


def check_http_url(key: str, value: str) -> None:
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


def check_range(key: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        accepted = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key} = {value!r}: expected a number {accepted}")




_METADATA_HOSTS = {"metadata.google.internal", "metadata", "metadata.azure.internal"}


def check_not_link_local(key: str, url: str, allowed: bool) -> None:
    """Refuse cloud-metadata and link-local targets (169.254.0.0/16, fe80::/10) unless allowed:
    a config that sends model traffic there is far more likely a mistake or an attack."""
    if allowed:
        return
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host in _METADATA_HOSTS or (address is not None and address.is_link_local):
        raise ConfigError(f"{key} = {url!r}: a link-local or cloud-metadata address; set "
                          "allow_private_network = true beside it if this is really intended")
