"""The demo's simulated reviewers: deterministic, they judge answers by their support in the
source, and they agree on most answers but not all (so the report's figures mean something)."""

from __future__ import annotations

import collections

from shadowtap.proxy.demo_reviewers import REVIEWERS, ReviewedAnswer, review, simulated_feedback, split_by_support
from shadowtap.proxy.demo_workload import halueval_rows
from shadowtap.proxy.simulator.answers import answer_sentence
from shadowtap.proxy.simulator.personas import _UNSUPPORTED_CLAIMS

OUTCOMES = ("accepted", "edited", "escalated", "rejected", "policy_violation")


def sample_answers() -> list[ReviewedAnswer]:
    """Every HaluEval row answered as the simulator does, every third with an invented claim added."""
    answers = []
    for index, row in enumerate(halueval_rows()):
        text = answer_sentence([{"role": "system", "content": f"<context>{row['knowledge']}</context>"},
                                {"role": "user", "content": row["question"]}])
        if index % 3 == 0:
            text = f"{text} {_UNSUPPORTED_CLAIMS[index % len(_UNSUPPORTED_CLAIMS)]}"
        answers.append(ReviewedAnswer(f"ex{index}", index, text, row["knowledge"], row["right_answer"]))
    return answers


def cohen_kappa(first: list[str], second: list[str]) -> float:
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_a, counts_b = collections.Counter(first), collections.Counter(second)
    chance = sum(counts_a[label] * counts_b[label] for label in OUTCOMES) / n / n
    return (observed - chance) / (1 - chance)


def test_the_same_answers_always_get_the_same_feedback():
    assert simulated_feedback(sample_answers()) == simulated_feedback(sample_answers())


def test_an_answer_with_a_claim_its_source_lacks_is_never_accepted_and_an_edit_removes_the_claim():
    for answer in sample_answers()[::3]:
        for reviewer in REVIEWERS:
            item = review(reviewer, answer)
            assert item["outcome"] in ("edited", "rejected", "policy_violation"), (reviewer.name, answer.text)
            if item["outcome"] == "edited":
                assert item["edited_text"] and item["edited_text"] in answer.text
                assert not any(claim in item["edited_text"] for claim in _UNSUPPORTED_CLAIMS)
                assert item["edit_minutes"] > 0


def test_answers_the_source_supports_are_mostly_accepted():
    supported = [answer for index, answer in enumerate(sample_answers()) if index % 3]
    for reviewer in REVIEWERS:
        outcomes = collections.Counter(review(reviewer, answer)["outcome"] for answer in supported)
        assert outcomes["accepted"] >= 0.7 * len(supported), (reviewer.name, outcomes)
        assert outcomes["rejected"] == outcomes["policy_violation"] == 0


def test_the_two_reviewers_agree_on_most_answers_but_not_all():
    feedback = simulated_feedback(sample_answers())
    first, second = ([item["outcome"] for item in feedback[reviewer.name]] for reviewer in REVIEWERS)
    assert first != second
    assert 0.4 < cohen_kappa(first, second) < 0.9


def test_every_item_is_a_valid_feedback_item_with_a_stable_id():
    from shadowtap.core.feedback_items import parse_feedback_item

    for items in simulated_feedback(sample_answers()).values():
        for index, item in enumerate(items):
            parsed = parse_feedback_item(item, index)
            assert parsed.feedback_id == f"demo-{parsed.reviewer}-{parsed.exchange_id}"


def test_support_is_judged_sentence_by_sentence_against_the_source():
    knowledge = "Arthur's Magazine (1844–1846) was an American literary periodical.First for Women is a magazine."
    supported, unsupported = split_by_support(
        "Arthur's Magazine (1844–1846) was an American literary periodical. It sold 9 million copies.", knowledge)
    assert supported == ["Arthur's Magazine (1844–1846) was an American literary periodical."]
    assert unsupported == ["It sold 9 million copies."]
