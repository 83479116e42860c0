"""Proxies with and without shadow candidates, for the shadow benchmarks: each `shadowtap serve`
in a process of its own, its shadow worker found among its children, and its store read back.

The candidates answer from a second simulator, so their calls never load the primary's upstream.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.local_stack import child_pids, process_name, spawn
from shadowtap.core.store import CaptureStore
from shadowtap.proxy.local_processes import (
    free_port,
    proxy_command,
    simulator_command,
    stop_process,
    wait_until_serving,
)
from shadowtap.proxy.process_names import SHADOW_WORKER

CANDIDATE_MODELS = ("openai/sim-small", "openai/sim-large")
CANDIDATE_MAX_CONCURRENCY = 64
CANDIDATE_TIMEOUT_S = 10.0
WORKER_READY_TIMEOUT_S = 120.0  # litellm's import takes seconds, more on a busy machine


@dataclass
class Simulator:
    process: subprocess.Popen
    url: str  # without /v1

    @classmethod
    def start(cls, workdir: Path, name: str, *options: str) -> Simulator:
        port = free_port()
        process = spawn(simulator_command(port, *options), workdir / f"{name}.log")
        simulator = cls(process, f"http://127.0.0.1:{port}")
        try:
            wait_until_serving(f"{simulator.url}/v1/models", process)
        except RuntimeError as exc:
            stop_process(process)
            raise RuntimeError(f"simulator {name}: {exc} (logs in {workdir})") from None
        return simulator

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


def candidate_tables(api_base: str) -> str:
    """Two candidates, every request mirrored to both, on the candidates' own simulator."""
    tables = []
    for model in CANDIDATE_MODELS:
        tables.append(f"[[candidates]]\nname = {json.dumps(model.split('/', 1)[1])}\nmodel = {json.dumps(model)}\n"
                      f"api_base = {json.dumps(api_base)}\nsample_rate = 1.0\n"
                      f"max_concurrency = {CANDIDATE_MAX_CONCURRENCY}\ntimeout_s = {CANDIDATE_TIMEOUT_S}\n")
    return "\n".join(tables)


def proxy_config(port: int, upstream_base_url: str, workdir: Path, candidates_api_base: str | None,
                 extra_toml: str = "") -> str:
    # json.dumps quotes a path the way TOML's basic strings expect.
    text = (f"[server]\nhost = \"127.0.0.1\"\nport = {port}\n"
            f"log_file = {json.dumps(str(workdir / 'proxy.log'))}\n\n"
            f"[primary]\nbase_url = {json.dumps(upstream_base_url)}\n\n"
            f"[store]\npath = {json.dumps(str(workdir / 'captures.db'))}\n")
    if candidates_api_base:
        text += "\n" + candidate_tables(candidates_api_base)
    return text + extra_toml


@dataclass
class ProxyProcess:
    """One `shadowtap serve` with its own directory, store and logs."""

    name: str
    process: subprocess.Popen
    url: str
    workdir: Path
    shadows: bool
    worker_pid: int | None = None
    store: CaptureStore | None = None

    @classmethod
    def start(cls, workdir: Path, name: str, upstream_base_url: str, candidates_api_base: str | None,
              extra_toml: str = "") -> ProxyProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config_path = workdir / "shadowtap.toml"
        config_path.write_text(proxy_config(port, upstream_base_url, workdir, candidates_api_base, extra_toml))
        process = spawn(proxy_command(config_path), workdir / "proxy.stderr.log")
        proxy = cls(name, process, f"http://127.0.0.1:{port}", workdir, shadows=candidates_api_base is not None)
        try:
            wait_until_serving(f"{proxy.url}/healthz", process)
            if proxy.shadows:
                proxy._wait_for_worker()
        except RuntimeError as exc:
            proxy.stop()
            raise RuntimeError(f"proxy {name}: {exc} (logs in {workdir})") from None
        proxy.store = CaptureStore.open(workdir / "captures.db")  # read-only use, for counting
        return proxy

    @property
    def pid(self) -> int:
        return self.process.pid

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def _wait_for_worker(self) -> None:
        started = time.monotonic()
        while time.monotonic() - started < WORKER_READY_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with code {self.process.returncode} while its shadow worker started")
            state = self.health().get("shadow_worker")
            if state == "ready":
                self.worker_pid = shadow_worker_pid(self.pid)
                return
            if state not in ("starting", None):
                raise RuntimeError(f"/healthz reports shadow_worker {state!r}")
            time.sleep(0.2)
        raise RuntimeError(f"shadow worker not ready within {WORKER_READY_TIMEOUT_S:.0f}s")

    def captured(self) -> int:
        assert self.store is not None
        return self.store.count_exchanges()

    def shadow_rows(self) -> int:
        assert self.store is not None
        return self.store.db.execute("select count(*) from shadows").fetchone()[0]

    def metric(self, name: str) -> float:
        """Sum of every sample of one metric on /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> int:
        """SIGTERM: the proxy finishes requests, the worker its calls, then both drain their writes."""
        if self.store is not None:
            self.store.close()
            self.store = None
        return stop_process(self.process, timeout_s=90)


async def wait_for_count(read: Callable[[], int], expected: int, patience_s: float) -> int:
    """Wait until `read()` reaches `expected`, or stops growing for `patience_s`; the last count."""
    count, last_progress = read(), time.monotonic()
    while count < expected and time.monotonic() - last_progress < patience_s:
        await asyncio.sleep(0.02)
        now = read()
        if now > count:
            count, last_progress = now, time.monotonic()
    return count


def shadow_worker_pid(proxy_pid: int) -> int:
    """The proxy's child that names itself the shadow worker (another runs the capture builder)."""
    for child in child_pids(proxy_pid):
        if process_name(child) == SHADOW_WORKER:
            return child
    raise RuntimeError(f"no shadow worker among the children of pid {proxy_pid}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def iso(epoch_seconds: float) -> str:
    """The store's timestamp format, so time windows compare as strings."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="microseconds")


def count_exchanges(db_path: Path) -> int:
    store = CaptureStore.open(db_path)
    try:
        return store.count_exchanges()
    finally:
        store.close()


def shadow_outcomes(db_path: Path, since: float | None = None, until: float | None = None) -> dict:
    """Shadow rows by outcome (skips by reason), for exchanges started within [since, until)."""
    store = CaptureStore.open(db_path)
    try:
        rows = store.db.execute(
            "select outcome, coalesce(skip_reason, ''), count(*) from shadows"
            " where started_at >= ? and started_at < ? group by 1, 2",
            [iso(since) if since is not None else "", iso(until) if until is not None else "~"]).fetchall()
    finally:
        store.close()
    counts: Counter = Counter()
    for outcome, reason, count in rows:
        counts[f"{outcome} {reason}".strip()] += count
    return dict(counts)


def summarise_outcomes(counts: dict) -> dict:
    """ok / skipped saturated / other, with `other` broken down."""
    other = {key: value for key, value in counts.items() if key not in ("ok", "skipped saturated")}
    return {"ok": counts.get("ok", 0), "saturated": counts.get("skipped saturated", 0),
            "other": sum(other.values()), "other_detail": other, "total": sum(counts.values())}
