"""Guards on answer quality, LLM-free, on the same requests: the candidate's answer against the
primary's answer to the same canaried request (its primary_twin shadow row, the reverse shadow).

- grounding_drop: the primary's mean `grounding` minus the candidate's, over the canaried requests
  where both were scored (requests without retrieved contexts are not applicable);
- agreement_drop: the primary's agreement with its own second answer (the noise floor, from
  primary-answered requests with a twin in the window) minus the candidate's agreement with the
  primary, both by the `agreement` evaluator. Without min_samples twins of its own there is no noise
  floor, and the guard waits rather than compare prose with a perfect 1.0.

Scores are computed once per request as the canary runs and kept in memory (`QualityScores`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from statistics import fmean

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.store.canary_store import exchange_answers, twin_answers
from shadowtap.core.timefmt import stored_time
from shadowtap.evaluators.agreement import AgreementEvaluator
from shadowtap.evaluators.base import PRIMARY, PRIMARY_TWIN, EvalItem, Score
from shadowtap.evaluators.canary.results import GuardResult
from shadowtap.evaluators.grounding import GroundingEvaluator
from shadowtap.evaluators.items import build_items

NO_TWIN_AFTER_S = 120.0   # a canaried answer whose twin has not come by then is not scored


@dataclass(frozen=True)
class PairScores:
    answer_grounding: float | None    # the answer in the exchange row (the candidate's, for a canaried one)
    twin_grounding: float | None      # the primary's twin answer
    agreement: float | None           # the exchange row's answer against the twin's


class QualityScores:
    """Per-exchange scores, each computed once and kept while the exchange is in the window.

    A canaried answer is scored once its twin (the primary's answer) is stored; one whose twin has
    not come NO_TWIN_AFTER_S after the request is given up on, so it is not looked up every pass.
    """

    def __init__(self, config: ShadowtapConfig) -> None:
        self._contexts = config.contexts
        self._grounding = GroundingEvaluator()
        self._agreement = AgreementEvaluator()
        self._scores: dict[str, PairScores | None] = {}

    def served_pairs(self, store: object, rows: list[dict], now: float) -> list[PairScores]:
        """Scores of the candidate's answers (`rows`: canaried exchanges, light columns) against the
        primary's twin answers; bodies are read only for the answers not scored yet."""
        missing = [row for row in rows if row["id"] not in self._scores]
        if missing:
            twins = twin_answers(store, [row["id"] for row in missing])
            answers = exchange_answers(store, list(twins))
            self._scores.update(asyncio.run(self._score_all(answers, twins)))
            given_up = stored_time(now - NO_TWIN_AFTER_S)
            for row in missing:
                if row["id"] not in twins and row["started_at"] < given_up:
                    self._scores[row["id"]] = None
        return [score for row in rows if (score := self._scores.get(row["id"])) is not None]

    def baseline_pairs(self, rows: list[dict]) -> list[PairScores]:
        """Scores of the primary's answers against its twin's (rows of twinned_primary_exchanges)."""
        twins = {row["id"]: {"candidate": PRIMARY_TWIN, "response_text": row["twin_text"],
                             "response_tool_calls": row["twin_tool_calls"]} for row in rows}
        missing = [row for row in rows if row["id"] not in self._scores]
        if missing:
            self._scores.update(asyncio.run(self._score_all(missing, twins)))
        return [score for row in rows if (score := self._scores.get(row["id"])) is not None]

    def forget(self, keep: set[str]) -> None:
        self._scores = {key: value for key, value in self._scores.items() if key in keep}

    async def _score_all(self, rows: list[dict], twins: dict[str, dict]) -> dict[str, PairScores | None]:
        scored: dict[str, PairScores | None] = {}
        for row in rows:
            try:
                items = build_items(row, [twins[row["id"]]], self._contexts)
            except Exception:  # a malformed capture is left out, never fatal to the guard loop
                scored[row["id"]] = None
                continue
            scored[row["id"]] = PairScores(
                answer_grounding=await _value(self._grounding, items[PRIMARY]),
                twin_grounding=await _value(self._grounding, items[PRIMARY_TWIN]),
                agreement=await _value(self._agreement, items[PRIMARY]))
        return scored


async def _value(evaluator: GroundingEvaluator | AgreementEvaluator, item: EvalItem) -> float | None:
    try:
        result = await evaluator.score(item)
    except Exception:  # an evaluator error is "no score" here, as the runner records it apart
        return None
    return result.value if isinstance(result, Score) else None


def grounding_drop(pairs: list[PairScores], threshold: float, min_samples: int) -> GuardResult:
    both: list[tuple[float, float]] = []   # (primary, candidate)
    for pair in pairs:
        if pair.answer_grounding is not None and pair.twin_grounding is not None:
            both.append((pair.twin_grounding, pair.answer_grounding))
    if not both:
        return GuardResult("grounding_drop", None, threshold, 0, False, note="no request with contexts scored")
    drop = fmean(primary for primary, _ in both) - fmean(candidate for _, candidate in both)
    enough = len(both) >= min_samples
    return GuardResult("grounding_drop", drop, threshold, len(both), enough and drop > threshold,
                       note="" if enough else f"waits for {min_samples} samples")


def agreement_drop(pairs: list[PairScores], floor_pairs: list[PairScores], threshold: float,
                   min_samples: int) -> GuardResult:
    candidate = [p.agreement for p in pairs if p.agreement is not None]
    floor = [p.agreement for p in floor_pairs if p.agreement is not None]
    if not candidate:
        return GuardResult("agreement_drop", None, threshold, 0, False, note="no canaried answer with a twin")
    if len(floor) < min_samples:
        return GuardResult("agreement_drop", None, threshold, len(candidate), False,
                           note=f"no noise floor: {len(floor)} of {min_samples} twin samples of the primary "
                                "([shadow] primary_twin_rate)")
    drop = fmean(floor) - fmean(candidate)
    enough = len(candidate) >= min_samples
    return GuardResult("agreement_drop", drop, threshold, len(candidate), enough and drop > threshold,
                       note=f"noise floor {fmean(floor):.3f} over {len(floor)} twins"
                       + ("" if enough else f"; waits for {min_samples} samples"))
