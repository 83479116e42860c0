"""Value checks shared by the config sections; each raises ConfigError naming key, value and what is accepted."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from shadowtap.core.errors import ConfigError

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
    # `not low <= value` rather than `value < low`: TOML allows nan, and every comparison with nan is False.
    if not low <= value or (high is not None and not value <= high):
        accepted = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key} = {value!r}: expected a number {accepted}")



# Hosts that answer with instance credentials on some cloud. Addresses are matched as addresses
# (so every spelling of 169.254.169.254 is caught), names as names, with or without a final dot.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.azure.internal",
                             "instance-data", "instance-data.ec2.internal"})
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"))
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL host names, in any spelling the resolver accepts ("0xa9.0xfe.0xa9.0xfe",
    "2852039166", "[::ffff:169.254.169.254]"); None for a DNS name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not host or ":" in host or not all(part.isalnum() for part in host.split(".")):
            return None
        try:
            address = ipaddress.ip_address(socket.inet_aton(host))  # legacy shorthand the OS also accepts
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_not_link_local(key: str, url: str, allowed: bool) -> None:
    """Refuse cloud-metadata and link-local targets (169.254.0.0/16, fe80::/10, fd00:ec2::254...)
    unless allowed: a config that sends model traffic there is far more likely a mistake or an attack."""
    if allowed:
        return
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    address = parse_host_address(host)
    if host in _METADATA_HOSTS or (address is not None and (address.is_link_local or address in _METADATA_ADDRESSES)):
        raise ConfigError(f"{key} = {url!r}: a link-local or cloud-metadata address; set "
                          "allow_private_network = true beside it if this is really intended")


def check_not_proxy_itself(key: str, url: str, listen_host: str, listen_port: int) -> None:
    """Refuse a model URL that is shadowtap's own listening address: every call would come back in as
    a live request and be mirrored again, without end. No flag allows it; there is no good use."""
    if not listen_port:
        return  # an ephemeral port is unknown until bound
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # check_http_url reports malformed ports
    if port != listen_port:
        return
    host = (parts.hostname or "").lower().rstrip(".")
    listen = listen_host.lower().strip("[]")
    address, listen_address = parse_host_address(host), parse_host_address(listen)
    same = host == listen or (address is not None and address == listen_address)
    local = host in _LOOPBACK_NAMES or (address is not None and (address.is_loopback or str(address) in _ANY_ADDRESS))
    listens_locally = listen in _ANY_ADDRESS or listen in _LOOPBACK_NAMES or (
        listen_address is not None and listen_address.is_loopback)
    if same or (local and listens_locally):
        raise ConfigError(f"{key} = {url!r}: that is shadowtap's own address ([server] host = {listen_host!r}, "
                          f"port = {listen_port}); requests would loop back through the proxy. Point it at the "
                          "model's own URL")
