"""What can go wrong between the proxy and an upstream, as the upstream HTTP client reports it.

    UpstreamHTTPError
    ├── ConnectFailed        no connection could be opened (`os_error` says why)
    ├── ConnectionClosed     the upstream closed the connection before its answer's headers
    ├── InvalidResponse      the upstream's bytes are not an HTTP/1.1 response
    ├── ReadTimeout          no byte for read_timeout_s while waiting for the headers (also a TimeoutError)
    └── BodyBrokeOff         the answer's headers came, then its body ended early
        └── BodyTimedOut         ... because no byte came for read_timeout_s (also a TimeoutError)

`proxy/upstream.py` turns the ones raised before the headers into shadowtap's UpstreamError kinds;
the relay treats BodyBrokeOff as a truncated answer.
"""

from __future__ import annotations


class UpstreamHTTPError(Exception):
    """Base class for the upstream client's errors."""


class ConnectFailed(UpstreamHTTPError):
    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.strerror or str(os_error) or type(os_error).__name__)
        self.os_error = os_error


class ConnectionClosed(UpstreamHTTPError):
    pass


class InvalidResponse(UpstreamHTTPError):
    pass


class ReadTimeout(UpstreamHTTPError, TimeoutError):
    pass


class BodyBrokeOff(UpstreamHTTPError):
    pass


class BodyTimedOut(BodyBrokeOff, TimeoutError):
    pass
