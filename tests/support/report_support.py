"""Shared by the report tests (no tests here): stores built row by row with known figures."""

from __future__ import annotations

from pathlib import Path

import orjson

from shadowtap.core.store import CaptureStore


class StoreBuilder:
    """Inserts exchanges, shadows and scores directly, with only the columns a test cares about."""

    def __init__(self, store: CaptureStore) -> None:
        self.store = store

    def exchange(self, exchange_id: str, started_at: str, *, endpoint: str = "chat.completions",
                 task: str | None = None, risk_tier: str | None = None, tags: dict | None = None,
                 latency_ms: float | None = 100.0, ttft_ms: float | None = None, cost_usd: float | None = 0.001,
                 total_tokens: int | None = 20, text: str | None = "primary answer") -> None:
        self.store.db["exchanges"].insert({
            "id": exchange_id, "started_at": started_at, "method": "POST", "path": "/v1/chat/completions",
            "endpoint": endpoint, "task": task, "risk_tier": risk_tier, "status": 200,
            "tags": orjson.dumps(tags).decode() if tags else None, "latency_ms": latency_ms, "ttft_ms": ttft_ms,
            "cost_usd": cost_usd, "total_tokens": total_tokens, "response_text": text,
        })

    def shadow(self, exchange_id: str, candidate: str, outcome: str = "ok", *, skip_reason: str | None = None,
               latency_ms: float | None = 100.0, ttft_ms: float | None = None, cost_usd: float | None = 0.001,
               prompt_tokens: int | None = 5, completion_tokens: int | None = 15, text: str | None = "candidate answer",
               started_at: str = "2026-01-01T00:00:00+00:00") -> None:
        self.store.db["shadows"].insert({
            "id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
            "model": f"openai/{candidate}", "is_twin": int(candidate == "primary_twin"), "outcome": outcome,
            "skip_reason": skip_reason, "started_at": started_at,
            "latency_ms": latency_ms if outcome == "ok" else None, "ttft_ms": ttft_ms,
            "cost_usd": cost_usd if outcome == "ok" else None,
            "prompt_tokens": prompt_tokens if outcome == "ok" else None,
            "completion_tokens": completion_tokens if outcome == "ok" else None,
            "response_text": text if outcome == "ok" else None,
        })

    def score(self, exchange_id: str, source: str, evaluator: str, value: float, label: str | None = None,
              details: dict | None = None, outcome: str = "score") -> None:
        self.store.db["scores"].insert({
            "id": f"{exchange_id}:{source}:{evaluator}", "exchange_id": exchange_id, "source": source,
            "evaluator": evaluator, "evaluator_version": "1", "outcome": outcome,
            "value": value if outcome == "score" else None, "label": label,
            "details": orjson.dumps(details or {}).decode(), "scored_at": "2026-01-03T00:00:00+00:00",
        })


def write_config(path: Path, store_path: Path, gate: str) -> Path:
    path.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n\n[store]\npath = "{store_path}"\n\n'
                    f'[gate]\n{gate}\n', encoding="utf-8")
    return path


def balanced_store(store: CaptureStore, candidate: str = "twin-like", count: int = 30, *,
                   contract_invalid_in: str | None = None, grounding_gap: float = 0.0) -> None:
    """`count` exchanges on one day where the candidate matches the primary on every figure,
    half in task "qa" and half in task "chat"; the primary has a twin on every exchange.

    `contract_invalid_in`: the candidate breaks its contract on every exchange of that task.
    `grounding_gap`: the candidate's grounding is this much below the primary's everywhere.
    """
    build = StoreBuilder(store)
    for index in range(count):
        exchange_id = f"x{index:03d}"
        task = "qa" if index % 2 == 0 else "chat"
        build.exchange(exchange_id, f"2026-02-01T{index // 60:02d}:{index % 60:02d}:00+00:00", task=task)
        build.shadow(exchange_id, candidate)
        build.shadow(exchange_id, "primary_twin")
        build.score(exchange_id, candidate, "agreement", 0.95, "agree")
        build.score(exchange_id, "primary", "agreement", 0.95, "agree", {"baseline": "primary_twin"})
        primary_grounding = 0.8 + (index % 3) * 0.05
        build.score(exchange_id, "primary", "grounding", primary_grounding, "grounded")
        build.score(exchange_id, candidate, "grounding", primary_grounding - grounding_gap + (index % 2) * 0.01,
                    "grounded")
        build.score(exchange_id, "primary", "contract", 1.0, "valid")
        invalid = contract_invalid_in == task
        build.score(exchange_id, candidate, "contract", 0.0 if invalid else 1.0, "invalid" if invalid else "valid")
