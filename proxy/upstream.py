"""The primary upstream client: one pooled aiohttp session that relays bytes untouched.

aiohttp rather than httpx because, measured here, it costs about a fifth of the CPU per streamed
request; the live path's budget is a fraction of a millisecond.
"""

from __future__ import annotations

import errno

import aiohttp
from yarl import URL

from shadowtap.core.config import PrimaryConfig
from shadowtap.core.errors import ProxyOverloaded, UpstreamTimeout, UpstreamUnreachable

# aiohttp would otherwise add its own values; the primary must see what the client sent.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# Errors of this machine, not of the primary: no file descriptor, socket buffer or memory left
# for a new connection. They must never be recorded as the primary failing.
_LOCAL_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _local_exhaustion(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in _LOCAL_RESOURCE_ERRNOS


class PrimaryClient:
    """Sends requests to the configured primary; the URL never comes from the request."""

    def __init__(self, config: PrimaryConfig) -> None:
        self._config = config
        self._base = config.base_url.rstrip("/")
        origin = URL(self._base)
        self._scheme, self._authority = origin.scheme, origin.raw_authority
        self._base_path = origin.raw_path.rstrip("/")
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

    def url_for(self, path_after_v1: str, query: bytes) -> URL:
        """The configured origin and base path, extended by a suffix that `upstream_suffix`
        checked; built from parts, so no byte of the request can become a host or user info."""
        return URL.build(scheme=self._scheme, authority=self._authority,
                         path=self._base_path + path_after_v1, query_string=query.decode("latin-1"),
                         encoded=True)

    async def send(self, method: str, url: URL, headers: list[tuple[str, str]],
                   body: bytes | memoryview) -> aiohttp.ClientResponse:
        """Start the request and return once the primary's status and headers arrive."""
        assert self._session is not None, "PrimaryClient.start() was not awaited"
        try:
            return await self._session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            if _local_exhaustion(exc.os_error):
                raise self._overloaded(exc.os_error) from None
            raise UpstreamUnreachable(
                f"could not connect to the primary upstream at {self._base}: {exc.os_error.strerror or exc}"
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"the primary upstream at {self._base} did not answer in time") from None
        except aiohttp.ClientError as exc:
            if _local_exhaustion(exc):
                raise self._overloaded(exc) from None
            raise UpstreamUnreachable(
                f"the primary upstream at {self._base} failed before answering: {type(exc).__name__}: {exc}"
            ) from None
        except OSError as exc:
            if _local_exhaustion(exc):
                raise self._overloaded(exc) from None
            raise

    def _overloaded(self, error: BaseException) -> ProxyOverloaded:
        return ProxyOverloaded(f"shadowtap itself is out of resources ({getattr(error, 'strerror', None) or error}); "
                               f"the request was not sent to the primary at {self._base}, which is not at fault. "
                               "Lower [server] max_connections or raise the open-file limit (ulimit -n)")
