"""What a canary at share 0 costs requests that stay on the primary: side by side, in one run.

Two proxies run at once in front of the same simulated primary (every delay 0), each in a process
of its own, and this process is the client (as in proxy_overhead.py):

- "plain": one `[[candidates]]` entry with `sample_rate = 0.0` and no canary table;
- "canary": the same candidate with a `[candidates.canary]` table, and its state written to the
  store as `running` at share 0.0, so the live process polls the state and asks, per request,
  whether a canary runs (it does not: every request stays on the primary).

The candidate is configured on both sides so that the only difference is the canary: both start
a shadow worker, both record a `sampled_out` row per request. Each cell (mode x concurrency)
warms the three sides up (direct to the simulator, plain, canary), then alternates rounds
direct/plain/canary, canary/plain/direct, ... so drift on a shared machine lands on all alike,
waiting after each proxied phase until that proxy has written every exchange.

Columns: added p50 / p99 through each proxy (through minus direct, send to last byte, in ms), and
the ratio canary/plain of each (1.0: no difference; a ratio of sub-millisecond differences is
noisy). canary - plain per round: each round's canary p50 minus the same round's plain p50, as a
range over the rounds; "within noise" when that range holds zero.

Run `python bench/canary_overhead.py --quick` for a smoke run; `--help` for the knobs.
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

from bench.load import BenchError, Phase, chat_request_body, open_session, percentile, run_phase, split_evenly  # noqa: E402
from bench.proxy_overhead import add_cell_arguments, resolve_cell_arguments, run_async  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.shadow_stack import ProxyProcess, Simulator, count_exchanges, wait_for_count  # noqa: E402
from shadowtap.core.store import Store  # noqa: E402
from shadowtap.core.store.canary_store import set_canary_share  # noqa: E402

SIDES = ("direct", "plain", "canary")
PROXIES = ("plain", "canary")
CHAT_PATH = "/v1/chat/completions"
CANDIDATE = "small"
CAPTURE_PATIENCE_S = 3.0


def candidate_toml(api_base: str, *, canary: bool) -> str:
    table = (f'[[candidates]]\nname = "{CANDIDATE}"\nmodel = "openai/sim-small"\napi_base = {json.dumps(api_base)}\n'
             "sample_rate = 0.0\n")
    if canary:
        table += "\n[candidates.canary]\ntimeout_s = 5\n\n[canary]\nstate_poll_s = 1.0\n"
    return "\n" + table


@dataclass
class Side:
    latencies_ms: list[float] = field(default_factory=list)
    round_p50_ms: list[float] = field(default_factory=list)

    def add(self, phase: Phase) -> None:
        self.latencies_ms += phase.latencies_ms
        self.round_p50_ms.append(percentile(phase.latencies_ms, 50))


class CanaryOverhead:
    def __init__(self, primary: Simulator, proxies: dict[str, ProxyProcess], args: argparse.Namespace) -> None:
        self.primary = primary
        self.proxies = proxies
        self.args = args
        self.sent = {name: 0 for name in PROXIES}

    def url(self, side: str) -> str:
        return (self.primary.url if side == "direct" else self.proxies[side].url) + CHAT_PATH

    async def run(self) -> list[dict]:
        cells = []
        for mode in self.args.modes:
            for concurrency in self.args.concurrency:
                print(f"… {mode} at {concurrency} connection(s)", file=sys.stderr, flush=True)
                cells.append(await self.cell(mode, concurrency))
        return cells

    async def cell(self, mode: str, concurrency: int) -> dict:
        body, stream = chat_request_body(mode), mode == "stream"
        sides = {side: Side() for side in SIDES}
        sessions = {side: open_session(concurrency) for side in SIDES}
        try:
            for side in SIDES:
                await self.phase(side, sessions[side], body, stream, self.args.warmup, concurrency)
            for round_index, count in enumerate(split_evenly(self.args.requests, self.args.rounds)):
                for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
                    sides[side].add(await self.phase(side, sessions[side], body, stream, count, concurrency))
        finally:
            for session in sessions.values():
                await session.close()
        return summarise(mode, concurrency, sides)

    async def phase(self, side: str, session, body: bytes, stream: bool, count: int, concurrency: int) -> Phase:
        phase = await run_phase(session, self.url(side), body, stream=stream, count=max(count, 1),
                                concurrency=concurrency)
        if side in PROXIES:
            self.sent[side] += max(count, 1)
            proxy = self.proxies[side]
            await wait_for_count(proxy.captured, self.sent[side], CAPTURE_PATIENCE_S)
        return phase


def summarise(mode: str, concurrency: int, sides: dict[str, Side]) -> dict:
    stats: dict = {"mode": mode, "concurrency": concurrency, "requests_per_side": len(sides["direct"].latencies_ms)}
    for name, side in sides.items():
        stats[f"{name}_p50_ms"] = percentile(side.latencies_ms, 50)
        stats[f"{name}_p99_ms"] = percentile(side.latencies_ms, 99)
    for name in PROXIES:
        stats[f"{name}_added_p50_ms"] = stats[f"{name}_p50_ms"] - stats["direct_p50_ms"]
        stats[f"{name}_added_p99_ms"] = stats[f"{name}_p99_ms"] - stats["direct_p99_ms"]
    for q in ("p50", "p99"):
        plain = stats[f"plain_added_{q}_ms"]
        stats[f"ratio_added_{q}"] = stats[f"canary_added_{q}_ms"] / plain if plain > 0 else None
    deltas = [c - p for c, p in zip(sides["canary"].round_p50_ms, sides["plain"].round_p50_ms, strict=True)]
    stats["round_delta_p50_ms"] = [min(deltas), max(deltas)]
    stats["within_noise"] = min(deltas) <= 0 <= max(deltas)
    return stats


def markdown(results: dict) -> str:
    lines = ["| mode | conc | plain added p50 / p99 ms | canary added p50 / p99 ms | ratio p50 / p99 "
             "| canary - plain per round (p50 ms) |",
             "|---|---|---|---|---|---|"]

    def ratio(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}x"

    for cell in results["cells"]:
        low, high = cell["round_delta_p50_ms"]
        noise = " (within noise)" if cell["within_noise"] else ""
        lines.append(f"| {cell['mode']} | {cell['concurrency']} | {cell['plain_added_p50_ms']:.3f} / "
                     f"{cell['plain_added_p99_ms']:.3f} | {cell['canary_added_p50_ms']:.3f} / "
                     f"{cell['canary_added_p99_ms']:.3f} | {ratio(cell['ratio_added_p50'])} / "
                     f"{ratio(cell['ratio_added_p99'])} | {low:+.3f} .. {high:+.3f}{noise} |")
    machine = results["machine"]
    lines += ["", f"{results['settings']['requests']} requests per side per cell in "
              f"{results['settings']['rounds']} rounds; machine: {json.dumps(machine)}",
              f"captured: {json.dumps(results['captured'])} of {json.dumps(results['sent'])} sent (warm-up included)"]
    return "\n".join(lines)


def wait_for_worker(proxy: ProxyProcess, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while proxy.health().get("shadow_worker") != "ready":
        if time.monotonic() > deadline or proxy.process.poll() is not None:
            raise RuntimeError(f"proxy {proxy.name}: shadow worker not ready (logs in {proxy.workdir})")
        time.sleep(0.2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/canary_overhead.py", description=__doc__.splitlines()[0])
    add_cell_arguments(parser, concurrency=[1, 8], rounds=6,
                       workdir_help="keep the stores, configs and logs here (default: a temp dir)")
    return resolve_cell_arguments(parser, parser.parse_args(argv), rounds=6, min_warmup=0)


def run(args: argparse.Namespace, workdir: Path) -> dict:
    machine = machine_info()
    primary = Simulator.start(workdir, "primary-simulator")
    proxies: dict[str, ProxyProcess] = {}
    try:
        for name in PROXIES:
            proxy = ProxyProcess.start(workdir / name, name, f"{primary.url}/v1", None,
                                       candidate_toml(f"{primary.url}/v1", canary=name == "canary"))
            proxies[name] = proxy
            wait_for_worker(proxy)  # both have a candidate, so both run a shadow worker
        with Store.open(workdir / "canary" / "captures.db") as store:
            set_canary_share(store, CANDIDATE, 0.0, status="running", changed_by="bench", reason="share 0")
        benchmark = CanaryOverhead(primary, proxies, args)
        cells = run_async(benchmark.run())
        health = proxies["canary"].health().get("canary")
    finally:
        codes = {name: proxy.stop() for name, proxy in proxies.items()}
        primary.stop()
    captured = {name: count_exchanges(workdir / name / "captures.db") for name in PROXIES}
    return {"command": shlex.join(sys.orig_argv), "machine": machine,
            "settings": {key: getattr(args, key) for key in ("requests", "rounds", "warmup")},
            "cells": cells, "canary_health": health, "sent": benchmark.sent, "captured": captured,
            "exit_codes": codes}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="shadowtap-bench-") as workdir:
                results = run(args, Path(workdir))
    except (BenchError, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
