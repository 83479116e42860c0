"""`shadowtap demo`: the whole loop offline, in well under a minute.

Starts the simulated upstream and the proxy on free loopback ports, drives a mixed workload
through the proxy with the official OpenAI SDK, measures the proxy's added latency against
direct calls, stops the proxy (which drains capture), and summarises what was captured.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from proxy.local_processes import free_port, proxy_command, simulator_command, stop_process, wait_until_serving

console = Console()

# A little latency makes streaming visible without making the demo slow.
SIMULATOR_OPTIONS = ("--ttft-ms", "40", "--chunk-delay-ms", "4")
OVERHEAD_SAMPLES = 200
OVERHEAD_WARMUP = 20
PROBE_TASK = "overhead-probe"


def run_demo(workdir: Path, *, request_count: int = 120) -> int:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    store_path = workdir / "captures.db"
    for stale in (store_path, Path(f"{store_path}-wal"), Path(f"{store_path}-shm")):
        stale.unlink(missing_ok=True)
    upstream_port, proxy_port = free_port(), free_port()
    config_path = _write_config(workdir, upstream_port, proxy_port, store_path)

    console.rule("[bold]shadowtap demo")
    processes: list[subprocess.Popen] = []
    try:
        upstream = subprocess.Popen(simulator_command(upstream_port, *SIMULATOR_OPTIONS),
                                    stderr=open(workdir / "simulator.log", "wb"))
        processes.append(upstream)
        wait_until_serving(f"http://127.0.0.1:{upstream_port}/v1/models", upstream)
        proxy = subprocess.Popen(proxy_command(config_path), stderr=open(workdir / "proxy-stderr.log", "wb"),
                                 env={**os.environ, "OPENAI_API_KEY": "sk-demo-not-a-real-key"})
        processes.append(proxy)
        startup_s = wait_until_serving(f"http://127.0.0.1:{proxy_port}/healthz", proxy)
        console.print(f"simulated upstream  http://127.0.0.1:{upstream_port}/v1")
        console.print(f"shadowtap proxy     http://127.0.0.1:{proxy_port}/v1   (answered {startup_s:.2f}s after start)")

        outcomes = _drive_workload(f"http://127.0.0.1:{proxy_port}/v1", request_count)
        overhead = _measure_overhead(f"http://127.0.0.1:{upstream_port}/v1", f"http://127.0.0.1:{proxy_port}/v1")
        exit_code = stop_process(proxy)
        processes.remove(proxy)
    finally:
        for process in processes:
            stop_process(process)

    failures = [kind for kind, ok in outcomes if not ok]
    captured = _summarise_store(store_path)
    _print_overhead(overhead)
    _print_next_steps(config_path, store_path)
    expected = len(outcomes) + OVERHEAD_SAMPLES + OVERHEAD_WARMUP
    if exit_code != 0:
        console.print(f"[red]the proxy exited with code {exit_code}; see {workdir / 'proxy-stderr.log'}")
        return 1
    if failures or captured < expected:
        console.print(f"[red]{len(failures)} calls failed; {captured} of {expected} exchanges captured")
        return 1
    console.print(f"[green]demo complete: {len(outcomes)} workload calls and {expected - len(outcomes)} probes "
                  f"through the proxy, all {captured} captured.")
    return 0


def _write_config(workdir: Path, upstream_port: int, proxy_port: int, store_path: Path) -> Path:
    path = workdir / "shadowtap.toml"
    path.write_text(
        "# Written by `shadowtap demo`; run it yourself with `shadowtap serve --config <this file>`.\n"
        f'[server]\nhost = "127.0.0.1"\nport = {proxy_port}\nlog_file = "{workdir / "proxy.log"}"\n\n'
        f'[primary]\nbase_url = "http://127.0.0.1:{upstream_port}/v1"\n\n'
        f'[store]\npath = "{store_path}"\n')
    return path


def _drive_workload(base_url: str, request_count: int) -> list[tuple[str, bool]]:
    from openai import OpenAI

    from proxy.demo_workload import demo_calls

    client = OpenAI(base_url=base_url, api_key="sk-demo-not-a-real-key", max_retries=0, timeout=30)
    outcomes: list[tuple[str, bool]] = []
    columns = (TextColumn("driving traffic"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, ThreadPoolExecutor(max_workers=8) as pool:
        task = progress.add_task("requests", total=request_count)
        futures = {pool.submit(call.run, client): call.kind for call in demo_calls(request_count)}
        for future in as_completed(futures):
            kind = futures[future]
            error = future.exception()
            if error is not None:
                console.print(f"[red]{kind} call failed: {type(error).__name__}: {error}")
            outcomes.append((kind, error is None))
            progress.advance(task)
    client.close()
    return outcomes


def _measure_overhead(direct_url: str, proxied_url: str) -> dict[str, float]:
    """Alternate identical requests direct and through the proxy; compare the latencies."""
    body = {"model": "sim-small", "messages": [{"role": "user", "content": "What are the support hours?"}]}
    headers = {"authorization": "Bearer sk-demo-not-a-real-key", "x-sim-ttft-ms": "0", "x-sim-latency-ms": "0",
               "x-shadowtap-task": PROBE_TASK}
    samples: dict[str, list[float]] = {"direct": [], "proxied": []}
    with httpx.Client(timeout=10) as client:
        for round_index in range(OVERHEAD_SAMPLES + OVERHEAD_WARMUP):
            for name, url in (("direct", direct_url), ("proxied", proxied_url)):
                started = time.perf_counter()
                client.post(f"{url}/chat/completions", json=body, headers=headers).raise_for_status()
                if round_index >= OVERHEAD_WARMUP:  # the first rounds warm the connection pools
                    samples[name].append((time.perf_counter() - started) * 1000)
    direct, proxied = sorted(samples["direct"]), sorted(samples["proxied"])
    return {"direct_p50_ms": statistics.median(direct), "proxied_p50_ms": statistics.median(proxied),
            "added_p50_ms": statistics.median(proxied) - statistics.median(direct)}


def _summarise_store(store_path: Path) -> int:
    from proxy.store import CaptureStore

    store = CaptureStore.open(store_path)
    rows = list(store.db.query(
        "select endpoint, status, count(*) n, sum(is_stream) streams, round(avg(latency_ms), 1) latency,"
        " round(avg(ttft_ms), 1) ttft, sum(total_tokens) tokens, sum(stream_incomplete) incomplete"
        " from exchanges where task is not :probe or task is null group by endpoint, status"
        " order by endpoint, status", {"probe": PROBE_TASK}))
    table = Table(title=f"captured exchanges ({store_path.name})")
    for column in ("endpoint", "status", "count", "streamed", "avg latency ms", "avg ttft ms", "tokens"):
        table.add_column(column, justify="right" if column != "endpoint" else "left", no_wrap=True)
    for row in rows:
        table.add_row(row["endpoint"], str(row["status"]), str(row["n"]), str(row["streams"] or 0),
                      str(row["latency"] or ""), str(row["ttft"] or ""), str(row["tokens"] or 0))
    console.print(table)
    probes = store.count_exchanges() - sum(row["n"] for row in rows)
    tagged = store.db.execute("select count(*) from exchanges where task is not null and task != ?",
                              [PROBE_TASK]).fetchone()[0]
    with_context = store.db.execute("select count(*) from exchanges where shadowtap_metadata is not null").fetchone()[0]
    console.print(f"{tagged} exchanges carry task/risk tags; {with_context} carry retrieved contexts "
                  "(the `shadowtap` body field, stripped before forwarding); "
                  f"plus {probes} overhead probes tagged task={PROBE_TASK}.")
    total = store.count_exchanges()
    store.close()
    return total


def _print_overhead(overhead: dict[str, float]) -> None:
    console.print(
        f"proxy overhead over {OVERHEAD_SAMPLES} alternating requests: direct p50 "
        f"{overhead['direct_p50_ms']:.2f} ms, through shadowtap p50 {overhead['proxied_p50_ms']:.2f} ms, "
        f"added [bold]{overhead['added_p50_ms']:.2f} ms[/bold] (client, proxy and upstream share 2 cores here; "
        "see bench/ for the full benchmark)")


def _print_next_steps(config_path: Path, store_path: Path) -> None:
    console.rule("next")
    console.print(f"store:   {store_path}")
    console.print(f"config:  {config_path}")
    console.print(f"  shadowtap captures list --store {store_path}")
    console.print(f"  shadowtap captures show <ID> --store {store_path}")
    console.print(f"  shadowtap captures export --store {store_path} -o captures.jsonl")
    console.print(f"  shadowtap serve --config {config_path}     # then point your app's base_url at it")
