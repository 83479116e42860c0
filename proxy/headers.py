"""Which headers cross the proxy, which are metadata for shadowtap, and which are secrets."""

from __future__ import annotations

from shadowtap.core.secrets import name_suggests_credential

# RFC 9110 §7.6.1 connection-specific headers, plus the ones the proxy recomputes itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
    b"trailer", b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"content-length"}

# Values that are never written anywhere: store, logs, errors. Beyond these, any header whose name
# suggests a credential (`name_suggests_credential`: `x-client-credential`, `x-amz-security-token`...).
SECRET_HEADERS = frozenset({
    b"authorization", b"proxy-authorization", b"api-key", b"x-api-key", b"cookie",
    b"set-cookie", b"x-goog-api-key", b"x-shadowtap-key",
})
# Not credentials, but they name the account a key bills to (and the primary echoes them in its
# answer), so they stay out of the store like one; `client_key_hash` groups traffic instead.
ACCOUNT_HEADERS = frozenset({b"openai-organization", b"openai-project", b"anthropic-organization-id"})
# Neither credentials nor account names, but forwarded and never stored all the same: which API
# version and beta features an account uses. (No header of the client's reaches a candidate.)
_NOT_STORED = frozenset({b"anthropic-version", b"anthropic-beta"})
# Where a client sends its provider key; dropped when the proxy sends its own key instead.
_KEY_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key"})

SHADOWTAP_PREFIX = b"x-shadowtap-"
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})  # values that name no other header


def is_secret_header(name: bytes) -> bool:
    """True for credentials by name, account identifiers, or anything whose name suggests a
    credential. `name` is lower-case, as ASGI servers deliver header names."""
    return (name in SECRET_HEADERS or name in ACCOUNT_HEADERS
            or name_suggests_credential(name.decode("latin-1")))


def connection_options(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in `Connection`: hop-by-hop for this one connection (RFC 9110 §7.6.1)."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(token.strip().lower() for token in value.split(b","))
    return frozenset(listed)


def forwardable_request_headers(
    headers: list[tuple[bytes, bytes]], *, replace_authorization: str | None, key_header: str = "authorization"
) -> list[tuple[str, str]]:
    """Client headers to send to the primary: no hop-by-hop (including those the client's
    `Connection` names), no Host, no x-shadowtap-*.

    With `replace_authorization`, the client's own credentials are dropped and the configured
    primary key is sent instead: as a bearer token, or as `x-api-key` (`key_header`) to Anthropic.
    """
    forwarded = []
    names_others = False
    for name, value in headers:
        if name in _NOT_FORWARDED or name.startswith(SHADOWTAP_PREFIX):
            if name == b"connection" and value.lower() not in _PLAIN_CONNECTION:
                names_others = True
            continue
        if replace_authorization is not None and name in _KEY_HEADERS:
            continue
        forwarded.append((name.decode("latin-1"), _as_sent(value)))
    if names_others:
        # Rare beyond `keep-alive`/`close`, so handled after the loop, not on every header.
        listed = {name.decode("latin-1") for name in connection_options(headers) - _NOT_FORWARDED}
        if listed:
            forwarded = [(name, value) for name, value in forwarded if name not in listed]
    if replace_authorization is not None:
        key = f"Bearer {replace_authorization}" if key_header == "authorization" else replace_authorization
        forwarded.append((key_header, key))
    return forwarded


def _as_sent(value: bytes) -> str:
    """The text aiohttp will encode back to these bytes: it writes header values as UTF-8, so a
    UTF-8 value arrives unchanged. Bytes that are not UTF-8 (obsolete Latin-1 text) cannot be
    sent as they were; they go as the UTF-8 of their Latin-1 reading rather than failing."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def relayable_response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The primary's response headers minus hop-by-hop ones (including those its `Connection`
    names); lengths and encodings are kept."""
    relayed = [(name.lower(), value) for name, value in headers if name.lower() not in HOP_BY_HOP]
    if len(relayed) < len(headers):  # something hop-by-hop was sent: did a Connection name more?
        listed = connection_options(headers) - HOP_BY_HOP
        if listed:
            relayed = [(name, value) for name, value in relayed if name not in listed]
    return relayed


def safe_header_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers as a dict for the store, with every secret value removed (not masked)."""
    safe: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if is_secret_header(name) or name in HOP_BY_HOP or name in _NOT_STORED:
            continue
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        safe[key] = f"{safe[key]}, {text}" if key in safe else text
    return safe


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
