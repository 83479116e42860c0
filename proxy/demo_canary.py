"""The demo's canary: a candidate answers half of the live structured requests, turns bad partway,
and a guard rolls it back by itself while the app keeps getting valid answers.

It runs a proxy of its own (its own config and store, under the demo's directory), so the rest of
the demo's figures stay what they are. The candidate is the simulator's `sim-souring` persona,
which answers well until the demo sours it (`POST /sim/sour`); from then on its structured
answers break their JSON schema, the canary answers those requests with the primary instead
(fallback `contract_invalid`), and the guard loop that `shadowtap serve` started sees the
fallback rate cross `[canary] max_fallback_rate` and sets the share to 0.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import orjson
from rich.console import Console

from shadowtap.proxy.local_processes import (
    free_port,
    proxy_command,
    shadowtap_command,
    stop_process,
    wait_until_serving,
)

CANDIDATE = "souring"
SHARE = 0.5
GOOD_REQUESTS = 40            # answered while the candidate is still good
MAX_BAD_REQUESTS = 150        # the guard should fire long before this many
ROLLBACK_WAIT_S = 30.0
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
                 "required": ["answer", "confidence"], "additionalProperties": False}
QUESTIONS = ("How long are logs kept?", "Which regions exist?", "What are the support hours?",
             "How is usage billed?", "Can I export my data?")


@dataclass
class CanaryOutcome:
    requests: int = 0
    invalid_answers: int = 0      # answers the app received that broke the schema: must stay 0
    rolled_back_after: int | None = None   # requests sent after souring when the rollback was seen


def write_canary_config(workdir: Path, upstream_port: int, proxy_port: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "shadowtap.toml"
    path.write_text(
        "# Written by `shadowtap demo`: the canary part, with a proxy and store of its own.\n"
        f'[server]\nhost = "127.0.0.1"\nport = {proxy_port}\nlog_file = "{workdir / "proxy.log"}"\n\n'
        f'[primary]\nbase_url = "http://127.0.0.1:{upstream_port}/v1"\n\n'
        f'[store]\npath = "{workdir / "canary.db"}"\nflush_interval_ms = 50\n\n'
        # A demo-sized window: the guards decide on a few dozen requests, once a second.
        "[canary]\nstate_poll_s = 0.2\nguard_interval_s = 1.0\nwindow_s = 300\nmin_samples = 10\n\n"
        f'[[candidates]]\nname = "{CANDIDATE}"\nmodel = "openai/sim-souring"\n'
        f'api_base = "http://127.0.0.1:{upstream_port}/v1"\n'
        "sample_rate = 0.0   # never mirrored: it answers live, as a canary\n"
        'canary = { max_share = 0.5, timeout_s = 10, tasks = ["extract"] }\n')
    return path


def run_canary_demo(console: Console, workdir: Path, upstream_port: int) -> bool:
    """True when the guard rolled the candidate back and the app never got a broken answer."""
    console.rule("a canary that turns bad: shadowtap canary")
    proxy_port = free_port()
    config_path = write_canary_config(workdir, upstream_port, proxy_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    proxy = subprocess.Popen(proxy_command(config_path), stderr=open(workdir / "proxy-stderr.log", "wb"),
                             env={**os.environ, "OPENAI_API_KEY": "sk-demo-not-a-real-key"})
    try:
        wait_until_serving(f"http://127.0.0.1:{proxy_port}/healthz", proxy)
        start = ["canary", "start", CANDIDATE, "--share", str(SHARE), "--reason", "demo: half of the extract task",
                 "--by", "demo", "--config", str(config_path)]
        console.print("$ shadowtap " + " ".join(f'"{a}"' if " " in a else a for a in start))
        if subprocess.run(shadowtap_command(*start), stdout=subprocess.DEVNULL).returncode != 0:
            return False
        health_url = f"http://127.0.0.1:{proxy_port}/healthz"
        _wait_for_status(health_url, "running")
        outcome = CanaryOutcome()
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy_port}/v1", timeout=30) as client:
            for index in range(GOOD_REQUESTS):
                _ask(client, index, outcome)
            served = _served_by_candidate(workdir / "canary.db")
            console.print(f"{GOOD_REQUESTS} structured requests while {CANDIDATE} answers well: "
                          f"{served} answered by {CANDIDATE}, {GOOD_REQUESTS - served} by the primary")
            httpx.post(f"{upstream}/sim/sour", json={"model": "sim-souring"}).raise_for_status()
            console.print(f"{CANDIDATE} turns bad (the simulator's POST /sim/sour): its structured answers now "
                          "break their schema")
            deadline = time.monotonic() + ROLLBACK_WAIT_S
            for index in range(MAX_BAD_REQUESTS):
                _ask(client, GOOD_REQUESTS + index, outcome)
                if _status(health_url) == "rolled_back":
                    outcome.rolled_back_after = index + 1
                    break
                if time.monotonic() > deadline:
                    break
    finally:
        httpx.delete(f"{upstream}/sim/sour")
        stop_process(proxy)
    return _print_outcome(console, config_path, outcome)


def _ask(client: httpx.Client, index: int, outcome: CanaryOutcome) -> None:
    body = {"model": "sim-large", "messages": [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "strict": True, "schema": ANSWER_SCHEMA}}}
    headers = {"authorization": "Bearer sk-demo-not-a-real-key", "x-shadowtap-task": "extract",
               "x-shadowtap-risk-tier": "low"}
    answer = client.post("/chat/completions", json=body, headers=headers)
    answer.raise_for_status()
    outcome.requests += 1
    try:
        jsonschema.validate(orjson.loads(answer.json()["choices"][0]["message"]["content"]), ANSWER_SCHEMA)
    except (jsonschema.ValidationError, orjson.JSONDecodeError):
        outcome.invalid_answers += 1


def _status(health_url: str) -> str | None:
    candidates = (httpx.get(health_url).json().get("canary") or {}).get("candidates") or {}
    return (candidates.get(CANDIDATE) or {}).get("status")


def _wait_for_status(health_url: str, wanted: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _status(health_url) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)


def _served_by_candidate(store_path: Path, timeout_s: float = 5.0) -> int:
    """How many captured exchanges the candidate answered (capture lags the answers a little)."""
    from shadowtap.core.store import Store

    deadline = time.monotonic() + timeout_s
    while True:
        with Store.open(store_path) as store:
            counts = store.summary.served_by_counts()
        if sum(counts.values()) >= GOOD_REQUESTS or time.monotonic() > deadline:
            return counts.get(CANDIDATE, 0)
        time.sleep(0.1)


def _print_outcome(console: Console, config_path: Path, outcome: CanaryOutcome) -> bool:
    status = subprocess.run([*shadowtap_command("canary", "status", "--json"), "--config", str(config_path)],
                            stdout=subprocess.PIPE, text=True)
    rows = orjson.loads(status.stdout) if status.returncode == 0 else []
    row = next((row for row in rows if row["candidate"] == CANDIDATE), None)
    last = (row or {}).get("last_rollback")
    if outcome.rolled_back_after is None or row is None or last is None:
        console.print(f"[red]the guard did not roll {CANDIDATE} back within {ROLLBACK_WAIT_S:g} s; "
                      f"see {config_path.parent / 'proxy.log'}")
        return False
    console.print(f"rolled back by itself {outcome.rolled_back_after} requests later: guard {last['guard']}, "
                  f"{last['reason']}; share now {row['share']:g}", markup=False, highlight=False)
    console.print(f"$ shadowtap canary status --config {config_path}   # the share, who changed it, and why")
    broken = outcome.invalid_answers
    console.print(f"the app received {outcome.requests} answers, {broken} of them broken: the primary answered "
                  f"each request {CANDIDATE} got wrong (fallback contract_invalid)", markup=False, highlight=False)
    return broken == 0
