"""The release gate: [gate] thresholds checked against a report, per candidate and optionally per category.

Each check passes, fails, or is skipped when its figure cannot be computed (no twin samples, no
faithfulness scores, no cost...): a skipped check neither passes nor fails the gate, and says why.
The gate fails when any check fails, and also when there is no candidate to check at all.

Outcome checks ([gate] min_trusted_task_completion, max_correction_minutes, ...) are about the
primary's live answers as people judged them (the report's outcomes section), not about a
candidate: they are a floor the live traffic must meet, checked once per gate as candidate
"primary", scope "outcomes", only when set, and skipped below outcomes_min_exchanges exchanges
with feedback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from shadowtap.core.config import GateConfig
from shadowtap.core.config.gate import OUTCOME_CHECKS_OFF
from shadowtap.evaluators.report.model import (
    NOT_ENOUGH_DATA,
    NOT_READY,
    READY,
    CandidateReport,
    CandidateVerdict,
    GateCheck,
    GateVerdict,
    KeyFigures,
    OutcomesReport,
    ReportData,
)

# Figures equal to a threshold pass; this absorbs float noise such as 0.1 + 0.2 > 0.3.
_EPSILON = 1e-9


def _drop(paired) -> float | None:
    return None if paired.difference.mean is None else 0.0 - paired.difference.mean  # never -0.0


def _invalid_rate(figures: KeyFigures) -> float | None:
    rate = figures.contract_valid.rate
    return None if rate is None else 1 - rate


# (check = the GateConfig attribute holding its threshold, comparison, figure, why the figure can be missing)
_CHECKS: list[tuple[str, str, Callable[[KeyFigures], float | None], str]] = [
    ("min_agreement_above_noise", ">=", lambda f: f.agreement.above_noise,
     "no agreement scores, or no primary-vs-twin samples for the noise floor"),
    ("max_faithfulness_drop", "<=", lambda f: _drop(f.faithfulness),
     "no exchange with faithfulness scores for both the candidate and the primary"),
    ("max_grounding_drop", "<=", lambda f: _drop(f.grounding),
     "no exchange with grounding scores for both the candidate and the primary"),
    ("max_contract_invalid_rate", "<=", _invalid_rate, "no contract scores for the candidate"),
    ("max_error_rate", "<=", lambda f: f.calls.failure_rate.rate, "no shadow calls made"),
    ("max_latency_p95_ratio", "<=", lambda f: f.latency.p95_ratio,
     "no exchange with both latencies known (or the baseline's p95 is 0: the twin's, else the primary's)"),
    ("max_cost_ratio", "<=", lambda f: f.cost.ratio, "no exchange with both costs known (or the primary's is 0)"),
]


def _drop_interval(paired) -> tuple[float | None, float | None]:
    low, high = paired.difference.low, paired.difference.high
    return (None, None) if low is None or high is None else (0.0 - high, 0.0 - low)


def _above_noise_interval(figures: KeyFigures) -> tuple[float | None, float | None]:
    agreement = figures.agreement
    low, high, noise = agreement.candidate.low, agreement.candidate.high, agreement.noise.mean
    return (None, None) if low is None or high is None or noise is None else (low - noise, high - noise)


def _invalid_interval(figures: KeyFigures) -> tuple[float | None, float | None]:
    valid = figures.contract_valid
    return (None, None) if valid.low is None or valid.high is None else (1 - valid.high, 1 - valid.low)


# The 95% interval of a check's figure, for the checks whose figure has one: a failing check is
# shown with it, so a reader sees whether the figure is far past the threshold or barely.
_INTERVALS: dict[str, Callable[[KeyFigures], tuple[float | None, float | None]]] = {
    "min_agreement_above_noise": _above_noise_interval,
    "max_faithfulness_drop": lambda f: _drop_interval(f.faithfulness),
    "max_grounding_drop": lambda f: _drop_interval(f.grounding),
    "max_contract_invalid_rate": _invalid_interval,
    "max_error_rate": lambda f: (f.calls.failure_rate.low, f.calls.failure_rate.high),
}


# (check, comparison, figure from the outcomes section, why the figure can be missing)
_OUTCOME_CHECKS: list[tuple[str, str, Callable[[OutcomesReport], float | None], str]] = [
    ("min_trusted_task_completion", ">=", lambda o: o.overall.trusted_completion.rate, "no exchange with feedback"),
    ("max_correction_minutes", "<=", lambda o: o.overall.edit_minutes.mean,
     "no completed (accepted or edited) answer with edit minutes"),
    ("max_rejection_rate", "<=", lambda o: o.overall.rejection.rate, "no exchange with feedback"),
    ("max_policy_violation_rate", "<=", lambda o: o.overall.policy_violation.rate, "no exchange with feedback"),
    ("min_reviewer_kappa", ">=", lambda o: o.agreement[0].kappa if o.agreement else None,
     "no exchange judged by two or more reviewers, or every verdict the same (kappa undefined)"),
]
OUTCOMES_OWNER, OUTCOMES_SCOPE = "primary", "outcomes"


def evaluate_gate(report: ReportData, gate: GateConfig) -> GateVerdict:
    checks: list[GateCheck] = []
    if not report.candidates:
        checks.append(GateCheck("(none)", "overall", "candidates", 0, 1, ">=", "fail",
                                "no candidate has shadow rows in the selected range"))
    for candidate in report.candidates:
        checks.extend(_candidate_checks(candidate, gate))
    checks.extend(_outcome_checks(report.outcomes, gate))
    failed = [f"{check.candidate} {check.scope} {check.check}" for check in checks if check.status == "fail"]
    skipped = sum(check.status == "skipped" for check in checks)
    verdicts = [candidate_verdict(candidate.name, [check for check in checks if check.candidate == candidate.name])
                for candidate in report.candidates]
    return GateVerdict(passed=not failed, checks=checks, failed=failed, skipped=skipped, candidates=verdicts)


def candidate_verdict(name: str, checks: list[GateCheck]) -> CandidateVerdict:
    """The one pass/fail for a candidate: the gate exits on it and every report format shows it."""
    failed = [check for check in checks if check.status == "fail"]
    if not failed:
        verdict = READY
    elif all(check.check == "min_samples" for check in failed):
        verdict = NOT_ENOUGH_DATA
    else:
        verdict = NOT_READY
    return CandidateVerdict(name, verdict, failed, len(checks), sum(check.status == "skipped" for check in checks))


def _candidate_checks(candidate: CandidateReport, gate: GateConfig) -> list[GateCheck]:
    overall = candidate.overall
    checks = [_compare(candidate.name, "overall", "min_samples", overall.samples, gate.min_samples, ">=", None)]
    checks.extend(_figure_checks(candidate.name, "overall", overall, gate))
    if not gate.per_category:
        return checks
    for category in candidate.categories:
        if not _gated_dimension(category.dimension, gate.categories):
            continue
        scope = f"{category.dimension}={category.value}"
        samples = category.figures.samples
        if samples < gate.category_min_samples:
            checks.append(GateCheck(candidate.name, scope, "category_min_samples", samples, gate.category_min_samples,
                                    ">=", "skipped", f"only {samples} samples: category not gated"))
            continue
        checks.extend(_figure_checks(candidate.name, scope, category.figures, gate))
    return checks


def _outcome_checks(outcomes: OutcomesReport | None, gate: GateConfig) -> list[GateCheck]:
    checks = []
    exchanges = outcomes.exchanges if outcomes is not None else 0
    for check, comparison, figure, missing in _OUTCOME_CHECKS:
        threshold = getattr(gate, check)
        if threshold == OUTCOME_CHECKS_OFF[check]:
            continue
        if outcomes is None or exchanges < gate.outcomes_min_exchanges:
            checks.append(GateCheck(OUTCOMES_OWNER, OUTCOMES_SCOPE, check, None, threshold, comparison, "skipped",
                                    f"only {exchanges} exchanges with feedback (outcomes_min_exchanges = "
                                    f"{gate.outcomes_min_exchanges})"))
            continue
        checks.append(_compare(OUTCOMES_OWNER, OUTCOMES_SCOPE, check, figure(outcomes), threshold, comparison, missing))
    return checks


def _gated_dimension(dimension: str, wanted: list[str]) -> bool:
    return dimension in wanted or (dimension.startswith("tag:") and "tag" in wanted)


def _figure_checks(name: str, scope: str, figures: KeyFigures, gate: GateConfig) -> list[GateCheck]:
    checks = []
    for check, comparison, figure, missing in _CHECKS:
        result = _compare(name, scope, check, figure(figures), getattr(gate, check), comparison, missing)
        interval = _INTERVALS.get(check)
        if interval is not None and result.figure is not None:
            low, high = interval(figures)
            result = replace(result, low=low, high=high)
        checks.append(result)
    return checks


def _compare(name: str, scope: str, check: str, figure: float | None, threshold: float, comparison: str,
             missing: str | None) -> GateCheck:
    if figure is None:
        return GateCheck(name, scope, check, None, threshold, comparison, "skipped", missing)
    ok = figure >= threshold - _EPSILON if comparison == ">=" else figure <= threshold + _EPSILON
    reason = None if ok else f"{figure:.4g} is not {comparison} {threshold:g}"
    return GateCheck(name, scope, check, figure, threshold, comparison, "pass" if ok else "fail", reason)
