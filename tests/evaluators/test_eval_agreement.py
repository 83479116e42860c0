"""agreement: candidate against primary for JSON fields, tool calls and prose; the primary's twin baseline."""

from __future__ import annotations

import asyncio
import json

import pytest

from shadowtap.evaluators.agreement import AgreementEvaluator
from shadowtap.evaluators.base import PRIMARY, PRIMARY_TWIN, Answer, EvalItem, NotApplicable, Score


def answer(text: str | None = None, *, source: str = "cand-a", tool_calls: list[dict] | None = None,
           status: int | None = 200) -> Answer:
    return Answer(source=source, text=text, tool_calls=tool_calls, status=status)


def eval_item(candidate: Answer, primary: Answer, twin: Answer | None = None) -> EvalItem:
    return EvalItem(exchange={"id": "x", "started_at": "2025-01-01T00:00:00+00:00", "endpoint": "chat.completions"},
                    request={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, contexts=[],
                    answer=candidate, primary=primary, twin=twin)


def agreement(item: EvalItem) -> Score | NotApplicable:
    return asyncio.run(AgreementEvaluator().score(item))


def call(name: str, arguments: dict | str, call_id: str = "call_1") -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


PRIMARY_JSON = '{"name": "Ada", "age": 36, "address": {"city": "London", "zip": "N1"}, "tags": ["a", "b"]}'


def test_json_answers_agree_when_fields_are_equal_in_a_different_order_and_fence():
    candidate = ('```json\n{"tags": ["a", "b"], "address": {"zip": "N1", "city": "London"}, '
                 '"age": 36.0, "name": "Ada"}\n```')
    result = agreement(eval_item(answer(candidate), answer(PRIMARY_JSON, source=PRIMARY)))
    assert result.details["method"] == "json"
    assert result.value == 1.0
    assert result.label == "agree"
    assert result.details["differing_paths"] == []


def test_json_score_is_share_of_equal_leaves_when_some_fields_differ():
    # union of leaf paths: name, age, address.city, address.zip, tags[0], tags[1], extra -> 7; equal: 4
    candidate = '{"name": "Ada", "age": 37, "address": {"city": "Paris", "zip": "N1"}, "tags": ["a", "b"], "extra": 1}'
    result = agreement(eval_item(answer(candidate), answer(PRIMARY_JSON, source=PRIMARY)))
    assert result.value == pytest.approx(4 / 7, abs=1e-6)
    assert result.label == "partial"
    assert sorted(result.details["differing_paths"]) == ["$.address.city", "$.age", "$.extra"]


def test_json_true_and_one_differ_when_compared_as_fields():
    result = agreement(eval_item(answer('{"ok": 1}'), answer('{"ok": true}', source=PRIMARY)))
    assert result.value == 0.0
    assert result.label == "disagree"


def test_tool_calls_agree_when_name_and_arguments_match():
    primary = answer(source=PRIMARY, tool_calls=[call("get_weather", {"city": "Paris", "unit": "c"})])
    candidate = answer(tool_calls=[call("get_weather", '{"unit": "c", "city": "Paris"}', call_id="other-id")])
    result = agreement(eval_item(candidate, primary))
    assert result.details["method"] == "tool_calls"
    assert result.value == 1.0


def test_tool_call_scores_half_plus_argument_share_when_arguments_differ():
    primary = answer(source=PRIMARY, tool_calls=[call("get_weather", {"city": "Paris", "unit": "c"})])
    candidate = answer(tool_calls=[call("get_weather", {"city": "Lyon", "unit": "c"})])
    result = agreement(eval_item(candidate, primary))
    assert result.value == pytest.approx(0.5 + 0.5 * 0.5)
    assert result.details["differing_paths"] == ["tool_calls[0].arguments.city"]


def test_tool_calls_disagree_when_names_differ():
    primary = answer(source=PRIMARY, tool_calls=[call("get_weather", {"city": "Paris"})])
    candidate = answer(tool_calls=[call("get_time", {"city": "Paris"})])
    result = agreement(eval_item(candidate, primary))
    assert result.value == 0.0
    assert result.label == "disagree"
    assert "tool_calls[0].name" in result.details["differing_paths"]


def test_tool_calls_pair_by_name_when_order_differs_and_one_is_missing():
    primary = answer(source=PRIMARY, tool_calls=[call("a", {"x": 1}), call("b", {"y": 2}), call("c", {})])
    candidate = answer(tool_calls=[call("b", {"y": 2}), call("a", {"x": 1})])
    result = agreement(eval_item(candidate, primary))
    assert result.value == pytest.approx(2 / 3)


def test_tool_calls_disagree_when_only_one_side_called_a_tool():
    primary = answer(source=PRIMARY, tool_calls=[call("get_weather", {"city": "Paris"})])
    result = agreement(eval_item(answer("It is sunny in Paris."), primary))
    assert result.value == 0.0
    assert result.details["method"] == "tool_calls"


def test_prose_agrees_when_only_case_punctuation_and_whitespace_differ():
    result = agreement(eval_item(answer("the capital of France is  Paris"),
                                 answer("The capital of France is Paris.", source=PRIMARY)))
    assert result.details["method"] == "text"
    assert result.value == 1.0


def test_prose_is_partial_when_answers_overlap_and_disagree_when_unrelated():
    primary = answer("The capital of France is Paris, a city on the Seine.", source=PRIMARY)
    reworded = agreement(eval_item(answer("Paris is the capital of France; it lies on the Seine."), primary))
    unrelated = agreement(eval_item(answer("Bananas are rich in potassium."), primary))
    assert reworded.label in {"partial", "agree"}
    assert 0.5 <= reworded.value < 1.0
    assert unrelated.label == "disagree"
    assert unrelated.value < 0.3


def test_primary_is_scored_against_twin_when_twin_exists():
    primary = answer("Paris is the capital of France.", source=PRIMARY)
    twin = answer("The capital of France is Paris.", source=PRIMARY_TWIN)
    result = agreement(eval_item(primary, primary, twin=twin))
    assert isinstance(result, Score)
    assert result.details["baseline"] == "primary_twin"
    assert result.details["against"] == PRIMARY_TWIN
    assert result.value > 0.7


def test_candidate_details_have_no_baseline_when_twin_exists():
    primary = answer("Paris.", source=PRIMARY)
    result = agreement(eval_item(answer("Paris."), primary, twin=answer("Paris.", source=PRIMARY_TWIN)))
    assert "baseline" not in result.details
    assert result.details["against"] == PRIMARY


def test_not_applicable_when_scoring_primary_without_twin():
    primary = answer("Paris.", source=PRIMARY)
    item = eval_item(primary, primary)
    assert not AgreementEvaluator().applies(item)
    assert isinstance(agreement(item), NotApplicable)


def test_not_applicable_when_scoring_the_twin_itself():
    primary = answer("Paris.", source=PRIMARY)
    twin = answer("Paris.", source=PRIMARY_TWIN)
    assert isinstance(agreement(eval_item(twin, primary, twin=twin)), NotApplicable)


def test_not_applicable_when_primary_failed():
    primary = answer(None, source=PRIMARY, status=500)
    assert isinstance(agreement(eval_item(answer("Paris."), primary)), NotApplicable)


# -- what a candidate adds ----------------------------------------------------------------------


def demo_answers() -> list[tuple[str, str]]:
    """(the primary's answer, the same answer with one of sim-drifty's unsupported claims appended)
    for every retrieval question of the demo and every claim, as the simulator writes them."""
    from shadowtap.proxy.demo_workload import halueval_rows
    from shadowtap.proxy.simulator.answers import answer_sentence
    from shadowtap.proxy.simulator.personas import _UNSUPPORTED_CLAIMS

    pairs = []
    for row in halueval_rows():
        primary = answer_sentence([{"role": "system", "content": f"<context>{row['knowledge']}</context>"},
                                   {"role": "user", "content": row["question"]}])
        pairs += [(primary, f"{primary} {claim}") for claim in _UNSUPPORTED_CLAIMS]
    return pairs


def test_an_appended_unsupported_sentence_keeps_drifty_from_agreeing_on_every_demo_question():
    pairs = demo_answers()
    assert len(pairs) >= 60
    for primary, drifted in pairs:
        same = agreement(eval_item(answer(primary), answer(primary, source=PRIMARY)))
        added = agreement(eval_item(answer(drifted), answer(primary, source=PRIMARY)))
        assert same.value == 1.0 and same.details["added_share"] == 0.0
        assert added.label != "agree", (added.value, drifted)
        assert added.details["added_sentences"] == [drifted[len(primary):].strip()]


def test_agreement_is_asymmetric_an_omission_costs_less_than_the_same_sentence_invented():
    short = "The museum opens at nine on weekdays."
    long = short + " Entry has been free for residents of 47 regions since 2009."
    invented = agreement(eval_item(answer(long), answer(short, source=PRIMARY)))
    omitted = agreement(eval_item(answer(short), answer(long, source=PRIMARY)))
    assert invented.details["added_share"] > 0 and omitted.details["added_share"] == 0.0
    assert invented.value < omitted.value


def test_a_reworded_answer_adds_nothing():
    primary = answer("The capital of France is Paris, a city on the Seine.", source=PRIMARY)
    reworded = agreement(eval_item(answer("Paris is the capital of France. It lies on the Seine."), primary))
    assert reworded.details["added_share"] == 0.0 and reworded.details["added_sentences"] == []
