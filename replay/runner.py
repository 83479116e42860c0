"""ReplayRunner: re-sends captured chat requests to a target, k times each, and stores every result.

Resumable: a result's id is `run:exchange:repetition[:perturbation]` and results are committed in
small batches, so a killed run loses at most one batch plus the calls in flight, and resuming
skips every stored id. Tool calls in answers are recorded, never executed. Every model call (a
replay, or writing a paraphrase) waits for the run's rate limit, if any, then for a concurrency slot's
call; the budget counts both.
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
from datetime import UTC, datetime

import orjson

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.redaction import Redactor
from shadowtap.core.store.replay_store import PARAPHRASE_WRITER_REPETITION, ReplayStore
from shadowtap.evaluators.base import Answer
from shadowtap.evaluators.contexts import extract_contexts
from shadowtap.evaluators.items import parse_request
from shadowtap.proxy.dialects import DIALECTS, dialect_named
from shadowtap.proxy.shadow.calls import CallResult, CallTarget, call_chat, configure_litellm
from shadowtap.replay.failures import call_failures
from shadowtap.replay.paraphrase import (
    ParaphraseSettings,
    cleaned,
    last_user_text,
    paraphrase_name,
    paraphrase_number,
    with_paraphrase,
    writing_request,
)
from shadowtap.replay.passing import REPLAY_SOURCE, PassCriterion
from shadowtap.replay.rate import TokenBucket
from shadowtap.replay.targets import ReplayTarget, replay_request

log = logging.getLogger("shadowtap.replay")

REPLAYABLE_ENDPOINTS = tuple(dialect.name for dialect in DIALECTS if dialect.replayable)
_SECRET_KEY = re.compile(r"(?i)(?:^|_)(?:keys?|token|secrets?|passwords?|apikey|authorization)$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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

    configure_litellm(litellm)  # quiet, and a target that answers with a redirect is an error, not followed
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    try:
        await litellm.acompletion(model="openai/warm-up", messages=[{"role": "user", "content": "warm-up"}],
                                  mock_response="ok")
    except Exception:
        log.warning("litellm warm-up failed; the first replay calls will be slower", exc_info=True)
    return litellm


@dataclass
class RunSummary:
    status: str = "running"      # complete | incomplete (some calls failed) | over_budget
    already_done: int = 0        # results found stored when the run (re)started
    written: int = 0
    spent_usd: float = 0.0
    calls: int = 0               # model calls the run has stored (replays and paraphrase writing)
    failed: dict[str, int] = dataclasses.field(default_factory=dict)   # why calls failed -> how many, whole run

    @property
    def failed_calls(self) -> int:
        return sum(self.failed.values())


@dataclass(frozen=True)
class _Work:
    exchange: dict
    request: dict | None         # for a paraphrase, the captured request until its rewrite is known
    repetition: int
    perturbation: str | None
    id: str
    paraphrase: int | None = None  # n of perturbation "paraphrase-n"


class ReplayRunner:
    def __init__(self, store: ReplayStore, config: ShadowtapConfig, target: ReplayTarget, criterion: PassCriterion,
                 *, k: int = 1, concurrency: int = 4, budget_usd: float | None = None, perturb: bool = False,
                 paraphrase: ParaphraseSettings | None = None, rate: float | None = None,
                 rate_limiter: TokenBucket | None = None, batch_size: int = 10, flush_interval_s: float = 1.0,
                 litellm=None, prices=None,
                 exchange_rows: Callable[[Sequence[str]], Sequence[dict]] | None = None) -> None:
        from shadowtap.proxy.capture.pricing import PriceTable

        self.store, self.config, self.target, self.criterion = store, config, target, criterion
        self.k, self.concurrency, self.budget_usd, self.perturb = k, concurrency, budget_usd, perturb
        self.paraphrase = paraphrase
        self.rate_limiter = rate_limiter or (TokenBucket(rate) if rate else None)
        self._paraphrases: dict[tuple[str, str], asyncio.Future] = {}   # (exchange, "paraphrase-n") -> writer row
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.litellm = litellm
        self.prices = prices if prices is not None else PriceTable.from_litellm_package()
        self.redactor = Redactor.from_rules(config.redaction)
        self._buffer: list[dict] = []
        self._last_flush = time.monotonic()
        # Where the exchanges to replay come from: the store, or a golden set's snapshots.
        self._exchange_rows = exchange_rows or store.exchanges

    async def run(self, run_id: str, exchange_ids: Sequence[str], *,
                  on_result: Callable[[dict], None] | None = None) -> RunSummary:
        summary = RunSummary()
        done = self.store.done_result_ids(run_id)
        summary.already_done = len(done)
        summary.spent_usd = self.store.spent_usd(run_id)
        self._paraphrases = {}
        for row in self.store.paraphrase_rows(run_id):   # written before an interruption: never asked again
            future = asyncio.get_running_loop().create_future()
            future.set_result(row)
            self._paraphrases[(row["exchange_id"], row["perturbation"])] = future
        if self.litellm is None:
            self.litellm = await load_litellm()
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()

        def keep(row: dict) -> None:
            summary.spent_usd += row.get("cost_usd") or 0.0
            summary.written += 1
            self._buffer.append(row)
            if on_result is not None:
                on_result(row)
            if len(self._buffer) >= self.batch_size or time.monotonic() - self._last_flush >= self.flush_interval_s:
                self._flush()

        async def one(work: _Work) -> None:
            try:
                if work.paraphrase is not None:
                    text, why_not = await self._paraphrased(run_id, work, keep)
                    if text is None:
                        keep({**self._row(run_id, work), "outcome": "skipped", "error": why_not})
                        return
                    assert work.request is not None, "_work queues paraphrases only of parsed requests"
                    work = dataclasses.replace(work, request=with_paraphrase(work.request, text))
                keep(await self._replay(run_id, work))
            finally:
                slots.release()

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
        summary.calls, summary.failed = call_failures(self.store, run_id)
        if summary.status == "running":
            # A run whose calls failed has not measured what it was asked to: it must not say complete.
            summary.status = "incomplete" if summary.failed else "complete"
        self.store.finish_run(run_id, summary.status, now_iso())
        return summary

    def _work(self, run_id: str, exchange_ids: Sequence[str], done: set[str], page: int = 100):
        for start in range(0, len(exchange_ids), page):
            for exchange in self._exchange_rows(exchange_ids[start:start + page]):
                request = parse_request(exchange)
                variants: list[tuple[str | None, dict | None]] = [(None, request)]
                if self.perturb and request is not None:
                    variants += self._perturbations(exchange, request)
                if self.paraphrase and _replayable(exchange, request) and last_user_text(request) is not None:
                    variants += [(paraphrase_name(n), request) for n in range(1, self.paraphrase.count + 1)]
                for perturbation, body in variants:
                    for repetition in range(self.k):
                        work_id = result_id(run_id, exchange["id"], repetition, perturbation)
                        if work_id not in done:
                            yield _Work(exchange, body, repetition, perturbation, work_id,
                                        paraphrase_number(perturbation))

    def _perturbations(self, exchange: dict, request: dict) -> list[tuple[str, dict]]:
        from shadowtap.replay.perturb import perturbations

        contexts = [item.text for item in extract_contexts(request, exchange.get("shadowtap_metadata"),
                                                           self.config.contexts)]
        return perturbations(request, contexts)

    async def _replay(self, run_id: str, work: _Work) -> dict:
        exchange, request = work.exchange, work.request
        row = self._row(run_id, work)
        if request is None or not _replayable(exchange, request):
            why = "request was not captured as JSON" if request is None else \
                f"endpoint {exchange.get('endpoint')!r} is not replayable (only {', '.join(REPLAYABLE_ENDPOINTS)})"
            return {**row, "outcome": "skipped", "error": why}
        endpoint = exchange.get("endpoint")
        result = await self._call(replay_request(exchange, request), self.target.call_target(request, endpoint))
        row.update(self._call_columns(result, self.target.model_for(request, endpoint)))
        if result.outcome != "ok":
            return row
        text = row["response_text"]
        tool_calls = orjson.loads(row["response_tool_calls"]) if row["response_tool_calls"] else None
        answer = Answer(source=REPLAY_SOURCE, text=text, tool_calls=tool_calls, finish_reason=result.finish_reason,
                        latency_ms=result.latency_ms, prompt_tokens=row["prompt_tokens"],
                        completion_tokens=row["completion_tokens"], cost_usd=row["cost_usd"])
        verdict = await self.criterion.judge(exchange, request, answer, self.config.contexts)
        row["passed"] = None if verdict.passed is None else int(verdict.passed)
        row["pass_value"] = verdict.value
        row["diff"] = orjson.dumps(answer_diff(exchange, text, tool_calls)).decode()
        return row

    async def _paraphrased(self, run_id: str, work: _Work,
                           keep: Callable[[dict], None]) -> tuple[str | None, str | None]:
        """(paraphrase text, None) or (None, why there is none); one writer call per exchange and paraphrase."""
        assert work.perturbation is not None, "paraphrase work is always named paraphrase-n"
        key = (work.exchange["id"], work.perturbation)
        if key not in self._paraphrases:
            self._paraphrases[key] = asyncio.ensure_future(self._write_paraphrase(run_id, work, keep))
        return _paraphrase_outcome(await asyncio.shield(self._paraphrases[key]), last_user_text(work.request))

    async def _write_paraphrase(self, run_id: str, work: _Work, keep: Callable[[dict], None]) -> dict:
        settings, source, n = self.paraphrase, last_user_text(work.request), work.paraphrase
        # _work queues paraphrase n only when paraphrasing is configured and the request has a last user text.
        assert settings is not None and source is not None and n is not None
        writer = settings.writer
        row = self._row(run_id, dataclasses.replace(work, repetition=PARAPHRASE_WRITER_REPETITION, id=result_id(
            run_id, work.exchange["id"], PARAPHRASE_WRITER_REPETITION, work.perturbation)))
        # The writer's own target: its api_base and key env var, never the replay target's or a client's key.
        result = await self._call(writing_request(source, n, settings.count),
                                  writer.call_target(None))
        row.update(self._call_columns(result, writer.model))
        row["response_text"] = cleaned(row["response_text"]) if result.outcome == "ok" else None
        keep(row)
        return row

    async def _call(self, request: dict, target: CallTarget) -> CallResult:
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        return await call_chat(self.litellm, request, target, stream=request.get("stream") is True)

    def _call_columns(self, result: CallResult, model: str) -> dict:
        """The stored columns of one model call; answers and errors redacted, since captured answers are."""
        usage = result.usage or {}
        text = result.text
        if text and self.redactor.enabled:
            text = self.redactor.redact_text(text)
        tool_calls: object = result.tool_calls
        if result.tool_calls and self.redactor.enabled:
            tool_calls = self.redactor.redact_json(result.tool_calls)
        return {
            "outcome": result.outcome, "latency_ms": result.latency_ms, "response_text": text,
            "response_tool_calls": orjson.dumps(tool_calls).decode() if tool_calls else None,
            "finish_reason": result.finish_reason, "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"), "total_tokens": usage.get("total_tokens"),
            "cost_usd": self.prices.cost_usd(model, usage.get("prompt_tokens"), usage.get("completion_tokens")),
            "error": self._error_text(result),
        }

    def _error_text(self, result: CallResult) -> str | None:
        """Why a call failed, redacted like an answer: a provider's error can quote the request."""
        if not result.error_class:
            return None
        text = f"{result.error_class}: {result.error_message}"
        return self.redactor.redact_text(text) if self.redactor.enabled else text

    @staticmethod
    def _row(run_id: str, work: _Work) -> dict:
        return {"id": work.id, "run_id": run_id, "exchange_id": work.exchange["id"], "repetition": work.repetition,
                "perturbation": work.perturbation, "started_at": now_iso()}

    def _flush(self) -> None:
        if self._buffer:
            rows, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
            self.store.write_results(rows)


def _replayable(exchange: dict, request: dict | None) -> bool:
    dialect = dialect_named(exchange.get("endpoint"))
    # A request leaning on state the primary kept (a Responses previous_response_id) cannot be sent alone.
    return request is not None and dialect.replayable and dialect.mirror_refusal(request) is None


def _paraphrase_outcome(row: dict, source: str | None) -> tuple[str | None, str | None]:
    """(text, None) from a paraphrase-writer row, or (None, why there is nothing to replay)."""
    if row["outcome"] != "ok":
        return None, f"the paraphrase could not be written: {row['error'] or row['outcome']}"
    if not row["response_text"]:
        return None, "the paraphrase writer answered with no text"
    if row["response_text"] == source:
        return None, "the paraphrase writer returned the message unchanged"
    return row["response_text"], None


def answer_diff(exchange: dict, text: str | None, tool_calls: list | None) -> dict:
    """shadowtap.replay.diff.diff_answers against the captured answer (a plain equality check if it is missing)."""
    original_calls = orjson.loads(exchange["response_tool_calls"]) if exchange.get("response_tool_calls") else None
    original = {"text": exchange.get("response_text"), "tool_calls": original_calls}
    replayed = {"text": text, "tool_calls": tool_calls}
    try:
        from shadowtap.replay.diff import diff_answers
    except ImportError:
        return {"identical": _strip_ids(original) == _strip_ids(replayed), "text_diff": [], "json_diff": [],
                "tool_call_diff": []}
    return diff_answers(original, replayed)


def _strip_ids(answer: dict) -> tuple:
    calls = [(c.get("function") or {}).get("name") for c in answer["tool_calls"] or []]
    args = [(c.get("function") or {}).get("arguments") for c in answer["tool_calls"] or []]
    return answer["text"] or "", calls, args
