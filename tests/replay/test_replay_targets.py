"""What a replay sends, to whom, with which key, within which budget, and how `--pass contract` judges it."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from shadowtap.core.store.replay_store import ReplayStore
from tests.support.replay_support import (
    ScriptedModel,
    StoreBuilder,
    chat,
    cli_run,
    last_user,
    litellm_price,
    replay,
    show,
)

AMBIENT_KEY = "sk-ambient-openai-key-in-the-environment"
PRIMARY_KEY, CANDIDATE_KEY = "sk-primary-key-for-the-proxy", "sk-candidate-own-key"


def at(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00.000000+00:00"


@pytest.fixture
def builder(tmp_path):
    return StoreBuilder(tmp_path / "s.db")


def write_config(tmp_path, candidate_base: str) -> str:
    path = tmp_path / "shadowtap.toml"
    path.write_text(f"""
[primary]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "REPLAY_TEST_PRIMARY_KEY"

[store]
path = "{tmp_path / 's.db'}"

[[candidates]]
name = "small"
model = "openai/small-model"
api_base = "{candidate_base}"
api_key_env = "REPLAY_TEST_CANDIDATE_KEY"
""")
    return str(path)


# -- variants --------------------------------------------------------------------------------------

def test_system_prompt_and_param_patches_reach_the_target_exactly(builder):
    captured = chat("What time is it?", system="Be brief.", max_tokens=50, seed=7, temperature=1.0, user="u1")
    builder.exchange("ex-1", at(1), captured)
    with ScriptedModel(lambda body: "captured answer") as target:
        run_id = replay("run", "--store", str(builder.path), "--target", "model:openai/patched", "--api-base",
                        target.base_url, "--system-prompt", "You are terse.", "--param", "temperature=0.3",
                        "--param", 'stop=["\\n"]')
        [sent] = target.requests
    assert sent["body"] == {
        "model": "patched",
        "messages": [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "What time is it?"}],
        "max_tokens": 50, "seed": 7, "temperature": 0.3, "stop": ["\n"]}
    run = ReplayStore(builder.store).get_run(run_id)
    assert run["target"]["system_prompt"] == "You are terse."
    assert run["target"]["params"] == {"temperature": 0.3, "stop": ["\n"]}


def test_a_param_that_is_not_key_equals_value_is_a_usage_error(builder):
    builder.exchange("ex-1", at(1), chat("q"))
    result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/x", "--param",
                     "temperature", expect=2)
    assert "KEY=VALUE" in result.stderr


# -- candidate targets -----------------------------------------------------------------------------

def test_a_candidate_target_uses_its_own_api_base_model_and_key_never_another(builder, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAY_TEST_PRIMARY_KEY", PRIMARY_KEY)
    monkeypatch.setenv("REPLAY_TEST_CANDIDATE_KEY", CANDIDATE_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", AMBIENT_KEY)        # litellm would pick this up if handed no key
    for i in range(3):
        builder.exchange(f"ex-{i}", at(i), chat(f"q{i}"))
    with ScriptedModel(lambda body: "captured answer") as candidate:
        config = write_config(tmp_path, candidate.base_url)
        run_id = replay("run", "--config", config, "--target", "candidate:small")
        requests = candidate.requests
    assert len(requests) == 3
    assert {r["headers"]["authorization"] for r in requests} == {f"Bearer {CANDIDATE_KEY}"}
    assert {r["body"]["model"] for r in requests} == {"small-model"}
    everything_sent = orjson.dumps(requests).decode()
    assert PRIMARY_KEY not in everything_sent and AMBIENT_KEY not in everything_sent
    run = ReplayStore(builder.store).get_run(run_id)
    assert run["target"]["api_key_env"] == "REPLAY_TEST_CANDIDATE_KEY"
    assert CANDIDATE_KEY not in orjson.dumps(run).decode()        # the run names the variable, never the key


def test_an_unknown_candidate_is_a_usage_error_naming_the_configured_ones(builder, tmp_path):
    builder.exchange("ex-1", at(1), chat("q"))
    result = cli_run("replay", "run", "--config", write_config(tmp_path, "http://127.0.0.1:9/v1"), "--target",
                     "candidate:large", expect=2)
    assert "candidate:large" in result.stderr and "small" in result.stderr


@pytest.mark.parametrize("api_base", ["http://169.254.169.254/v1", "file:///etc/passwd", "http://[fe80::1]/v1"])
def test_an_api_base_on_the_command_line_is_checked_like_a_configured_one(builder, api_base):
    builder.exchange("ex-1", at(1), chat("q"))
    result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/m", "--api-base",
                     api_base, expect=2)
    assert "--api-base" in result.stderr and api_base in result.stderr


# -- budget ----------------------------------------------------------------------------------------

def test_a_run_stops_at_its_budget_keeps_its_results_and_resumes_only_with_more(builder):
    ids = [builder.exchange(f"ex-{i}", at(i), chat(f"q{i}")) for i in range(8)]
    input_rate, output_rate = litellm_price("gpt-4o-mini")
    per_call = 1_000 * input_rate + 1_000 * output_rate          # the fake answers with 1,000 + 1,000 tokens
    budget = 2.5 * per_call                                      # the third call crosses it
    store = ReplayStore(builder.store)
    with ScriptedModel(lambda body: "captured answer", usage=(1_000, 1_000)) as target:
        result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/gpt-4o-mini",
                         "--api-base", target.base_url, "--concurrency", "1", "--budget-usd", repr(budget))
        run_id = result.stdout.splitlines()[0]
        assert len(target.requests) == 3
        assert f"run {run_id} stopped at its budget" in result.stderr
        run = store.get_run(run_id)
        assert run["status"] == "over_budget" and run["selection"]["budget_usd"] == budget
        assert len(store.results(run_id)) == 3
        assert store.spent_usd(run_id) == pytest.approx(3 * per_call)
        assert show(builder.path, run_id)["run"]["status"] == "over_budget"

        refused = cli_run("replay", "resume", run_id, "--store", str(builder.path), expect=2)
        assert "higher --budget-usd" in refused.stderr and len(target.requests) == 3

        cli_run("replay", "resume", run_id, "--store", str(builder.path), "--concurrency", "1", "--budget-usd",
                repr(5.5 * per_call))
        assert len(target.requests) == 6 and store.get_run(run_id)["status"] == "over_budget"

        cli_run("replay", "resume", run_id, "--store", str(builder.path), "--budget-usd", "1")
        assert len(target.requests) == 8
        assert sorted(last_user(r["body"]) for r in target.requests) == sorted(f"q{i}" for i in range(8))
    assert store.get_run(run_id)["status"] == "complete"
    assert sorted(r["exchange_id"] for r in store.results(run_id)) == sorted(ids)


# -- --pass contract -------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def contract_request(i: int) -> dict:
    if i % 3 == 2:   # no output contract at all: the criterion does not apply
        return chat(f"question {i}")
    return chat(f"question {i}", response_format={"type": "json_schema",
                                                  "json_schema": {"name": "reply", "schema": SCHEMA}})


def contract_answer(body: dict) -> str:
    number = int(last_user(body).split()[-1])
    return orjson.dumps({"answer": "yes"} if number % 2 == 0 else {"answer": 1}).decode()


def test_pass_contract_judges_each_replayed_answer_against_its_requests_schema(builder):
    ids = [builder.exchange(f"ex-{i}", at(i), contract_request(i)) for i in range(9)]
    with ScriptedModel(contract_answer) as target:
        run_id = replay("run", "--store", str(builder.path), "--target", "model:openai/x", "--api-base",
                        target.base_url, "-k", "2", "--pass", "contract")
    expected = {}
    for i, exchange_id in enumerate(ids):
        request = contract_request(i)
        if "response_format" not in request:
            expected[exchange_id] = None
            continue
        answer = orjson.loads(contract_answer(request))
        expected[exchange_id] = jsonschema.Draft202012Validator(SCHEMA).is_valid(answer)
    assert set(expected.values()) == {True, False, None}          # the test can fail every way
    shown = show(builder.path, run_id)
    assert shown["run"]["pass"] == "contract"
    for figures in shown["exchanges"]:
        verdict = expected[figures["exchange_id"]]
        if verdict is None:
            assert figures["judged"] == 0 and figures["pass_at_k"] is None
        else:
            assert figures["judged"] == 2 and figures["passed"] == (2 if verdict else 0)
            assert figures["pass_at_k"] == (1.0 if verdict else 0.0)
    judged = [v for v in expected.values() if v is not None]
    assert shown["overall"]["pass_at_k"] == pytest.approx(sum(judged) / len(judged))


class QuotingModel(ScriptedModel):
    """A model that refuses every request with an error quoting the request back, as some providers do."""

    async def _respond(self, writer, stream: bool) -> bool:
        quoted = orjson.dumps(self.requests[-1]["body"]["messages"]).decode()
        payload = orjson.dumps({"error": {"message": f"invalid request: {quoted}", "type": "invalid_request_error"}})
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        return True


def test_a_failed_calls_error_text_is_redacted_like_an_answer_when_the_provider_quotes_the_request(builder):
    builder.exchange("ex-1", at(1), chat("Please write to jane.doe@example.com about it"))
    with QuotingModel(lambda body: "unused") as target:
        result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/x",
                         "--api-base", target.base_url, expect=1)
    run_id = result.stdout.splitlines()[0]
    [row] = ReplayStore(builder.store).results(run_id)
    assert "invalid request" in row["error"]
    assert "jane.doe@example.com" not in row["error"] and "[REDACTED:email]" in row["error"]
