"""faithfulness: the real ragas Faithfulness pipeline against a judge faked at the HTTP level."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import traceback
from pathlib import Path

import httpx
import pytest

from shadowtap.core.config import JudgeConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.base import Answer, ContextItem, EvalItem, NotApplicable, Score
from shadowtap.evaluators.faithfulness import FaithfulnessEvaluator
from shadowtap.evaluators.judge import (
    JudgeBudgetExceeded,
    JudgeClient,
    JudgeReplyInvalid,
    JudgeUnavailable,
    strip_json_fence,
)
from tests.support.judge_fakes import FakeJudge

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-judge-secret-0123456789"
CONTEXT = "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall."
STATEMENTS = ["The Eiffel Tower is in Paris.", "The Eiffel Tower was completed in 1889.",
              "The Eiffel Tower is made of gold."]


def eval_item(*, answer: str | None = "The Eiffel Tower, in Paris, was finished in 1889 and is made of gold.",
              contexts: list[str] | None = None) -> EvalItem:
    primary = Answer(source="primary", text=answer)
    return EvalItem(exchange={"id": "ex1"},
                    request={"messages": [{"role": "user", "content": "Tell me about the Eiffel Tower."}]},
                    contexts=[ContextItem(text=text) for text in ([CONTEXT] if contexts is None else contexts)],
                    answer=primary, primary=primary)


def judge_client(fake: FakeJudge, **overrides) -> JudgeClient:
    settings = {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1", "api_key_env": "JUDGE_KEY",
                "allow_private_network": True, **overrides}
    return JudgeClient(JudgeConfig(**settings), transport=fake.transport, environ={"JUDGE_KEY": API_KEY},
                       http_retries=0)


def score(evaluator: FaithfulnessEvaluator, *items: EvalItem) -> list[Score | NotApplicable | Exception]:
    """Score the items one after another; an exception is kept as that item's result, as the runner does."""
    async def run_each():
        results = []
        for item in items:
            try:
                results.append(await evaluator.score(item))
            except Exception as exc:
                results.append(exc)
        await evaluator.aclose()
        return results

    return asyncio.run(run_each())


@pytest.fixture
def fake_judge() -> FakeJudge:
    return FakeJudge(statements=STATEMENTS, verdicts=[1, 1, 0])


def test_score_is_the_share_of_supported_claims_when_the_judge_supports_two_of_three(fake_judge):
    [result] = score(FaithfulnessEvaluator(judge_client(fake_judge)), eval_item())

    assert isinstance(result, Score)
    assert result.value == pytest.approx(2 / 3)
    assert result.label == "partially_faithful"
    assert result.details["claims"] == [
        {"claim": STATEMENTS[0], "verdict": "supported", "reason": "stated in the context"},
        {"claim": STATEMENTS[1], "verdict": "supported", "reason": "stated in the context"},
        {"claim": STATEMENTS[2], "verdict": "unsupported", "reason": "not in the context"},
    ]
    assert (result.details["supported"], result.details["total"]) == (2, 3)
    judge = result.details["judge"]
    assert (judge["calls"], judge["prompt_tokens"], judge["completion_tokens"]) == (2, 2000, 400)
    assert judge["cost_usd"] > 0


def test_the_judge_is_asked_for_claims_then_verdicts_when_an_answer_is_scored(fake_judge):
    score(FaithfulnessEvaluator(judge_client(fake_judge)), eval_item())

    first, second = fake_judge.requests
    assert first["model"] == "gpt-4o-mini" and first["response_format"] == {"type": "json_object"}
    assert "StatementGeneratorOutput" in first["messages"][0]["content"]
    assert "Tell me about the Eiffel Tower." in first["messages"][-1]["content"]
    assert "NLIStatementOutput" in second["messages"][0]["content"]
    assert CONTEXT in second["messages"][-1]["content"]
    assert all(statement in second["messages"][-1]["content"] for statement in STATEMENTS)
    assert all(headers["authorization"] == f"Bearer {API_KEY}" for headers in fake_judge.headers)


def test_label_is_faithful_when_every_claim_is_supported():
    fake = FakeJudge(statements=STATEMENTS[:2], verdicts=[1, 1])
    [result] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())
    assert (result.value, result.label) == (1.0, "faithful")


def test_label_is_unfaithful_when_most_claims_are_unsupported():
    fake = FakeJudge(statements=STATEMENTS, verdicts=[1, 0, 0])
    [result] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())
    assert result.value == pytest.approx(1 / 3)
    assert result.label == "unfaithful"


def test_fenced_replies_are_scored_when_the_judge_wraps_its_json_in_a_code_fence():
    fake = FakeJudge(statements=STATEMENTS, verdicts=[1, 1, 0], fence=True)
    [result] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())
    assert isinstance(result, Score)
    assert result.value == pytest.approx(2 / 3)
    assert len(fake.requests) == 2


def test_a_clear_error_without_the_api_key_is_raised_when_the_judge_answers_500():
    fake = FakeJudge(status=500)
    [error] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())

    assert isinstance(error, JudgeUnavailable)
    assert "HTTP 500" in str(error) and "gpt-4o-mini" in str(error)
    assert API_KEY not in "".join(traceback.format_exception(error))
    assert len(fake.requests) == 1


def test_a_clear_error_is_raised_when_the_judge_reply_is_not_json():
    fake = FakeJudge(statements=STATEMENTS, verdicts=[1, 1, 0], verdict_reply="I think they are mostly fine.")
    [error] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())

    assert isinstance(error, JudgeReplyInvalid)
    assert "NLIStatementOutput" in str(error) and "I think they are mostly fine." in str(error)
    assert len(fake.requests) == 2   # no paid re-ask


def test_a_clear_error_is_raised_when_the_judge_gives_no_verdicts():
    fake = FakeJudge(statements=STATEMENTS, verdicts=[1, 1, 0], verdict_reply='{"statements": []}')
    [error] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item())
    assert isinstance(error, JudgeReplyInvalid)
    assert "no verdicts" in str(error)


def test_not_applicable_when_the_judge_finds_no_claims():
    fake = FakeJudge(statements=[], verdicts=[])
    [result] = score(FaithfulnessEvaluator(judge_client(fake)), eval_item(answer="Hello!"))
    assert isinstance(result, NotApplicable)
    assert len(fake.requests) == 1


def test_no_more_judge_calls_are_made_when_the_budget_is_spent(fake_judge):
    # gpt-4o-mini: 2 calls x (1000 in + 200 out) cost about $0.00054 per item.
    evaluator = FaithfulnessEvaluator(judge_client(fake_judge, budget_usd=0.0005))
    first, second, third = score(evaluator, eval_item(), eval_item(), eval_item())

    assert isinstance(first, Score)
    assert isinstance(second, JudgeBudgetExceeded) and isinstance(third, JudgeBudgetExceeded)
    assert "budget_usd = 0.0005" in str(second)
    assert len(fake_judge.requests) == 2
    assert evaluator.judge.budget.spent_usd == pytest.approx(2 * (1000 * 0.15e-6 + 200 * 0.6e-6))


def test_judge_calls_wait_for_each_other_when_max_concurrency_is_one(fake_judge):
    in_flight, most = 0, 0

    async def slow_judge(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return fake_judge.handle(request)

    judge = JudgeClient(JudgeConfig(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9/v1",
                                    allow_private_network=True, max_concurrency=1),
                        transport=httpx.MockTransport(slow_judge), environ={}, http_retries=0)
    evaluator = FaithfulnessEvaluator(judge)

    async def run():
        results = await asyncio.gather(*(evaluator.score(eval_item()) for _ in range(4)))
        await judge.aclose()
        return results

    results = asyncio.run(run())
    assert all(isinstance(result, Score) for result in results)
    assert (most, len(fake_judge.requests)) == (1, 8)


def test_a_judge_on_a_private_address_is_refused_when_allow_private_network_is_false(fake_judge):
    [error] = score(FaithfulnessEvaluator(judge_client(fake_judge, allow_private_network=False)), eval_item())
    assert isinstance(error, ConfigError)
    assert "allow_private_network" in str(error)
    assert fake_judge.requests == []


def test_a_missing_key_variable_is_a_config_error_when_api_key_env_names_an_unset_variable():
    with pytest.raises(ConfigError, match="JUDGE_KEY"):
        JudgeClient(JudgeConfig(model="openai/gpt-4o-mini", api_key_env="JUDGE_KEY"), environ={})


@pytest.mark.e2e
def test_the_litellm_route_scores_over_loopback_when_the_model_has_another_provider():
    fake = FakeJudge(statements=STATEMENTS, verdicts=[1, 0, 0], fence=True)
    with fake.serve() as base_url:
        judge = JudgeClient(JudgeConfig(model="hosted_vllm/judge-model", api_base=base_url,
                                        allow_private_network=True), environ={}, http_retries=0)
        [result] = score(FaithfulnessEvaluator(judge), eval_item())

    assert isinstance(result, Score), result
    assert result.value == pytest.approx(1 / 3)
    assert [request["model"] for request in fake.requests] == ["judge-model", "judge-model"]
    assert result.details["judge"]["calls"] == 2


def test_not_applicable_when_the_item_has_no_contexts(fake_judge):
    evaluator = FaithfulnessEvaluator(judge_client(fake_judge))
    item = eval_item(contexts=[])
    assert evaluator.applies(item) is False
    assert isinstance(score(evaluator, item)[0], NotApplicable)
    assert fake_judge.requests == []


def test_not_applicable_when_the_answer_has_no_text(fake_judge):
    evaluator = FaithfulnessEvaluator(judge_client(fake_judge))
    assert evaluator.applies(eval_item(answer=None)) is False
    assert evaluator.applies(eval_item(answer="  ")) is False
    assert evaluator.applies(eval_item()) is True


def test_not_applicable_when_no_judge_is_configured(tmp_path):
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}})
    evaluator = FaithfulnessEvaluator.from_config(config, config_dir=tmp_path)

    assert evaluator.applies(eval_item()) is False
    result = asyncio.run(evaluator.score(eval_item()))
    assert isinstance(result, NotApplicable) and "no judge" in result.reason
    assert evaluator.estimate_cost_usd(eval_item()) is None


def test_cost_estimate_grows_with_the_contexts_when_the_judge_model_is_priced(fake_judge):
    evaluator = FaithfulnessEvaluator(judge_client(fake_judge))
    small = evaluator.estimate_cost_usd(eval_item())
    large = evaluator.estimate_cost_usd(eval_item(contexts=[CONTEXT * 100]))
    assert 0 < small < large < 0.01
    assert FaithfulnessEvaluator.judge_calls_per_item == 2


def test_cost_estimate_is_none_when_the_judge_model_has_no_price(fake_judge):
    evaluator = FaithfulnessEvaluator(judge_client(fake_judge, model="openai/my-local-llama"))
    assert evaluator.estimate_cost_usd(eval_item()) is None


@pytest.mark.parametrize("reply, expected", [
    ('{"a": 1}', '{"a": 1}'),
    ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ('```\n{"a": 1}\n```', '{"a": 1}'),
    ('Sure! Here it is:\n```json\n{"a": 1}\n```\nAnything else?', '{"a": 1}'),
    ("no json here", "no json here"),
])
def test_fences_are_stripped_when_a_reply_wraps_json_in_one(reply, expected):
    assert strip_json_fence(reply) == expected


def test_importing_faithfulness_does_not_import_ragas_when_the_registry_lists_evaluators(tmp_path):
    script = f"""
import sys
from shadowtap.evaluators import registry
from shadowtap.evaluators.faithfulness import FaithfulnessEvaluator
from shadowtap.core.config import config_from_dict
config = config_from_dict({{"primary": {{"base_url": "http://127.0.0.1:9/v1"}},
                            "judge": {{"model": "openai/gpt-4o-mini", "api_key_env": "JUDGE_KEY"}}}})
evaluator = FaithfulnessEvaluator.from_config(config, config_dir=__import__("pathlib").Path({str(tmp_path)!r}))
loaded = sorted(name for name in ("ragas", "litellm", "instructor", "openai", "langchain_core")
                if name in sys.modules)
print(",".join(loaded) or "none")
"""
    env = {"PATH": "/usr/bin:/bin", "JUDGE_KEY": "k", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


@pytest.mark.e2e
def test_ragas_telemetry_is_off_when_an_item_is_scored_without_the_variable_set():
    script = """
import asyncio, os, sys
assert "RAGAS_DO_NOT_TRACK" not in os.environ
from tests.evaluators.test_eval_faithfulness import (FakeJudge, FaithfulnessEvaluator, STATEMENTS,
    eval_item, judge_client)
evaluator = FaithfulnessEvaluator(judge_client(FakeJudge(statements=STATEMENTS, verdicts=[1, 1, 0])))
result = asyncio.run(evaluator.score(eval_item()))
from ragas._analytics import do_not_track
print(round(result.value, 4), do_not_track())
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.6667", "True"]


def test_a_clear_error_is_raised_when_the_judge_times_out(fake_judge):
    def never_answers(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    judge = JudgeClient(JudgeConfig(model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9/v1",
                                    allow_private_network=True, timeout_s=2.5),
                        transport=httpx.MockTransport(never_answers), environ={}, http_retries=0)
    [error] = score(FaithfulnessEvaluator(judge), eval_item())
    assert isinstance(error, JudgeUnavailable)
    assert "did not answer within 2.5s" in str(error)


def test_a_failing_judge_is_recorded_as_faithfulness_errors_while_the_run_scores_the_rest(tmp_path):
    from shadowtap.core.config import ContextsConfig
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.score_store import ScoreStore
    from shadowtap.evaluators.grounding import GroundingEvaluator
    from shadowtap.evaluators.runner import EvalRunner, EvalSelection
    from tests.support.eval_support import add_exchanges

    store = CaptureStore.open(tmp_path / "s.db")
    request = {"model": "m", "messages": [{"role": "user", "content": "Tell me about the Eiffel Tower."}],
               "shadowtap": {"contexts": [{"text": CONTEXT}]}}
    response = {"choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "It is in Paris and was built in 1889."}}]}
    add_exchanges(store, 3, request=request, response=response)
    failing_judge = FaithfulnessEvaluator(judge_client(FakeJudge(status=500)))
    runner = EvalRunner(ScoreStore(store), [failing_judge, GroundingEvaluator()], contexts=ContextsConfig())
    asyncio.run(runner.run(EvalSelection()))
    rows = ScoreStore(store).scores()
    faithfulness = [row for row in rows if row["evaluator"] == "faithfulness"]
    grounding = [row for row in rows if row["evaluator"] == "grounding"]
    assert [row["outcome"] for row in faithfulness] == ["error"] * 3
    assert all("JudgeUnavailable" in row["error"] and API_KEY not in row["error"] for row in faithfulness)
    assert [row["outcome"] for row in grounding] == ["score"] * 3
    store.close()
