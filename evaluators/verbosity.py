"""verbosity: a candidate's answer length against the primary's, in words.

Words, not provider tokens: two models' tokenisers count the same text differently, so token
counts from different providers do not compare. A tool call counts the words of its name and
arguments. Score = min(a, b) / max(a, b) (1.0 when equally long); `ratio` = candidate / primary.
Labels: "shorter" below 0.8 of the primary's length, "longer" above 1.2, "similar" between.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from shadowtap.core.config import ShadowtapConfig
from shadowtap.evaluators.base import Answer, EvalItem, NotApplicable, Score
from shadowtap.evaluators.text_support import tokens

SIMILAR_WITHIN = 0.2


def answer_words(answer: Answer) -> int:
    count = len(tokens(answer.text)) if answer.text else 0
    for call in answer.tool_calls or []:
        function = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else call
        if isinstance(function, dict):
            count += len(tokens(str(function.get("name") or ""))) + len(tokens(str(function.get("arguments") or "")))
    return count


def _answered(answer: Answer) -> bool:
    return (answer.status is None or answer.status < 400) and (answer.text is not None or bool(answer.tool_calls))


class VerbosityEvaluator:
    """How much longer or shorter a candidate answers than the primary did."""

    name: ClassVar[str] = "verbosity"
    version: ClassVar[str] = "1"
    needs_judge: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> VerbosityEvaluator:
        return cls()

    def applies(self, item: EvalItem) -> bool:
        return not item.is_primary and _answered(item.answer) and _answered(item.primary)

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        if item.is_primary:
            return NotApplicable("verbosity compares a candidate with the primary")
        if not _answered(item.answer):
            return NotApplicable(f"{item.answer.source} has no answer")
        if not _answered(item.primary):
            return NotApplicable("the primary has no answer to compare with")
        candidate, primary = answer_words(item.answer), answer_words(item.primary)
        details: dict[str, float | None] = {"candidate_words": candidate, "primary_words": primary}
        if primary == 0:
            details["ratio"] = None if candidate else 1.0
            return Score(0.0 if candidate else 1.0, "longer" if candidate else "similar", details)
        ratio = candidate / primary
        details["ratio"] = round(ratio, 4)
        label = "shorter" if ratio < 1 - SIMILAR_WITHIN else "longer" if ratio > 1 + SIMILAR_WITHIN else "similar"
        return Score(round(min(candidate, primary) / max(candidate, primary), 6), label, details)
