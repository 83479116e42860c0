"""verbosity, refusal, latency_delta and cost_delta: candidate against primary, from captured figures."""

from __future__ import annotations

import asyncio
import json

import pytest

from shadowtap.evaluators.base import PRIMARY, Answer, EvalItem, NotApplicable, Score
from shadowtap.evaluators.deltas import CostDeltaEvaluator, LatencyDeltaEvaluator
from shadowtap.evaluators.refusal import RefusalEvaluator
from shadowtap.evaluators.verbosity import VerbosityEvaluator


def answer(text: str | None = "An answer.", *, source: str = "cand-a", **fields) -> Answer:
    fields.setdefault("status", 200)
    return Answer(source=source, text=text, **fields)


def primary_answer(text: str | None = "An answer.", **fields) -> Answer:
    return answer(text, source=PRIMARY, **fields)


def eval_item(candidate: Answer, primary: Answer, *, exchange: dict | None = None) -> EvalItem:
    row = {"id": "x", "started_at": "2025-01-01T00:00:00+00:00", "endpoint": "chat.completions", **(exchange or {})}
    return EvalItem(exchange=row, request={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                    contexts=[], answer=candidate, primary=primary)


def run(evaluator, item: EvalItem) -> Score | NotApplicable:
    return asyncio.run(evaluator.score(item))


# verbosity

def test_verbosity_scores_min_over_max_when_candidate_is_longer():
    item = eval_item(answer("one two three four five six"), primary_answer("one two three"))
    result = run(VerbosityEvaluator(), item)
    assert result.value == pytest.approx(0.5)
    assert result.details["ratio"] == pytest.approx(2.0)
    assert result.label == "longer"


def test_verbosity_is_shorter_when_candidate_has_under_80_percent_of_the_words():
    result = run(VerbosityEvaluator(), eval_item(answer("a b c d e f g"), primary_answer("a b c d e f g h i j")))
    assert result.label == "shorter"
    assert result.value == pytest.approx(0.7)


@pytest.mark.parametrize("words,label", [(8, "similar"), (12, "similar"), (13, "longer"), (7, "shorter")])
def test_verbosity_label_uses_twenty_percent_band_when_lengths_are_close(words, label):
    result = run(VerbosityEvaluator(), eval_item(answer(" ".join(["w"] * words)), primary_answer(" ".join(["w"] * 10))))
    assert result.label == label


def test_verbosity_counts_tool_call_arguments_when_answer_has_no_text():
    calls = [{"id": "c", "type": "function", "function": {"name": "search", "arguments": '{"query": "red shoes"}'}}]
    item = eval_item(answer(None, tool_calls=calls), primary_answer("search query red shoes"))
    result = run(VerbosityEvaluator(), item)
    assert result.details["candidate_words"] == 4
    assert result.value == 1.0


def test_verbosity_not_applicable_when_scoring_the_primary():
    primary = primary_answer("Hello there.")
    assert isinstance(run(VerbosityEvaluator(), eval_item(primary, primary)), NotApplicable)


# refusal

@pytest.mark.parametrize("text", [
    "I can't help with that request.",
    "I\u2019m sorry, but I cannot provide instructions for that.",
    "As an AI language model, I do not have personal opinions.",
    "Sorry, I'm unable to assist with this.",
    "I must respectfully decline.",
    "That request goes against my guidelines.",
])
def test_refusal_detected_when_text_uses_a_refusal_phrase(text):
    result = run(RefusalEvaluator(), eval_item(answer(text), primary_answer("Paris is the capital of France.")))
    assert result.label == "refused_where_primary_answered"
    assert result.value == 0.0
    assert result.details["signal"].startswith("phrase:")


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "I cannot stress enough how lovely Paris is in spring.",
    "Sorry for the delay! The answer is 42.",
])
def test_refusal_not_detected_when_text_answers(text):
    result = run(RefusalEvaluator(), eval_item(answer(text), primary_answer("The answer.")))
    assert result.label == "both_answered"
    assert result.value == 1.0


def test_refusal_detected_when_finish_reason_is_content_filter():
    result = run(RefusalEvaluator(), eval_item(answer("", finish_reason="content_filter"), primary_answer("Fine.")))
    assert result.label == "refused_where_primary_answered"


def test_primary_refusal_detected_when_response_carries_refusal_field():
    body = {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": None, "refusal": "No can do."}}]}
    primary = primary_answer(None, finish_reason="stop")
    result = run(RefusalEvaluator(), eval_item(primary, primary, exchange={"response_json": json.dumps(body)}))
    assert result.label == "refused"
    assert result.value == 0.0
    assert result.details["signal"] == "refusal field"


def test_primary_scores_answered_when_it_answers():
    primary = primary_answer("Paris.")
    result = run(RefusalEvaluator(), eval_item(primary, primary))
    assert (result.label, result.value) == ("answered", 1.0)


def test_refusal_scores_both_refused_when_both_decline():
    result = run(RefusalEvaluator(), eval_item(answer("I can't help with that."),
                                               primary_answer("I'm sorry, but I cannot help with that.")))
    assert (result.label, result.value) == ("both_refused", 1.0)


def test_refusal_scores_half_and_flags_when_candidate_answers_what_primary_refused():
    result = run(RefusalEvaluator(), eval_item(answer("Here is how to pick that lock: ..."),
                                               primary_answer("I can't help with that.")))
    assert (result.label, result.value) == ("answered_where_primary_refused", 0.5)
    assert "primary refused" in result.details["note"]


def test_tool_calls_count_as_answered_when_text_is_empty():
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    result = run(RefusalEvaluator(), eval_item(answer(None, tool_calls=calls), primary_answer("Done.")))
    assert result.label == "both_answered"


def test_refusal_not_applicable_when_candidate_failed():
    assert isinstance(run(RefusalEvaluator(), eval_item(answer(None, status=502), primary_answer())), NotApplicable)


# latency and cost deltas

def test_latency_scores_one_when_candidate_is_faster():
    result = run(LatencyDeltaEvaluator(), eval_item(answer(latency_ms=300.0), primary_answer(latency_ms=400.0)))
    assert result.value == 1.0
    assert result.label == "faster"
    assert result.details["ratio"] == pytest.approx(0.75)
    assert result.details["delta_ms"] == pytest.approx(-100.0)


def test_latency_scores_primary_over_candidate_when_candidate_is_slower():
    result = run(LatencyDeltaEvaluator(), eval_item(answer(latency_ms=800.0), primary_answer(latency_ms=200.0)))
    assert result.value == pytest.approx(0.25)
    assert result.label == "slower"
    assert result.details["ratio"] == pytest.approx(4.0)
    assert result.details["delta_ms"] == pytest.approx(600.0)


def test_latency_details_include_ttft_when_both_have_it():
    result = run(LatencyDeltaEvaluator(), eval_item(answer(latency_ms=500.0, ttft_ms=100.0),
                                                    primary_answer(latency_ms=500.0, ttft_ms=50.0)))
    assert result.label == "similar"
    assert result.details["ttft_ratio"] == pytest.approx(2.0)
    assert result.details["ttft_delta_ms"] == pytest.approx(50.0)
    assert result.details["ttft_score"] == pytest.approx(0.5)


def test_latency_details_omit_ttft_when_one_side_lacks_it():
    result = run(LatencyDeltaEvaluator(), eval_item(answer(latency_ms=500.0, ttft_ms=100.0),
                                                    primary_answer(latency_ms=500.0)))
    assert "ttft_ratio" not in result.details


def test_cost_scores_primary_over_candidate_when_candidate_costs_more():
    result = run(CostDeltaEvaluator(), eval_item(answer(cost_usd=0.003), primary_answer(cost_usd=0.001)))
    assert result.value == pytest.approx(1 / 3, abs=1e-6)
    assert result.label == "costlier"
    assert result.details["delta_usd"] == pytest.approx(0.002)


def test_cost_scores_zero_when_primary_was_free_and_candidate_is_not():
    result = run(CostDeltaEvaluator(), eval_item(answer(cost_usd=0.01), primary_answer(cost_usd=0.0)))
    assert result.value == 0.0
    assert result.details["ratio"] is None


def test_cost_scores_one_when_candidate_is_cheaper():
    result = run(CostDeltaEvaluator(), eval_item(answer(cost_usd=0.0005), primary_answer(cost_usd=0.002)))
    assert (result.value, result.label) == (1.0, "cheaper")


@pytest.mark.parametrize("evaluator,field", [(LatencyDeltaEvaluator(), "latency_ms"),
                                             (CostDeltaEvaluator(), "cost_usd")])
def test_deltas_not_applicable_when_a_figure_is_missing(evaluator, field):
    item = eval_item(answer(**{field: None}), primary_answer(**{field: 1.0}))
    assert not evaluator.applies(item)
    assert isinstance(run(evaluator, item), NotApplicable)


@pytest.mark.parametrize("evaluator", [LatencyDeltaEvaluator(), CostDeltaEvaluator()])
def test_deltas_not_applicable_when_scoring_the_primary(evaluator):
    primary = primary_answer(latency_ms=1.0, cost_usd=1.0)
    assert isinstance(run(evaluator, eval_item(primary, primary)), NotApplicable)


# the contract, for every LLM-free evaluator in this change

@pytest.mark.parametrize("cls,name,version", [
    ("shadowtap.evaluators.grounding:GroundingEvaluator", "grounding", "1"),
    ("shadowtap.evaluators.agreement:AgreementEvaluator", "agreement", "2"),   # 2: prose counts what is added
    ("shadowtap.evaluators.verbosity:VerbosityEvaluator", "verbosity", "1"),
    ("shadowtap.evaluators.refusal:RefusalEvaluator", "refusal", "1"),
    ("shadowtap.evaluators.deltas:LatencyDeltaEvaluator", "latency_delta", "1"),
    ("shadowtap.evaluators.deltas:CostDeltaEvaluator", "cost_delta", "1"),
])
def test_evaluator_builds_from_default_config_when_named_in_registry_form(cls, name, version, tmp_path):
    import importlib

    from shadowtap.core.config import ShadowtapConfig
    from shadowtap.evaluators.base import Evaluator

    module, _, attribute = cls.partition(":")
    evaluator_class = getattr(importlib.import_module(module), attribute)
    evaluator = evaluator_class.from_config(ShadowtapConfig(), config_dir=tmp_path)
    assert isinstance(evaluator, Evaluator)
    assert (evaluator.name, evaluator.needs_judge, evaluator.version) == (name, False, version)
