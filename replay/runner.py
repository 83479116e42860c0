"""ReplayRunner: re-sends captured chat requests to a target, k times each, and stores every result.

Resumable: a result's id is `run:exchange:repetition[:perturbation]` and results are committed in
small batches, so a killed run loses at most one batch plus the calls in flight, and resuming
skips every stored id. Tool calls in answers are recorded, never executed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from evaluators.base import Answer
from evaluators.contexts import extract_contexts
from evaluators.items import parse_request
from proxy.capture.redaction import Redactor
from proxy.config import ShadowtapConfig
from proxy.shadow.calls import CallResult, call_chat
from proxy.store.replay_store import ReplayStore
from replay.passing import REPLAY_SOURCE, PassCriterion
from replay.targets import ReplayTarget

log = logging.getLogger("shadowtap.replay")

REPLAYABLE_ENDPOINTS = ("chat.completions",)
_SECRET_KEY = re.compile(r"(?i)(?:^|_)(?:keys?|token|secrets?|passwords?|apikey|authorization)$")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def result_id(run_id: str, exchange_id: str, repetition: int, perturbation: str | None = None) -> str:
    return f"{run_id}:{exchange_id}:{repetition}" + (f":{perturbation}" if perturbation else "")


def config_snapshot(config: ShadowtapConfig) -> dict:
    """The config as plain data, without anything that could hold a secret value.

    Keys ending in `_env` stay: they name environment variables, they are not the values.
    """
    def clean(value):
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()
                    if key.endswith("_env") or not _SECRET_KEY.search(str(key))}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value
    return clean(dataclasses.asdict(config))


def create_run(store: ReplayStore, *, selection: dict, target: ReplayTarget, k: int, criterion: str,
               config: ShadowtapConfig, run_id: str | None = None) -> str:
    """Record a new run (status "running") and return its id."""
    run_id = run_id or secrets.token_hex(6)
    store.create_run({
        "id": run_id, "created_at": now_iso(), "selection": orjson.dumps(selection).decode(),
        "target": orjson.dumps(target.to_json()).decode(), "k": k, "pass_criterion": criterion,
        "config": orjson.dumps(config_snapshot(config), default=str).decode(), "status": "running",
        "finished_at": None})
    return run_id


async def load_litellm():
    """Import litellm (seconds), quiet it, and pay its first-call cost on a mocked call."""
    # Without this litellm fetches its price map from GitHub at import, retrying for ~20s when offline;
    # shadowtap prices calls from the packaged table anyway (as the shadow worker does).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    try:
        await litellm.acompletion(model="openai/warm-up", messages=[{"role": "user", "content": "warm-up"}],
                                  mock_response="ok")
    except Exception:
        log.warning("litellm warm-up failed; the first replay calls will be slower", exc_info=True)
    return litellm


@dataclass
class RunSummary:
    status: str = "running"      # complete | over_budget
    already_done: int = 0        # results found stored when the run (re)started
    written: int = 0
    spent_usd: float = 0.0


@dataclass(frozen=True)
class _Work:
    exchange: dict
    request: dict | None
    repetition: int
    perturbation: str | None
    id: str


class ReplayRunner:
    def __init__(self, store: ReplayStore, config: ShadowtapConfig, target: ReplayTarget, criterion: PassCriterion,
                 *, k: int = 1, concurrency: int = 4, budget_usd: float | None = None, perturb: bool = False,
                 batch_size: int = 10, flush_interval_s: float = 1.0, litellm=None, prices=None) -> None:
        from proxy.capture.pricing import PriceTable

        self.store, self.config, self.target, self.criterion = store, config, target, criterion
        self.k, self.concurrency, self.budget_usd, self.perturb = k, concurrency, budget_usd, perturb
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.litellm = litellm
        self.prices = prices if prices is not None else PriceTable.from_litellm_package()
        redaction = config.redaction
        self.redactor = Redactor(emails=redaction.emails, phones=redaction.phones,
                                 card_numbers=redaction.card_numbers, patterns=redaction.patterns,
                                 replacement=redaction.replacement)
        self._buffer: list[dict] = []
        self._last_flush = time.monotonic()

    async def run(self, run_id: str, exchange_ids: Sequence[str], *,
                  on_result: Callable[[dict], None] | None = None) -> RunSummary:
        summary = RunSummary()
        done = self.store.done_result_ids(run_id)
        summary.already_done = len(done)
        summary.spent_usd = self.store.spent_usd(run_id)
        if self.litellm is None:
            self.litellm = await load_litellm()
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()

        async def one(work: _Work) -> None:
            try:
                row = await self._replay(run_id, work)
            finally:
                slots.release()
            summary.spent_usd += row.get("cost_usd") or 0.0
            summary.written += 1
            self._buffer.append(row)
            if on_result is not None:
                on_result(row)
            if len(self._buffer) >= self.batch_size or time.monotonic() - self._last_flush >= self.flush_interval_s:
                self._flush()

        try:
            for work in self._work(run_id, exchange_ids, done):
                if self.budget_usd is not None and summary.spent_usd >= self.budget_usd:
                    summary.status = "over_budget"
                    break
                await slots.acquire()
                # The budget may have been spent while this call waited for a slot.
                if self.budget_usd is not None and summary.spent_usd >= self.budget_usd:
                    slots.release()
                    summary.status = "over_budget"
                    break
                task = asyncio.ensure_future(one(work))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            self._flush()   # keep every finished result, even when interrupted
        if summary.status == "running":
            summary.status = "complete"
        self.store.finish_run(run_id, summary.status, now_iso())
        return summary

    def _work(self, run_id: str, exchange_ids: Sequence[str], done: set[str], page: int = 100):
        for start in range(0, len(exchange_ids), page):
            for exchange in self.store.exchanges(exchange_ids[start:start + page]):
                request = parse_request(exchange)
                variants: list[tuple[str | None, dict | None]] = [(None, request)]
                if self.perturb and request is not None:
                    variants += self._perturbations(exchange, request)
                for perturbation, body in variants:
                    for repetition in range(self.k):
                        work_id = result_id(run_id, exchange["id"], repetition, perturbation)
                        if work_id not in done:
                            yield _Work(exchange, body, repetition, perturbation, work_id)

    def _perturbations(self, exchange: dict, request: dict) -> list[tuple[str, dict]]:
        from replay.perturb import perturbations

        contexts = [item.text for item in extract_contexts(request, exchange.get("shadowtap_metadata"),
                                                           self.config.contexts)]
        return perturbations(request, contexts)

    async def _replay(self, run_id: str, work: _Work) -> dict:
        exchange, request = work.exchange, work.request
        row = {"id": work.id, "run_id": run_id, "exchange_id": exchange["id"], "repetition": work.repetition,
               "perturbation": work.perturbation, "started_at": now_iso()}
        if request is None or exchange.get("endpoint") not in REPLAYABLE_ENDPOINTS:
            why = "request was not captured as JSON" if request is None else \
                f"endpoint {exchange.get('endpoint')!r} is not replayable (only {', '.join(REPLAYABLE_ENDPOINTS)})"
            return {**row, "outcome": "skipped", "error": why}
        target = self.target.call_target(request)
        result: CallResult = await call_chat(self.litellm, request, target, stream=request.get("stream") is True)
        usage = result.usage or {}
        text, tool_calls = result.text, result.tool_calls
        if self.redactor.enabled:   # captured answers are redacted; compare like with like
            text = self.redactor.redact_text(text) if text else text
            tool_calls = self.redactor.redact_json(tool_calls) if tool_calls else tool_calls
        row.update({
            "outcome": result.outcome, "latency_ms": result.latency_ms, "response_text": text,
            "response_tool_calls": orjson.dumps(tool_calls).decode() if tool_calls else None,
            "finish_reason": result.finish_reason, "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"), "total_tokens": usage.get("total_tokens"),
            "cost_usd": self.prices.cost_usd(target.model, usage.get("prompt_tokens"), usage.get("completion_tokens")),
            "error": f"{result.error_class}: {result.error_message}" if result.error_class else None,
        })
        if result.outcome != "ok":
            return row
        answer = Answer(source=REPLAY_SOURCE, text=text, tool_calls=tool_calls, finish_reason=result.finish_reason,
                        latency_ms=result.latency_ms, prompt_tokens=usage.get("prompt_tokens"),
                        completion_tokens=usage.get("completion_tokens"), cost_usd=row["cost_usd"])
        verdict = await self.criterion.judge(exchange, request, answer, self.config.contexts)
        row["passed"] = None if verdict.passed is None else int(verdict.passed)
        row["pass_value"] = verdict.value
        row["diff"] = orjson.dumps(answer_diff(exchange, text, tool_calls)).decode()
        return row

    def _flush(self) -> None:
        if self._buffer:
            rows, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
            self.store.write_results(rows)


def answer_diff(exchange: dict, text: str | None, tool_calls: list | None) -> dict:
    """replay.diff.diff_answers against the captured answer (a plain equality check if it is missing)."""
    original_calls = orjson.loads(exchange["response_tool_calls"]) if exchange.get("response_tool_calls") else None
    original = {"text": exchange.get("response_text"), "tool_calls": original_calls}
    replayed = {"text": text, "tool_calls": tool_calls}
    try:
        from replay.diff import diff_answers
    except ImportError:
        return {"identical": _strip_ids(original) == _strip_ids(replayed), "text_diff": [], "json_diff": [],
                "tool_call_diff": []}
    return diff_answers(original, replayed)


def _strip_ids(answer: dict) -> tuple:
    calls = [(c.get("function") or {}).get("name") for c in answer["tool_calls"] or []]
    args = [(c.get("function") or {}).get("arguments") for c in answer["tool_calls"] or []]
    return answer["text"] or "", calls, args
