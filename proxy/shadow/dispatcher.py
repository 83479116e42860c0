"""ShadowDispatcher: the live process's side of shadowing. Plans, enqueues, never waits.

The worker runs in a spawned process fed by a bounded job channel (proxy/shadow/handoff.py); when
it is full the request is recorded as "saturated" for its candidates instead of waiting. The worker's counters come back
once a second and are served on /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shadowtap.core.config import ShadowtapConfig
from shadowtap.proxy.exchange import RawExchange
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.shadow.handoff import JobSender, job_channel
from shadowtap.proxy.shadow.planning import ShadowPlanner
from shadowtap.proxy.shadow.worker import run_worker

log = logging.getLogger("shadowtap.shadow")


class ShadowDispatcher:
    def __init__(self, config: ShadowtapConfig, metrics: ProxyMetrics) -> None:
        self._config = config
        self._planner = ShadowPlanner(config.candidates, config.shadow)
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe under a running event loop
        live_end, self._worker_end, self._taken = job_channel(self._context)
        self._jobs = JobSender(live_end, config.shadow.queue_size, self._taken)
        self._snapshots = self._context.Queue(maxsize=8)
        self._process: BaseProcess | None = None
        self._collector = ShadowMetricsCollector(self._jobs.depth)
        self._dropped = 0
        metrics.registry.register(self._collector)

    @property
    def active(self) -> bool:
        return self._planner.active

    def queue_depth(self) -> int:
        """Shadow jobs handed over that the worker has not taken yet."""
        return self._jobs.depth()

    def worker_state(self) -> str:
        """starting (importing litellm; jobs wait in the queue), ready, or stopped."""
        if self._process is None or not self._process.is_alive():
            return "stopped"
        return "ready" if self._collector.latest.get("ready") else "starting"

    def start(self) -> None:
        process = self._context.Process(target=run_worker,
                                        args=(self._config, self._worker_end, self._taken, self._snapshots),
                                        name="shadowtap-shadow-worker")
        process.start()
        self._process = process  # only once started: stop() joins what it finds here
        threading.Thread(target=self._read_snapshots, daemon=True, name="shadow-snapshots").start()

    def offer(self, exchange: RawExchange, body: dict | None, body_bytes: bytes | bytearray) -> None:
        """Plan the shadows for a request and hand them to the worker; skips go with the capture."""
        plan = self._planner.plan(exchange.id, exchange.started_at, exchange.path, exchange.request_headers, body,
                                  body_bytes)
        if plan.job is not None:
            refused = self._jobs.send(plan.job)
            if refused is not None:
                if refused == "saturated":
                    self._dropped += 1
                    self._collector.queue_full_drops = self._dropped
                plan.skips.extend((name, refused) for name in plan.job.candidates)
        exchange.shadow_skips = plan.skips
        self._collector.count_skips(plan.skips)

    async def connect(self) -> None:
        """Attach the job channel to the running event loop (call after start)."""
        self._worker_end.close()  # the worker has its own copy now
        await self._jobs.connect()

    async def stop(self) -> None:
        """Ask the worker to finish: in-flight calls get the grace period, then it writes and exits."""
        process = self._process
        if process is None:
            self._worker_end.close()
            self._jobs.close()
            return
        self._jobs.send_stop()
        await self._jobs.flushed(timeout_s=5)
        await asyncio.to_thread(self._join_worker, process)
        self._jobs.close()

    def _join_worker(self, process: BaseProcess) -> None:
        grace = self._config.shadow.grace_period_s
        process.join(grace + 40)
        if process.is_alive():
            log.error("shadow worker did not stop within %.0fs; terminating it", grace + 40)
            process.terminate()
            process.join(5)
        self._process = None

    def _read_snapshots(self) -> None:
        while True:
            try:
                snapshot = self._snapshots.get()
            except (EOFError, OSError):
                return
            self._collector.latest = snapshot


class ShadowMetricsCollector(Collector):
    """Serves the worker's latest snapshot plus the live side's own skip counts."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self.latest: dict = {}
        self.queue_depth = queue_depth  # read at scrape time: a snapshot a second old hides a burst
        self.queue_full_drops = 0
        self._live_skips: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count_skips(self, skips: list[tuple[str, str]]) -> None:
        if skips:
            with self._lock:
                for key in skips:
                    self._live_skips[key] = self._live_skips.get(key, 0) + 1

    def collect(self):
        snapshot = self.latest
        calls = CounterMetricFamily("shadowtap_shadow_calls", "Shadow calls and skips by candidate and outcome.",
                                    labels=["candidate", "outcome", "reason"])
        for (candidate, outcome), count in snapshot.get("calls", {}).items():
            calls.add_metric([candidate, outcome, ""], count)
        with self._lock:
            skips = dict(self._live_skips)
        for (candidate, reason), count in snapshot.get("skips", {}).items():
            skips[(candidate, reason)] = skips.get((candidate, reason), 0) + count
        for (candidate, reason), count in skips.items():
            calls.add_metric([candidate, "skipped", reason], count)
        yield calls
        yield _gauge("shadowtap_shadow_in_flight", "Shadow calls in flight.", snapshot.get("in_flight", {}))
        yield _gauge("shadowtap_shadow_spend_today_usd", "US dollars spent on shadow calls today (UTC).",
                     snapshot.get("spend_today_usd", {}))
        breaker = GaugeMetricFamily("shadowtap_shadow_breaker_open", "1 when a candidate's breaker is not closed.",
                                    labels=["candidate"])
        for candidate, state in snapshot.get("breaker_state", {}).items():
            breaker.add_metric([candidate], 0 if state == "closed" else 1)
        yield breaker
        depth = GaugeMetricFamily("shadowtap_shadow_queue_depth", "Shadow jobs waiting for the worker.")
        depth.add_metric([], self.queue_depth())
        yield depth
        drops = CounterMetricFamily("shadowtap_shadow_queue_dropped", "Shadow jobs refused because the queue was full.")
        drops.add_metric([], self.queue_full_drops)
        yield drops


def _gauge(name: str, documentation: str, values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["candidate"])
    for candidate, value in values.items():
        family.add_metric([candidate], value)
    return family
