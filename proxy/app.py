"""The ASGI application: `/v1/*` goes straight to the forwarder; everything else to Starlette.

The live path skips Starlette's router and middleware entirely, so its per-request cost is the
forwarder's alone. Health, metrics and the lifespan (upstream pool, capture writer) are Starlette's.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shadowtap.core import __version__
from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.errors import ConfigError
from shadowtap.core.redaction import Redactor
from shadowtap.core.store import CaptureStore
from shadowtap.proxy.capture.builder_process import RowBuilderProcess, RowBuilderSettings
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.feedback_api import feedback_route
from shadowtap.proxy.forwarder import PrimaryForwarder
from shadowtap.proxy.headers import header_value
from shadowtap.proxy.http_errors import send_error
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.upstream import PrimaryClient

if TYPE_CHECKING:
    from shadowtap.proxy.canary.serving import CanaryServing
    from shadowtap.proxy.shadow.dispatcher import ShadowDispatcher

log = logging.getLogger("shadowtap.app")

EXCHANGE_ID_HEADER = b"x-shadowtap-exchange-id"


class ShadowtapApp:
    """Routes by path prefix, checks the optional proxy key, and keeps the exchange id promise:
    `x-shadowtap-exchange-id` goes only on responses whose exchange is captured."""

    def __init__(self, forwarder: PrimaryForwarder, admin: Starlette, metrics: ProxyMetrics,
                 client_keys: list[str], *, keys_in_authorization: bool,
                 captures: Callable[[str], bool] = lambda path: True) -> None:
        self.forwarder = forwarder
        self.admin = admin
        self.metrics = metrics
        self._client_keys = [key.encode() for key in client_keys]
        self._keys_in_authorization = keys_in_authorization
        self._captures = captures

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith("/v1/") or scope["path"] == "/v1"):
            if self._client_keys and not self._authorized(scope["headers"]):
                self.metrics.unauthorized.inc()
                await send_error(send, 401, "shadowtap: missing or invalid proxy key; send it in the "
                                 "x-shadowtap-key header", type_="invalid_request_error", code="invalid_proxy_key")
                return
            if not self._captures(scope["path"]):
                send = _without_exchange_id(send)
            await self.forwarder(scope, receive, send)
            return
        await self.admin(scope, receive, send)

    def _authorized(self, headers) -> bool:
        presented = header_value(headers, b"x-shadowtap-key")
        if presented is None and self._keys_in_authorization:
            bearer = header_value(headers, b"authorization") or b""
            presented = bearer[7:] if bearer[:7].lower() == b"bearer " else None
        if presented is None:
            return False
        return any(hmac.compare_digest(presented, key) for key in self._client_keys)


def _without_exchange_id(send):
    """`send` for a path that is forwarded but not captured (GET /v1/models, an unknown path): an
    id there would name no exchange `shadowtap captures show` or the feedback API could find.
    Captured paths, the hot ones, never pass through this wrapper."""
    async def send_without_id(message) -> None:
        if message["type"] == "http.response.start":
            headers = [(name, value) for name, value in message.get("headers", ())
                       if name.lower() != EXCHANGE_ID_HEADER]
            message = {**message, "headers": headers}
        await send(message)

    return send_without_id


def _canary_serving(config: ShadowtapConfig, metrics: ProxyMetrics) -> CanaryServing:
    # Imported only when a candidate has a canary table: it loads jsonschema, and the store's
    # handle loads every part of the store; nothing else in the live process needs either. The
    # state is read from the store every replica shares.
    from shadowtap.core.store import Store
    from shadowtap.proxy.canary.serving import CanaryServing

    return CanaryServing(config, metrics, open_state_store=lambda: Store.open(config.store.read_target()))


def _shadow_dispatcher(config: ShadowtapConfig, metrics: ProxyMetrics) -> ShadowDispatcher:
    # Imported only when something is shadowed: without candidates or a primary twin the live
    # process loads none of the shadow machinery.
    from shadowtap.proxy.shadow.dispatcher import ShadowDispatcher

    return ShadowDispatcher(config, metrics)


def _client_keys(config: ShadowtapConfig) -> list[str]:
    name = config.server.client_keys_env
    if not name:
        return []
    raw = os.environ.get(name, "")
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise ConfigError(f"[server] client_keys_env = {name!r}: that environment variable is not set "
                          "or holds no keys (expected a comma-separated list)")
    return keys


def create_app(config: ShadowtapConfig, *, metrics: ProxyMetrics | None = None,
               open_store: Callable[[], CaptureStore] | None = None) -> ShadowtapApp:
    """Build the proxy. I/O (the store, the upstream pool) is opened in the lifespan, not here."""
    metrics = metrics or ProxyMetrics()
    primary_key = config.primary.api_key()
    client_keys = _client_keys(config)
    redaction = config.redaction
    redactor = Redactor.from_rules(redaction)
    open_store = open_store or (lambda: CaptureStore.open(config.store.path))
    # A salt shared by every replica ([store] key_hash_salt_env) hashes one client key alike on all
    # of them; without one, each store keeps its own.
    shared_salt = config.store.key_hash_salt() if config.store.hash_client_keys else None

    def make_build(store: CaptureStore) -> RowBuilderProcess:
        salt = (shared_salt or store.client_key_salt()) if config.store.hash_client_keys else None
        return RowBuilderProcess(RowBuilderSettings(
            emails=redaction.emails, phones=redaction.phones, card_numbers=redaction.card_numbers,
            patterns=tuple(redaction.patterns), replacement=redaction.replacement, client_key_salt=salt,
            max_body_bytes=config.store.max_capture_body_bytes))

    writer = CaptureWriter(open_store, make_build, metrics, queue_size=config.store.queue_size,
                           batch_size=config.store.batch_size,
                           flush_interval_s=config.store.flush_interval_ms / 1000,
                           capture_all_endpoints=config.store.capture_all_endpoints,
                           queue_max_bytes=config.store.queue_max_bytes)
    primary = PrimaryClient(config.primary)
    shadows = _shadow_dispatcher(config, metrics) if (config.candidates or config.shadow.primary_twin_rate) else None
    canary = _canary_serving(config, metrics) if config.canaries_configured() else None
    forwarder = PrimaryForwarder(primary, writer, metrics, max_body_bytes=config.server.max_body_bytes,
                                 primary_api_key=primary_key, shadows=shadows if shadows and shadows.active else None,
                                 body_timeout_s=config.server.body_timeout_s, canary=canary)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        writer.start()
        if shadows is not None:
            shadows.start()
            await shadows.connect()
        await primary.start()
        if canary is not None:
            await canary.start()
        log.info("shadowtap ready", extra={"primary": primary.base_url, "store": config.store.path,
                                           "version": __version__, "pid": os.getpid()})
        try:
            yield
        finally:
            await primary.close()
            if canary is not None:
                await canary.close()
            if shadows is not None:
                await shadows.stop()
            writer.close(timeout_s=max(config.server.graceful_shutdown_s, 5.0))
            log.info("capture drained", extra={"lost_at_shutdown": writer.lost_at_shutdown,
                                               "written": writer.written, "pid": os.getpid()})

    async def healthz(request: Request) -> Response:
        health = {"status": "ok", "version": __version__, "capture_queue_depth": writer.queue_depth(),
                  "capture_store": writer.store_state()}
        if shadows is not None:
            health["shadow_worker"] = shadows.worker_state()
            health["shadow_queue_depth"] = shadows.queue_depth()
        if canary is not None:
            health["canary"] = canary.health()
        return JSONResponse(health)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": {"message": f"shadowtap: no route for {request.url.path}; the proxy "
                                       "forwards /v1/* and serves /healthz, /metrics and POST /shadowtap/feedback",
                                       "type": "invalid_request_error", "param": None, "code": "not_found"}},
                            status_code=404)

    feedback = feedback_route(config, open_store=open_store, writer=writer, redactor=redactor, metrics=metrics)
    admin = Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics_endpoint), feedback],
                      lifespan=lifespan, exception_handlers={404: not_found})
    return ShadowtapApp(forwarder, admin, metrics, client_keys,
                        keys_in_authorization=primary_key is not None, captures=writer.captures)
