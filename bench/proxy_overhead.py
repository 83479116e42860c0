"""What shadowtap adds on the live path: direct-to-upstream against through-the-proxy, in one run.

The simulated upstream (`python -m shadowtap.proxy.simulator`, every delay 0 so it answers as fast as it
can) and `shadowtap serve` (default config, store and logs in a temporary directory) each run in
a process of their own. This process is the client: N aiohttp workers, each sending chat
completions one after another over its own keep-alive connection, either straight to the
upstream ("direct") or to the proxy in front of it ("through"). Four modes: `json` (a plain chat
completion), `stream` (`"stream": true`, 20 server-sent events), and the same question as an
Anthropic Messages request, `messages` (buffered) and `messages-stream` (its event stream),
through `[primary] anthropic_base_url`.

Each cell (mode x concurrency) warms both targets up, then alternates short direct and through
phases (D T, T D, D T, ...) so drift on a shared, noisy machine lands on both sides alike. After
each through phase it waits until the proxy has written every exchange to its store, so capture
work never leaks into a direct phase, and is counted as the proxy's CPU.

How to read the columns (ratios to direct are the headline):

- added p50 / p99: through minus direct latency percentile, send to last byte, in ms. This is
  what an app sees the proxy add; the upstream here answers in well under a millisecond, so a
  real model's latency hides it almost entirely.
- through/direct req/s: throughput with the proxy as a fraction of without. At 1 connection it
  is the latency ratio; at 8 and 32, on a small machine, it shows the CPU the proxy takes away
  from the client and the upstream sharing the same cores.
- proxy CPU ms/req: CPU time of the proxy process per proxied request, split into its main
  thread (the event loop: the live path) and the rest (its other threads, and the capture
  recorder child process's parsing, redaction and SQLite inserts; all off the live path). CPU
  times come from /proc/<pid>/task/*/schedstat, in nanoseconds: /proc/<pid>/stat's utime +
  stime count 10 ms ticks, too coarse for phases of a few tens of milliseconds. The stat figure
  for the proxy, read once per cell, is in the JSON output (`proxy_stat_cpu_ms_per_request`) as
  a cross-check.
- CPU through/direct: (upstream + proxy) CPU per through request over upstream CPU per direct
  request; 2.0x means the proxy costs as much CPU as this (very cheap) upstream.

Aim: under 0.5 ms added p50 at 1 connection, under 0.5 ms proxy CPU per request.
Run `python bench/proxy_overhead.py --quick` for a smoke run; `--help` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` (and `proxy`) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import (  # noqa: E402
    MESSAGES_MODES,
    BenchError,
    Phase,
    chat_request_body,
    fetch,
    open_session,
    percentile,
    request_path,
    run_phase,
    split_evenly,
    stream_end,
)
from bench.local_stack import CpuTimes, LocalStack, cpu_times  # noqa: E402
from bench.report import capture_complete, machine_info, markdown_report  # noqa: E402

MODES = ("json", "stream")
# This benchmark also measures Anthropic Messages (`[primary] anthropic_base_url` is set).
PROXY_MODES = (*MODES, *MESSAGES_MODES)
SIDES = ("direct", "through")


@dataclass
class Side:
    """Everything measured on one side of one cell, summed over its phases."""

    latencies_ms: list[float] = field(default_factory=list)
    requests: int = 0
    wall_s: float = 0.0
    upstream_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def add(self, phase: Phase, upstream_cpu_s: float) -> None:
        self.latencies_ms += phase.latencies_ms
        self.requests += len(phase.latencies_ms)
        self.wall_s += phase.wall_s
        self.upstream_cpu_s += upstream_cpu_s
        self.client_cpu_s += phase.client_cpu_s


class OverheadBenchmark:
    def __init__(self, stack: LocalStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.proxied_sent = 0
        self.identical: dict[str, bool] = {}

    def url(self, side: str) -> str:
        return self.stack.simulator_url if side == "direct" else self.stack.proxy_url

    async def run(self) -> list[dict]:
        cells = []
        for mode in self.args.modes:
            await self.check_identical(mode)
            for concurrency in self.args.concurrency:
                print(f"… {mode} at {concurrency} connection(s)", file=sys.stderr, flush=True)
                cells.append(await self.run_cell(mode, concurrency))
        return cells

    async def check_identical(self, mode: str) -> None:
        """The proxy must be transparent: the same request gets the same body both ways."""
        body = chat_request_body(mode)
        async with open_session(1) as session:
            direct = await fetch(session, self.url("direct") + request_path(mode), body)
            through = await fetch(session, self.url("through") + request_path(mode), body)
        self.proxied_sent += 1
        self.identical[mode] = direct == through

    async def run_cell(self, mode: str, concurrency: int) -> dict:
        body, ends_with = chat_request_body(mode), stream_end(mode)
        sides = {side: Side() for side in SIDES}
        async with open_session(concurrency) as direct_session, open_session(concurrency) as through_session:
            sessions = {"direct": direct_session, "through": through_session}
            for side in SIDES:  # open the connections, warm the caches
                await self.phase(side, sessions[side], body, mode, ends_with, self.args.warmup, concurrency)
            proxy_before = cpu_times(self.stack.proxy.pid)
            for round_index, count in enumerate(split_evenly(self.args.requests, self.args.rounds)):
                for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
                    upstream_before = cpu_times(self.stack.simulator.pid).process_s
                    phase = await self.phase(side, sessions[side], body, mode, ends_with, count, concurrency)
                    sides[side].add(phase, cpu_times(self.stack.simulator.pid).process_s - upstream_before)
            # The proxy is idle during direct phases, so one reading over the cell is its cost.
            proxy_cpu = cpu_times(self.stack.proxy.pid) - proxy_before
        return summarise(mode, concurrency, sides["direct"], sides["through"], proxy_cpu)

    async def phase(self, side: str, session, body: bytes, mode: str, ends_with: bytes | None, count: int,
                    concurrency: int) -> Phase:
        phase = await run_phase(session, self.url(side) + request_path(mode), body, stream=ends_with is not None,
                                count=count, concurrency=concurrency, ends_with=ends_with or b"")
        if side == "through":
            self.proxied_sent += count
            await self.stack.wait_for_captures(self.proxied_sent)
        return phase


def summarise(mode: str, concurrency: int, direct: Side, through: Side, proxy_cpu: CpuTimes) -> dict:
    def ms_per_request(seconds: float, side: Side) -> float:
        return seconds * 1000 / side.requests

    stats = {"mode": mode, "concurrency": concurrency, "requests_per_side": direct.requests}
    for name, side in (("direct", direct), ("through", through)):
        stats[f"{name}_p50_ms"] = percentile(side.latencies_ms, 50)
        stats[f"{name}_p99_ms"] = percentile(side.latencies_ms, 99)
        stats[f"{name}_rps"] = side.requests / side.wall_s
        stats[f"{name}_upstream_cpu_ms_per_request"] = ms_per_request(side.upstream_cpu_s, side)
        stats[f"{name}_client_cpu_ms_per_request"] = ms_per_request(side.client_cpu_s, side)
    proxy_ms = ms_per_request(proxy_cpu.process_s, through)
    stats.update(
        added_p50_ms=stats["through_p50_ms"] - stats["direct_p50_ms"],
        added_p99_ms=stats["through_p99_ms"] - stats["direct_p99_ms"],
        rps_ratio=stats["through_rps"] / stats["direct_rps"],
        proxy_cpu_ms_per_request=proxy_ms,
        proxy_loop_cpu_ms_per_request=ms_per_request(proxy_cpu.main_thread_s, through),
        proxy_stat_cpu_ms_per_request=ms_per_request(proxy_cpu.stat_s, through),
        cpu_ratio=(stats["through_upstream_cpu_ms_per_request"] + proxy_ms)
        / stats["direct_upstream_cpu_ms_per_request"],
    )
    return stats


def comma_list(convert):
    def parse(text: str) -> list:
        try:
            return [convert(item.strip()) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def add_cell_arguments(parser: argparse.ArgumentParser, *, concurrency: list[int], rounds: int,
                       workdir_help: str, modes: tuple[str, ...] = MODES) -> None:
    """The options every side-by-side benchmark shares: cells, rounds, warm-up, output."""
    parser.add_argument("--concurrency", type=comma_list(int), default=concurrency,
                        help="connections (workers) per cell, comma-separated "
                             f"(default {','.join(map(str, concurrency))})")
    parser.add_argument("--requests", type=int, help="measured requests per side per cell (default 2000)")
    parser.add_argument("--rounds", type=int, help=f"alternating phases per side per cell (default {rounds})")
    parser.add_argument("--warmup", type=int, help="unmeasured requests per side per cell (default 200)")
    parser.add_argument("--modes", type=comma_list(str), default=list(modes),
                        help=f"some of {', '.join(modes)} (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 requests in 2 rounds after 50 warm-up, unless given")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of markdown")
    parser.add_argument("--workdir", type=Path, help=workdir_help)


def resolve_cell_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, *, rounds: int,
                           min_warmup: int, modes: tuple[str, ...] = MODES) -> argparse.Namespace:
    """Fill the defaults (smaller under --quick) and refuse impossible values."""
    quick = args.quick
    args.requests = args.requests or (300 if quick else 2000)
    args.rounds = args.rounds or (2 if quick else rounds)
    args.warmup = args.warmup if args.warmup is not None else (50 if quick else 200)
    unknown = sorted(set(args.modes) - set(modes))
    if unknown:
        parser.error(f"--modes: unknown {', '.join(unknown)} (expected some of {', '.join(modes)})")
    if min(args.concurrency, default=0) < 1 or args.requests < 1 or args.rounds < 1 or args.warmup < min_warmup:
        parser.error(f"--concurrency, --requests and --rounds must be at least 1, --warmup at least {min_warmup}")
    return args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/proxy_overhead.py", description=__doc__.splitlines()[0])
    add_cell_arguments(parser, concurrency=[1, 8, 32], rounds=4, modes=PROXY_MODES,
                       workdir_help="keep the store, config and logs here (default: a temp dir)")
    return resolve_cell_arguments(parser, parser.parse_args(argv), rounds=4, min_warmup=0, modes=PROXY_MODES)


def run(args: argparse.Namespace, workdir: Path) -> dict:
    machine = machine_info()  # before the run: it notes the load average the run starts with
    stack = LocalStack.start(workdir)
    print(f"simulator pid {stack.simulator.pid}, proxy pid {stack.proxy.pid}, files in {workdir}",
          file=sys.stderr, flush=True)
    benchmark = OverheadBenchmark(stack, args)
    try:
        cells = run_async(benchmark.run())
    finally:
        proxy_exit_code = stack.stop()
    return {"command": shlex.join(sys.orig_argv), "machine": machine,
            "settings": {key: getattr(args, key) for key in ("requests", "rounds", "warmup")},
            "cells": cells, "identical_bodies": benchmark.identical,
            "captured": stack.captured_after_stop(), "proxied_sent": benchmark.proxied_sent,
            "proxy_exit_code": proxy_exit_code}


def run_async(coroutine):
    try:
        import uvloop  # the client's own overhead is smaller, and so less noise
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.workdir:
            if (args.workdir / "captures.db").exists():
                print(f"--workdir {str(args.workdir)!r} already holds captures.db; the captured count "
                      "would include them. Choose an empty directory.", file=sys.stderr)
                return 2
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="shadowtap-bench-") as workdir:
                results = run(args, Path(workdir))
    except (BenchError, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(markdown_report(results))
    if not capture_complete(results) or not all(results["identical_bodies"].values()):
        print("benchmark invalid: the proxy lost captures or changed a response body", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
