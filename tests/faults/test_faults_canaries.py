"""Secret canaries across the whole flow: the client's key, the primary's key, two candidates' keys and
the judge's key are planted, mixed traffic runs (streams, primary errors, shadows and judge calls that
fail with errors quoting the request, eval, report, captures and replay exports), and then no canary
may appear in the store, its -wal or -shm, the logs, /metrics, /healthz or any export. Each model
also receives its own key and no other. Beside its key the client sends a key in the query string and
a header whose name only suggests a credential, which the primary alone receives, and personal data
in its prompts, which only the models see; the proxy logs at debug level, with the access log on.

The canaries have no secret-like shape (no `sk-` prefix), so a generic pattern cannot hide a leak:
only not writing them does. The flow runs once per module; each test reads what it left behind.
"""

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from tests.support.fake_candidates import FakeCandidate
from tests.support.servers import start_proxy
from tests.support.shadow_support import shadows_of
from tests.support.store_reading import wait_for_rows

CANARIES = {
    "client": "canary-client-0d9e1f2a",
    "primary": "canary-primary-5b7c4a31",
    "candidate_a": "canary-candidate-a-51d0e6",
    "candidate_b": "canary-candidate-b-77e2f3",
    "judge": "canary-judge-c4a8d2b9",
}
KEY_ENV = {"client": "CANARY_CLIENT_KEYS", "primary": "CANARY_PRIMARY_KEY", "candidate_a": "CANARY_CANDIDATE_A",
           "candidate_b": "CANARY_CANDIDATE_B", "judge": "CANARY_JUDGE_KEY"}
# Sent by the client beside its key and passed to the primary as sent: `?key=` (as Google's APIs take
# it) and a header named in no list, whose name suggests a credential.
PASSED_THROUGH = {"query key": "canary-query-key-3f81c2", "credential header": "canary-header-credential-a07d5e"}
# Personal data in prompts: redacted before the store, and never in a log line, even at debug level.
PERSONAL = {"email": "canary.person.6e1b@example.com", "card number": "4539 1488 0343 6467",
            "phone number": "+44 20 7946 0958"}
CONTEXT = {"contexts": [{"id": "kb-1", "text": "Backups are kept for 30 days.", "updated_at": "2026-11-01T00:00:00Z"}]}


def question(marker: str, **fields) -> dict:
    return {"model": "sim-large", "messages": [{"role": "user", "content": f"How long are backups kept? {marker}"}],
            "shadowtap": CONTEXT, **fields}


def find_canaries(data: bytes, canaries: dict[str, str] = CANARIES) -> list[str]:
    return [name for name, canary in canaries.items() if canary.encode() in data]


def leaks_in(places: dict[str, bytes]) -> list[str]:
    """Every canary found, with what surrounds it, so one run shows all leaks and where they come from."""
    found = []
    every = {f"{name} key": canary for name, canary in CANARIES.items()} | PASSED_THROUGH | PERSONAL
    for label, data in places.items():
        for name in find_canaries(data, every):
            at = data.index(every[name].encode())
            found.append(f"{name} in {label}: ...{data[max(0, at - 200):at + 60]!r}...")
    return found


@dataclass
class Flow:
    """What the whole flow left behind: every place a key could have been written, and what each model saw."""

    places: dict[str, bytes] = field(default_factory=dict)    # label -> bytes
    tool_output: dict[str, bytes] = field(default_factory=dict)  # `shadowtap` command -> stdout + stderr
    seen_by: dict[str, list[dict]] = field(default_factory=dict)  # key name -> the requests its model received


def drive_traffic(base_url: str) -> list[str]:
    """Buffered and streamed answers, primary errors, a malformed body: every path a key could take."""
    ids = []
    personal = "Reach me at {email}, card {card number}, phone {phone number}.".format(**PERSONAL)
    with httpx.Client(base_url=base_url, timeout=30, params={"key": PASSED_THROUGH["query key"]},
                      headers={"authorization": f"Bearer {CANARIES['client']}",
                               "x-client-credential": PASSED_THROUGH["credential header"]}) as client:
        for index in range(4):
            response = client.post("/chat/completions", json=question(f"q{index} {personal}", stream=index % 2 == 1))
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-shadowtap-exchange-id"])
        for status in ("401", "429", "500"):
            response = client.post("/chat/completions", json=question(f"error {status}"),
                                   headers={"x-sim-status": status})
            assert response.status_code == int(status)
            ids.append(response.headers["x-shadowtap-exchange-id"])
        response = client.post("/chat/completions", content=b'{"broken": ',
                               headers={"content-type": "application/json"})
        ids.append(response.headers["x-shadowtap-exchange-id"])
    refused = httpx.post(f"{base_url}/chat/completions", json=question("no key"), timeout=30,
                         params={"key": PASSED_THROUGH["query key"]})
    assert refused.status_code == 401  # without the client key: refused before the primary
    return ids


def shadowtap(env: dict, *args: str) -> bytes:
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", *args], capture_output=True, env=env,
                            timeout=240)
    assert result.returncode in (0, 1), (args, result.stderr.decode(errors="replace")[-2000:])
    return result.stdout + result.stderr


def run_offline_tools(flow: Flow, env: dict, config: str, store, ids: list[str], outdir) -> None:
    """eval (with judge calls), replay, report and the exports, as an operator's shell would run them."""
    cli_env = {**os.environ, **env}
    tools = flow.tool_output
    tools["eval"] = shadowtap(cli_env, "eval", "--config", config, "--evaluator", "faithfulness",
                              "--evaluator", "grounding", "--evaluator", "agreement")
    tools["replay run"] = shadowtap(cli_env, "replay", "run", "--config", config, "--target", "candidate:a",
                                    "--id", ids[0], "--id", ids[1])
    run_id = tools["replay run"].decode().splitlines()[0].strip()
    bundle, html, export = outdir / "bundle.json", outdir / "report.html", outdir / "captures.jsonl"
    tools["replay export"] = shadowtap(cli_env, "replay", "export", "--config", config, "--run", run_id,
                                       "--id", ids[0], "-o", str(bundle))
    tools["replay show"] = shadowtap(cli_env, "replay", "show", "--config", config, run_id, "--json")
    tools["report"] = shadowtap(cli_env, "report", "--config", config, "--json", "--html", str(html))
    tools["captures export"] = shadowtap(cli_env, "captures", "export", "--store", str(store), "-o", str(export))
    for path in (bundle, html, export):
        assert path.stat().st_size > 0, f"{path.name} is empty, so it proves nothing"
        flow.places[path.name] = path.read_bytes()


@pytest.fixture(scope="module")
def flow(simulator, tmp_path_factory) -> Flow:
    env = {KEY_ENV[name]: canary for name, canary in CANARIES.items()}
    workdir = tmp_path_factory.mktemp("canaries")
    result = Flow()
    with contextlib.ExitStack() as stack:
        quoting = stack.enter_context(FakeCandidate("quote_request"))   # its 400 quotes the request back
        answering = stack.enter_context(FakeCandidate("ok"))
        judge = stack.enter_context(FakeCandidate("quote_request"))     # so do the judge's errors
        extra = (f'[server]\nclient_keys_env = "{KEY_ENV["client"]}"\nlog_level = "debug"\naccess_log = true\n'
                 f'[primary]\napi_key_env = "{KEY_ENV["primary"]}"\n'
                 f'[judge]\nmodel = "openai/judge-model"\napi_base = "{judge.base_url}"\n'
                 f'api_key_env = "{KEY_ENV["judge"]}"\nallow_private_network = true\ntimeout_s = 10.0\n'
                 f'[[candidates]]\nname = "a"\nmodel = "openai/model-a"\napi_base = "{quoting.base_url}"\n'
                 f'api_key_env = "{KEY_ENV["candidate_a"]}"\n'
                 f'[[candidates]]\nname = "b"\nmodel = "openai/model-b"\napi_base = "{answering.base_url}"\n'
                 f'api_key_env = "{KEY_ENV["candidate_b"]}"\n')
        proxy = start_proxy(workdir / "proxy", simulator.base_url, extra_config=extra, env=env)
        stack.callback(proxy.stop)
        simulator.clear()
        ids = drive_traffic(proxy.base_url)
        wait_for_rows(proxy.store_path, len(ids), timeout_s=30)
        first = shadows_of(proxy.store_path, ids[0], 2)
        assert first["a"]["outcome"] == "error" and "invalid request" in first["a"]["error_message"]
        assert first["b"]["outcome"] == "ok"
        for exchange_id in ids[1:]:
            shadows_of(proxy.store_path, exchange_id, 2)
        result.seen_by["primary"] = [r for r in simulator.recorded() if r["path"] == "/v1/chat/completions"]
        assert len(result.seen_by["primary"]) == len(ids)

        # While the proxy runs, the newest rows are in the -wal; the admin endpoints are live.
        store = proxy.store_path
        for suffix in ("-wal", "-shm"):
            result.places[f"the store's {suffix} while running"] = store.with_name(store.name + suffix).read_bytes()
        assert result.places["the store's -wal while running"], "an empty -wal proves nothing"
        result.places["/metrics"] = httpx.get(f"{proxy.url}/metrics").content
        result.places["/healthz"] = httpx.get(f"{proxy.url}/healthz").content

        run_offline_tools(result, env, str(proxy.workdir / "shadowtap.toml"), store, ids, workdir)
        assert judge.requests, "the judge was never called, so its key was never at risk"
        result.places["/metrics after the offline tools"] = httpx.get(f"{proxy.url}/metrics").content
        assert proxy.stop() == 0
        for path in proxy.workdir.iterdir():  # store, -wal, -shm, log file, stderr, config
            result.places[path.name] = path.read_bytes()
        result.seen_by |= {"candidate_a": quoting.requests, "candidate_b": answering.requests, "judge": judge.requests}
    return result


@pytest.mark.timeout(420)
def test_no_key_appears_in_the_store_wal_logs_metrics_health_reports_or_exports(flow):
    assert "proxy.log" in flow.places and "stderr.log" in flow.places and "captures.db" in flow.places
    outputs = {f"`shadowtap {name}` output": data for name, data in flow.tool_output.items() if name != "eval"}
    assert leaks_in(flow.places | outputs) == []


@pytest.mark.timeout(420)
@pytest.mark.parametrize("model", ["primary", "candidate_a", "candidate_b", "judge"])
def test_each_model_receives_its_own_key_and_no_other(flow, model):
    requests = flow.seen_by[model]
    assert requests, f"{model} was never called"
    for request in requests:
        assert request["headers"]["authorization"] == f"Bearer {CANARIES[model]}"
        assert find_canaries(orjson.dumps(request)) == [model]


@pytest.mark.timeout(420)
def test_candidates_and_the_judge_never_receive_the_clients_query_key_or_credential_header(flow):
    # The primary gets both as sent (the query is checked in tests/live/test_secrets.py).
    assert all(request["headers"]["x-client-credential"] == PASSED_THROUGH["credential header"]
               for request in flow.seen_by["primary"])
    for model in ("candidate_a", "candidate_b", "judge"):
        assert flow.seen_by[model], f"{model} was never called"
        for request in flow.seen_by[model]:
            assert find_canaries(orjson.dumps(request), PASSED_THROUGH) == []


@pytest.mark.timeout(420)
def test_the_access_log_shows_each_request_with_its_query_key_replaced(flow):
    log = flow.places["proxy.log"].decode()
    # Eight requests with the client's key, and the one refused without it.
    assert log.count("POST /v1/chat/completions?key=[secret] HTTP/1.1") == 9


@pytest.mark.timeout(420)
def test_eval_output_never_shows_the_judge_key_even_when_the_judge_quotes_the_request(flow):
    assert leaks_in({"`shadowtap eval` output": flow.tool_output["eval"]}) == []
