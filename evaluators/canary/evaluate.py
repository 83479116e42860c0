"""Every guard for one candidate's window, now."""

from __future__ import annotations

import time

from shadowtap.core.config import ShadowtapConfig
from shadowtap.evaluators.canary.feedback_guards import feedback_guards
from shadowtap.evaluators.canary.quality_guards import QualityScores, agreement_drop, grounding_drop
from shadowtap.evaluators.canary.rate_guards import contract_invalid_rate, error_rate, fallback_rates
from shadowtap.evaluators.canary.results import GuardResult
from shadowtap.evaluators.canary.window import CanaryWindow, read_window


def evaluate_window(window: CanaryWindow, config: ShadowtapConfig, scores: QualityScores, store: object,
                    now: float) -> list[GuardResult]:
    """Every guard over `window`; answers not scored yet are read from `store` and scored."""
    canary = config.canary
    pairs = scores.served_pairs(store, window.served, now)
    return [
        error_rate(window, canary),
        *fallback_rates(window, canary),
        contract_invalid_rate(window, canary),
        grounding_drop(pairs, canary.max_grounding_drop, canary.min_samples),
        agreement_drop(pairs, scores.baseline_pairs(window.baseline), canary.max_agreement_drop, canary.min_samples),
        *feedback_guards(window, canary, config.outcomes),
    ]


def evaluate_candidate(config: ShadowtapConfig, store: object, candidate: str, *, scores: QualityScores | None = None,
                       now: float | None = None) -> tuple[CanaryWindow, list[GuardResult]]:
    now = time.time() if now is None else now
    window = read_window(store, candidate, window_s=config.canary.window_s, now=now)
    return window, evaluate_window(window, config, scores or QualityScores(config), store, now)


def red_guards(config: ShadowtapConfig, store: object, candidate: str) -> list[GuardResult]:
    """The guards red for `candidate` now (what `shadowtap canary promote` refuses on)."""
    _, results = evaluate_candidate(config, store, candidate)
    return [result for result in results if result.red]
