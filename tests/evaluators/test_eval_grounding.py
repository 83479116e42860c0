"""grounding: the LLM-free support score, its details, and how well it separates HaluEval answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shadowtap.evaluators.base import PRIMARY, Answer, ContextItem, EvalItem, NotApplicable, Score
from shadowtap.evaluators.grounding import GroundingEvaluator, question_text
from shadowtap.evaluators.text_support import tokens

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "halueval_sample.jsonl"

OBEROI = ("The Oberoi family is an Indian family that is famous for its involvement in hotels, namely through "
          "The Oberoi Group. The Oberoi Group is a hotel company with its head office in Delhi. "
          "It was founded in 1934 and runs 31 hotels.")


def eval_item(answer: str | None, contexts: list[str], *, question: str | None = None,
              tool_calls: list[dict] | None = None) -> EvalItem:
    request = None if question is None else {"model": "m", "messages": [{"role": "user", "content": question}]}
    primary = Answer(source=PRIMARY, text=answer, tool_calls=tool_calls, status=200)
    return EvalItem(exchange={"id": "x", "started_at": "2025-01-01T00:00:00+00:00", "endpoint": "chat.completions"},
                    request=request, contexts=[ContextItem(text=text) for text in contexts],
                    answer=primary, primary=primary)


def grounding(item: EvalItem) -> Score | NotApplicable:
    return asyncio.run(GroundingEvaluator().score(item))


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def bag_of_words(answer: str, context: str) -> float:
    words = set(tokens(answer))
    return len(words & set(tokens(context))) / len(words) if words else 0.0


def test_auc_beats_bag_of_words_baseline_when_scoring_halueval_sample():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 60
    right, wrong, bow_right, bow_wrong = [], [], [], []
    for row in rows:
        for key, scores, baseline in (("right_answer", right, bow_right), ("hallucinated_answer", wrong, bow_wrong)):
            scores.append(grounding(eval_item(row[key], [row["knowledge"]], question=row["question"])).value)
            baseline.append(bag_of_words(row[key], row["knowledge"]))
    auc, baseline_auc = roc_auc(right, wrong), roc_auc(bow_right, bow_wrong)
    assert auc >= 0.95
    assert auc > baseline_auc + 0.03


def test_score_is_high_and_grounded_when_answer_restates_context():
    result = grounding(eval_item("The Oberoi Group has its head office in Delhi.", [OBEROI],
                                 question="Where is the Oberoi head office?"))
    assert result.label == "grounded"
    assert result.value >= 0.8


def test_score_is_ungrounded_when_answer_is_unrelated_to_context():
    result = grounding(eval_item("Paris hosts the Louvre, a famous museum of Renaissance paintings.", [OBEROI]))
    assert result.label == "ungrounded"
    assert result.value < 0.4


def test_unsupported_number_lowers_score_when_context_has_another_number():
    supported = grounding(eval_item("The Oberoi Group was founded in 1934.", [OBEROI]))
    invented = grounding(eval_item("The Oberoi Group was founded in 1952.", [OBEROI]))
    assert invented.value < supported.value * 0.6
    assert invented.details["unsupported_numbers"] == ["1952"]
    assert supported.details["unsupported_numbers"] == []


def test_numbers_match_when_context_writes_them_differently():
    context = ["The group runs twelve hotels and employs 1,500 people on 6.50 hectares."]
    result = grounding(eval_item("It runs 12 hotels and employs 1500 people on 6.5 hectares.", context))
    assert result.details["unsupported_numbers"] == []
    assert result.value > 0.7


def test_unsupported_name_is_listed_and_penalised_when_context_lacks_it():
    result = grounding(eval_item("The Oberoi Group was founded by Conrad Hilton.", [OBEROI]))
    assert result.details["unsupported_names"] == ["Conrad Hilton"]
    assert result.value < 0.4


def test_question_words_count_less_when_answer_repeats_the_question():
    context = ["Pauline Henry was the vocalist of The Chimes. Their cover song is from the album The Joshua Tree."]
    answer = "The cover song Pauline Henry sang with The Chimes is from the album Rattle and Hum."
    question = "Which album is the cover song Pauline Henry sang with The Chimes from?"
    with_question = grounding(eval_item(answer, context, question=question))
    without_question = grounding(eval_item(answer, context))
    assert with_question.value < without_question.value


def test_negation_lowers_score_when_context_has_no_negation():
    affirmed = grounding(eval_item("The Oberoi family is involved in hotels.", [OBEROI]))
    negated = grounding(eval_item("The Oberoi family is not involved in hotels.", [OBEROI]))
    assert negated.details["negation_mismatch"] is True
    assert negated.value < affirmed.value


def test_leading_no_is_not_a_negation_when_answering_a_yes_no_question():
    result = grounding(eval_item("No.", [OBEROI], question="Is the Oberoi Group based in Mumbai?"))
    assert result.details["negation_mismatch"] is False
    assert result.details["nothing_to_check"] is True


def test_one_invented_sentence_pulls_the_score_down_when_others_are_grounded():
    grounded = ("The Oberoi Group is a hotel company. Its head office is in Delhi. "
                "The Oberoi family is famous for hotels. It runs 31 hotels.")
    mixed = grounded + " Its chef also bakes bread for local schools."
    assert grounding(eval_item(grounded, [OBEROI])).value > 0.9
    assert grounding(eval_item(mixed, [OBEROI])).value < 0.6


def test_details_report_support_per_sentence():
    result = grounding(eval_item("The Oberoi Group is a hotel company. It sells submarines to Peru.", [OBEROI]))
    sentences = result.details["sentences"]
    assert [s["text"] for s in sentences] == ["The Oberoi Group is a hotel company.", "It sells submarines to Peru."]
    assert sentences[0]["support"] > 0.9
    assert sentences[1]["support"] < 0.2
    assert "submarines" in sentences[1]["unsupported"]


def test_not_applicable_when_answer_has_only_tool_calls():
    item = eval_item(None, [OBEROI], tool_calls=[{"id": "c", "type": "function",
                                                  "function": {"name": "lookup", "arguments": "{}"}}])
    assert not GroundingEvaluator().applies(item)
    assert isinstance(grounding(item), NotApplicable)


@pytest.mark.parametrize("contexts", [[], ["   "]])
def test_not_applicable_when_there_are_no_contexts(contexts):
    item = eval_item("Delhi.", contexts)
    assert not GroundingEvaluator().applies(item)
    assert isinstance(grounding(item), NotApplicable)


def test_question_text_drops_contexts_pasted_into_the_user_message():
    request = {"messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": [{"type": "text", "text": f"<context>{OBEROI}</context>"},
                                                         {"type": "text", "text": "Where is the head office?"}]}]}
    question = question_text(request, (OBEROI,))
    assert "Where is the head office?" in question
    assert "1934" not in question
