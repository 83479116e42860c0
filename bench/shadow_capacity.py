"""How many candidate calls one shadow worker makes per second of its CPU, and whether an identical
candidate's latency matches the primary twin's.

    python bench/shadow_capacity.py --quick     # smoke run, well under a minute
    python bench/shadow_capacity.py             # 4,000 direct and 600 litellm calls, then the fairness runs
    python bench/shadow_capacity.py --json      # the same, machine-readable

A real shadow worker (`run_worker`, the process `shadowtap serve` spawns) is fed shadow jobs over
its real job channel; its candidate answers from a fast fake OpenAI-compatible upstream in a
process of its own (a bare asyncio protocol with canned answers, on uvloop when installed), and it
writes its rows to a throwaway store. Nothing else runs in the worker's process.

Capacity: one candidate (`openai/fake` at the upstream's api_base, `max_concurrency = 64`), fed in
a closed loop that keeps `--window` calls outstanding at the upstream, so no job is refused as
saturated. Two runs, one after the other against the same upstream: the candidate called directly
(proxy/shadow/direct.py) and the same candidate named in `[shadow] litellm_candidates`. For each:
calls answered, wall time, the worker's CPU (all threads, from /proc schedstat, from the first job
to the last row written), and calls per second of worker CPU: the calls one core could make.

Fairness: the upstream waits `--delay-ms` before each answer; every job asks the candidate and the
primary twin (`primary_twin_rate = 1`, same upstream), with `--in-flight` jobs outstanding (as
many live requests in flight). The candidate's p50/p95 latency over the twin's, as the report
computes them (`evaluators/report/figures.py`, paired by exchange), for the direct and the litellm
candidate. The issue's goal: within 1.1 of 1.0 at 8 in flight.

Options: `--jobs`, `--litellm-jobs`, `--window`, `--delay-ms`, `--fair-jobs`, `--in-flight`,
`--pin` (worker on CPU 0, upstream on CPU 1), `--stream` (the capacity runs again with streamed
requests: 20 content events, a finish and a usage event per answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import queue
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_stack import cpu_times  # noqa: E402
from shadowtap.core.config import config_from_dict  # noqa: E402
from shadowtap.proxy.local_processes import free_port  # noqa: E402
from shadowtap.proxy.shadow.handoff import JobSender, job_channel  # noqa: E402
from shadowtap.proxy.shadow.planning import TWIN, ShadowJob  # noqa: E402
from shadowtap.proxy.shadow.shares import WorkerShare  # noqa: E402
from shadowtap.proxy.shadow.worker import run_worker  # noqa: E402

READY_TIMEOUT_S = 600.0  # litellm's import and warm-up take minutes on a saturated machine
_QUESTION = {"model": "fake-primary", "max_tokens": 64,
             "messages": [{"role": "system", "content": "You answer questions about backups."},
                          {"role": "user", "content": "How long are nightly backups kept?"}]}
REQUEST = orjson.dumps(_QUESTION)
STREAM_REQUEST = orjson.dumps({**_QUESTION, "stream": True})

# ---------------------------------------------------------------- the fake upstream (its own process)

_ANSWER = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "fake",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Nightly backups are kept for 35 days. " * 4}}],
    "usage": {"prompt_tokens": 31, "completion_tokens": 40, "total_tokens": 71}})
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)\r\n")
_STREAM_ASKED = re.compile(rb'"stream":\s*true')
_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
             + str(len(_ANSWER)).encode() + b"\r\n\r\n" + _ANSWER)


def _events() -> bytes:
    """20 content events, the finish, a usage event and [DONE]: a streamed answer."""
    def event(choices: list, **extra) -> bytes:
        return b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": choices,
                                         **extra}) + b"\n\n"
    body = event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    body += b"".join(event([{"index": 0, "delta": {"content": "Nightly backups are kept. "}, "finish_reason": None}])
                     for _ in range(20))
    body += event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    body += event([], usage={"prompt_tokens": 31, "completion_tokens": 100, "total_tokens": 131})
    return body + b"data: [DONE]\n\n"


_STREAM_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
                    + str(len(_events())).encode() + b"\r\n\r\n" + _events())


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, requests with a content-length only: what the worker sends."""

    def __init__(self, answered, delay_s: float) -> None:
        self._buffer = b""
        self._answered = answered
        self._delay_s = delay_s
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            found = _CONTENT_LENGTH.search(self._buffer, 0, end + 2)
            length = int(found.group(1)) if found else 0
            if len(self._buffer) < end + 4 + length:
                return
            response = _STREAM_RESPONSE if _STREAM_ASKED.search(self._buffer, end + 4, end + 4 + length) else _RESPONSE
            self._buffer = self._buffer[end + 4 + length:]
            if self._delay_s:
                asyncio.get_running_loop().call_later(self._delay_s, self._answer, response)
            else:
                self._answer(response)

    def _answer(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)
            with self._answered.get_lock():
                self._answered.value += 1


def _serve_upstream(port: int, answered, delay_ms, ready, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _UpstreamProtocol(answered, delay_ms.value / 1000),
                                          "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------- one worker run


@dataclass
class RunResult:
    name: str
    calls: int
    ok: int
    other: dict
    wall_s: float
    worker_cpu_s: float
    calls_per_cpu_s: float
    calls_per_wall_s: float


@dataclass
class FairResult:
    name: str
    pairs: int
    candidate_p50_ms: float | None
    candidate_p95_ms: float | None
    twin_p50_ms: float | None
    twin_p95_ms: float | None
    p50_ratio: float | None
    p95_ratio: float | None
    worker_lag_p95_ms: float | None


class Worker:
    """A spawned shadow worker and the live end of its job channel."""

    def __init__(self, config, cpu: int | None) -> None:
        context = multiprocessing.get_context("spawn")
        live_end, worker_end, self.taken = job_channel(context)
        self.snapshots = context.Queue(maxsize=64)
        self.process = context.Process(target=run_worker, args=(config, worker_end, self.taken, self.snapshots,
                                                                 WorkerShare()), name="bench-shadow-worker")
        self.process.start()
        worker_end.close()
        if cpu is not None:
            os.sched_setaffinity(self.process.pid, {cpu})
        self.sender = JobSender(live_end, capacity=10**9, taken=self.taken)
        self.latest: dict = {}

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.latest.get("ready"):
            if not self.process.is_alive():
                raise SystemExit(f"the shadow worker exited ({self.process.exitcode}) before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(f"the shadow worker was not ready after {READY_TIMEOUT_S:.0f} s")
            self.read_snapshot(timeout_s=1.0)

    def read_snapshot(self, timeout_s: float = 0.0) -> None:
        try:
            self.latest = self.snapshots.get(timeout=timeout_s) if timeout_s else self.snapshots.get_nowait()
        except queue.Empty:
            pass

    def read_latest_snapshot(self) -> None:
        """The newest of the snapshots queued (the worker sends one a second)."""
        time.sleep(1.2)
        while True:
            try:
                self.latest = self.snapshots.get_nowait()
            except queue.Empty:
                return

    async def stop(self) -> None:
        self.sender.send_stop()
        await self.sender.flushed(timeout_s=5)
        await asyncio.to_thread(self.process.join, 60)
        if self.process.is_alive():
            self.process.terminate()
        self.sender.close()


def _config(store: Path, upstream: str, *, litellm: bool, twin: bool) -> object:
    shadow: dict = {"queue_size": 100_000, "breaker_failures": 1_000_000, "worker_nice": 0,
                    "litellm_candidates": ["fake"] if litellm else []}
    if twin:
        shadow |= {"primary_twin_rate": 1.0, "twin_max_concurrency": 64}
        if litellm:
            shadow["litellm_candidates"] = ["fake"]  # the twin stays direct: only the candidate differs
    return config_from_dict({
        "server": {"log_level": "warning"}, "primary": {"base_url": upstream},
        "store": {"path": str(store)}, "shadow": shadow,
        "candidates": [{"name": "fake", "model": "openai/fake", "api_base": upstream, "max_concurrency": 64,
                        "timeout_s": 30.0, "daily_budget_usd": 1e9}]})


def _rows(store: Path) -> list[dict]:
    if not store.exists():
        return []
    connection = sqlite3.connect(store, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(
            "select exchange_id, candidate, outcome, skip_reason, latency_ms, error_class from shadows")]
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def _count_rows(store: Path) -> int:
    if not store.exists():
        return 0
    connection = sqlite3.connect(store, timeout=10)
    try:
        return connection.execute("select count(*) from shadows").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


async def _feed(worker: Worker, answered, jobs: int, window: int, calls_per_job: int, twin: bool,
                stream: bool) -> None:
    """Keep at most `window` calls outstanding at the upstream (sent, not yet answered)."""
    base = answered.value
    sent = 0
    body = STREAM_REQUEST if stream else REQUEST
    while sent < jobs:
        while sent < jobs and sent * calls_per_job - (answered.value - base) < window:
            worker.sender.send(ShadowJob(uuid.uuid4().hex, time.time(), "chat.completions", body, ["fake"], twin))
            sent += 1
        await asyncio.sleep(0.0005)
    while answered.value - base < jobs * calls_per_job:
        await asyncio.sleep(0.001)


async def _run(name: str, store: Path, upstream: str, answered, *, jobs: int, window: int, litellm: bool,
               twin: bool, cpu: int | None, stream: bool = False) -> tuple[Worker, float, float]:
    worker = Worker(_config(store, upstream, litellm=litellm, twin=twin), cpu)
    await asyncio.to_thread(worker.wait_ready)
    await worker.sender.connect()
    calls = jobs * (2 if twin else 1)
    before = cpu_times(worker.process.pid).process_s
    started = time.perf_counter()
    await _feed(worker, answered, jobs, window, 2 if twin else 1, twin, stream)
    wall = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while _count_rows(store) < calls and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    used = cpu_times(worker.process.pid).process_s - before
    print(f"  {name}: {calls} calls in {wall:.2f} s, worker CPU {used:.2f} s", file=sys.stderr)
    return worker, wall, used


async def capacity(name: str, workdir: Path, upstream: str, answered, *, jobs: int, window: int, litellm: bool,
                   cpu: int | None, stream: bool = False) -> RunResult:
    store = workdir / f"{name}.db"
    worker, wall, used = await _run(name, store, upstream, answered, jobs=jobs, window=window, litellm=litellm,
                                    twin=False, cpu=cpu, stream=stream)
    await worker.stop()
    rows = _rows(store)
    ok = sum(row["outcome"] == "ok" for row in rows)
    other: dict = {}
    for row in rows:
        if row["outcome"] != "ok":
            key = f"{row['outcome']}:{row['skip_reason'] or row['error_class']}"
            other[key] = other.get(key, 0) + 1
    return RunResult(name, len(rows), ok, other, round(wall, 3), round(used, 3), round(ok / used, 1) if used else 0.0,
                     round(ok / wall, 1) if wall else 0.0)


async def fairness(name: str, workdir: Path, upstream: str, answered, *, jobs: int, in_flight: int, litellm: bool,
                   cpu: int | None) -> FairResult:
    from shadowtap.evaluators.report.stats import percentile, ratio

    store = workdir / f"{name}.db"
    worker, _, _ = await _run(name, store, upstream, answered, jobs=jobs, window=2 * in_flight, litellm=litellm,
                              twin=True, cpu=cpu)
    await asyncio.to_thread(worker.read_latest_snapshot)
    lag = worker.latest.get("lag") or {}
    await worker.stop()
    by_exchange: dict[str, dict[str, float]] = {}
    for row in _rows(store):
        if row["outcome"] == "ok":
            by_exchange.setdefault(row["exchange_id"], {})[row["candidate"]] = row["latency_ms"]
    pairs = [(each["fake"], each[TWIN]) for each in by_exchange.values() if "fake" in each and TWIN in each]
    mine, twins = [a for a, _ in pairs], [b for _, b in pairs]
    c50, c95, t50, t95 = percentile(mine, .5), percentile(mine, .95), percentile(twins, .5), percentile(twins, .95)
    return FairResult(name, len(pairs), _round(c50), _round(c95), _round(t50), _round(t95), _round(ratio(c50, t50)),
                      _round(ratio(c95, t95)), _lag_p95_ms(lag))


def _lag_p95_ms(lag: dict) -> float | None:
    from shadowtap.proxy.shadow.lag import LAG_BUCKETS_S

    counts = lag.get("counts") or []
    total = sum(counts)
    if not total:
        return None
    running = 0
    for bound, count in zip((*LAG_BUCKETS_S, float("inf")), counts, strict=False):
        running += count
        if running >= 0.95 * total:
            return bound * 1000  # an upper bound: the bucket's
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def main(args: argparse.Namespace) -> dict:
    context = multiprocessing.get_context("spawn")
    answered, delay_ms, ready = context.Value("q", 0), context.Value("d", 0.0), context.Event()
    port = free_port()
    upstream_process = context.Process(target=_serve_upstream, args=(port, answered, delay_ms, ready,
                                                                     1 if args.pin else None), daemon=True)
    upstream_process.start()
    ready.wait(30)
    upstream = f"http://127.0.0.1:{port}/v1"
    worker_cpu = 0 if args.pin else None
    results: dict = {"capacity": [], "fairness": []}
    with tempfile.TemporaryDirectory(prefix="shadow-capacity-") as tmp:
        workdir = Path(tmp)
        print("capacity (instant upstream)", file=sys.stderr)
        runs = [("direct", False, args.jobs, False), ("litellm", True, args.litellm_jobs, False)]
        if args.stream:
            runs += [("direct, streamed", False, args.jobs, True), ("litellm, streamed", True, args.litellm_jobs, True)]
        for name, litellm, jobs, stream in runs:
            result = await capacity(name.replace(", ", "-"), workdir, upstream, answered, jobs=jobs,
                                    window=args.window, litellm=litellm, cpu=worker_cpu, stream=stream)
            results["capacity"].append(asdict(result) | {"name": name})
        delay_ms.value = args.delay_ms
        print(f"fairness ({args.delay_ms:g} ms upstream, {args.in_flight} jobs in flight)", file=sys.stderr)
        for name, litellm in (("direct-vs-twin", False), ("litellm-vs-twin", True)):
            result = await fairness(name, workdir, upstream, answered, jobs=args.fair_jobs,
                                    in_flight=args.in_flight, litellm=litellm, cpu=worker_cpu)
            results["fairness"].append(asdict(result))
    upstream_process.terminate()
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    results["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python " \
                         f"{platform.python_version()}, pinned: {bool(args.pin)}"
    return results


def render(results: dict) -> str:
    lines = ["| path | calls ok | other | wall s | worker CPU s | calls / s of worker CPU | calls / s wall |",
             "|---|---|---|---|---|---|---|"]
    for row in results["capacity"]:
        lines.append(f"| {row['name']} | {row['ok']} | {row['other'] or '-'} | {row['wall_s']} | {row['worker_cpu_s']} "
                     f"| {row['calls_per_cpu_s']:,.0f} | {row['calls_per_wall_s']:,.0f} |")
    lines += ["", "| candidate vs twin | pairs | candidate p50 / p95 ms | twin p50 / p95 ms | p50 ratio | p95 ratio "
                  "| worker lag p95 ms (bucket bound) |", "|---|---|---|---|---|---|---|"]
    for row in results["fairness"]:
        lines.append(f"| {row['name']} | {row['pairs']} | {row['candidate_p50_ms']} / {row['candidate_p95_ms']} | "
                     f"{row['twin_p50_ms']} / {row['twin_p95_ms']} | {row['p50_ratio']} | {row['p95_ratio']} | "
                     f"{row['worker_lag_p95_ms']} |")
    lines += ["", f"command: `{results['command']}`", f"machine: {results['machine']}"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4000, help="calls for the direct capacity run")
    parser.add_argument("--litellm-jobs", type=int, default=600, help="calls for the litellm capacity run")
    parser.add_argument("--window", type=int, default=32, help="calls outstanding in the capacity runs")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="upstream wait in the fairness runs")
    parser.add_argument("--fair-jobs", type=int, default=800, help="jobs (candidate + twin) per fairness run")
    parser.add_argument("--in-flight", type=int, default=8, help="jobs outstanding in the fairness runs")
    parser.add_argument("--pin", action="store_true", help="worker on CPU 0, upstream on CPU 1")
    parser.add_argument("--stream", action="store_true", help="also measure streamed calls (20 events each)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.litellm_jobs, args.fair_jobs = 500, 100, 100
    return args


if __name__ == "__main__":
    arguments = parse_args()
    found = asyncio.run(main(arguments))
    print(json.dumps(found, indent=2) if arguments.json else render(found))
