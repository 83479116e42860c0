"""The demo's two simulated reviewers: they judge each question-answering reply against its source.

Like a real review team they know the retrieved passage and the reference answer (HaluEval's
`knowledge` and `right_answer`), never shadowtap's scores. Their guideline:

- a sentence the passage does not support is removed (edited) or the answer is rejected; a claim
  of audited reliability is a policy violation (the team may not publish such figures);
- an answer true to the passage that misses the reference answer may be escalated to an expert;
- a supported, complete answer is accepted, now and then after tidying its punctuation.

Both reviewers apply it with their own habits. Their draws share a per-answer part (how borderline
the answer is) so they mostly agree, as people trained on one guideline do, and disagree on a
minority of borderline cases. Everything is seeded: the same answers get the same feedback.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import httpx

SEED = 8
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_GLUED_SENTENCES = re.compile(r"(?<=[a-z0-9)][.!?])(?=[A-Z])")
_WORDS = re.compile(r"\w+")
_POLICY_CLAIM = re.compile(r"\b\d+(?:\.\d+)?%\s+reliable|\baudits?\b", re.I)


@dataclass(frozen=True)
class ReviewedAnswer:
    """An answer the app received, with the id shadowtap returned for it and the row it came from."""

    exchange_id: str
    index: int            # the workload call's position, which seeds the reviewers' draws
    text: str
    knowledge: str
    right_answer: str


@dataclass(frozen=True)
class SimulatedReviewer:
    name: str
    reject_instead_of_edit: float   # share of unsupported answers rejected outright rather than fixed
    escalate_incomplete: float      # share of supported answers missing the reference that are escalated
    tidy_up: float                  # share of good answers whose punctuation gets fixed
    minutes_per_fix: float          # how long removing an unsupported sentence takes this reviewer
    report_policy_claims: float     # share of reliability claims reported as policy violations


REVIEWERS = (
    SimulatedReviewer("reviewer-ana", reject_instead_of_edit=0.25, escalate_incomplete=0.15, tidy_up=0.12,
                      minutes_per_fix=2.5, report_policy_claims=0.5),
    SimulatedReviewer("reviewer-ben", reject_instead_of_edit=0.45, escalate_incomplete=0.10, tidy_up=0.08,
                      minutes_per_fix=4.0, report_policy_claims=0.3),
)


def simulated_feedback(answers: list[ReviewedAnswer]) -> dict[str, list[dict]]:
    """Reviewer name -> that reviewer's feedback items, one per answer, in the API's fields."""
    return {reviewer.name: [review(reviewer, answer) for answer in answers] for reviewer in REVIEWERS}


def review(reviewer: SimulatedReviewer, answer: ReviewedAnswer) -> dict:
    borderline = random.Random(f"{SEED}:{answer.index}").random()   # shared by both reviewers
    own = random.Random(f"{SEED}:{answer.index}:{reviewer.name}").random()
    item = {"exchange_id": answer.exchange_id, "reviewer": reviewer.name,
            "feedback_id": f"demo-{reviewer.name}-{answer.exchange_id}"}
    supported, unsupported = split_by_support(answer.text, answer.knowledge)
    if unsupported:
        claim = unsupported[0]
        if _POLICY_CLAIM.search(claim) and borderline < reviewer.report_policy_claims:
            return {**item, "outcome": "policy_violation", "label": "unsupported_claim",
                    "comment": f"publishes an unverified reliability figure: {claim!r}"}
        if borderline < reviewer.reject_instead_of_edit:
            return {**item, "outcome": "rejected", "label": "unsupported_claim",
                    "comment": f"not in the source: {claim!r}"}
        return {**item, "outcome": "edited", "label": "unsupported_claim", "edited_text": " ".join(supported),
                "edit_minutes": round(reviewer.minutes_per_fix * (0.8 + 0.4 * own), 1),
                "comment": "removed a sentence the source does not support"}
    if not mentions(answer.text, answer.right_answer) and borderline < reviewer.escalate_incomplete:
        return {**item, "outcome": "escalated", "label": "incomplete",
                "comment": "true to the source but does not answer the question; needs a subject expert"}
    tidied = _GLUED_SENTENCES.sub(" ", answer.text)
    if tidied != answer.text and borderline > 1 - reviewer.tidy_up:
        return {**item, "outcome": "edited", "label": "style", "edited_text": tidied,
                "edit_minutes": round(0.3 + 0.4 * own, 1)}
    return {**item, "outcome": "accepted"}


def split_by_support(text: str, knowledge: str) -> tuple[list[str], list[str]]:
    """The answer's sentences the passage contains (word for word), and the others."""
    source = " ".join(_WORDS.findall(knowledge.lower()))
    supported: list[str] = []
    unsupported: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        words = " ".join(_WORDS.findall(sentence.lower()))
        if words:
            (supported if words in source else unsupported).append(sentence)
    return supported, unsupported


def mentions(text: str, reference: str) -> bool:
    return " ".join(_WORDS.findall(reference.lower())) in " ".join(_WORDS.findall(text.lower()))


def post_feedback(proxy_url: str, token: str, items: list[dict]) -> dict:
    """One batch through POST /shadowtap/feedback, as a review tool would send it."""
    response = httpx.post(f"{proxy_url}/shadowtap/feedback", json={"feedback": items},
                          headers={"authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return response.json()
