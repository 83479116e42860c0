"""The simulated upstream as a pure ASGI app: routing, per-request knobs from x-sim-* headers,
OpenAI-style errors, server-sent events and gzip; plus ways to serve it with uvicorn."""

import gzip
import hashlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import uvicorn

from shadowtap.core.errors import ConfigError

from . import answers, anthropic, personas
from .answers import InvalidRequest
from .delivery import ClientWatch, SimulatedDisconnect, body_writes, deliver, stream_writes
from .knobs import Knobs, knobs_from_headers

logger = logging.getLogger("shadowtap.simulator")

RECORD_LIMIT = 1000
_NOT_JSON = object()  # a body was sent but did not parse, unlike None for "no body"
_BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you "
             "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
             "but what was sent was not valid JSON.)")
_ERROR_KINDS = {401: ("invalid_request_error", "invalid_api_key"),
                403: ("permission_error", None), 404: ("invalid_request_error", "not_found"),
                429: ("requests", "rate_limit_exceeded")}


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """How the simulator behaves when a request's x-sim-* headers do not say otherwise."""

    latency_ms: int = 0  # before a response, or before a stream's first chunk on top of ttft
    ttft_ms: int = 0
    chunk_delay_ms: int = 0
    error_rate: float = 0.0  # share of requests, chosen by request hash, answered with error_status
    error_status: int = 500
    seed: int = 0
    require_api_key: str | None = None
    record_requests: bool = False  # keep the last RECORD_LIMIT requests for GET /sim/requests

    def __post_init__(self) -> None:
        for name in ("latency_ms", "ttft_ms", "chunk_delay_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"simulator {name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigError(f"simulator error_rate must be from 0 to 1, got {self.error_rate!r}")
        if not 400 <= self.error_status <= 599:
            raise ConfigError(f"simulator error_status must be 400-599, got {self.error_status!r}")


def _chat(body: dict, digest: str) -> dict | list[bytes]:
    if body.get("stream"):
        return _data_events(answers.chat_completion_chunks(body, digest))
    return answers.chat_completion(body, digest)


def _completion(body: dict, digest: str) -> dict | list[bytes]:
    if body.get("stream"):
        return _data_events(answers.text_completion_chunks(body, digest))
    return answers.text_completion(body, digest)


def _response(body: dict, digest: str) -> dict | list[bytes]:
    if body.get("stream"):
        return _named_events(answers.response_events(body, digest))
    return answers.response_object(body, digest)


def _message(body: dict, digest: str) -> dict | list[bytes]:
    if body.get("stream"):
        return _named_events(anthropic.message_events(body, digest))
    return anthropic.message(body, digest)


def _named_events(events: list[dict]) -> list[bytes]:
    return [b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events]


def _data_events(chunks: list[dict]) -> list[bytes]:
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


# A handler returns a JSON object, or a list of encoded SSE events to stream.
_Handler = Callable[[dict, str], dict | list[bytes]]
ROUTES: dict[str, tuple[str, _Handler | None]] = {
    "/v1/chat/completions": ("POST", _chat),
    "/v1/completions": ("POST", _completion),
    "/v1/embeddings": ("POST", lambda body, digest: answers.embedding_list(body)),
    "/v1/responses": ("POST", _response),
    "/v1/models": ("GET", None),
    "/v1/messages": ("POST", _message),
    "/v1/messages/count_tokens": ("POST", lambda body, digest: anthropic.token_count(body)),
}
# Anthropic's paths answer errors in Anthropic's shape and take the key as x-api-key too.
ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})


class SimulatorApp:
    """A deterministic OpenAI-compatible (and Anthropic Messages) upstream; same request in, same bytes out."""

    def __init__(self, settings: SimulatorSettings):
        self.settings = settings
        self.recorded: deque[dict] = deque(maxlen=RECORD_LIMIT)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        method, path, raw = scope["method"], scope["path"], await _read_body(receive)
        headers = _header_dict(scope["headers"])
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = _NOT_JSON
        if path == "/sim/requests":
            return await self._admin(method, send)
        if path == "/sim/sour":
            return await self._sour(method, body, send)
        record = None
        if self.settings.record_requests:
            record = {"method": method, "path": path, "headers": headers,
                      "body": None if body is _NOT_JSON else body, "raw": raw.decode("latin-1")}
            self.recorded.append(record)
        digest = hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), raw)).hexdigest()
        digest = digest[:24]
        extra = [(b"x-request-id", b"req-sim-" + digest.encode())]
        try:
            knobs = self._knobs(headers)
        except InvalidRequest as exc:
            return await _send_json(send, 400, _error_body(400, str(exc), exc.param), extra, False)
        status, payload = self._answer(method, path, headers, body, digest, knobs)
        if path in ANTHROPIC_PATHS and status >= 400 and isinstance(payload, dict):
            payload = anthropic.error_body(status, payload["error"]["message"])
        if status == 429:
            extra += [(b"retry-after", b"1"), (b"x-ratelimit-remaining-requests", b"0")]
        extra += knobs.response_headers
        latency_ms = knobs.latency_ms
        if isinstance(body, dict):
            latency_ms += personas.extra_latency_ms(str(body.get("model", "")), digest)
        # Watching costs a task per request, so only when someone will look or it is slow.
        watched = record is not None or knobs.watches_the_client or latency_ms
        watch = ClientWatch(receive if watched else None, record)
        try:
            if latency_ms and await watch.pause(latency_ms / 1000):
                return
            if isinstance(payload, list):
                return await _send_stream(send, payload, extra, knobs, watch)
            await _send_json(send, status, payload, extra, knobs.gzip, knobs, watch)
        finally:
            watch.close()

    def _answer(self, method: str, path: str, headers: dict, body: object, digest: str,
                knobs: Knobs) -> tuple[int, dict | list[bytes]]:
        key = self.settings.require_api_key
        # Anthropic takes x-api-key (its SDK now also sends a bearer token); OpenAI a bearer token.
        presented = {headers.get("authorization")}
        if path in ANTHROPIC_PATHS:
            presented.add(f"Bearer {headers.get('x-api-key')}")
        if key is not None and f"Bearer {key}" not in presented:
            return 401, _error_body(401, "Incorrect API key provided.")
        route = ROUTES.get(path)
        if route is None or route[0] != method:
            status = 404 if route is None else 405
            return status, _error_body(status, f"Invalid URL ({method} {path})")
        if knobs.status is not None:
            return knobs.status, _error_body(knobs.status, f"Simulated {knobs.status} error")
        if self._unlucky(digest):
            status = self.settings.error_status
            return status, _error_body(status, f"Simulated {status} error")
        handler = route[1]
        if handler is None:
            return 200, answers.model_list()
        if body is _NOT_JSON or body is None:
            return 400, _error_body(400, _BAD_JSON)
        if not isinstance(body, dict):
            return 400, _error_body(400, "The request body must be a JSON object.")
        try:
            return 200, handler(body, digest)
        except InvalidRequest as exc:
            return 400, _error_body(400, str(exc), exc.param)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A field of an unexpected shape (say, a string where an object belongs) must get
            # an answer the caller can read, not a bare 500 with a traceback.
            logger.info("cannot answer %s %s: %r", method, path, exc)
            return 400, _error_body(400, f"Invalid request body: {exc}")

    def _unlucky(self, digest: str) -> bool:
        if self.settings.error_rate <= 0:
            return False
        draw = hashlib.sha256(f"{self.settings.seed}:{digest}".encode()).digest()
        return int.from_bytes(draw[:8]) / 2**64 < self.settings.error_rate

    def _knobs(self, headers: dict) -> Knobs:
        settings = self.settings
        return knobs_from_headers(headers, latency_ms=settings.latency_ms, ttft_ms=settings.ttft_ms,
                                  chunk_delay_ms=settings.chunk_delay_ms)

    async def _admin(self, method: str, send: Callable) -> None:
        if method == "DELETE":
            self.recorded.clear()
            return await _send_json(send, 200, {"deleted": True}, [], False)
        if method == "GET":
            return await _send_json(send, 200, list(self.recorded), [], False)
        await _send_json(send, 405, _error_body(405, f"Invalid URL ({method} /sim/requests)"),
                         [], False)


    @staticmethod
    async def _sour(method: str, body: object, send: Callable) -> None:
        """POST {"model": "sim-souring"} turns that persona bad; DELETE turns every one good again."""
        if method == "POST":
            model = body.get("model", personas.SOURING) if isinstance(body, dict) else personas.SOURING
            if model != personas.SOURING:
                return await _send_json(send, 400, _error_body(400, f"only {personas.SOURING} can be soured"),
                                        [], False)
            personas.sour(model)
        elif method == "DELETE":
            personas.sweeten()
        elif method != "GET":
            return await _send_json(send, 405, _error_body(405, f"Invalid URL ({method} /sim/sour)"), [], False)
        await _send_json(send, 200, {"soured": personas.soured()}, [], False)


def create_simulator_app(settings: SimulatorSettings | None = None) -> SimulatorApp:
    """The simulator as an ASGI app; serve it with uvicorn or call it through httpx."""
    _quiet_simulated_disconnects()
    return SimulatorApp(settings or SimulatorSettings())


def run_simulator(settings: SimulatorSettings | None = None, host: str = "127.0.0.1",
                  port: int = 9000) -> None:
    """Serve the simulator until interrupted."""
    uvicorn.run(create_simulator_app(settings), host=host, port=port, access_log=False,
                log_level="warning")


@contextmanager
def running_simulator(settings: SimulatorSettings | None = None,
                      host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the simulator on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config = uvicorn.Config(create_simulator_app(settings), access_log=False,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the simulator did not start within 5 seconds")
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _error_body(status: int, message: str, param: str | None = None) -> dict:
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500
                                           else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def _read_body(receive: Callable) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def _lifespan(receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            return await send({"type": "lifespan.shutdown.complete"})


async def _send_json(send: Callable, status: int, payload: object,
                     extra: list[tuple[bytes, bytes]], compress: bool,
                     knobs: Knobs | None = None, watch: ClientWatch | None = None) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), *extra]
    if compress:
        body = gzip.compress(body, mtime=0)  # a fixed mtime keeps the bytes deterministic
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    if knobs is None or watch is None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        return await send({"type": "http.response.body", "body": body})
    await deliver(send, status, headers, body_writes(body, knobs), knobs, watch)


async def _send_stream(send: Callable, events: list[bytes], extra: list[tuple[bytes, bytes]],
                       knobs: Knobs, watch: ClientWatch) -> None:
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), *extra]
    if knobs.gzip:
        headers.append((b"content-encoding", b"gzip"))
    await deliver(send, 200, headers, stream_writes(events, knobs), knobs, watch)


class _DropSimulatedDisconnects(logging.Filter):
    """Hides uvicorn's traceback for our deliberate aborts; _send_stream already logged them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedDisconnect))


def _quiet_simulated_disconnects() -> None:
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropSimulatedDisconnects) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_DropSimulatedDisconnects())
