"""The primary upstream client: pooled keep-alive connections that relay bytes untouched.

Our own small HTTP/1.1 client (`proxy/upstream_http/`, asyncio Protocols and httptools) rather than
aiohttp's: measured here, aiohttp's client was the largest single share of the live process's CPU
(about 35-40 %), and the live path needs none of what that buys (cookies, redirects, decompression,
auto headers). aiohttp had replaced httpx for the same reason, at about a fifth of its CPU per
streamed request. The shadow worker still uses aiohttp (proxy/shadow/direct.py).
"""

from __future__ import annotations

import errno
import ssl

from shadowtap.core.config import PrimaryConfig
from shadowtap.core.errors import ConfigError, ProxyOverloaded, UpstreamTimeout, UpstreamUnreachable
from shadowtap.proxy.upstream_http import (
    ConnectFailed,
    ConnectionPool,
    Origin,
    RequestTarget,
    UpstreamHTTPError,
    UpstreamResponse,
)

# Errors of this machine, not of the primary: no file descriptor, socket buffer or memory left
# for a new connection. They must never be recorded as the primary failing.
_LOCAL_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _local_exhaustion(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in _LOCAL_RESOURCE_ERRNOS


class PrimaryClient:
    """Sends requests to the configured primary; the URL never comes from the request.

    Two primaries may be configured: `base_url` for OpenAI-style paths and `anthropic_base_url`
    (the origin the Anthropic SDK calls, without /v1) for Anthropic Messages; with only one, every
    path goes to it. Only `Host` and `Content-Length` are added to the client's headers; the answer
    is relayed as sent (no decompression), with no cookies kept and no redirect followed."""

    def __init__(self, config: PrimaryConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._ssl_context = ssl_context  # None: the default context, which verifies certificates
        openai = Origin.parse(config.base_url.rstrip("/")) if config.base_url else None
        anthropic = (Origin.parse(config.anthropic_base_url.rstrip("/") + "/v1")
                     if config.anthropic_base_url else None)
        first = openai or anthropic
        if first is None:
            raise ConfigError("[primary] base_url is missing (and so is anthropic_base_url)")
        self._origins = {"openai": first, "anthropic": anthropic or first}
        self._base = first.display
        # Anthropic takes a key as x-api-key; a base_url that also serves /v1/messages (a gateway)
        # keeps getting it as a bearer token, as before anthropic_base_url existed.
        self._key_headers = {"openai": "authorization", "anthropic": "x-api-key" if anthropic else "authorization"}
        self._pool: ConnectionPool | None = None

    @property
    def base_url(self) -> str:
        return self._base

    async def start(self) -> None:
        self._pool = ConnectionPool(max_connections=self._config.max_connections,
                                    connect_timeout_s=self._config.connect_timeout_s,
                                    read_timeout_s=self._config.read_timeout_s, ssl_context=self._ssl_context)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def url_for(self, path_after_v1: str, query: bytes, upstream: str = "openai") -> RequestTarget:
        """The configured origin and base path of `upstream` ("openai" or "anthropic", from the
        request's dialect), extended by a suffix that `upstream_suffix` checked; built from parts,
        so no byte of the request can become a host or user info."""
        return RequestTarget.of(self._origins[upstream], path_after_v1, query)

    def key_header(self, upstream: str) -> str:
        """The header `[primary] api_key_env`'s key goes in, for requests to `upstream`."""
        return self._key_headers[upstream]

    async def send(self, method: str, url: RequestTarget, headers: list[tuple[str, str]],
                   body: bytes | bytearray | memoryview) -> UpstreamResponse:
        """Start the request and return once the primary's status and headers arrive."""
        assert self._pool is not None, "PrimaryClient.start() was not awaited"
        base = url.origin.display
        try:
            return await self._pool.request(method, url, headers, body)
        except ConnectFailed as exc:
            if _local_exhaustion(exc.os_error):
                raise self._overloaded(exc.os_error, base) from None
            raise UpstreamUnreachable(f"could not connect to the primary upstream at {base}: {exc}") from None
        except TimeoutError:  # no connection within connect_timeout_s, or no byte within read_timeout_s
            raise UpstreamTimeout(f"the primary upstream at {base} did not answer in time") from None
        except UpstreamHTTPError as exc:
            raise UpstreamUnreachable(
                f"the primary upstream at {base} failed before answering: {type(exc).__name__}: {exc}"
            ) from None

    @staticmethod
    def _overloaded(error: BaseException, base: str) -> ProxyOverloaded:
        return ProxyOverloaded(f"shadowtap itself is out of resources ({getattr(error, 'strerror', None) or error}); "
                               f"the request was not sent to the primary at {base}, which is not at fault. "
                               "Lower [server] max_connections or raise the open-file limit (ulimit -n)")
