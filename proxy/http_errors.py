"""OpenAI-style JSON error responses that the proxy itself produces (never a traceback)."""

from __future__ import annotations

import orjson

from shadowtap.proxy.exchange import RawExchange


def error_body(message: str, *, type_: str, code: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


async def send_error(send, status: int, message: str, *, type_: str, code: str,
                     exchange_id: str | None = None) -> bytes:
    """Send a complete JSON error response and return its body (for capture)."""
    body = error_body(message, type_=type_, code=code)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exchange_id:
        headers.append((b"x-shadowtap-exchange-id", exchange_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return body


def record_proxy_error(exchange: RawExchange, status: int, body: bytes, reason: str) -> None:
    """Fill a raw exchange with the error the proxy answered itself."""
    exchange.status = status
    exchange.response_headers = [(b"content-type", b"application/json")]
    exchange.response_chunks = [body]
    exchange.upstream_error = reason
