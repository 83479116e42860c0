"""EvalRunner: computes every pending (answer, evaluator) score, concurrently, committing as it goes.

Incremental and resumable: only answers without a score at the evaluator's current version are
pending, and finished scores are committed every `batch_size` rows or `flush_interval_s`, so a
killed run loses at most one batch and the next run carries on from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict, Unpack

import orjson

from shadowtap.core.config import ContextsConfig, ShadowtapConfig
from shadowtap.core.errors import StoreError
from shadowtap.core.secrets import configured_secrets, scrub_secrets
from shadowtap.core.store.score_store import PendingScore, ScoreStore, score_id
from shadowtap.evaluators.base import EvalItem, Evaluator, NotApplicable, Score
from shadowtap.evaluators.items import load_items

log = logging.getLogger("shadowtap.eval")

# One pending score: the item is None when its answer has gone, an Exception when it could not be built.
_Work = tuple[PendingScore, EvalItem | Exception | None, Evaluator]


class _PageDone:
    """Marks the end of a claimed page's work."""


_PAGE_DONE = _PageDone()


@dataclass(frozen=True)
class EvalSelection:
    """Which answers a run considers; every field is optional."""

    since: str | None = None        # ISO time: exchanges started at or after it
    source: str | None = None       # one answer source: "primary", "primary_twin" or a candidate
    limit: int | None = None        # at most this many exchanges with pending work, oldest first


@dataclass
class RunReport:
    """What one run did: outcome counts per evaluator, and each evaluator's first error."""

    pending: int = 0
    outcomes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    first_errors: dict[str, str] = field(default_factory=dict)

    def add(self, row: dict) -> None:
        self.outcomes[row["evaluator"]][row["outcome"]] += 1
        if row["outcome"] == "error":
            self.first_errors.setdefault(row["evaluator"], row["error"])

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.outcomes.values())

    def failed_evaluators(self) -> list[str]:
        """Evaluators that errored on every answer they tried in this run: broken, not flaky."""
        return sorted(name for name, counts in self.outcomes.items()
                      if counts["error"] and counts["error"] == sum(counts.values()))


@dataclass
class DryRunPlan:
    """What a run would do: pending scores by (evaluator, source), judge calls and their cost."""

    exchanges: int = 0
    pending: Counter = field(default_factory=Counter)
    judge_calls: Counter = field(default_factory=Counter)
    cost_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost_unknown: Counter = field(default_factory=Counter)   # judged items with no estimate


class RunnerOptions(TypedDict, total=False):
    """The EvalRunner settings `from_config` leaves to the caller."""

    batch_size: int
    flush_interval_s: float
    page_size: int


class EvalRunner:
    def __init__(self, store: ScoreStore, evaluators: Sequence[Evaluator], *, contexts: ContextsConfig,
                 max_concurrency: int = 8, judge_concurrency: int = 4, batch_size: int = 100,
                 flush_interval_s: float = 1.0, page_size: int = 200, secrets: Sequence[str] = ()) -> None:
        self.store = store
        self.evaluators = {evaluator.name: evaluator for evaluator in evaluators}
        self.versions = {evaluator.name: str(evaluator.version) for evaluator in evaluators}
        self.contexts = contexts
        self.max_concurrency = max_concurrency
        self.judge_concurrency = judge_concurrency
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.page_size = page_size
        self.secrets = [secret for secret in secrets if len(secret) >= 8]
        self._buffer: list[dict] = []
        self._last_flush = time.monotonic()

    @classmethod
    def from_config(cls, store: ScoreStore, evaluators: Sequence[Evaluator], config: ShadowtapConfig,
                    **options: Unpack[RunnerOptions]) -> EvalRunner:
        return cls(store, evaluators, contexts=config.contexts, max_concurrency=config.eval.max_concurrency,
                   judge_concurrency=config.judge.max_concurrency, secrets=configured_secrets(config), **options)

    def count_pending(self, selection: EvalSelection = EvalSelection()) -> int:
        return self.store.count_pending(self.versions, since=selection.since, source=selection.source,
                                        limit=selection.limit)

    async def run(self, selection: EvalSelection = EvalSelection(), *, on_start: Callable[[int], None] | None = None,
                  on_scored: Callable[[dict], None] | None = None) -> RunReport:
        """Score everything pending in `selection`.

        `on_start` gets the number of pending scores; `on_scored` sees each row as it completes.
        """
        report = RunReport(pending=self.count_pending(selection))
        if on_start is not None:
            on_start(report.pending)
        queue: asyncio.Queue[_Work | None] = asyncio.Queue(maxsize=self.max_concurrency * 2)
        judge_slots = asyncio.Semaphore(self.judge_concurrency)
        self._buffer, self._last_flush = [], time.monotonic()

        claiming = self.store.claims_work

        async def produce() -> None:
            for work in self._work(selection, claim=claiming):
                if isinstance(work, _PageDone):
                    # A claimed page is held until its scores are written: wait for them, then
                    # asking for the next page commits this one and releases its claim.
                    await queue.join()
                    self._flush()
                    continue
                await queue.put(work)
            for _ in range(self.max_concurrency):
                await queue.put(None)

        async def consume() -> None:
            while (work := await queue.get()) is not None:
                row = await self._score(*work, judge_slots)
                report.add(row)
                self._buffer.append(row)
                if on_scored is not None:
                    on_scored(row)
                if len(self._buffer) >= self.batch_size or time.monotonic() - self._last_flush >= self.flush_interval_s:
                    self._flush()
                queue.task_done()

        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(produce())
                    for _ in range(self.max_concurrency):
                        group.create_task(consume())
            except* Exception as failure:
                raise failure.exceptions[0] from None   # one failure (the store) stops the run
        except BaseException:
            # Interrupted (Ctrl-C, a store error): keep every score that finished, if the store lets us.
            try:
                self._flush()
            except StoreError as exc:
                log.warning("could not save the last %d finished scores: %s", len(self._buffer), exc)
            raise
        self._flush()
        return report

    def plan(self, selection: EvalSelection = EvalSelection()) -> DryRunPlan:
        """Count what `run` would score and the judge calls it would make; writes nothing."""
        plan = DryRunPlan()
        plan.judge_calls.update({name: 0 for name, evaluator in self.evaluators.items() if evaluator.needs_judge})
        exchanges = set()
        for work in self._work(selection):
            if isinstance(work, _PageDone):
                continue
            pending, item, evaluator = work
            exchanges.add(pending.exchange_id)
            plan.pending[evaluator.name, pending.source] += 1
            if not evaluator.needs_judge or not isinstance(item, EvalItem) or not _guarded(evaluator.applies, item):
                continue
            calls = getattr(evaluator, "judge_calls_per_item", 1)
            plan.judge_calls[evaluator.name] += calls(item) if callable(calls) else calls
            estimate = getattr(evaluator, "estimate_cost_usd", None)
            cost = _guarded(estimate, item) if callable(estimate) else None
            if isinstance(cost, (int, float)):
                plan.cost_usd[evaluator.name] += cost
            else:
                plan.cost_unknown[evaluator.name] += 1
        plan.exchanges = len(exchanges)
        return plan

    def _work(self, selection: EvalSelection, *, claim: bool = False) -> Iterator[_Work | _PageDone]:
        """The work of each page of pending scores; with `claim` (several workers on one shared
        store), each page is claimed first and followed by _PAGE_DONE."""
        seen = 0
        pages = self.store.iter_claimed if claim else self.store.iter_pending
        for page in pages(self.versions, since=selection.since, source=selection.source, page_size=self.page_size):
            by_exchange: dict[str, list[PendingScore]] = defaultdict(list)
            for pending in page:
                by_exchange[pending.exchange_id].append(pending)
            ids = list(by_exchange)
            if selection.limit is not None:
                ids = ids[: max(0, selection.limit - seen)]
            seen += len(ids)
            for exchange, items in load_items(self.store, ids, self.contexts):
                for pending in by_exchange[exchange["id"]]:
                    item = items if isinstance(items, Exception) else items.get(pending.source)
                    yield pending, item, self.evaluators[pending.evaluator]
            if claim:
                yield _PAGE_DONE
            if selection.limit is not None and seen >= selection.limit:
                return

    async def _score(self, pending: PendingScore, item: EvalItem | Exception | None, evaluator: Evaluator,
                     judge_slots: asyncio.Semaphore) -> dict:
        started = time.perf_counter()
        result: Score | NotApplicable
        try:
            if isinstance(item, Exception):
                raise item   # the exchange's items could not be built; every score of it says why
            if item is None:
                raise LookupError(f"answer {pending.source!r} is no longer in the store")
            if not evaluator.applies(item):
                result = NotApplicable(f"{evaluator.name} does not apply to this answer")
            elif evaluator.needs_judge:
                async with judge_slots:
                    result = await evaluator.score(item)
            else:
                result = await evaluator.score(item)
            if not isinstance(result, (Score, NotApplicable)):
                raise TypeError(f"{evaluator.name}.score returned {type(result).__name__}, "
                                "expected Score or NotApplicable")
        except Exception as exc:  # an evaluator's failure is its own error row; the run goes on
            error = f"{type(exc).__name__}: {scrub_secrets(str(exc), self.secrets)}"
            log.info("evaluator %s failed on %s/%s: %s", evaluator.name, pending.exchange_id, pending.source, error)
            return self._row(pending, evaluator, started, outcome="error", error=error)
        if isinstance(result, NotApplicable):
            return self._row(pending, evaluator, started, outcome="not_applicable", details={"reason": result.reason})
        return self._row(pending, evaluator, started, outcome="score", value=result.value, label=result.label,
                         details=result.details)

    def _row(self, pending: PendingScore, evaluator: Evaluator, started: float, *, outcome: str,
             value: float | None = None, label: str | None = None, details: dict | None = None,
             error: str | None = None) -> dict:
        return {
            "id": score_id(pending.exchange_id, pending.source, evaluator.name),
            "exchange_id": pending.exchange_id, "source": pending.source, "evaluator": evaluator.name,
            "evaluator_version": self.versions[evaluator.name], "outcome": outcome, "value": value, "label": label,
            "details": orjson.dumps(details or {}, default=str, option=orjson.OPT_NON_STR_KEYS).decode(),
            "error": error, "scored_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def _flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        self.store.write(rows)


def _guarded(function: Callable, item: EvalItem) -> object:
    try:
        return function(item)
    except Exception:  # a dry run only estimates; a failing estimate counts as unknown
        return None
