"""Calling a candidate live: its `api_base` in the request's own dialect, the app's body with `model`
swapped, the candidate's key (never the client's).

Each candidate gets its own pooled upstream client, the primary's machinery (`PrimaryClient`) given the
candidate's `api_base` as its base URL: the URL is built from config, never from the request, and the
`api_base` was checked by the config (http(s) only, no link-local address unless allowed).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from shadowtap.core.config import CandidateConfig, PrimaryConfig
from shadowtap.core.config.canary import CandidateCanaryConfig
from shadowtap.proxy.dialects import Dialect
from shadowtap.proxy.headers import forwardable_request_headers, is_secret_header
from shadowtap.proxy.upstream import PrimaryClient
from shadowtap.proxy.upstream_http import RequestTarget, UpstreamResponse

log = logging.getLogger("shadowtap.canary")

# Connections to one candidate: a canary serves a slice of traffic, never all of it.
_MAX_CONNECTIONS = 256


def upstream_model(candidate: CandidateConfig, rules: CandidateCanaryConfig) -> str:
    """The model name sent to `api_base`: `upstream_model`, else the part of `model` after its first "/"."""
    return rules.upstream_model or candidate.model.partition("/")[2]


def with_model(body: bytes | bytearray, model: str) -> tuple[bytes, dict] | None:
    """The app's JSON request with only `model` replaced, as bytes and parsed; None when the body
    is not a JSON object.

    The standard library, not orjson: integers beyond 64 bits and NaN must reach the candidate as
    the app wrote them, as they reach the primary."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(request, dict):
        return None
    request.pop("shadowtap", None)
    request["model"] = model
    try:
        encoded = json.dumps(request, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode()
    except UnicodeEncodeError:  # a lone surrogate escape: send it escaped, as the app did
        encoded = json.dumps(request, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode()
    return encoded, request


def candidate_headers(client_headers: list[tuple[bytes, bytes]], key: str | None,
                      dialect: Dialect) -> list[tuple[str, str]]:
    """The app's headers a candidate may see (content type, API version...), none that is a credential
    or names the app's account, plus the candidate's own key where the dialect's API expects it."""
    headers = [(name, value) for name, value in forwardable_request_headers(client_headers, replace_authorization=None)
               if not is_secret_header(name.lower().encode("latin-1"))]
    if key:
        if dialect.upstream == "anthropic":
            headers.append(("x-api-key", key))
        else:
            headers.append(("authorization", f"Bearer {key}"))
    return headers


@dataclass
class CandidateTarget:
    """One candidate that can answer live requests."""

    name: str
    rules: CandidateCanaryConfig
    model: str
    key: str | None
    client: PrimaryClient

    @classmethod
    def of(cls, candidate: CandidateConfig) -> CandidateTarget | None:
        """None (logged) when the key it is configured with is not in the environment."""
        rules = candidate.canary
        assert rules is not None
        key_env = rules.api_key_env or candidate.api_key_env
        key = os.environ.get(key_env) if key_env else None
        if key_env and not key:
            log.error("canary candidate cannot serve: its key's environment variable is not set",
                      extra={"candidate": candidate.name, "api_key_env": key_env})
            return None
        config = PrimaryConfig(base_url=candidate.api_base, connect_timeout_s=min(10.0, rules.timeout_s),
                               read_timeout_s=rules.timeout_s, max_connections=_MAX_CONNECTIONS)
        return cls(candidate.name, rules, upstream_model(candidate, rules), key, PrimaryClient(config))

    def url_for(self, suffix: str, query: bytes) -> RequestTarget:
        return self.client.url_for(suffix, query)

    async def send(self, method: str, url: RequestTarget, headers: list[tuple[str, str]],
                   body: bytes) -> UpstreamResponse:
        return await self.client.send(method, url, headers, body)
