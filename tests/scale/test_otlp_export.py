"""OTLP export: an OTLP/HTTP receiver on loopback decodes what the shipper sent, and every span and
event carries the GenAI semantic-convention attributes of the captured exchange."""

from __future__ import annotations

import orjson

from shadowtap.core.config.store import OtlpExportConfig
from shadowtap.core.redaction import Redactor
from shadowtap.core.ship.otlp import OtlpExporter, answer_span_id, trace_ids
from shadowtap.core.ship.shipper import Shipper
from shadowtap.core.store import CaptureStore
from tests.scale.otlp_receiver import attributes
from tests.support.eval_support import add_exchanges, add_shadow, chat_request


def ship_with_export(tmp_path, pg_url, receiver, *, include_content: bool) -> tuple[dict, OtlpExporter]:
    spool = CaptureStore.open(tmp_path / "spool.db")
    request = chat_request("mail me at ann@example.com", model="gpt-4o-mini")
    exchange = add_exchanges(spool, 1, request=request)[0]
    add_shadow(spool, exchange["id"], "small")
    add_shadow(spool, exchange["id"], "skipped-one", outcome="skipped")
    spool.sql.execute("insert into scores (id, exchange_id, source, evaluator, evaluator_version, outcome, value, "
                      "label, details, scored_at) values (?, ?, 'small', 'agreement', '2', 'score', 0.75, 'agree', "
                      "'{}', '2026-01-01T00:00:00+00:00')", [f"{exchange['id']}:small:agreement", exchange["id"]])
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url, include_content=include_content),
                            Redactor(), server_address="api.example.test")
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url), on_shipped=exporter.export_batch)
    shipper.ship_once()
    shipper.close()
    exporter.shutdown()
    return exchange, exporter


def test_each_exchange_and_shadow_call_is_a_genai_span_and_each_score_an_evaluation_event(tmp_path, pg_url, receiver):
    exchange, _ = ship_with_export(tmp_path, pg_url, receiver, include_content=False)
    assert len(receiver.spans) == 2  # the exchange and the one shadow call (a skip is no call)
    primary = next(span for span in receiver.spans if not span.parent_span_id)
    assert primary.name == "chat gpt-4o-mini"
    assert attributes(primary) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": exchange["model"], "gen_ai.response.model": exchange["response_model"],
        "gen_ai.usage.input_tokens": exchange["prompt_tokens"],
        "gen_ai.usage.output_tokens": exchange["completion_tokens"],
        "gen_ai.response.finish_reasons": [exchange["finish_reason"]], "server.address": "api.example.test",
        "http.response.status_code": exchange["status"], "shadowtap.exchange.id": exchange["id"],
        "shadowtap.endpoint": "chat.completions", **({"shadowtap.cost_usd": exchange["cost_usd"]}
                                                     if exchange["cost_usd"] is not None else {}),
    }
    trace_id, span_id = trace_ids(exchange["id"])
    assert int.from_bytes(primary.trace_id, "big") == trace_id and int.from_bytes(primary.span_id, "big") == span_id
    shadow = next(span for span in receiver.spans if span.parent_span_id)
    assert shadow.trace_id == primary.trace_id and shadow.parent_span_id == primary.span_id
    assert attributes(shadow)["gen_ai.provider.name"] == "openai"
    assert attributes(shadow)["gen_ai.request.model"] == "openai/small"
    assert attributes(shadow)["shadowtap.candidate"] == "small"
    (event,) = receiver.events
    assert event.event_name == "gen_ai.evaluation.result"
    assert attributes(event) == {"gen_ai.evaluation.name": "agreement", "gen_ai.evaluation.score.value": 0.75,
                                 "gen_ai.evaluation.score.label": "agree", "shadowtap.exchange.id": exchange["id"],
                                 "shadowtap.answer.source": "small", "shadowtap.evaluator.version": "2"}
    assert int.from_bytes(event.span_id, "big") == answer_span_id(exchange["id"], "small")
    assert event.trace_id == primary.trace_id
    assert all("content" not in key and "messages" not in key for span in receiver.spans for key in attributes(span))


def test_message_content_is_sent_only_when_asked_and_redacted_again_before_it_leaves(tmp_path, pg_url, receiver):
    spool = CaptureStore.open(tmp_path / "spool.db")
    # As a store captured before [redaction] emails was switched on would hold it.
    spool.insert_capture([{"id": "x1", "started_at": "2026-01-01T00:00:00+00:00", "method": "POST",
                           "path": "/v1/chat/completions", "endpoint": "chat.completions", "model": "m",
                           "request_json": orjson.dumps(chat_request("mail ann@example.com")).decode(),
                           "response_text": "wrote to ann@example.com", "latency_ms": 5.0}], [])
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url, include_content=True), Redactor())
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url), on_shipped=exporter.export_batch)
    shipper.ship_once()
    shipper.close()
    exporter.shutdown()
    (span,) = receiver.spans
    sent = attributes(span)
    assert orjson.loads(sent["gen_ai.input.messages"])[0]["role"] == "user"
    assert orjson.loads(sent["gen_ai.output.messages"])[0]["role"] == "assistant"
    assert "ann@example.com" not in sent["gen_ai.input.messages"] + sent["gen_ai.output.messages"]
    assert "[REDACTED:email]" in sent["gen_ai.input.messages"] and "[REDACTED:email]" in sent["gen_ai.output.messages"]
