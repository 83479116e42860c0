"""`shadowtap demo`: the whole loop offline, in well under a minute.

Starts the simulated upstream and the proxy on free loopback ports, drives a mixed workload
through the proxy with the official OpenAI SDK, measures the proxy's added latency against
direct calls, has two simulated reviewers post what really happened to the question-answering
replies (POST /shadowtap/feedback), stops the proxy (which drains capture), summarises what was
captured, scores and compares it, replays the drifting candidate where the primary was grounded,
and ends with a canary of a candidate that turns bad partway and is rolled back by a guard.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shadowtap.proxy.demo_canary import run_canary_demo
from shadowtap.proxy.local_processes import (
    free_port,
    proxy_command,
    shadowtap_command,
    simulator_command,
    stop_process,
    wait_until_serving,
)

# soft_wrap: commands and paths are printed whole, so they can be copied even from an 80-column log.
console = Console(soft_wrap=True)

# A little latency makes streaming visible without making the demo slow.
SIMULATOR_OPTIONS = ("--ttft-ms", "40", "--chunk-delay-ms", "4")
WORKLOAD_THREADS = 4   # an app's pace, well within what the shadow worker can mirror
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
    config_path = _write_config(workdir, upstream_port, proxy_port, store_path, request_count)

    console.rule("[bold]shadowtap demo")
    processes: list[subprocess.Popen] = []
    try:
        upstream = subprocess.Popen(simulator_command(upstream_port, *SIMULATOR_OPTIONS),
                                    stderr=open(workdir / "simulator.log", "wb"))
        processes.append(upstream)
        wait_until_serving(f"http://127.0.0.1:{upstream_port}/v1/models", upstream)
        admin_token = secrets.token_urlsafe(24)  # this run's own; the reviewers need it to post feedback
        proxy = subprocess.Popen(proxy_command(config_path), stderr=open(workdir / "proxy-stderr.log", "wb"),
                                 env={**os.environ, "OPENAI_API_KEY": "sk-demo-not-a-real-key",
                                      ADMIN_TOKEN_ENV: admin_token})
        processes.append(proxy)
        startup_s = wait_until_serving(f"http://127.0.0.1:{proxy_port}/healthz", proxy)
        shadow_ready_s = _wait_for_shadow_worker(f"http://127.0.0.1:{proxy_port}/healthz")
        console.print(f"simulated upstream  http://127.0.0.1:{upstream_port}/v1")
        console.print(f"shadowtap proxy     http://127.0.0.1:{proxy_port}/v1   (answered {startup_s:.2f}s after start)")
        console.print(f"shadow worker       ready {startup_s + shadow_ready_s:.1f}s after start "
                      f"(candidates: {', '.join(name for name, _, _ in DEMO_CANDIDATES)})")

        outcomes, answers = _drive_workload(f"http://127.0.0.1:{proxy_port}/v1", request_count)
        # Every shadow answers (or times out) before anything is measured or the proxy stops: stopping
        # cancels calls still in flight after [shadow] grace_period_s, a number that varies with load.
        shadows_s = _wait_for_shadows(f"http://127.0.0.1:{proxy_port}/metrics")
        console.print(f"shadow calls all finished {shadows_s:.1f}s after the workload")
        reviewed = _post_reviews(f"http://127.0.0.1:{proxy_port}", admin_token, answers)
        overhead = _measure_overhead(f"http://127.0.0.1:{upstream_port}/v1", f"http://127.0.0.1:{proxy_port}/v1")
        exit_code = stop_process(proxy)
        processes.remove(proxy)

        failures = [kind for kind, ok in outcomes if not ok]
        captured = _summarise_store(store_path)
        scored = _score(config_path)
        html_path = workdir / "report.html"
        reported = scored and _report(config_path, html_path)
        replayed = reported and _replay_candidate(config_path)  # re-sends to the upstream: stop it only afterwards
        canaried = replayed and run_canary_demo(console, workdir / "canary", upstream_port)
    finally:
        # sim-slow leaves a few shadow requests hanging for 30 s on purpose, and uvicorn waits for them
        # on SIGTERM; the simulator holds nothing worth draining, so it is not given long.
        for process in processes:
            stop_process(process, timeout_s=20.0 if process is not upstream else 2.0)

    _print_overhead(overhead)
    _print_next_steps(config_path, store_path, upstream_port)
    expected = len(outcomes) + OVERHEAD_SAMPLES + OVERHEAD_WARMUP
    if exit_code != 0:
        console.print(f"[red]the proxy exited with code {exit_code}; see {workdir / 'proxy-stderr.log'}")
        return 1
    if not reviewed:
        console.print("[red]the simulated reviewers could not post their feedback; see the error above")
        return 1
    if not scored or not reported or not replayed:
        console.print("[red]`shadowtap eval`, `report` or `replay` failed on the demo's captures")
        return 1
    if not canaried:
        console.print("[red]the canary part of the demo failed; see the lines above")
        return 1
    if failures or captured < expected:
        console.print(f"[red]{len(failures)} calls failed; {captured} of {expected} exchanges captured")
        return 1
    console.print(f"[green]demo complete: {len(outcomes)} workload calls and {expected - len(outcomes)} probes "
                  f"through the proxy, all {captured} captured.")
    return 0


def _write_config(workdir: Path, upstream_port: int, proxy_port: int, store_path: Path,
                  request_count: int = 120) -> Path:
    path = workdir / "shadowtap.toml"
    cap = min(1024, max(8, request_count))   # each request is mirrored at most once per candidate
    path.write_text(
        "# Written by `shadowtap demo`; run it yourself with `shadowtap serve --config <this file>`.\n"
        f'[server]\nhost = "127.0.0.1"\nport = {proxy_port}\nlog_file = "{workdir / "proxy.log"}"\n\n'
        f'[primary]\nbase_url = "http://127.0.0.1:{upstream_port}/v1"\n'
        f'anthropic_base_url = "http://127.0.0.1:{upstream_port}"   # the app\'s Anthropic-SDK calls\n\n'
        f'[store]\npath = "{store_path}"\n\n'
        f'[admin]\ntoken_env = "{ADMIN_TOKEN_ENV}"   # the demo sets it for its proxy; reviewers post feedback\n\n'
        # Every rate is 1: sampling hashes the exchange id, which is random, so a rate below 1 would
        # mirror a different share each run and the demo's figures would change from run to run.
        "[shadow]\nprimary_twin_rate = 1.0   # the primary answers twice: its own noise floor\n"
        'primary_twin_models = ["sim-large"]\n'
        f"twin_max_concurrency = {cap}   # like each candidate's cap: no twin call is skipped as saturated\n\n"
        + "".join(_candidate_toml(name, model, upstream_port, f"sample_rate = 1.0\nmax_concurrency = {cap}\n{options}")
                  for name, model, options in DEMO_CANDIDATES))
    return path


ADMIN_TOKEN_ENV = "SHADOWTAP_ADMIN_TOKEN"

# Three simulated candidates with distinct flaws (see proxy/simulator/personas.py).
# They mirror sim-large traffic only, so the sim-small overhead probes stay unshadowed. Each mirrors
# every request (see the twin rate above), and its concurrency cap is the workload's size, so no call
# is skipped as "saturated" however slowly the shadow worker runs on a busy machine: with a cap of 8,
# a starved worker skipped a varying few, and the candidates' sample counts changed from run to run.
DEMO_CANDIDATES = (
    ("drifty", "sim-drifty", 'models = ["sim-large"]\n'),
    # Its answers take 0.3-0.8 s and one in eight hangs for 30 s: a 10 s timeout cuts every hang and
    # leaves room for a shadow worker that a busy machine runs slowly, so the same calls time out each run.
    ("slow", "sim-slow", 'timeout_s = 10.0\nmodels = ["sim-large"]\n'),
    ("sloppy", "sim-sloppy", 'models = ["sim-large"]\n'),
)


def _candidate_toml(name: str, model: str, upstream_port: int, options: str) -> str:
    return (f'[[candidates]]\nname = "{name}"\nmodel = "openai/{model}"\n'
            f'api_base = "http://127.0.0.1:{upstream_port}/v1"\n{options}\n')


def _wait_for_shadow_worker(health_url: str, timeout_s: float = 180.0) -> float:
    """The worker imports litellm in its own process; wait so the first shadows start on time."""
    started = time.monotonic()
    while httpx.get(health_url).json().get("shadow_worker") == "starting":
        if time.monotonic() - started > timeout_s:
            raise RuntimeError("the shadow worker did not become ready")
        time.sleep(0.1)
    return time.monotonic() - started


def _wait_for_shadows(metrics_url: str, timeout_s: float = 180.0) -> float:
    """Wait until no shadow job is queued or in flight, twice in a row a snapshot apart (the worker
    reports its in-flight calls once a second); give up quietly after `timeout_s`."""
    started = time.monotonic()
    idle_readings = 0
    while idle_readings < 2 and time.monotonic() - started < timeout_s:
        text = httpx.get(metrics_url).text
        busy = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(("shadowtap_shadow_in_flight{", "shadowtap_shadow_queue_depth ")))
        idle_readings = idle_readings + 1 if busy == 0 else 0
        time.sleep(SHADOW_POLL_S)
    return time.monotonic() - started


SHADOW_POLL_S = 1.2   # a little over the worker's snapshot interval


def _drive_workload(base_url: str, request_count: int) -> tuple[list[tuple[str, bool]], list]:
    """(kind, succeeded) per call, and the question-answering replies the reviewers will judge."""
    from anthropic import Anthropic
    from openai import OpenAI

    from shadowtap.proxy.demo_reviewers import ReviewedAnswer
    from shadowtap.proxy.demo_workload import AnthropicCall, demo_calls

    client = OpenAI(base_url=base_url, api_key="sk-demo-not-a-real-key", max_retries=0, timeout=30)
    # The Anthropic SDK adds /v1/messages to its base URL itself.
    anthropic = Anthropic(base_url=base_url.removesuffix("/v1"), api_key="sk-ant-demo-not-a-real-key",
                          max_retries=0, timeout=30)
    outcomes: list[tuple[str, bool]] = []
    answers: list[ReviewedAnswer] = []
    columns = (TextColumn("driving traffic"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, ThreadPoolExecutor(max_workers=WORKLOAD_THREADS) as pool:
        task = progress.add_task("requests", total=request_count)
        futures = {(pool.submit(call.run, anthropic) if isinstance(call, AnthropicCall)
                    else pool.submit(call.run, client)): call.kind for call in demo_calls(request_count)}
        for future in as_completed(futures):
            kind = futures[future]
            error = future.exception()
            if error is not None:
                console.print(f"[red]{kind} call failed: {type(error).__name__}: {error}")
            outcomes.append((kind, error is None))
            result = future.result() if error is None else None
            if isinstance(result, ReviewedAnswer):
                answers.append(result)
            progress.advance(task)
    client.close()
    anthropic.close()
    return outcomes, sorted(answers, key=lambda answer: answer.index)


def _post_reviews(proxy_url: str, admin_token: str, answers: list) -> bool:
    """Each simulated reviewer posts one batch of outcomes, as a review tool would."""
    from collections import Counter

    from shadowtap.core.feedback_items import OUTCOMES
    from shadowtap.proxy.demo_reviewers import post_feedback, simulated_feedback

    console.rule("reviewers: POST /shadowtap/feedback")
    for reviewer, items in simulated_feedback(answers).items():
        try:
            stored = post_feedback(proxy_url, admin_token, items)
        except httpx.HTTPError as exc:
            detail = exc.response.text[:300] if isinstance(exc, httpx.HTTPStatusError) else str(exc)
            console.print(f"[red]{reviewer}: feedback was refused: {detail}")
            return False
        counts = Counter(item["outcome"] for item in items)
        said = ", ".join(f"{counts[outcome]} {outcome.replace('_', ' ')}" for outcome in OUTCOMES if counts[outcome])
        console.print(f"{reviewer} judged {len(answers)} question-answering replies: {said} "
                      f"({len(stored['results'])} stored)")
    return True


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
    from shadowtap.core.store import Store

    store = Store.open(store_path)
    rows = store.summary.exchanges_by_endpoint_and_status(except_task=PROBE_TASK)
    probes = store.captures.count_exchanges() - sum(row["n"] for row in rows)
    tagged = store.summary.count_with_task(except_task=PROBE_TASK)
    with_context = store.summary.count_with_metadata()
    traffic = ", ".join(f"{row['endpoint']} {row['status']} ×{row['n']}"
                        + (f" ({row['streams']} streamed)" if row["streams"] else "") for row in rows)
    console.print(f"captured ({store_path.name}): {traffic}; {tagged} tagged with a task and risk tier, "
                  f"{with_context} with retrieved contexts; plus {probes} overhead probes")
    _print_shadows(store.summary.shadows_by_candidate())
    total = store.captures.count_exchanges()
    store.close()
    return total


def _score(config_path: Path) -> bool:
    """Score every captured answer with the evaluators that need no judge model; print the run's
    summary line (each evaluator's figures are in the report's details)."""
    console.rule("scoring: shadowtap eval")
    command = shadowtap_command("eval", "--config", str(config_path))
    console.print(f"$ shadowtap eval --config {config_path}")
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)   # its progress bar and errors: stderr
    if result.returncode != 0:
        console.print(result.stdout, markup=False, highlight=False)
        return False
    summary = [line for line in result.stdout.splitlines() if line.startswith(("this run:", "skipped "))]
    console.print("\n".join(summary), markup=False, highlight=False)
    return True


def _report(config_path: Path, html_path: Path) -> bool:
    """Compare each candidate with the primary, on the terminal and as one HTML file."""
    console.rule("comparing candidates: shadowtap report")
    console.print(f"$ shadowtap report --config {config_path} --html {html_path}")
    command = shadowtap_command("report", "--config", str(config_path), "--html", str(html_path))
    ok = subprocess.run(command).returncode == 0 and html_path.exists()
    if ok:
        console.print(f"HTML report (self-contained, open it in a browser): {html_path}")
    return ok


# The workload's own chat traffic: not the sim-small overhead probes, embeddings or rate-limited calls.
REPLAY_SELECTION = ("--endpoint", "chat.completions", "--model", "sim-large", "--status", "200", "--sample", "6")
# Where the primary's answer was grounded: a candidate that loses grounding there has regressed.
REPLAY_GROUNDED = ("--where", "grounding >= 0.8")
REPLAY_TARGET = "candidate:drifty"   # the candidate whose flaw is grounding
REPLAY_PASS = "grounding>=0.8"
REPLAY_SHOWN_LINES = 12


def _replay_candidate(config_path: Path) -> bool:
    """Replay drifty where the primary was grounded, twice each and on perturbed prompts, and show
    pass@k, how much its answers move when the prompt is reworded, and the first answer that failed.

    A small workload may score no answer at all; then any six of its chat exchanges are replayed.
    """
    console.rule("replaying a candidate where the primary was grounded: shadowtap replay")
    base = ["replay", "run", "--config", str(config_path), "--target", REPLAY_TARGET, "-k", "2", "--perturb",
            "--pass", REPLAY_PASS, *REPLAY_SELECTION]
    run_id = None
    for extra in (REPLAY_GROUNDED, ()):
        arguments = [*base, *extra]
        console.print("$ shadowtap " + " ".join(_quoted(argument) for argument in arguments))
        # stdout is the run id; progress and "no exchanges match the selection" go to stderr.
        result = subprocess.run(shadowtap_command(*arguments), stdout=subprocess.PIPE, text=True)
        run_id = result.stdout.strip().splitlines()[0] if result.stdout.strip() else None
        if result.returncode == 0 and run_id:
            break
        if run_id or result.returncode != 1:  # a run started and failed, or a usage error: no fallback helps
            return False
    else:
        return False
    console.print(f"$ shadowtap replay show {run_id} --config {config_path}")
    shown = subprocess.run([*shadowtap_command("replay", "show", run_id), "--config", str(config_path)],
                           stdout=subprocess.PIPE, text=True)
    lines = shown.stdout.rstrip("\n").splitlines()
    console.print("\n".join(lines[:REPLAY_SHOWN_LINES]), markup=False, highlight=False)
    if len(lines) > REPLAY_SHOWN_LINES:
        console.print(f"… {len(lines) - REPLAY_SHOWN_LINES} more lines: shadowtap replay show {run_id}")
    return shown.returncode == 0


def _quoted(argument: str) -> str:
    return f'"{argument}"' if " " in argument else argument


def _print_shadows(rows: list[dict]) -> None:
    table = Table(title="shadow answers (never sent to the app)")
    for column in ("candidate", "rows", "ok", "errors", "timeouts", "skipped", "avg ms", "primary avg ms"):
        table.add_column(column, justify="left" if column == "candidate" else "right", overflow="fold",
                         no_wrap=column == "candidate")
    for row in rows:
        table.add_row(row["candidate"], str(row["n"]), str(row["ok"]), str(row["errors"]), str(row["timeouts"]),
                      str(row["skipped"]), str(row["latency"] or ""), str(row["primary_latency"] or ""))
    console.print(table)


def _print_overhead(overhead: dict[str, float]) -> None:
    console.print(
        f"proxy overhead over {OVERHEAD_SAMPLES} alternating requests: direct p50 "
        f"{overhead['direct_p50_ms']:.2f} ms, through shadowtap p50 {overhead['proxied_p50_ms']:.2f} ms, "
        f"added [bold]{overhead['added_p50_ms']:.2f} ms[/bold] (client, proxy and upstream share 2 cores here; "
        "see bench/ for the full benchmark)")


def _print_next_steps(config_path: Path, store_path: Path, upstream_port: int) -> None:
    console.rule("next")
    console.print(f"store:   {store_path}")
    console.print(f"config:  {config_path}")
    console.print(f"  shadowtap captures list --store {store_path}")
    console.print(f"  shadowtap captures show <ID> --store {store_path}")
    console.print(f"  shadowtap captures export --store {store_path} -o captures.jsonl")
    console.print(f"  shadowtap feedback list --store {store_path}   # what the reviewers said")
    console.print(f"  shadowtap eval --config {config_path} --evaluator grounding   # scores only what is new")
    console.print(f"  shadowtap gate --config {config_path}      # exit 1 when a candidate misses \\[gate]")
    # The demo's simulated upstream stops with it: without it, every replay or served call fails.
    console.print(f"  shadowtap simulator --port {upstream_port} {' '.join(SIMULATOR_OPTIONS)} &   "
                  "# the demo's upstream again, for replay and serve")
    console.print(f"  shadowtap report --config {config_path} --details   # every figure behind the verdicts")
    console.print(f"  shadowtap serve --config {config_path}     # then point your app's base_url at it")


@click.command()
@click.option("--dir", "workdir", default="shadowtap-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo writes its store, config and logs.")
@click.option("--requests", "request_count", default=120, show_default=True, type=int,
              help="How many requests the workload sends.")
def demo(workdir: str, request_count: int) -> None:
    """Run the whole loop offline: simulated upstream, proxy, a mixed workload, a summary."""
    sys.exit(run_demo(Path(workdir), request_count=request_count))
