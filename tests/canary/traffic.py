"""Canaried traffic written straight into a store (no proxy): exchanges a candidate answered or that
fell back to the primary, the primary's twin answers to them, and feedback. No tests here."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import orjson

from shadowtap.core.store import Store
from shadowtap.core.timefmt import stored_time

CONTEXT = "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall."
GROUNDED = "The Eiffel Tower was completed in 1889 and stands in Paris."
INVENTED = "Napoleon Bonaparte ordered it built in Lyon during 1802 for Wellington."
_ids = itertools.count()


class Traffic:
    def __init__(self, target: Path | str, *, now: float | None = None) -> None:
        self.target = target
        self.now = time.time() if now is None else now

    def _exchange(self, store: Store, *, served_by: str | None, fallback_reason: str | None = None,
                  text: str = GROUNDED, risk_tier: str | None = None, task: str | None = None,
                  status: int = 200, age_s: float = 0.0) -> str:
        exchange_id = f"x{next(_ids):06d}"
        request = {"model": "gpt", "messages": [{"role": "user", "content": "When was the Eiffel Tower built?"}]}
        store.captures.insert_capture([{
            "id": exchange_id, "started_at": stored_time(self.now - age_s), "method": "POST",
            "path": "/v1/chat/completions", "endpoint": "chat.completions", "status": status,
            "request_json": orjson.dumps(request).decode(),
            "shadowtap_metadata": orjson.dumps({"contexts": [CONTEXT]}).decode(),
            "response_text": text, "risk_tier": risk_tier, "task": task,
            "served_by": served_by, "fallback_reason": fallback_reason,
        }], [])
        return exchange_id

    def canaried(self, candidate: str, count: int, *, fallback_reason: str | None = None, text: str = GROUNDED,
                 twin_text: str | None = GROUNDED, age_s: float = 0.0, **columns) -> list[str]:
        """`count` requests canaried to `candidate`: answered by it, or fallen back with the reason."""
        ids = []
        with Store.open(self.target) as store:
            for _ in range(count):
                served_by = "primary" if fallback_reason else candidate
                exchange_id = self._exchange(store, served_by=served_by, fallback_reason=fallback_reason, text=text,
                                             age_s=age_s, **columns)
                if twin_text is not None:
                    self._twin(store, exchange_id, twin_text)
                ids.append(exchange_id)
        return ids

    def primary(self, count: int, *, twin_text: str | None = None, text: str = GROUNDED, **columns) -> list[str]:
        """`count` requests the primary answered (no canary), with a twin answer when `twin_text`."""
        ids = []
        with Store.open(self.target) as store:
            for _ in range(count):
                exchange_id = self._exchange(store, served_by=None, text=text, **columns)
                if twin_text is not None:
                    self._twin(store, exchange_id, twin_text)
                ids.append(exchange_id)
        return ids

    def feedback(self, exchange_ids: list[str], outcome: str, **fields) -> None:
        with Store.open(self.target) as store:
            store.feedback.record([{"exchange_id": exchange_id, "outcome": outcome, **fields}
                                   for exchange_id in exchange_ids], source="api")

    @staticmethod
    def _twin(store: Store, exchange_id: str, text: str) -> None:
        store.captures.insert_capture([], [{
            "id": f"{exchange_id}:primary_twin", "exchange_id": exchange_id, "candidate": "primary_twin",
            "model": "openai/gpt", "is_twin": 1, "outcome": "ok", "response_text": text, "finish_reason": "stop"}])
