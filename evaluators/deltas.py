"""latency_delta and cost_delta: a candidate's speed and price against the primary's, from the capture.

Both score 1.0 when the candidate is no slower (no costlier) than the primary and primary /
candidate when it is: twice as slow scores 0.5. Labels: "faster"/"cheaper" below 0.95 of the
primary's figure, "slower"/"costlier" above 1.05, "similar" between. latency_delta scores total
latency; when both answers have a time to first token, its ratio and delta are in the details
too. Not applicable to the primary, to failed answers, or when either figure is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from shadowtap.core.config import ShadowtapConfig
from shadowtap.evaluators.base import Answer, EvalItem, NotApplicable, Score

SIMILAR_WITHIN = 0.05


def ratio_score(candidate: float, primary: float) -> tuple[float, float | None]:
    """(score, candidate / primary); a zero primary makes any positive candidate score 0."""
    if candidate <= primary:
        return 1.0, (candidate / primary if primary else 1.0)
    return (primary / candidate if candidate else 1.0), (candidate / primary if primary else None)


def _label(ratio: float | None, better: str, worse: str) -> str:
    if ratio is None or ratio > 1 + SIMILAR_WITHIN:
        return worse
    return better if ratio < 1 - SIMILAR_WITHIN else "similar"


def _failed(answer: Answer) -> bool:
    return answer.status is not None and answer.status >= 400


class _DeltaEvaluator:
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    needs_judge: ClassVar[bool] = False
    field: ClassVar[str]
    unit: ClassVar[str]
    better: ClassVar[str]
    worse: ClassVar[str]

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> _DeltaEvaluator:
        return cls()

    def applies(self, item: EvalItem) -> bool:
        return not isinstance(self._figures(item), NotApplicable)

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        figures = self._figures(item)
        if isinstance(figures, NotApplicable):
            return figures
        candidate, primary = figures
        value, ratio = ratio_score(candidate, primary)
        details: dict[str, Any] = {
            f"candidate_{self.unit}": candidate, f"primary_{self.unit}": primary,
            "ratio": None if ratio is None else round(ratio, 4),
            f"delta_{self.unit}": round(candidate - primary, 6),
        }
        details.update(self._extra(item))
        return Score(round(value, 6), _label(ratio, self.better, self.worse), details)

    def _figures(self, item: EvalItem) -> tuple[float, float] | NotApplicable:
        if item.is_primary:
            return NotApplicable(f"{self.name} compares a candidate with the primary")
        if _failed(item.answer) or _failed(item.primary):
            return NotApplicable(f"a failed answer has no meaningful {self.field}")
        candidate, primary = getattr(item.answer, self.field), getattr(item.primary, self.field)
        if candidate is None or primary is None:
            missing = item.answer.source if candidate is None else "primary"
            return NotApplicable(f"no {self.field} for {missing}")
        return float(candidate), float(primary)

    def _extra(self, item: EvalItem) -> dict[str, Any]:
        return {}


class LatencyDeltaEvaluator(_DeltaEvaluator):
    """Candidate latency against the primary's; time to first token in the details when both have it."""

    name: ClassVar[str] = "latency_delta"
    field: ClassVar[str] = "latency_ms"
    unit: ClassVar[str] = "ms"
    better: ClassVar[str] = "faster"
    worse: ClassVar[str] = "slower"

    def _extra(self, item: EvalItem) -> dict[str, Any]:
        candidate, primary = item.answer.ttft_ms, item.primary.ttft_ms
        if candidate is None or primary is None:
            return {}
        score, ratio = ratio_score(float(candidate), float(primary))
        return {"candidate_ttft_ms": candidate, "primary_ttft_ms": primary,
                "ttft_ratio": None if ratio is None else round(ratio, 4),
                "ttft_delta_ms": round(candidate - primary, 3), "ttft_score": round(score, 6)}


class CostDeltaEvaluator(_DeltaEvaluator):
    """Candidate cost against the primary's, in USD from the capture's price tables."""

    name: ClassVar[str] = "cost_delta"
    field: ClassVar[str] = "cost_usd"
    unit: ClassVar[str] = "usd"
    better: ClassVar[str] = "cheaper"
    worse: ClassVar[str] = "costlier"
