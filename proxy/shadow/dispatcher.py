"""ShadowDispatcher: the live process's side of shadowing. Plans, enqueues, never waits.

Each worker (`[shadow] workers`, default 1) runs in a spawned process fed by its own bounded job
channel (proxy/shadow/handoff.py); a job goes to exactly one worker, the one with the fewest jobs
waiting. When every channel is full the request is recorded as "saturated" for its candidates
instead of waiting. The workers' counters come back once a second and are served on /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from shadowtap.core.config import ShadowtapConfig
from shadowtap.proxy.exchange import RawExchange
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.shadow.handoff import JobSender, job_channel
from shadowtap.proxy.shadow.lag import cumulative_buckets, merged
from shadowtap.proxy.shadow.planning import ShadowJob, ShadowPlanner
from shadowtap.proxy.shadow.shares import WorkerShare, shares

log = logging.getLogger("shadowtap.shadow")


def _run_worker(*args: object) -> None:
    """The spawned worker's target, imported by name there: the worker module (candidate clients,
    pricing, capture rows, litellm) loads in the worker process only, never in the live one."""
    from shadowtap.proxy.shadow.worker import run_worker

    run_worker(*args)  # type: ignore[arg-type]


class ShadowDispatcher:
    def __init__(self, config: ShadowtapConfig, metrics: ProxyMetrics) -> None:
        self._config = config
        self._planner = ShadowPlanner(config.candidates, config.shadow)
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe under a running event loop
        self._shares = shares(config.shadow.workers)
        self._channels = [_WorkerChannel(self._context, share, config.shadow.queue_size) for share in self._shares]
        self._snapshots = self._context.Queue(maxsize=8 * len(self._shares))
        self._collector = ShadowMetricsCollector(self.queue_depth, len(self._shares))
        self._dropped = 0
        self._next = 0
        metrics.registry.register(self._collector)
        _warn_about_small_caps(config)

    @property
    def active(self) -> bool:
        return self._planner.active

    def queue_depth(self) -> int:
        """Shadow jobs handed over that no worker has taken yet."""
        return sum(channel.jobs.depth() for channel in self._channels)

    def worker_state(self) -> str:
        """starting (some worker is importing litellm; jobs wait in the queue), ready, or stopped
        (some worker is not running)."""
        if any(channel.process is None or not channel.process.is_alive() for channel in self._channels):
            return "stopped"
        return "ready" if self._collector.all_ready() else "starting"

    def start(self) -> None:
        for channel in self._channels:
            name = "shadowtap-shadow-worker" + (f"-{channel.share.index}" if channel.share.count > 1 else "")
            process = self._context.Process(target=_run_worker,
                                            args=(self._config, channel.worker_end, channel.taken, self._snapshots,
                                                  channel.share),
                                            name=name)
            process.start()
            channel.process = process  # only once started: stop() joins what it finds here
        threading.Thread(target=self._read_snapshots, daemon=True, name="shadow-snapshots").start()

    def offer(self, exchange: RawExchange, body: dict | None, body_bytes: bytes | bytearray, *,
              serving: str | None = None) -> None:
        """Plan the shadows for a request and hand them to the worker; skips go with the capture.
        `serving`: the canary candidate answering the request live, if one does."""
        plan = self._planner.plan(exchange.id, exchange.started_at, exchange.path, exchange.request_headers, body,
                                  body_bytes, serving=serving)
        if plan.job is not None:
            refused = self._send(plan.job)
            if refused is not None:
                if refused == "saturated":
                    self._dropped += 1
                    self._collector.queue_full_drops = self._dropped
                plan.skips.extend((name, refused) for name in plan.job.candidates)
        exchange.shadow_skips = plan.skips
        self._collector.count_skips(plan.skips)

    def _send(self, job: ShadowJob) -> str | None:
        """To the worker with the fewest jobs waiting (the next in turn among equals)."""
        channels = self._channels
        if len(channels) == 1:
            return channels[0].jobs.send(job)
        start = self._next = (self._next + 1) % len(channels)
        order = channels[start:] + channels[:start]
        refused: str | None = None
        for channel in sorted(order, key=lambda each: each.jobs.depth()):
            refused = channel.jobs.send(job)
            if refused is None:
                return None
        return refused

    async def connect(self) -> None:
        """Attach the job channels to the running event loop (call after start)."""
        for channel in self._channels:
            channel.worker_end.close()  # the worker has its own copy now
            await channel.jobs.connect()

    async def stop(self) -> None:
        """Ask the workers to finish: in-flight calls get the grace period, then they write and exit."""
        running = [channel for channel in self._channels if channel.process is not None]
        for channel in self._channels:
            if channel.process is None:
                channel.worker_end.close()
                channel.jobs.close()
        for channel in running:
            channel.jobs.send_stop()
        for channel in running:
            await channel.jobs.flushed(timeout_s=5)
        await asyncio.gather(*(asyncio.to_thread(self._join_worker, channel) for channel in running))
        for channel in running:
            channel.jobs.close()

    def _join_worker(self, channel: _WorkerChannel) -> None:
        process = channel.process
        if process is None:
            return
        grace = self._config.shadow.grace_period_s
        process.join(grace + 40)
        if process.is_alive():
            log.error("shadow worker did not stop within %.0fs; terminating it", grace + 40)
            process.terminate()
            process.join(5)
        channel.process = None

    def _read_snapshots(self) -> None:
        while True:
            try:
                snapshot = self._snapshots.get()
            except (EOFError, OSError):
                return
            self._collector.update(snapshot)


class _WorkerChannel:
    """One worker process and its job channel."""

    def __init__(self, context, share: WorkerShare, queue_size: int) -> None:
        self.share = share
        live_end, self.worker_end, self.taken = job_channel(context)
        # The queue bound is split like the caps, but never below one job per worker.
        self.jobs = JobSender(live_end, max(1, share.of_cap(queue_size)), self.taken)
        self.process: BaseProcess | None = None


def _warn_about_small_caps(config: ShadowtapConfig) -> None:
    workers = config.shadow.workers
    if workers == 1:
        return
    for candidate in config.candidates:
        if candidate.enabled and candidate.max_concurrency < workers:
            log.warning("[[candidates]] %r max_concurrency = %d is below [shadow] workers = %d: the workers "
                        "without a share of it record that candidate's jobs as saturated",
                        candidate.name, candidate.max_concurrency, workers,
                        extra={"candidate": candidate.name})


class ShadowMetricsCollector(Collector):
    """Serves the worker's latest snapshot plus the live side's own skip counts."""

    def __init__(self, queue_depth: Callable[[], int], workers: int = 1) -> None:
        self.latest: dict = {}          # every worker's latest snapshot, merged
        self._by_worker: dict[int, dict] = {}
        self._workers = workers
        self.queue_depth = queue_depth  # read at scrape time: a snapshot a second old hides a burst
        self.queue_full_drops = 0
        self._live_skips: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count_skips(self, skips: list[tuple[str, str]]) -> None:
        if skips:
            with self._lock:
                for key in skips:
                    self._live_skips[key] = self._live_skips.get(key, 0) + 1

    def update(self, snapshot: dict) -> None:
        with self._lock:
            self._by_worker[snapshot.get("worker", 0)] = snapshot
            self.latest = merge_snapshots(list(self._by_worker.values()))

    def all_ready(self) -> bool:
        with self._lock:
            return (len(self._by_worker) == self._workers
                    and all(snapshot.get("ready") for snapshot in self._by_worker.values()))

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
        lag = snapshot.get("lag") or {}
        histogram = HistogramMetricFamily(
            "shadowtap_shadow_worker_lag_seconds",
            "Time from a shadow job offered on the live path to its call starting in a shadow worker.")
        histogram.add_metric([], cumulative_buckets(lag), lag.get("sum_s") or 0.0)
        yield histogram


def merge_snapshots(snapshots: list[dict]) -> dict:
    """Several workers' snapshots as one: counters and gauges added up per candidate, breakers
    shown open when any worker's is, the time of the oldest."""
    if len(snapshots) == 1:
        return snapshots[0]
    merged_snapshot: dict = {"time": min((s.get("time", 0.0) for s in snapshots), default=0.0),
                             "ready": all(s.get("ready") for s in snapshots),
                             "lag": merged([s.get("lag") or {} for s in snapshots])}
    for key in ("calls", "skips", "in_flight", "peak_in_flight", "spend_today_usd"):
        total: dict = {}
        for snapshot in snapshots:
            for name, value in (snapshot.get(key) or {}).items():
                total[name] = total.get(name, 0) + value
        merged_snapshot[key] = total
    breakers: dict = {}
    for snapshot in snapshots:
        for name, state in (snapshot.get("breaker_state") or {}).items():
            breakers[name] = state if breakers.get(name, "closed") == "closed" else breakers[name]
    merged_snapshot["breaker_state"] = breakers
    return merged_snapshot


def _gauge(name: str, documentation: str, values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["candidate"])
    for candidate, value in values.items():
        family.add_metric([candidate], value)
    return family
