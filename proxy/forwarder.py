"""The live path: a pure-ASGI app that relays `/v1/*` to the primary and hands a copy to capture.

It does as little as possible per request: read the body, forward it, relay each chunk as it
arrives, note timestamps, and enqueue the raw exchange. It never waits for capture.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from time import perf_counter
from typing import Protocol

import orjson

from shadowtap.core.errors import ProxyOverloaded, UpstreamError, UpstreamTimeout
from shadowtap.proxy.client_disconnect import body_received, watch_for_disconnect
from shadowtap.proxy.dialects import OTHER, Dialect, dialect_for_path, upstream_for_path
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.headers import forwardable_request_headers, header_value, relayable_response_headers
from shadowtap.proxy.http_errors import error_body, record_proxy_error, send_error
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.upstream import PrimaryClient
from shadowtap.proxy.upstream_http import BodyBrokeOff, UpstreamResponse
from shadowtap.proxy.upstream_path import UnsafePath, upstream_suffix

log = logging.getLogger("shadowtap.proxy")

_SHADOWTAP_FIELD = b'"shadowtap"'


class ExchangeSink(Protocol):
    def submit(self, exchange: RawExchange) -> bool: ...


class ShadowSink(Protocol):
    def offer(self, exchange: RawExchange, body: dict | None, body_bytes: bytes | bytearray, *,
              serving: str | None = None) -> None: ...


class CanaryAssignment(Protocol):
    @property
    def candidate(self) -> str: ...


class CanaryHook(Protocol):
    """proxy/canary/serving.py's CanaryServing, as the forwarder uses it."""

    @property
    def running(self) -> bool: ...
    def assign(self, exchange: RawExchange, dialect: Dialect) -> CanaryAssignment | None: ...
    async def serve(self, assignment, exchange: RawExchange, dialect: Dialect, suffix: str, query: bytes,
                    send, relay, watcher) -> bool: ...


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def prepare_body(body: bytes | bytearray, *, parse: bool) -> tuple[bytes | bytearray, dict | None]:
    """The body to forward (the optional `shadowtap` field removed, otherwise the exact bytes) and,
    when asked for or needed, the parsed request without that field."""
    has_field = _SHADOWTAP_FIELD in body
    if not parse and not has_field:
        return body, None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if has_field:
        return _without_shadowtap_field(body, parsed)
    return body, parsed if isinstance(parsed, dict) else None


def _without_shadowtap_field(body: bytes | bytearray, parsed: object) -> tuple[bytes | bytearray, dict | None]:
    # The stdlib rewrites the forwarded body: orjson would turn integers beyond 64 bits into floats
    # and rejects NaN, and the primary must get every other value exactly as the app sent it.
    try:
        exact = json.loads(body)
    except (ValueError, RecursionError):
        return body, None
    if not isinstance(exact, dict) or "shadowtap" not in exact:
        return body, parsed if isinstance(parsed, dict) else None
    del exact["shadowtap"]
    if isinstance(parsed, dict):
        parsed.pop("shadowtap", None)
    try:
        forwarded = json.dumps(exact, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode()
    except UnicodeEncodeError:
        # A lone surrogate escape ("\ud800") is valid JSON but has no UTF-8 form: send the same
        # JSON with non-ASCII characters escaped, as the app did, and let the primary judge it.
        forwarded = json.dumps(exact, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode()
    return forwarded, parsed if isinstance(parsed, dict) else None


class PrimaryForwarder:
    """ASGI app for `/v1/*`: forwards to the primary, relays its answer, captures a copy."""

    def __init__(self, primary: PrimaryClient, sink: ExchangeSink, metrics: ProxyMetrics, *,
                 max_body_bytes: int, primary_api_key: str | None, shadows: ShadowSink | None = None,
                 body_timeout_s: float = 30.0, canary: CanaryHook | None = None) -> None:
        self._primary = primary
        self._canary = canary
        self._shadows = shadows
        self._sink = sink
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._primary_api_key = primary_api_key
        self._body_timeout_s = body_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        exchange = RawExchange(
            id=new_exchange_id(), started_at=time.time(), t_start=perf_counter(),
            method=scope["method"], path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            request_headers=scope["headers"], request_body=b"",
        )
        try:
            suffix = upstream_suffix(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape"))
        except UnsafePath as exc:
            await self._reject_unsafe_path(exchange, send, exc)
            return
        dialect = dialect_for_path(exchange.path)
        if exchange.method not in dialect.methods:
            await self._reject_method(exchange, send, dialect)
            return
        try:
            exchange.request_body = await self._read_body(scope, receive)
        except _BodyTooLarge:
            await self._reject_oversized(exchange, send)
            return
        except _ClientGone:
            return  # nothing was sent upstream; there is no exchange to record
        except TimeoutError:
            await self._reject_slow_body(exchange, send)
            return
        try:
            await self._forward(scope, receive, send, exchange, suffix, dialect)
        finally:
            exchange.t_end = perf_counter()
            self._metrics.observe_exchange(exchange)
            self._sink.submit(exchange)

    async def _read_body(self, scope, receive) -> bytes | bytearray:
        """The whole body, within `[server] body_timeout_s`."""
        declared = header_value(scope["headers"], b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise _BodyTooLarge
        reading = self._body_pieces(receive)
        if body_received(scope):
            return await reading  # already all here: nothing can stall, no timer to arm (about 3 µs)
        # One deadline for the whole body, not one per read: a client trickling a byte at a time
        # cannot keep the request open, and a fast one pays for a single timer.
        async with asyncio.timeout(self._body_timeout_s):
            return await reading

    async def _body_pieces(self, receive) -> bytes | bytearray:
        """Bytes when the body came in one piece, else a bytearray grown piece by piece.

        Never one large join: copying 20 MB at once holds the GIL for about 50 ms here (most of
        it faulting in fresh pages), and every other client waits that long."""
        body: bytes | bytearray = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            if len(body) + len(chunk) > self._max_body_bytes:
                raise _BodyTooLarge
            if not body:
                body = chunk
            elif chunk:
                if isinstance(body, bytes):
                    body = bytearray(body)
                body += chunk
            if not message.get("more_body", False):
                return body

    async def _reject_oversized(self, exchange: RawExchange, send) -> None:
        message = (f"Request body exceeds shadowtap's limit of {self._max_body_bytes} bytes "
                   "([server] max_body_bytes); it was not forwarded.")
        self._metrics.body_too_large.inc()
        log.warning("request body too large", extra={"exchange_id": exchange.id, "path": exchange.path})
        await self._reject_unread_body(exchange, send, 413, message, "request_too_large")

    async def _reject_slow_body(self, exchange: RawExchange, send) -> None:
        message = (f"shadowtap: the request body did not arrive within {self._body_timeout_s:g} s "
                   "([server] body_timeout_s); it was not forwarded.")
        log.warning("request body too slow", extra={"exchange_id": exchange.id, "path": exchange.path})
        await self._reject_unread_body(exchange, send, 408, message, "request_timeout")

    async def _reject_unsafe_path(self, exchange: RawExchange, send, reason: UnsafePath) -> None:
        message = (f"shadowtap: refused path {exchange.path!r}: {reason}; it was not forwarded. "
                   "Send the path your SDK builds below /v1/, without encoded '/' or dot segments.")
        self._metrics.path_refused.inc()
        log.warning("request path refused", extra={"exchange_id": exchange.id, "reason": str(reason)})
        await self._reject_unread_body(exchange, send, 400, message, "invalid_path")

    async def _reject_method(self, exchange: RawExchange, send, dialect: Dialect) -> None:
        # HEAD and OPTIONS are refused too: no OpenAI or Anthropic SDK sends them, and answering a
        # browser's CORS preflight would let any web page drive the proxy (and the primary's key,
        # when `[primary] api_key_env` sets it) from a visitor's browser. See docs/live-path.md.
        allowed = ", ".join(dialect.methods)
        message = (f"shadowtap: method {exchange.method} is not used by the API at {exchange.path!r}; it was not "
                   f"forwarded. Allowed there: {allowed}.")
        self._metrics.method_refused.inc()
        log.warning("request method refused", extra={"exchange_id": exchange.id, "method": exchange.method,
                                                     "endpoint": dialect.name})
        await self._reject_unread_body(exchange, send, 405, message, "method_not_allowed", allow=allowed)

    async def _reject_unread_body(self, exchange: RawExchange, send, status: int, message: str, code: str, *,
                                  allow: str | None = None) -> None:
        """Answer before the body was read, and capture that answer."""
        body = error_body(message, type_="invalid_request_error", code=code)
        # `connection: close`: the rest of the body may still be on its way, so this connection
        # cannot carry another request, and no client can keep it open by trickling that rest.
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"x-shadowtap-exchange-id", exchange.id.encode())]
        if allow is not None:
            headers.append((b"allow", allow.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        record_proxy_error(exchange, status, body, message)
        exchange.t_end = perf_counter()
        self._metrics.observe_refused(exchange)
        self._sink.submit(exchange)

    @staticmethod
    def _offer_shadows(shadows: ShadowSink, exchange: RawExchange, parsed: dict | None,
                       body: bytes | bytearray, serving: str | None) -> None:
        """Shadowing can never fail a live request: whatever goes wrong there is logged, and the
        request goes on to the primary as if no candidate were configured."""
        try:
            shadows.offer(exchange, parsed, body, serving=serving)
        except Exception:
            log.exception("could not hand the request to the shadow worker", extra={"exchange_id": exchange.id})

    @staticmethod
    def _canary_choice(canary: CanaryHook, exchange: RawExchange, dialect: Dialect) -> CanaryAssignment | None:
        """The canary candidate that answers this request, or None; a failure here is logged and
        the primary answers."""
        try:
            return canary.assign(exchange, dialect)
        except Exception:
            log.exception("canary assignment failed; the primary answers", extra={"exchange_id": exchange.id})
            return None

    async def _forward(self, scope, receive, send, exchange: RawExchange, suffix: str, dialect: Dialect) -> None:
        task = asyncio.current_task()
        assert task is not None  # an ASGI server runs each request in a task of its own
        watcher = watch_for_disconnect(scope, receive, task)
        response: UpstreamResponse | None = None
        try:
            upstream = dialect.upstream if dialect is not OTHER else upstream_for_path(suffix)
            url = self._primary.url_for(suffix, scope["query_string"], upstream)
            headers = forwardable_request_headers(scope["headers"], replace_authorization=self._primary_api_key,
                                                  key_header=self._primary.key_header(upstream))
            shadows, canary = self._shadows, self._canary
            # One attribute read while no canary runs: the decision costs nothing then.
            serving = self._canary_choice(canary, exchange, dialect) if canary is not None and canary.running else None
            body: bytes | bytearray | memoryview
            body, parsed = prepare_body(exchange.request_body, parse=shadows is not None)
            if shadows is not None:
                # Before the primary call, so candidates start at the same moment.
                self._offer_shadows(shadows, exchange, parsed, body, serving.candidate if serving else None)
            if serving is not None and canary is not None and await canary.serve(
                    serving, exchange, dialect, suffix, scope["query_string"], send,
                    functools.partial(self._relay, answering=f"candidate {serving.candidate}"), watcher):
                return
            exchange.t_upstream_start = perf_counter()
            if isinstance(body, bytearray):
                body = memoryview(body)  # sent without another copy
            try:
                response = await self._primary.send(exchange.method, url, headers, body)
            except UpstreamError as exc:
                await self._answer_upstream_failure(exc, exchange, send, watcher)
                return
            await self._relay(response, exchange, send, watcher)
        except asyncio.CancelledError:
            if not watcher.client_gone:
                raise  # server shutdown, not the client: let it propagate
            task.uncancel()
            exchange.client_disconnected = True
        finally:
            watcher.cancel()
            if response is not None:
                response.close()  # returns a finished connection to the pool; drops a live one

    async def _relay(self, response: UpstreamResponse, exchange: RawExchange, send, watcher, *,
                     answering: str = "primary") -> None:
        exchange.status = response.status
        exchange.response_headers = response.raw_headers  # a list of its own, made per response
        headers = relayable_response_headers(exchange.response_headers)
        headers.append((b"x-shadowtap-exchange-id", exchange.id.encode()))
        exchange.t_upstream_headers = perf_counter()
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        exchange.t_response_started = perf_counter()
        chunks, times = exchange.response_chunks, exchange.chunk_times
        try:
            async for chunk in response.chunks():
                times.append(perf_counter())
                chunks.append(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except BodyBrokeOff as exc:
            # The primary broke off mid-body. Return without finishing the response, so the
            # client sees a truncated transfer rather than a clean end we invented.
            exchange.stream_broken = True
            exchange.upstream_error = f"{answering} response broke off: {type(exc).__name__}: {exc}"
            self._metrics.upstream_broken.inc()
            log.warning(f"{answering} response broke off", extra={"exchange_id": exchange.id})
            return
        watcher.cancel()  # once the response completes, receive() reports a disconnect
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _answer_upstream_failure(self, exc: UpstreamError, exchange: RawExchange, send, watcher) -> None:
        if isinstance(exc, ProxyOverloaded):
            status, code = 503, "proxy_overloaded"
        elif isinstance(exc, UpstreamTimeout):
            status, code = 504, "upstream_timeout"
        else:
            status, code = 502, "upstream_unreachable"
        watcher.cancel()
        body = await send_error(send, status, f"shadowtap: {exc}", type_="upstream_error", code=code,
                                exchange_id=exchange.id)
        record_proxy_error(exchange, status, body, str(exc))
        log.warning("primary upstream failed", extra={"exchange_id": exchange.id, "error": str(exc)})
