"""Shadow rows for the store: a candidate's answered call, or a decision not to call it."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from shadowtap.proxy.capture.pricing import PriceTable


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="microseconds")


def shadow_row(exchange_id: str, target, started_at: float, stream: bool, result, prices: PriceTable, *,
               worker_lag_ms: float | None = None) -> dict:
    """`target` is a calls.CallTarget and `result` a calls.CallResult; `worker_lag_ms` is how long the
    request waited for the shadow worker to start this call."""
    usage = result.usage or {}
    model = target.model
    cost = prices.cost_usd(model, usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return {
        "id": f"{exchange_id}:{target.name}", "exchange_id": exchange_id, "candidate": target.name,
        "model": model, "is_twin": int(target.is_twin), "outcome": result.outcome, "skip_reason": None,
        "started_at": _iso(started_at),
        "latency_ms": result.latency_ms, "ttft_ms": result.ttft_ms, "is_stream": int(stream),
        "response_text": result.text,
        "response_tool_calls": orjson.dumps(result.tool_calls).decode() if result.tool_calls else None,
        "finish_reason": result.finish_reason, "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"), "total_tokens": usage.get("total_tokens"),
        "cost_usd": cost, "error_class": result.error_class, "error_message": result.error_message,
        "worker_lag_ms": worker_lag_ms,
    }


def skip_row(exchange_id: str, candidate: str, model: str | None, reason: str, started_at: float,
             outcome: str = "skipped") -> dict:
    return {"id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
            "model": model, "is_twin": int(candidate == "primary_twin"), "outcome": outcome,
            "skip_reason": reason,
            "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(timespec="microseconds")}
