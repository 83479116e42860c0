"""The bytes of a request's line and headers, as HTTP/1.1 wants them and no more."""

from __future__ import annotations

from shadowtap.proxy.upstream_http.origin import RequestTarget

# Methods that carry no body by convention: they get no `Content-Length: 0` (as aiohttp sends them).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class InvalidHeader(ValueError):
    """A header name or value holds a line break: sent, it would become a header of its own."""


def request_head(method: str, target: RequestTarget, headers: list[tuple[str, str]], body_length: int) -> bytes:
    """Request line, `Host`, the given headers in their order, and `Content-Length` (for a body, or 0
    for a method that expects one). Values go as UTF-8. Nothing else is added: no User-Agent, Accept,
    Accept-Encoding or Content-Type of the client's own."""
    block = "\r\n".join([f"{name}: {value}" for name, value in headers])
    # One count instead of a check per header: every line break must be one this join put there.
    breaks = len(headers) - 1 if headers else 0
    if block.count("\n") != breaks or block.count("\r") != breaks:
        raise InvalidHeader("a request header holds a line break")
    if body_length or method not in _BODYLESS_METHODS:
        length = b"Content-Length: %d\r\n\r\n" % body_length
    else:
        length = b"\r\n"
    return b"".join((method.encode("ascii"), b" ", target.path_and_query, b" HTTP/1.1\r\nHost: ",
                     target.origin.host_header, b"\r\n", block.encode("utf-8"), b"\r\n" if headers else b"",
                     length))
