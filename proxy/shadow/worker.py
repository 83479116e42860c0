"""The shadow worker process: admits, calls and records candidates, away from the live process.

It owns every piece of state that shadows need (concurrency, budgets, breakers, litellm, the
pooled client for candidates called directly) and writes its rows through the same batching
writer as capture. With `[shadow] workers = N` there are N of these processes, each with its
share of every cap and budget (proxy/shadow/shares.py). On shutdown it lets in-flight calls
finish within the grace period and records the rest as cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import queue
import socket
import threading
import time
import types
from collections import Counter
from dataclasses import dataclass, field

import orjson

from shadowtap.core import readiness
from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.config.shadow import CONVERSATIONAL_ENDPOINTS
from shadowtap.core.errors import StoreError
from shadowtap.core.logs import configure_logging, hold_library_loggers
from shadowtap.core.redaction import Redactor
from shadowtap.core.secrets import configured_secrets
from shadowtap.core.store import CaptureStore
from shadowtap.proxy.capture.builder_process import InProcessBuilder
from shadowtap.proxy.capture.pricing import PriceTable
from shadowtap.proxy.capture.record import CaptureRows
from shadowtap.proxy.capture.shadow_rows import shadow_row, skip_row
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.dialects import dialect_named
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.process_names import SHADOW_WORKER, lower_priority, name_this_process
from shadowtap.proxy.shadow.breaker import CircuitBreaker
from shadowtap.proxy.shadow.budget import DailyBudget, utc_day
from shadowtap.proxy.shadow.calls import CallResult, CallTarget, call_candidate, configure_litellm
from shadowtap.proxy.shadow.direct import DirectClient
from shadowtap.proxy.shadow.failure_log import FailureLog
from shadowtap.proxy.shadow.handoff import receive_jobs
from shadowtap.proxy.shadow.lag import LagHistogram
from shadowtap.proxy.shadow.planning import TWIN, ShadowJob
from shadowtap.proxy.shadow.shares import WorkerShare
from shadowtap.proxy.shadow.warm_up import warm_up

log = logging.getLogger("shadowtap.shadow")

SNAPSHOT_INTERVAL_S = 1.0


@dataclass
class CandidateState:
    target: CallTarget
    max_concurrency: int
    budget: DailyBudget
    breaker: CircuitBreaker
    in_flight: int = 0
    peak_in_flight: int = 0


@dataclass
class WorkerStats:
    calls: Counter = field(default_factory=Counter)       # (candidate, outcome) -> n
    skips: Counter = field(default_factory=Counter)       # (candidate, reason) -> n


def run_worker(config: ShadowtapConfig, jobs: socket.socket, taken, snapshots,
               share: WorkerShare = WorkerShare()) -> None:
    """Entry point of the spawned process."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    name_this_process(SHADOW_WORKER)
    lower_priority(config.shadow.worker_nice, "shadow worker")
    configure_logging(config.server.log_level, config.server.log_format, config.server.log_file,
                      configured_secrets(config))
    asyncio.run(ShadowWorker(config, jobs, taken, snapshots, share).run())


def _watch_parent(parent_pid: int, loop: asyncio.AbstractEventLoop, stopping: asyncio.Event,
                  interval_s: float = 0.5) -> None:
    """A live process killed outright (SIGKILL, OOM) never sends the stop frame; without this the worker
    would wait for jobs forever, holding the store open. It finishes its calls and exits instead."""
    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    log.warning("the proxy process is gone; shadow worker finishing in-flight calls and exiting")
    loop.call_soon_threadsafe(stopping.set)


class ShadowWorker:
    def __init__(self, config: ShadowtapConfig, jobs: socket.socket, taken, snapshots,
                 share: WorkerShare = WorkerShare()) -> None:
        self._config = config
        self._share = share
        self._jobs = jobs
        self._taken = taken
        self._snapshots = snapshots
        self._stats = WorkerStats()
        self._tasks: set[asyncio.Task] = set()
        self._prices = PriceTable.from_litellm_package()
        self._redactor = Redactor.from_rules(config.redaction)
        self._writer = CaptureWriter(lambda: CaptureStore.open(config.store.path), lambda store: InProcessBuilder(),
                                     ProxyMetrics(), queue_size=config.store.queue_size,
                                     batch_size=config.store.batch_size,
                                     flush_interval_s=config.store.flush_interval_ms / 1000)
        self._states: dict[str, CandidateState] = {}
        self._litellm: types.ModuleType | None = None  # imported in run(), before any job is read
        self._direct = DirectClient()
        self._lag = LagHistogram()
        self._failures = FailureLog()
        self._ready = False

    def _build_states(self) -> None:
        try:
            store = CaptureStore.open(self._config.store.path)
        except StoreError as exc:
            # The proxy serves without capture until the store opens; shadows go on, and their
            # rows wait in the writer's queue like the proxy's captures.
            log.warning("could not read today's shadow spend from the store (%s); daily budgets count from "
                        "zero until the next restart", exc)
            spent: dict[str, float] = {}
        else:
            spent = store.shadow_spend_today(utc_day())  # a restart does not reset today's spend
            store.close()
        shadow, share = self._config.shadow, self._share
        for candidate in self._config.candidates:
            if candidate.enabled:
                self._states[candidate.name] = CandidateState(
                    CallTarget.for_candidate(candidate, shadow), share.of_cap(candidate.max_concurrency),
                    DailyBudget(share.of_budget(candidate.daily_budget_usd),
                                share.of_budget(spent.get(candidate.name, 0.0))),
                    CircuitBreaker(shadow.breaker_failures, shadow.breaker_cooldown_s))
        # The twin also answers every canaried request (the reverse shadow: the primary's answer to
        # the request a candidate served), whatever the twin rate.
        if shadow.primary_twin_rate > 0 or self._config.canaries_configured():
            self._states[TWIN] = CandidateState(twin_target(self._config), share.of_cap(shadow.twin_max_concurrency),
                                                DailyBudget(float("inf")),
                                                CircuitBreaker(shadow.breaker_failures, shadow.breaker_cooldown_s))

    def _needs_litellm(self) -> bool:
        """Some call goes through litellm: a candidate not called directly, or one mirrored for an
        endpoint that is not called as a chat (embeddings)."""
        return any(not state.target.direct for state in self._states.values()) or any(
            candidate.enabled and not set(candidate.endpoints) <= set(CONVERSATIONAL_ENDPOINTS)
            for candidate in self._config.candidates)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        threading.Thread(target=_watch_parent, args=(os.getppid(), loop, stopping), daemon=True,
                         name="shadow-parent-watch").start()
        self._writer.start()
        self._build_states()
        await self._direct.start()
        hold_library_loggers(self._config.server.log_level)  # at DEBUG, they would log request bodies
        if self._needs_litellm():  # a worker with only direct candidates never pays for litellm
            await self._load_litellm()
        self._ready = True
        self._send_snapshot()
        reading = asyncio.ensure_future(self._read_jobs(stopping))
        reporter = asyncio.ensure_future(self._report_forever())
        log.info("shadow worker ready", extra={"candidates": sorted(self._states), "worker": self._share.label,
                                               "direct": sorted(n for n, s in self._states.items() if s.target.direct)})
        await stopping.wait()
        reading.cancel()
        await self._drain()
        reporter.cancel()
        await self._direct.close()
        self._send_snapshot()
        self._writer.close(timeout_s=30)

    async def _load_litellm(self) -> None:
        import litellm  # here, in the worker, so the live process never pays for it

        configure_litellm(litellm)
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)  # one INFO line per call otherwise
        hold_library_loggers(self._config.server.log_level)  # again: litellm's own loggers exist now
        self._litellm = litellm
        # `shadowtap check`'s model-string check: here, since the live process never loads litellm.
        if self._share.index == 0:  # one warning per problem, not one per worker
            readiness.log_problems(readiness.model_checks(self._config, litellm, judge=False), log)
        await warm_up(litellm, [state.target for state in self._states.values()],
                      {candidate.name: candidate.endpoints for candidate in self._config.candidates})

    async def _read_jobs(self, stopping: asyncio.Event) -> None:
        """Admit jobs as they arrive, until the live process says stop or goes away."""
        async for job in receive_jobs(self._jobs, self._taken):
            self._admit(job)
        stopping.set()

    def _admit(self, job: ShadowJob) -> None:
        names = list(job.candidates) + ([TWIN] if job.twin else [])
        body = orjson.loads(job.body)  # planned on the live path, so it is known to be a JSON object
        for name in names:
            state = self._states.get(name)
            if state is None:
                self._skip(job, name, None, "ineligible")
                continue
            reason = self._refusal(state)
            if reason is not None:
                self._skip(job, name, state.target.model, reason)
                continue
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
            task = asyncio.ensure_future(self._call(state, job, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _skip(self, job: ShadowJob, name: str, model: str | None, reason: str) -> None:
        self._stats.skips[(name, reason)] += 1
        self._writer.submit(CaptureRows(shadows=[skip_row(job.exchange_id, name, model, reason, job.started_at)]))

    @staticmethod
    def _refusal(state: CandidateState) -> str | None:
        if state.in_flight >= state.max_concurrency:
            return "saturated"
        if not state.budget.allows_another_call():
            return "over_budget"
        if not state.breaker.allow():
            return "breaker_open"
        return None

    async def _call(self, state: CandidateState, job: ShadowJob, body: dict) -> None:
        lag_s = time.time() - job.started_at   # from the request's arrival to this call's start
        self._lag.observe(lag_s)
        target = state.target
        if target.is_twin:
            target = dataclasses.replace(target, model=f"openai/{body.get('model', '')}")
        dialect = dialect_named(job.endpoint)
        stream = dialect.request_streams(body)
        try:
            result = await call_candidate(self._litellm, dialect, body, target, stream=stream, direct=self._direct)
        except asyncio.CancelledError:
            result = CallResult(outcome="cancelled", error_class="CancelledError",
                                error_message="shadowtap shut down before the call finished")
        finally:
            state.in_flight -= 1
        if result.outcome == "ok":
            state.breaker.record_success()
        elif result.outcome in ("error", "timeout"):
            state.breaker.record_failure()
            self._failures.failed(target.name, target.model, result.outcome, result.error_class,
                                  result.error_message)
        row = shadow_row(job.exchange_id, target, job.started_at, stream, result, self._prices,
                         worker_lag_ms=lag_s * 1000)
        state.budget.record(row["cost_usd"])
        self._stats.calls[(target.name, result.outcome)] += 1
        log.debug("shadow call finished", extra={"exchange_id": job.exchange_id, "candidate": target.name,
                                                 "outcome": result.outcome, "latency_ms": result.latency_ms})
        self._writer.submit(CaptureRows(shadows=[self._redacted(row)]))

    def _redacted(self, row: dict) -> dict:
        if self._redactor.enabled:
            # A candidate's error can quote the request back (careless providers do), prompt and all.
            for column in ("response_text", "response_tool_calls", "error_message"):
                if row[column]:
                    row[column] = self._redactor.redact_text(row[column])
        return row

    async def _drain(self) -> None:
        grace = self._config.shadow.grace_period_s
        if self._tasks:
            log.info("waiting for in-flight shadow calls", extra={"in_flight": len(self._tasks), "grace_s": grace})
            done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _report_forever(self) -> None:
        while True:
            self._send_snapshot()
            await asyncio.sleep(SNAPSHOT_INTERVAL_S)

    def _send_snapshot(self) -> None:
        snapshot = {
            "time": time.time(),
            "ready": self._ready,
            "calls": dict(self._stats.calls),
            "skips": dict(self._stats.skips),
            "in_flight": {name: state.in_flight for name, state in self._states.items()},
            "peak_in_flight": {name: state.peak_in_flight for name, state in self._states.items()},
            "spend_today_usd": {name: state.budget.spent_usd for name, state in self._states.items()
                                if state.budget.limit_usd != float("inf")},
            "breaker_state": {name: state.breaker.state for name, state in self._states.items()},
            "lag": self._lag.snapshot(),
            "worker": self._share.index,
        }
        try:
            self._snapshots.put_nowait(snapshot)
        except queue.Full:
            pass  # the live process reads the latest; a missed snapshot is superseded by the next



def twin_target(config: ShadowtapConfig) -> CallTarget:
    """The primary asked again, with the proxy's own key and the twin's limits from [shadow]; its
    model is the request's, set per call. Called directly unless configured otherwise, like an
    OpenAI-compatible candidate, so the two are timed by the same machinery."""
    shadow = config.shadow
    key_env = shadow.primary_twin_key_env or config.primary.api_key_env
    direct = "openai" in shadow.direct_providers and TWIN not in shadow.litellm_candidates
    return CallTarget(TWIN, "", config.primary.base_url, os.environ.get(key_env) if key_env else None,
                      shadow.twin_timeout_s, None, is_twin=True, direct=direct)
