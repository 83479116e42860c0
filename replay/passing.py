"""Pass criteria for replayed answers, and the figures built on them: pass@k and consistency.

A criterion is `contract` (the answer satisfies its JSON Schema) or `EVALUATOR>=THRESHOLD`, where
`agreement` compares the replayed answer with the ORIGINAL captured one and any other evaluator
scores the replayed answer on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.errors import ConfigError, CriterionError
from shadowtap.evaluators.base import Answer, EvalItem, NotApplicable, Score
from shadowtap.evaluators.contexts import extract_contexts
from shadowtap.evaluators.items import parse_request, primary_answer

REPLAY_SOURCE = "replay"
DEFAULT_CRITERION = "agreement>=0.8"
_THRESHOLD = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(>=|>)\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Verdict:
    passed: bool | None        # None: the criterion does not apply to this answer (or it errored)
    value: float | None = None
    note: str | None = None


class PassCriterion:
    """One parsed `--pass` value, with its evaluator built from the config."""

    def __init__(self, text: str, evaluator, op: str, threshold: float) -> None:
        self.text, self.evaluator, self.op, self.threshold = text, evaluator, op, threshold

    @classmethod
    def parse(cls, text: str, config: ShadowtapConfig, *, config_dir: Path = Path(".")) -> PassCriterion:
        from shadowtap.evaluators.registry import load_class

        text = text.strip()
        if text == "contract":
            name, op, threshold = "contract", ">=", 1.0
        else:
            match = _THRESHOLD.match(text)
            if not match:
                raise CriterionError(f"--pass {text!r}: expected contract, or EVALUATOR>=THRESHOLD "
                                     "such as agreement>=0.8 or grounding>=0.7")
            name, op, threshold = match.group(1), match.group(2), float(match.group(3))
        try:
            evaluator = load_class(name).from_config(config, config_dir=config_dir)
        except ConfigError as exc:
            raise CriterionError(f"--pass {text!r}: {exc}") from None
        return cls(text, evaluator, op, threshold)

    async def judge(self, exchange: dict, request: dict | None, answer: Answer, contexts_config) -> Verdict:
        item = replay_item(exchange, request, answer, contexts_config)
        try:
            if not self.evaluator.applies(item):
                return Verdict(None, note=f"{self.evaluator.name} does not apply")
            result = await self.evaluator.score(item)
        except Exception as exc:  # an evaluator failing on one answer leaves that answer unjudged
            return Verdict(None, note=f"{type(exc).__name__}: {exc}"[:500])
        if isinstance(result, NotApplicable):
            return Verdict(None, note=result.reason)
        if not isinstance(result, Score):
            return Verdict(None, note=f"{self.evaluator.name} returned {type(result).__name__}")
        passed = result.value >= self.threshold if self.op == ">=" else result.value > self.threshold
        return Verdict(passed, result.value, result.label)


def replay_item(exchange: dict, request: dict | None, answer: Answer, contexts_config) -> EvalItem:
    """An EvalItem whose answer is the replay and whose reference ("primary") is the captured answer."""
    request = request if request is not None else parse_request(exchange)
    contexts = extract_contexts(request, exchange.get("shadowtap_metadata"), contexts_config)
    return EvalItem(exchange=exchange, request=request, contexts=contexts, answer=answer,
                    primary=primary_answer(exchange))


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k from n judged samples with c passes (Chen et al. 2021); None without samples."""
    if n <= 0:
        return None
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def outcome_consistency(passed: list[bool]) -> float | None:
    """Share of repetitions whose verdict is the majority verdict."""
    if not passed:
        return None
    return Counter(passed).most_common(1)[0][1] / len(passed)


def answer_consistency(answers: list[tuple]) -> float | None:
    """Share of pairs of replayed answers that are identical; 1.0 for a single answer."""
    if not answers:
        return None
    if len(answers) == 1:
        return 1.0
    pairs = list(combinations(answers, 2))
    return sum(a == b for a, b in pairs) / len(pairs)
