"""faithfulness: ragas 0.4's Faithfulness metric, judged by the `[judge]` model, with its claims kept.

The judge first breaks the answer into claims, then says which ones the retrieved contexts support;
score = supported / all. ragas' result carries only that number, so the judge client records the two
structured replies (`JudgeSession.outputs`) and the details are rebuilt from them. ragas is imported
on the first score, never when this module is imported.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from shadowtap.core.config import ShadowtapConfig
from shadowtap.evaluators.base import EvalItem, NotApplicable, Score
from shadowtap.evaluators.contexts import content_text
from shadowtap.evaluators.judge import CHARS_PER_TOKEN, JudgeClient, JudgeReplyInvalid, import_ragas

FAITHFUL_AT = 0.8
UNFAITHFUL_BELOW = 0.5
NO_QUESTION = "(no question was asked)"  # ragas refuses an empty user_input

# Prompt sizes of ragas 0.4.3's two faithfulness prompts with empty inputs, plus the JSON-schema system
# message instructor adds, in characters. Only used to estimate costs before any call is made.
_STATEMENT_PROMPT_CHARS = 2_400
_VERDICT_PROMPT_CHARS = 4_600
_VERDICT_REASON_TOKENS = 40   # per claim


class FaithfulnessEvaluator:
    name = "faithfulness"
    version = "1"
    needs_judge = True
    judge_calls_per_item = 2      # claims, then verdicts, in sequence

    def __init__(self, judge: JudgeClient | None) -> None:
        self.judge = judge

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> FaithfulnessEvaluator:
        return cls(JudgeClient(config.judge) if config.judge.model else None)

    def applies(self, item: EvalItem) -> bool:
        return self.judge is not None and bool(item.contexts) and bool((item.answer.text or "").strip())

    def estimate_cost_usd(self, item: EvalItem) -> float | None:
        """Rough judge cost of scoring `item`, or None when the judge's price is unknown."""
        if self.judge is None:
            return None
        question_tokens = len(question_of(item)) // CHARS_PER_TOKEN
        answer_tokens = len(item.answer.text or "") // CHARS_PER_TOKEN
        context_tokens = sum(len(context.text) for context in item.contexts) // CHARS_PER_TOKEN
        claims_tokens = answer_tokens + answer_tokens // 5 + 20    # claims restate the answer without pronouns
        claims = max(1, claims_tokens // 15)
        first = self.judge.cost_usd(_STATEMENT_PROMPT_CHARS // CHARS_PER_TOKEN + question_tokens + answer_tokens,
                                    claims_tokens)
        second = self.judge.cost_usd(_VERDICT_PROMPT_CHARS // CHARS_PER_TOKEN + context_tokens + claims_tokens,
                                     claims_tokens + claims * _VERDICT_REASON_TOKENS)
        return None if first is None or second is None else first + second

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        if self.judge is None:
            return NotApplicable("no judge configured ([judge] model is empty)")
        if not item.contexts:
            return NotApplicable("no retrieved context to check the answer against")
        answer = (item.answer.text or "").strip()
        if not answer:
            return NotApplicable("the answer has no text")
        async with self.judge.session(estimate_usd=self.estimate_cost_usd(item)) as session:
            metric = _faithfulness_metric(self.judge.ragas_llm(session))
            result = await metric.ascore(user_input=question_of(item), response=answer,
                                         retrieved_contexts=[context.text for context in item.contexts])
        judge_details = session.as_details(self.judge.model)
        statements, verdicts = _claims_and_verdicts(session.outputs)
        if not statements:
            return NotApplicable("the judge found no claims in the answer")
        if not verdicts or result.value is None or math.isnan(result.value):
            raise JudgeReplyInvalid(f"{self.judge.description} returned no verdicts for the answer's "
                                    f"{len(statements)} claims")
        value = min(1.0, max(0.0, float(result.value)))
        claims = [{"claim": verdict.statement, "verdict": "supported" if verdict.verdict else "unsupported",
                   "reason": verdict.reason} for verdict in verdicts]
        details: dict[str, Any] = {
            "claims": claims,
            "supported": sum(1 for claim in claims if claim["verdict"] == "supported"),
            "total": len(claims),
            "judge": judge_details,
        }
        judged = {claim["claim"] for claim in claims}
        unjudged = [statement for statement in statements if statement not in judged]
        if unjudged:  # the judge reworded or dropped claims between the two calls
            details["statements"] = statements
        return Score(value=value, label=label_for(value), details=details)

    async def aclose(self) -> None:
        """Close the judge's HTTP connections (the runner calls this when a run ends, if it can)."""
        if self.judge is not None:
            await self.judge.aclose()


def label_for(value: float) -> str:
    if value >= FAITHFUL_AT:
        return "faithful"
    return "unfaithful" if value < UNFAITHFUL_BELOW else "partially_faithful"


def question_of(item: EvalItem) -> str:
    """The last user message (or the completions prompt, or the Responses input) of the request."""
    request = item.request or {}
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            if text := content_text(message.get("content")).strip():
                return text
    for field in ("prompt", "input"):
        value = request.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return NO_QUESTION


def _faithfulness_metric(llm: Any) -> Any:
    return import_ragas("ragas.metrics.collections").Faithfulness(llm=llm)


def _claims_and_verdicts(outputs: list[Any]) -> tuple[list[str], list[Any] | None]:
    """The statements and the NLI verdicts among the judge's structured replies, by their ragas types."""
    util = import_ragas("ragas.metrics.collections.faithfulness.util")
    statements: list[str] = []
    verdicts = None
    for output in outputs:
        if isinstance(output, util.StatementGeneratorOutput):
            statements = list(output.statements)
        elif isinstance(output, util.NLIStatementOutput):
            verdicts = list(output.statements)
    return statements, verdicts
