"""What shadows cost the live path: shadows off against two candidates at 100%, in one run.

Two proxies run side by side: one mirrors every request to two candidates, one mirrors nothing.

Four processes besides this one (the client): the simulated upstream of the primary; a second
simulator that answers the candidates, so their calls never load the primary's upstream; proxy
"off" (default config, no candidates); and proxy "on" (the same, plus two `[[candidates]]`,
`openai/sim-small` and `openai/sim-large`, `sample_rate = 1.0`, `max_concurrency = 64`,
`timeout_s = 10`). Proxy "on" starts its shadow worker, a child process that imports litellm;
nothing is measured before its /healthz says `"shadow_worker": "ready"`.

Each cell (mode x concurrency, as in proxy_overhead.py) warms all three sides up, then runs
alternating rounds, direct/off/on then on/off/direct, so drift lands on every side alike (off
and on alternate off, on, on, off, ...). After each proxied phase the benchmark waits until that
proxy has written every exchange and, for "on", until the worker has recorded a shadow row for
both candidates of every request (a call's outcome, or why it was skipped): a phase never
shares the machine with another phase's leftover work.

Columns:

- added p50 / p99, through each proxy: through minus direct latency, send to last byte, in ms.
  on/off: the ratio of the two (a ratio of sub-millisecond differences is noisy). on - off
  per round: each round's on p50 minus the same round's off p50 (they ran back to back), as a
  range over the rounds; "within noise" when that range holds zero, that is, when off was at
  least as slow as on in some round. With 6 rounds, on slower in every round by chance alone
  has a probability of 1/64.
- CPU ms/req: per proxied request, from /proc/<pid>/task/*/schedstat (see proxy_overhead.py),
  counted from the start of each of that proxy's measured phases to its last write, so idle
  time during the other sides' phases is left out: proxy off; proxy on's live process alone,
  split into its event loop and its other threads (capture writer, the multiprocessing queue's
  feeder thread); the shadow worker process (a child of proxy on, found through
  /proc/<pid>/task/*/children); and the candidates' simulator.
- shadows ok / saturated / other: the "on" proxy's shadow rows for the cell's requests (warm-up
  included), counted in its store after the SIGTERM drain. `saturated` is a candidate already
  at max_concurrency (or a full worker queue): the live request never waits for a shadow, so
  when the simulated primary answers in a fraction of a millisecond most of them are skipped.
  `--primary-latency-ms` slows the primary so the traffic is one the worker can keep up with.

Run `python bench/shadow_overhead.py --quick` for a smoke run; `--help` for the knobs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` (and `proxy`) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import BenchError, Phase, chat_request_body, fetch, open_session, percentile, run_phase, split_evenly  # noqa: E402
from bench.local_stack import CpuTimes, cpu_times  # noqa: E402
from bench.proxy_overhead import add_cell_arguments, resolve_cell_arguments, run_async  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.shadow_report import markdown_report, valid  # noqa: E402
from bench.shadow_stack import (  # noqa: E402
    CANDIDATE_MODELS,
    CANDIDATE_TIMEOUT_S,
    ProxyProcess,
    Simulator,
    count_exchanges,
    shadow_outcomes,
    summarise_outcomes,
    wait_for_count,
)

MODES = ("json", "stream")
SIDES = ("direct", "off", "on")
PROXIES = ("off", "on")
CHAT_PATH = "/v1/chat/completions"
CPU_PROCESSES = ("off", "on", "worker", "candidates")
CAPTURE_PATIENCE_S = 3.0
SHADOW_PATIENCE_S = CANDIDATE_TIMEOUT_S + 5  # a call in flight may take its whole deadline


@dataclass
class Side:
    latencies_ms: list[float] = field(default_factory=list)
    round_p50_ms: list[float] = field(default_factory=list)
    requests: int = 0
    wall_s: float = 0.0

    def add(self, phase: Phase) -> None:
        self.latencies_ms += phase.latencies_ms
        self.round_p50_ms.append(percentile(phase.latencies_ms, 50))
        self.requests += len(phase.latencies_ms)
        self.wall_s += phase.wall_s


@dataclass
class Stack:
    primary: Simulator
    candidates: Simulator
    proxies: dict[str, ProxyProcess]

    @classmethod
    def start(cls, workdir: Path, primary_latency_ms: int, worker_nice: int | None = None) -> Stack:
        primary = Simulator.start(workdir, "primary-simulator", "--latency-ms", str(primary_latency_ms))
        started: list = [primary]
        try:
            candidates = Simulator.start(workdir, "candidates-simulator")
            started.append(candidates)
            off = ProxyProcess.start(workdir / "off", "off", f"{primary.url}/v1", None)
            started.append(off)
            nice = "" if worker_nice is None else f"\n[shadow]\nworker_nice = {worker_nice}\n"
            on = ProxyProcess.start(workdir / "on", "on", f"{primary.url}/v1", f"{candidates.url}/v1", nice)
        except BaseException:
            for process in reversed(started):
                process.stop()
            raise
        return cls(primary, candidates, {"off": off, "on": on})

    def stop(self) -> dict[str, int]:
        """Proxies first (their drain still needs the simulators), then the simulators."""
        codes = {name: proxy.stop() for name, proxy in self.proxies.items()}
        self.candidates.stop()
        self.primary.stop()
        return codes


class ShadowOverheadBenchmark:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.sent = {name: 0 for name in PROXIES}
        self.identical: dict[str, bool] = {}
        self.incomplete_waits: list[str] = []

    def url(self, side: str) -> str:
        base = self.stack.primary.url if side == "direct" else self.stack.proxies[side].url
        return base + CHAT_PATH

    async def run(self) -> list[dict]:
        cells = []
        for mode in self.args.modes:
            await self.check_identical(mode)
            for concurrency in self.args.concurrency:
                print(f"… {mode} at {concurrency} connection(s)", file=sys.stderr, flush=True)
                cells.append(await self.run_cell(mode, concurrency))
        return cells

    async def check_identical(self, mode: str) -> None:
        """Both proxies must be transparent: the same request gets the same body as direct."""
        body = chat_request_body(mode)
        async with open_session(1) as session:
            direct = await fetch(session, self.url("direct"), body)
            for name in PROXIES:
                through = await fetch(session, self.url(name), body)
                self.sent[name] += 1
                self.identical[f"{mode} {name}"] = through == direct
        await self.settle("on")

    async def run_cell(self, mode: str, concurrency: int) -> dict:
        body, stream = chat_request_body(mode), mode == "stream"
        sides = {side: Side() for side in SIDES}
        cpu = {name: CpuTimes(0.0, 0.0, 0.0) for name in CPU_PROCESSES}
        window_start = time.time()
        sessions = {side: open_session(concurrency) for side in SIDES}
        try:
            for side in SIDES:
                await self.phase(side, sessions[side], body, stream, self.args.warmup, concurrency)
            sent_before = dict(self.sent)
            for round_index, count in enumerate(split_evenly(self.args.requests, self.args.rounds)):
                for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
                    sides[side].add(await self.phase(side, sessions[side], body, stream, count, concurrency, cpu))
        finally:
            for session in sessions.values():
                await session.close()
        return summarise(mode, concurrency, sides, cpu, window_start, time.time(),
                         {name: self.sent[name] - sent_before[name] for name in PROXIES})

    def pids(self, side: str) -> dict[str, int]:
        """The processes that work for one side; each is idle outside its side's phases."""
        if side == "off":
            return {"off": self.stack.proxies["off"].pid}
        on = self.stack.proxies["on"]
        return {"on": on.pid, "worker": on.worker_pid, "candidates": self.stack.candidates.pid}

    async def phase(self, side: str, session, body: bytes, stream: bool, count: int, concurrency: int,
                    cpu: dict[str, CpuTimes] | None = None) -> Phase:
        """One burst against one side; for a proxy, until its writes are done. With `cpu`, the
        CPU its processes used from the first request to the last write is added there."""
        pids = self.pids(side) if side != "direct" and cpu is not None else {}
        before = {name: cpu_times(pid) for name, pid in pids.items()}
        phase = await run_phase(session, self.url(side), body, stream=stream, count=count, concurrency=concurrency)
        if side != "direct":
            self.sent[side] += count
            await self.settle(side)
        for name, pid in pids.items():
            cpu[name] = cpu[name] + (cpu_times(pid) - before[name])
        return phase

    async def settle(self, name: str) -> None:
        """Wait for the proxy's captures and, with shadows, for both candidates' rows."""
        proxy = self.stack.proxies[name]
        captured = await wait_for_count(proxy.captured, self.sent[name], CAPTURE_PATIENCE_S)
        if captured < self.sent[name]:
            self.incomplete_waits.append(f"{name}: {captured} of {self.sent[name]} captured")
        if proxy.shadows:
            expected = len(CANDIDATE_MODELS) * self.sent[name]
            rows = await wait_for_count(proxy.shadow_rows, expected, SHADOW_PATIENCE_S)
            if rows < expected:
                self.incomplete_waits.append(f"{name}: {rows} of {expected} shadow rows")


def summarise(mode: str, concurrency: int, sides: dict[str, Side], cpu: dict[str, CpuTimes],
              window_start: float, window_end: float, sent: dict[str, int]) -> dict:
    direct = sides["direct"]
    stats: dict = {"mode": mode, "concurrency": concurrency, "requests_per_side": direct.requests,
                   "window": [window_start, window_end], "proxied_in_cell": sent,
                   "direct_p50_ms": percentile(direct.latencies_ms, 50),
                   "direct_p99_ms": percentile(direct.latencies_ms, 99),
                   "direct_rps": direct.requests / direct.wall_s}
    for name in PROXIES:
        side = sides[name]
        stats[f"{name}_p50_ms"] = percentile(side.latencies_ms, 50)
        stats[f"{name}_p99_ms"] = percentile(side.latencies_ms, 99)
        stats[f"{name}_added_p50_ms"] = stats[f"{name}_p50_ms"] - stats["direct_p50_ms"]
        stats[f"{name}_added_p99_ms"] = stats[f"{name}_p99_ms"] - stats["direct_p99_ms"]
        stats[f"{name}_rps"] = side.requests / side.wall_s
        stats[f"{name}_round_added_p50_ms"] = [p50 - direct_p50 for p50, direct_p50
                                                in zip(side.round_p50_ms, direct.round_p50_ms)]
    for percent in ("p50", "p99"):
        off_added, on_added = stats[f"off_added_{percent}_ms"], stats[f"on_added_{percent}_ms"]
        stats[f"on_off_added_{percent}_ratio"] = on_added / off_added if off_added > 0 else None
        stats[f"on_minus_off_{percent}_ms"] = on_added - off_added
    # Paired by round: on and off ran next to each other, so a difference of the same sign in
    # every round is the shadows' doing, not the machine's.
    paired = [on - off for on, off in zip(stats["on_round_added_p50_ms"], stats["off_round_added_p50_ms"])]
    stats["round_on_minus_off_p50_ms"] = paired
    stats["p50_within_noise"] = min(paired) <= 0 <= max(paired)

    def per_request(seconds: float, name: str = "on") -> float:
        return seconds * 1000 / sides[name].requests

    stats.update(
        off_cpu_ms_per_request=per_request(cpu["off"].process_s, "off"),
        off_loop_cpu_ms_per_request=per_request(cpu["off"].main_thread_s, "off"),
        on_live_cpu_ms_per_request=per_request(cpu["on"].process_s),
        on_live_loop_cpu_ms_per_request=per_request(cpu["on"].main_thread_s),
        worker_cpu_ms_per_request=per_request(cpu["worker"].process_s),
        candidates_upstream_cpu_ms_per_request=per_request(cpu["candidates"].process_s),
        worker_cpu_s=cpu["worker"].process_s,
    )
    return stats


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/shadow_overhead.py", description=__doc__.splitlines()[0])
    add_cell_arguments(parser, concurrency=[1, 8], rounds=6,
                       workdir_help="keep the stores, configs and logs here (default: a temp dir)")
    parser.add_argument("--primary-latency-ms", type=int, default=0,
                        help="the primary simulator's delay before each answer (default 0: as fast as it can)")
    parser.add_argument("--worker-nice", type=int, default=None,
                        help="[shadow] worker_nice for proxy on (default: the config default, 10; 0 turns it off)")
    args = resolve_cell_arguments(parser, parser.parse_args(argv), rounds=6, min_warmup=1)
    if args.primary_latency_ms < 0:
        parser.error("--primary-latency-ms must be at least 0")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    machine = machine_info()  # before the run: it notes the load average the run starts with
    stack = Stack.start(workdir, args.primary_latency_ms, args.worker_nice)
    on = stack.proxies["on"]
    print(f"primary simulator pid {stack.primary.pid}, candidates simulator pid {stack.candidates.pid}, "
          f"proxy off pid {stack.proxies['off'].pid}, proxy on pid {on.pid} (shadow worker pid {on.worker_pid}), "
          f"files in {workdir}", file=sys.stderr, flush=True)
    benchmark = ShadowOverheadBenchmark(stack, args)
    queue_dropped = None
    try:
        cells = run_async(benchmark.run())
        queue_dropped = on.metric("shadowtap_shadow_queue_dropped_total")
    finally:
        exit_codes = stack.stop()
    captured = {name: count_exchanges(proxy.workdir / "captures.db") for name, proxy in stack.proxies.items()}
    on_db = on.workdir / "captures.db"
    for cell in cells:
        cell["shadows"] = summarise_outcomes(shadow_outcomes(on_db, *cell["window"]))
        cell["worker_cpu_ms_per_ok_call"] = (cell["worker_cpu_s"] * 1000 / cell["shadows"]["ok"]
                                             if cell["shadows"]["ok"] else None)
    return {"command": shlex.join(sys.orig_argv), "machine": machine,
            "settings": {key: getattr(args, key) for key in ("requests", "rounds", "warmup", "primary_latency_ms")},
            "cells": cells, "identical_bodies": benchmark.identical, "captured": captured,
            "proxied_sent": benchmark.sent, "shadows_total": summarise_outcomes(shadow_outcomes(on_db)),
            "candidates": len(CANDIDATE_MODELS), "shadow_queue_dropped": queue_dropped,
            "incomplete_waits": benchmark.incomplete_waits, "proxy_exit_codes": exit_codes}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.workdir:
            if any((args.workdir / name / "captures.db").exists() for name in PROXIES):
                print(f"--workdir {str(args.workdir)!r} already holds a store; the counts would include it. "
                      "Choose an empty directory.", file=sys.stderr)
                return 2
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="shadowtap-bench-") as workdir:
                results = run(args, Path(workdir))
    except (BenchError, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else markdown_report(results))
    problems = valid(results)
    if problems:
        print("benchmark invalid: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
