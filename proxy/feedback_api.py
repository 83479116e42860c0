"""POST /shadowtap/feedback: apps and reviewers tell shadowtap what really happened to an answer.

Admin-token protected, never under /v1/, so the live path neither sees nor pays for it. Storing
runs in a worker thread through FeedbackStore; errors are OpenAI-style JSON with the field named.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.errors import FeedbackConflict, FeedbackInvalid, StoreError, UnknownExchange
from shadowtap.core.redaction import Redactor
from shadowtap.core.store import CaptureStore, FeedbackResult, FeedbackStore
from shadowtap.core.store.errors import database_errors
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.metrics import ProxyMetrics

log = logging.getLogger("shadowtap.feedback")

FEEDBACK_PATH = "/shadowtap/feedback"
# How long past the capture writer's flush timer an unknown id may still be on its way to the store.
_CAPTURE_SETTLE_S = 2.0


class FeedbackEndpoint:
    """The handler; built once per app with the admin token read from the environment."""

    def __init__(self, config: ShadowtapConfig, *, open_store: Callable[[], CaptureStore], writer: CaptureWriter,
                 redactor: Redactor, metrics: ProxyMetrics) -> None:
        token = config.admin.token()
        self._token = token.encode() if token else None
        self._token_env = config.admin.token_env
        self._max_batch = config.admin.max_feedback_batch
        self._max_body_bytes = config.server.max_body_bytes
        self._settle_s = config.store.flush_interval_ms / 1000 + _CAPTURE_SETTLE_S
        self._open_store = open_store
        self._writer = writer
        self._redactor = redactor
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        refused = self._refuse_unauthorized(request)
        if refused is not None:
            return refused
        body = await self._read_body(request)
        if isinstance(body, Response):
            return body
        items = self._items(body)
        if isinstance(items, Response):
            return items
        try:
            results = await asyncio.to_thread(self._record, items)
        except FeedbackInvalid as exc:
            return error(422, f"shadowtap: {exc}", "invalid_feedback", param=exc.field)
        except UnknownExchange as exc:
            return error(404, f"shadowtap: {exc}", "unknown_exchange", param="exchange_id")
        except FeedbackConflict as exc:
            return error(409, f"shadowtap: {exc}", "feedback_id_conflict", param="feedback_id")
        except StoreError as exc:
            log.error("feedback could not be stored: %s", exc)
            return error(503, f"shadowtap: the capture store cannot take feedback right now ({exc}); retry later",
                         "store_unavailable", type_="server_error")
        for item, result in zip(items, results):
            self._metrics.feedback_received.labels(item["outcome"], result.status).inc()
        created = sum(result.status == "created" for result in results)
        log.info("feedback stored", extra={"feedback_created": created, "feedback_unchanged": len(results) - created})
        return JSONResponse({"results": [{"feedback_id": r.feedback_id, "status": r.status} for r in results],
                             "created": created, "unchanged": len(results) - created})

    def _record(self, items: list) -> list[FeedbackResult]:
        store = self._open_store()
        try:
            feedback = FeedbackStore(store, self._redactor)
            try:
                return feedback.record(items, source="api")
            except UnknownExchange:
                # The exchange may have been answered a moment ago and still be in the writer's queue.
                self._writer.wait_for_queued_writes(self._settle_s)
                return feedback.record(items, source="api")
        except database_errors() as exc:
            raise StoreError(str(exc)) from None
        finally:
            store.close()

    def _refuse_unauthorized(self, request: Request) -> Response | None:
        if self._token is None:
            how = (f"set the environment variable {self._token_env} (named by [admin] token_env) to a secret "
                   "token and restart shadowtap" if self._token_env else "set [admin] token_env to the name of an "
                   "environment variable holding a secret token and restart shadowtap")
            return error(403, f"shadowtap: the admin API is disabled; to enable it, {how}", "admin_api_disabled",
                         type_="permission_error")
        presented = request.headers.get("x-shadowtap-admin-token")
        if presented is None:
            authorization = request.headers.get("authorization", "")
            presented = authorization[7:] if authorization[:7].lower() == "bearer " else None
        if presented is None or not hmac.compare_digest(presented.strip().encode(), self._token):
            return error(401, "shadowtap: missing or wrong admin token; send it as 'Authorization: Bearer <token>' "
                         "or in the x-shadowtap-admin-token header", "invalid_admin_token")
        return None

    async def _read_body(self, request: Request) -> bytes | Response:
        too_large = error(413, f"shadowtap: the feedback body is larger than [server] max_body_bytes = "
                          f"{self._max_body_bytes}; send smaller batches", "body_too_large")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            return too_large
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self._max_body_bytes:
                    return too_large
                chunks.append(chunk)
        except ClientDisconnect:
            return Response(status_code=400)
        return b"".join(chunks)

    def _items(self, body: bytes) -> list | Response:
        """One object, an array, or {"feedback": [...]}, as a list of raw items."""
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "shadowtap: the request body is not valid UTF-8", "invalid_body")
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error(400, f"shadowtap: the request body is not valid JSON ({exc})", "invalid_json")
        if isinstance(value, dict) and "feedback" in value:
            if set(value) != {"feedback"} or not isinstance(value["feedback"], list):
                return error(400, 'shadowtap: a batch is {"feedback": [item, ...]} with nothing beside the list',
                             "invalid_body", param="feedback")
            value = value["feedback"]
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
        if items is None:
            return error(400, "shadowtap: expected one feedback object, a JSON array of them, or "
                         '{"feedback": [...]}', "invalid_body")
        if not items:
            return error(400, "shadowtap: the body holds no feedback items", "invalid_body")
        if len(items) > self._max_batch:
            return error(413, f"shadowtap: {len(items)} feedback items in one request; [admin] max_feedback_batch "
                         f"allows {self._max_batch}", "batch_too_large")
        return items


def error(status: int, message: str, code: str, *, type_: str = "invalid_request_error",
          param: str | None = None) -> JSONResponse:
    """An OpenAI-style error body, as the proxy's own errors look (proxy/http_errors.py)."""
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status)


def feedback_route(config: ShadowtapConfig, **parts) -> Route:
    return Route(FEEDBACK_PATH, FeedbackEndpoint(config, **parts).handle, methods=["POST"])
