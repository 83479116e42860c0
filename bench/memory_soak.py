"""Whether the proxy's memory stays flat over 10,000 requests with two candidates mirroring all of them.

Starts the simulated primary, a second simulator for the candidates, and `shadowtap serve` with
two `[[candidates]]` at `sample_rate = 1.0` (as in shadow_overhead.py), waits for the shadow
worker to be ready, then sends the requests in batches of `--every` (half chat completions, half
streams, from `--concurrency` keep-alive connections). After each batch it waits until every
exchange and both candidates' shadow rows are written, so each sample is taken at rest, then reads
VmRSS from /proc/<pid>/status for the live process and for the shadow worker (its child process).

It prints the series and the growth from the sample at `--baseline` requests (after warm-up:
allocator pools, litellm's lazy imports and connection pools fill up first) to the last one, as a
percentage and in KiB per request. Verdict: flat when both processes grew less than
`--max-growth` percent (default 10). Exit code 1 when not flat, or when a capture or shadow row
is missing.

The primary's simulator waits `--primary-latency-ms` (default 100) before each answer: closed-loop
clients against an instant upstream send far more requests than the worker can call candidates
for, and most shadows would be skipped as saturated rather than exercise the worker.

    python bench/memory_soak.py [--requests 10000] [--every 1000] [--concurrency 8] [--primary-latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` (and `proxy`) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import BenchError, chat_request_body, open_session, run_phase  # noqa: E402
from bench.proxy_overhead import run_async  # noqa: E402
from bench.report import describe_exit, machine_info  # noqa: E402
from bench.shadow_stack import (  # noqa: E402
    CANDIDATE_MODELS,
    CANDIDATE_TIMEOUT_S,
    ProxyProcess,
    Simulator,
    count_exchanges,
    rss_kb,
    shadow_outcomes,
    summarise_outcomes,
    wait_for_count,
)

CHAT_PATH = "/v1/chat/completions"


async def soak(proxy: ProxyProcess, args: argparse.Namespace) -> list[dict]:
    bodies = {mode: chat_request_body(mode) for mode in ("json", "stream")}
    url = proxy.url + CHAT_PATH
    started = time.monotonic()
    samples = [sample(proxy, 0, started)]
    sent = 0
    async with open_session(args.concurrency) as session:
        while sent < args.requests:
            batch = min(args.every, args.requests - sent)
            for mode, count in (("json", batch - batch // 2), ("stream", batch // 2)):
                await run_phase(session, url, bodies[mode], stream=mode == "stream", count=count,
                                concurrency=args.concurrency)
            sent += batch
            captured = await wait_for_count(proxy.captured, sent, 5.0)
            rows = await wait_for_count(proxy.shadow_rows, len(CANDIDATE_MODELS) * sent, CANDIDATE_TIMEOUT_S + 5)
            samples.append(sample(proxy, sent, started, captured=captured, shadow_rows=rows))
            print(f"… {sent} requests", file=sys.stderr, flush=True)
    return samples


def sample(proxy: ProxyProcess, sent: int, started: float, **counts) -> dict:
    shadows = summarise_outcomes(shadow_outcomes(proxy.workdir / "captures.db"))
    return {"requests": sent, "elapsed_s": time.monotonic() - started, "live_rss_kb": rss_kb(proxy.pid),
            "worker_rss_kb": rss_kb(proxy.worker_pid), "shadows_ok": shadows["ok"],
            "shadows_saturated": shadows["saturated"], "shadows_other": shadows["other"], **counts}


def growth(samples: list[dict], key: str, baseline: int) -> dict:
    first = next(item for item in samples if item["requests"] >= baseline)
    last = samples[-1]
    grown_kb = last[key] - first[key]
    requests = last["requests"] - first["requests"]
    return {"from_requests": first["requests"], "to_requests": last["requests"], "from_kb": first[key],
            "to_kb": last[key], "percent": grown_kb * 100 / first[key],
            "kb_per_request": grown_kb / requests if requests else 0.0}


def markdown_report(results: dict) -> str:
    lines = ["| requests | live RSS MiB | worker RSS MiB | shadows ok / saturated / other (so far) | elapsed s |",
             "|---|---|---|---|---|"]
    for item in results["samples"]:
        lines.append(f"| {item['requests']} | {item['live_rss_kb'] / 1024:.1f} | {item['worker_rss_kb'] / 1024:.1f} "
                     f"| {item['shadows_ok']} / {item['shadows_saturated']} / {item['shadows_other']} "
                     f"| {item['elapsed_s']:.1f} |")
    lines.append("")
    for name, label in (("live", "live process"), ("worker", "shadow worker")):
        grown = results["growth"][name]
        lines.append(f"{label}: {grown['from_kb'] / 1024:.1f} MiB at {grown['from_requests']} requests -> "
                     f"{grown['to_kb'] / 1024:.1f} MiB at {grown['to_requests']}: {grown['percent']:+.1f}% "
                     f"({grown['kb_per_request']:+.2f} KiB per request)")
    shadows, settings, machine = results["shadows"], results["settings"], results["machine"]
    other = ", ".join(f"{key} {value}" for key, value in sorted(shadows["other_detail"].items())) or "none"
    verdict = "FLAT" if results["flat"] else "NOT FLAT"
    lines += [
        "",
        f"Verdict: {verdict} (growth from {settings['baseline']} requests under {settings['max_growth']:g}% "
        "for both processes).",
        "",
        f"Captured {results['captured']} of {results['requests']} requests after the SIGTERM drain "
        f"(proxy {describe_exit(results['proxy_exit_code'])}); shadow rows {shadows['total']} for "
        f"{len(CANDIDATE_MODELS)} x {results['requests']}: ok {shadows['ok']}, skipped saturated "
        f"{shadows['saturated']}, other: {other}.",
        f"Load: {settings['concurrency']} connections, half chat completions and half streams per batch of "
        f"{settings['every']}; primary simulator latency {settings['primary_latency_ms']} ms.",
        "",
        f"Command: `{results['command']}`",
        f"Machine: {machine['usable_cores']} of {machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['platform']}, Python {machine['python']}; load average {machine['load_average_at_start']:.2f} "
        "at start.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/memory_soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests in all (default 10000)")
    parser.add_argument("--every", type=int, default=1000, help="requests between memory samples (default 1000)")
    parser.add_argument("--baseline", type=int, default=2000,
                        help="growth is measured from the sample at this many requests (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    parser.add_argument("--primary-latency-ms", type=int, default=100,
                        help="the primary simulator's delay before each answer (default 100: a pace at which "
                             "most shadow calls run rather than being skipped as saturated; 0: flat out)")
    parser.add_argument("--max-growth", type=float, default=10.0, help="flat below this percentage (default 10)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of markdown")
    parser.add_argument("--workdir", type=Path, help="keep the store, config and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if min(args.requests, args.every, args.concurrency) < 1 or args.primary_latency_ms < 0:
        parser.error("--requests, --every and --concurrency must be at least 1, --primary-latency-ms at least 0")
    if not 0 <= args.baseline < args.requests:
        parser.error("--baseline must be from 0 to less than --requests")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    machine = machine_info()
    primary = Simulator.start(workdir, "primary-simulator", "--latency-ms", str(args.primary_latency_ms))
    candidates = proxy = None
    try:
        candidates = Simulator.start(workdir, "candidates-simulator")
        proxy = ProxyProcess.start(workdir / "proxy", "on", f"{primary.url}/v1", f"{candidates.url}/v1")
        print(f"proxy pid {proxy.pid}, shadow worker pid {proxy.worker_pid}, files in {workdir}",
              file=sys.stderr, flush=True)
        samples = run_async(soak(proxy, args))
    finally:
        exit_code = proxy.stop() if proxy is not None else None
        for simulator in (candidates, primary):
            if simulator is not None:
                simulator.stop()
    db_path = workdir / "proxy" / "captures.db"
    grown = {name: growth(samples, f"{name}_rss_kb", args.baseline) for name in ("live", "worker")}
    return {"command": shlex.join(sys.orig_argv), "machine": machine,
            "settings": {key: getattr(args, key) for key in ("every", "baseline", "concurrency",
                                                             "primary_latency_ms", "max_growth")},
            "requests": args.requests, "samples": samples, "growth": grown,
            "flat": all(item["percent"] < args.max_growth for item in grown.values()),
            "captured": count_exchanges(db_path), "shadows": summarise_outcomes(shadow_outcomes(db_path)),
            "proxy_exit_code": exit_code}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.workdir:
            if (args.workdir / "proxy" / "captures.db").exists():
                print(f"--workdir {str(args.workdir)!r} already holds a store. Choose an empty directory.",
                      file=sys.stderr)
                return 2
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="shadowtap-soak-") as workdir:
                results = run(args, Path(workdir))
    except (BenchError, RuntimeError) as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else markdown_report(results))
    complete = (results["captured"] == args.requests
                and results["shadows"]["total"] == len(CANDIDATE_MODELS) * args.requests)
    if not complete:
        print("soak invalid: a capture or a shadow row is missing", file=sys.stderr)
    return 0 if results["flat"] and complete else 1


if __name__ == "__main__":
    sys.exit(main())
