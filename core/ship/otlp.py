"""OtlpExporter: shipped exchanges and shadow calls as OpenTelemetry GenAI spans, and scores (shipped
from a spool, or written into the shared store by eval workers and found there by the shipper
that holds the score export) as `gen_ai.evaluation.result` events, sent over OTLP/HTTP from the
shipper (never the live process).

Span and trace ids come from the exchange id (and the candidate's name), so a shadow call's span
joins its exchange's trace, and a score's event points at the span of the answer it judged, even
when they are shipped in different batches or by different processes. Export is best effort: a
collector that is down delays or drops telemetry (the SDK's queue), never a row of the store.
Captured text is redacted again before it leaves, and sent only with `include_content = true`.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from urllib.parse import urlsplit

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from shadowtap.core.config.store import GENAI_OPERATIONS, OtlpExportConfig
from shadowtap.core.redaction import Redactor
from shadowtap.core.store.shipping import Batch

log = logging.getLogger("shadowtap.ship.otlp")

# Spans waiting for the collector; past this, the SDK drops the newest (counted in its log).
_QUEUE = 20_000


def trace_ids(exchange_id: str) -> tuple[int, int]:
    """(trace id, span id) of an exchange's span, the same in every process."""
    digest = hashlib.sha256(exchange_id.encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


def answer_span_id(exchange_id: str, source: str) -> int:
    """The span id of an answer: the exchange's for the primary, a shadow call's otherwise."""
    if source == "primary":
        return trace_ids(exchange_id)[1]
    digest = hashlib.sha256(f"{exchange_id}:{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


class _PresetIds(IdGenerator):
    """Hands out the ids set for the next span, else random ones."""

    def __init__(self) -> None:
        self.trace_id: int | None = None
        self.span_id: int | None = None
        self._random = RandomIdGenerator()

    def generate_trace_id(self) -> int:
        value, self.trace_id = self.trace_id, None
        return value or self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        value, self.span_id = self.span_id, None
        return value or self._random.generate_span_id()


class OtlpExporter:
    def __init__(self, config: OtlpExportConfig, redactor: Redactor, *, server_address: str | None = None) -> None:
        endpoint = config.endpoint.rstrip("/")
        resource = Resource.create({"service.name": config.service_name})
        self._ids = _PresetIds()
        self._traces = TracerProvider(resource=resource, id_generator=self._ids)
        self._traces.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=config.timeout_s), max_queue_size=_QUEUE))
        self._logs = LoggerProvider(resource=resource)
        self._logs.add_log_record_processor(BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=config.timeout_s), max_queue_size=_QUEUE))
        self._tracer = self._traces.get_tracer("shadowtap")
        self._events = self._logs.get_logger("shadowtap")
        self.include_content = config.include_content
        self.redactor = redactor
        self.server_address = server_address

    def export_batch(self, _target: object, batch: Batch) -> None:
        """The shipper's after-ship hook: one span per exchange or shadow call, one event per score."""
        rows = [dict(zip(batch.columns, row)) for row in batch.rows]
        handler = {"exchanges": self._exchange_span, "shadows": self._shadow_span,
                   "scores": self._score_event}.get(batch.table)
        if handler is not None:
            for row in rows:
                handler(row)

    def flush(self) -> None:
        self._traces.force_flush()
        self._logs.force_flush()

    def shutdown(self) -> None:
        self._traces.shutdown()
        self._logs.shutdown()

    # -- spans and events ---------------------------------------------------------------------

    def _exchange_span(self, row: dict) -> None:
        endpoint = row.get("endpoint") or "other"
        operation = GENAI_OPERATIONS.get(endpoint, endpoint)
        start = _nanos(row["started_at"])
        attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "anthropic" if endpoint.startswith("anthropic.") else "openai",
            "gen_ai.request.model": row.get("model"),
            "gen_ai.response.model": row.get("response_model"),
            "gen_ai.usage.input_tokens": row.get("prompt_tokens"),
            "gen_ai.usage.output_tokens": row.get("completion_tokens"),
            "gen_ai.response.finish_reasons": [row["finish_reason"]] if row.get("finish_reason") else None,
            "server.address": self.server_address,
            "http.response.status_code": row.get("status"),
            "error.type": _exchange_error(row),
            "shadowtap.exchange.id": row["id"],
            "shadowtap.endpoint": row.get("endpoint"),
            "shadowtap.cost_usd": row.get("cost_usd"),
            "shadowtap.ttft_ms": row.get("ttft_ms"),
        }
        if self.include_content:
            attributes["gen_ai.input.messages"] = self._redacted(_input_messages(row.get("request_json")))
            attributes["gen_ai.output.messages"] = self._redacted(_output_messages(row.get("response_text")))
        self._ids.trace_id, self._ids.span_id = trace_ids(row["id"])
        self._span(f"{operation} {row.get('model') or ''}".strip(), None, start, row.get("latency_ms"),
                   attributes)

    def _shadow_span(self, row: dict) -> None:
        if row.get("outcome") in ("skipped", None):
            return  # no call was made
        model = row.get("model") or ""
        provider, _, _ = model.partition("/") if "/" in model else ("openai", "", "")
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": row.get("prompt_tokens"),
            "gen_ai.usage.output_tokens": row.get("completion_tokens"),
            "gen_ai.response.finish_reasons": [row["finish_reason"]] if row.get("finish_reason") else None,
            "error.type": row.get("error_class") or (row["outcome"] if row.get("outcome") != "ok" else None),
            "shadowtap.exchange.id": row["exchange_id"],
            "shadowtap.candidate": row.get("candidate"),
            "shadowtap.shadow.outcome": row.get("outcome"),
            "shadowtap.cost_usd": row.get("cost_usd"),
        }
        if self.include_content:
            attributes["gen_ai.output.messages"] = self._redacted(_output_messages(row.get("response_text")))
        trace_id, parent_id = trace_ids(row["exchange_id"])
        parent = NonRecordingSpan(SpanContext(trace_id, parent_id, is_remote=False,
                                              trace_flags=TraceFlags(TraceFlags.SAMPLED)))
        self._ids.span_id = answer_span_id(row["exchange_id"], row["candidate"])
        start = _nanos(row["started_at"]) if row.get("started_at") else None
        self._span(f"chat {model}".strip(), trace.set_span_in_context(parent), start, row.get("latency_ms"),
                   attributes)

    def _score_event(self, row: dict) -> None:
        trace_id, _ = trace_ids(row["exchange_id"])
        span = NonRecordingSpan(SpanContext(trace_id, answer_span_id(row["exchange_id"], row["source"]),
                                            is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
        details = orjson.loads(row["details"]) if row.get("details") else {}
        explanation = row.get("error") or (details.get("reason") if isinstance(details, dict) else None)
        self._events.emit(
            event_name="gen_ai.evaluation.result", context=trace.set_span_in_context(span),
            timestamp=_nanos(row["scored_at"]) if row.get("scored_at") else None,
            attributes=_present({
                "gen_ai.evaluation.name": row["evaluator"],
                "gen_ai.evaluation.score.value": row.get("value"),
                "gen_ai.evaluation.score.label": row.get("label") or (row["outcome"] if row["outcome"] != "score"
                                                                      else None),
                "gen_ai.evaluation.explanation": self.redactor.redact_text(explanation) if explanation else None,
                "error.type": row["error"].partition(":")[0] if row.get("error") else None,
                "shadowtap.exchange.id": row["exchange_id"],
                "shadowtap.answer.source": row["source"],
                "shadowtap.evaluator.version": row.get("evaluator_version"),
            }))

    def _span(self, name: str, context, start: int | None, latency_ms: float | None, attributes: dict) -> None:
        span = self._tracer.start_span(name, context=context, kind=SpanKind.CLIENT, start_time=start,
                                       attributes=_present(attributes))
        if attributes.get("error.type"):
            span.set_status(Status(StatusCode.ERROR))
        end = start + int(latency_ms * 1_000_000) if start is not None and latency_ms is not None else None
        span.end(end_time=end)

    def _redacted(self, value: object) -> str | None:
        if value is None:
            return None
        return self.redactor.redact_text(orjson.dumps(value).decode())


def server_address_of(base_url: str) -> str | None:
    return urlsplit(base_url).hostname if base_url else None


def _exchange_error(row: dict) -> str | None:
    status = row.get("status")
    if row.get("upstream_error"):
        return str(row["upstream_error"]).partition(":")[0]
    if isinstance(status, int) and status >= 400:
        return str(status)
    return None


def _input_messages(request_json: str | None) -> object:
    if not request_json:
        return None
    try:
        request = orjson.loads(request_json)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict):
        return None
    return request.get("messages") or request.get("input") or request.get("prompt")


def _output_messages(text: str | None) -> object:
    return None if text is None else [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]


def _nanos(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)


def _present(attributes: dict) -> dict:
    return {key: value for key, value in attributes.items() if value is not None}
