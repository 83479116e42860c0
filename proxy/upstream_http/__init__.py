"""A lean HTTP/1.1 client for the live path: pooled keep-alive connections to the configured
origins, request bytes as given, the answer's raw status, headers and body chunks as they arrive.

Built on asyncio Protocols and httptools because aiohttp's general client (request and response
objects, timers, auto headers, stream readers, payload writers) was the largest single share of the
live process's CPU; the live path needs none of that. See docs/live-path.md.
"""

from shadowtap.proxy.upstream_http.errors import (
    BodyBrokeOff,
    BodyTimedOut,
    ConnectFailed,
    ConnectionClosed,
    InvalidResponse,
    ReadTimeout,
    UpstreamHTTPError,
)
from shadowtap.proxy.upstream_http.origin import Origin, RequestTarget
from shadowtap.proxy.upstream_http.pool import ConnectionPool
from shadowtap.proxy.upstream_http.response import UpstreamResponse

__all__ = ["BodyBrokeOff", "BodyTimedOut", "ConnectFailed", "ConnectionClosed", "ConnectionPool", "InvalidResponse",
           "Origin", "ReadTimeout", "RequestTarget", "UpstreamHTTPError", "UpstreamResponse"]
