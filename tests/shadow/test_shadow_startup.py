"""What `shadowtap serve` says at start-up and when a candidate fails, and a worker that is ready
only once litellm has finished importing itself."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.fake_candidates import refused_base_url
from tests.support.shadow_support import QUESTION, shadows_of

PROMPT = "a prompt that must never reach a log line"


def typo_candidate(simulator) -> str:
    return (f'[[candidates]]\nname = "typo"\nmodel = "opnai/gpt-4o-mini"\napi_base = "{simulator.base_url}"\n'
            'api_key_env = "TYPO_KEY_NEVER_SET"\n')


def wait_for_log(proxy, text: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = proxy.log_text()
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"the log never said {text!r}:\n{proxy.log_text()[-3000:]}")


def test_a_model_string_with_no_provider_is_warned_at_start_up_and_each_failure_keeps_its_reason(
        proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config=typo_candidate(simulator))
    wait_for_log(proxy, "start-up check: [[candidates]] 'typo' model: 'opnai/gpt-4o-mini': litellm knows no "
                        "provider 'opnai'")
    wait_for_log(proxy, "start-up check: [[candidates]] 'typo' api_key_env: TYPO_KEY_NEVER_SET is not set")
    ids = []
    for index in range(3):
        body = {**QUESTION, "messages": [{"role": "user", "content": f"{PROMPT} {index}"}]}
        response = httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=30)
        assert response.status_code == 200
        ids.append(response.headers["x-shadowtap-exchange-id"])
    rows = [shadows_of(proxy.store_path, exchange_id, 1)["typo"] for exchange_id in ids]
    for row in rows:
        assert (row["outcome"], row["error_class"]) == ("error", "BadRequestError")
        assert "LLM Provider NOT provided" in row["error_message"]
    log = wait_for_log(proxy, "'typo' (opnai/gpt-4o-mini): shadow calls are failing: BadRequestError: litellm "
                              "knows no provider for this model string")
    assert log.count("shadow calls are failing") == 1  # three failures, one line a minute
    assert PROMPT not in log


def test_an_unreachable_primary_is_warned_at_start_up_and_the_proxy_starts_anyway(proxy_factory):
    down = refused_base_url()
    proxy = proxy_factory(down)
    assert httpx.get(f"{proxy.url}/healthz").status_code == 200
    wait_for_log(proxy, f"start-up check: [primary] base_url: {down} cannot be reached")


# litellm runs part of every call in a thread pool and imports modules lazily on first use, so the
# first calls after a start, several at once, raced each other's imports: "partially initialized
# module 'httpx2' has no attribute 'Timeout'", counted against the candidate. Every start here
# sends a burst the moment the worker says it is ready, to candidates of several providers.
STARTS = 3
BURST = 12


def burst_candidates(simulator) -> str:
    models = {"plain": "openai/sim-small", "vllm": "hosted_vllm/sim-small", "claude": "anthropic/sim-small"}
    blocks = []
    for name, model in models.items():
        base = simulator.url if model.startswith("anthropic/") else simulator.base_url
        blocks.append(f'[[candidates]]\nname = "{name}"\nmodel = "{model}"\napi_base = "{base}"\n'
                      'max_concurrency = 64\ntimeout_s = 60\n')
    return "".join(blocks)


@pytest.mark.timeout(600)
def test_no_call_fails_when_a_burst_arrives_the_moment_a_fresh_worker_is_ready(proxy_factory, simulator):
    failed = []
    for start in range(STARTS):
        proxy = proxy_factory(simulator.base_url, extra_config=burst_candidates(simulator))

        def ask(index: int) -> str:
            body = {**QUESTION, "stream": index % 2 == 0,
                    "messages": [{"role": "user", "content": f"burst {start} {index}"}]}
            response = httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=60)
            assert response.status_code == 200
            return response.headers["x-shadowtap-exchange-id"]

        with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
            ids = list(pool.map(ask, range(BURST)))
        for exchange_id in ids:
            for name, row in shadows_of(proxy.store_path, exchange_id, 3, timeout_s=120).items():
                if row["outcome"] != "ok":
                    failed.append((start, name, row["outcome"], row["error_class"], row["error_message"]))
        proxy.stop()
    assert failed == []


FIRST_CALLS_SCRIPT = """
import asyncio, json, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from shadowtap.proxy.dialects import dialect_named
from shadowtap.proxy.shadow.calls import CallTarget, call_candidate, configure_litellm
from shadowtap.proxy.shadow.warm_up import warm_up
from shadowtap.proxy.simulator import running_simulator

async def main(url):
    import litellm
    configure_litellm(litellm)
    models = ["openai/sim-small", "hosted_vllm/sim-small", "anthropic/sim-small"]
    targets = [CallTarget(f"c{i}", m, url if m.startswith("anthropic/") else url + "/v1", "k", 60, 64)
               for i, m in enumerate(models)]
    await warm_up(litellm, targets, {"c0": ["chat.completions", "embeddings"], "c1": ["chat.completions"],
                                     "c2": ["chat.completions"]})
    loaded = set(sys.modules)
    chat, embeddings = dialect_named("chat.completions"), dialect_named("embeddings")
    calls = [call_candidate(litellm, chat, {"model": "m", "stream": n % 2 == 0,
                                            "messages": [{"role": "user", "content": f"q{n}"}]},
                            target, stream=n % 2 == 0) for n, target in enumerate(targets * 4)]
    calls.append(call_candidate(litellm, embeddings, {"model": "m", "input": ["x"]}, targets[0], stream=False))
    results = await asyncio.gather(*calls)
    print(json.dumps({"imported_by_calls": sorted(set(sys.modules) - loaded),
                      "failed": [[r.outcome, r.error_class, r.error_message] for r in results if r.outcome != "ok"]}))

with running_simulator() as url:
    asyncio.run(main(url))
"""


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_after_the_warm_up_the_first_calls_of_every_provider_import_nothing_and_all_succeed():
    """Deterministic where the race is not: no module left to import means no import to race."""
    result = subprocess.run([sys.executable, "-c", FIRST_CALLS_SCRIPT], capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["failed"] == []
    assert found["imported_by_calls"] == []
