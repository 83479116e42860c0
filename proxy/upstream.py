"""The primary upstream client: one pooled aiohttp session that relays bytes untouched.

aiohttp rather than httpx because, measured here, it costs about a fifth of the CPU per streamed
request; the live path's budget is a fraction of a millisecond.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import aiohttp
from yarl import URL

from shadowtap.core.config import PrimaryConfig
from shadowtap.core.errors import ConfigError, ProxyOverloaded, UpstreamTimeout, UpstreamUnreachable

# aiohttp would otherwise add its own values; the primary must see what the client sent.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# Errors of this machine, not of the primary: no file descriptor, socket buffer or memory left
# for a new connection. They must never be recorded as the primary failing.
_LOCAL_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _local_exhaustion(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in _LOCAL_RESOURCE_ERRNOS


@dataclass(frozen=True)
class _Origin:
    """One configured primary URL, split once so per-request URLs are built from parts."""

    display: str
    scheme: str
    authority: str
    base_path: str

    @classmethod
    def of(cls, base_url: str) -> _Origin:
        origin = URL(base_url)
        return cls(base_url, origin.scheme, origin.raw_authority, origin.raw_path.rstrip("/"))


class PrimaryClient:
    """Sends requests to the configured primary; the URL never comes from the request.

    Two primaries may be configured: `base_url` for OpenAI-style paths and `anthropic_base_url`
    (the origin the Anthropic SDK calls, without /v1) for Anthropic Messages; with only one, every
    path goes to it."""

    def __init__(self, config: PrimaryConfig) -> None:
        self._config = config
        openai = _Origin.of(config.base_url.rstrip("/")) if config.base_url else None
        anthropic = (_Origin.of(config.anthropic_base_url.rstrip("/") + "/v1")
                     if config.anthropic_base_url else None)
        first = openai or anthropic
        if first is None:
            raise ConfigError("[primary] base_url is missing (and so is anthropic_base_url)")
        self._origins = {"openai": first, "anthropic": anthropic or first}
        self._base = first.display
        # Anthropic takes a key as x-api-key; a base_url that also serves /v1/messages (a gateway)
        # keeps getting it as a bearer token, as before anthropic_base_url existed.
        self._key_headers = {"openai": "authorization", "anthropic": "x-api-key" if anthropic else "authorization"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._base

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._config.max_connections, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._config.connect_timeout_s,
            sock_read=self._config.read_timeout_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,              # relay compressed bytes as sent
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
            skip_auto_headers=_NO_AUTO_HEADERS,
            trust_env=False,                    # upstream URLs come only from config
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, path_after_v1: str, query: bytes, upstream: str = "openai") -> URL:
        """The configured origin and base path of `upstream` ("openai" or "anthropic", from the
        request's dialect), extended by a suffix that `upstream_suffix` checked; built from parts,
        so no byte of the request can become a host or user info."""
        origin = self._origins[upstream]
        return URL.build(scheme=origin.scheme, authority=origin.authority,
                         path=origin.base_path + path_after_v1, query_string=query.decode("latin-1"),
                         encoded=True)

    def key_header(self, upstream: str) -> str:
        """The header `[primary] api_key_env`'s key goes in, for requests to `upstream`."""
        return self._key_headers[upstream]

    def _named(self, url: URL) -> str:
        """The configured base URL a request went to, for error messages."""
        for origin in self._origins.values():
            if origin.authority == url.raw_authority and url.raw_path.startswith(origin.base_path):
                return origin.display
        return self._base

    async def send(self, method: str, url: URL, headers: list[tuple[str, str]],
                   body: bytes | memoryview) -> aiohttp.ClientResponse:
        """Start the request and return once the primary's status and headers arrive."""
        assert self._session is not None, "PrimaryClient.start() was not awaited"
        base = self._named(url)
        try:
            return await self._session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            if _local_exhaustion(exc.os_error):
                raise self._overloaded(exc.os_error, base) from None
            raise UpstreamUnreachable(
                f"could not connect to the primary upstream at {base}: {exc.os_error.strerror or exc}"
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"the primary upstream at {base} did not answer in time") from None
        except aiohttp.ClientError as exc:
            if _local_exhaustion(exc):
                raise self._overloaded(exc, base) from None
            raise UpstreamUnreachable(
                f"the primary upstream at {base} failed before answering: {type(exc).__name__}: {exc}"
            ) from None
        except OSError as exc:
            if _local_exhaustion(exc):
                raise self._overloaded(exc, base) from None
            raise

    @staticmethod
    def _overloaded(error: BaseException, base: str) -> ProxyOverloaded:
        return ProxyOverloaded(f"shadowtap itself is out of resources ({getattr(error, 'strerror', None) or error}); "
                               f"the request was not sent to the primary at {base}, which is not at fault. "
                               "Lower [server] max_connections or raise the open-file limit (ulimit -n)")
