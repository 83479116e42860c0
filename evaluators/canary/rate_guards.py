"""Guards on how canaried requests ended: candidate errors and timeouts, fallbacks by risk tier and
by task, and answers that broke the request's output contract. Each is a share of the candidate's
canaried requests in the window (answered by it, or fallen back to the primary)."""

from __future__ import annotations

from collections import defaultdict

from shadowtap.core.config import CanaryConfig
from shadowtap.evaluators.canary.results import GuardResult, rate_result
from shadowtap.evaluators.canary.window import CONTRACT_INVALID, ERROR_REASONS, CanaryWindow

COHORT_COLUMNS = ("risk_tier", "task")
UNTAGGED = "(none)"


def error_rate(window: CanaryWindow, config: CanaryConfig) -> GuardResult:
    errors = sum(row["reason"] in ERROR_REASONS for row in window.fallbacks)
    errors += sum((row["status"] or 0) >= 500 for row in window.served)
    return rate_result("error_rate", errors, len(window.canaried), config.max_error_rate, config.min_samples)


def contract_invalid_rate(window: CanaryWindow, config: CanaryConfig) -> GuardResult:
    invalid = sum(row["reason"] == CONTRACT_INVALID for row in window.fallbacks)
    return rate_result("contract_invalid_rate", invalid, len(window.canaried), config.max_contract_invalid_rate,
                       config.min_samples)


def fallback_rates(window: CanaryWindow, config: CanaryConfig) -> list[GuardResult]:
    """One result per risk tier and per task seen in the window."""
    return cohort_rates("fallback_rate", window.canaried, lambda row: "reason" in row,
                        config.max_fallback_rate, config.min_samples)


def cohort_rates(name: str, rows: list[dict], is_hit, threshold: float, min_samples: int) -> list[GuardResult]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for column in COHORT_COLUMNS:
            count = counts[f"{column}={row.get(column) or UNTAGGED}"]
            count[0] += bool(is_hit(row))
            count[1] += 1
    return [rate_result(name, hits, samples, threshold, min_samples, cohort)
            for cohort, (hits, samples) in sorted(counts.items())]
