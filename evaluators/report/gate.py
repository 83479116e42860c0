"""The release gate: [gate] thresholds checked against a report, per candidate and optionally per category.

Each check passes, fails, or is skipped when its figure cannot be computed (no twin samples, no
faithfulness scores, no cost...): a skipped check neither passes nor fails the gate, and says why.
The gate fails when any check fails, and also when there is no candidate to check at all.
"""

from __future__ import annotations

from collections.abc import Callable

from evaluators.report.model import CandidateReport, GateCheck, GateVerdict, KeyFigures, ReportData
from proxy.config import GateConfig

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
     "no exchange with both latencies known (or the primary's p95 is 0)"),
    ("max_cost_ratio", "<=", lambda f: f.cost.ratio, "no exchange with both costs known (or the primary's is 0)"),
]


def evaluate_gate(report: ReportData, gate: GateConfig) -> GateVerdict:
    checks: list[GateCheck] = []
    if not report.candidates:
        checks.append(GateCheck("(none)", "overall", "candidates", 0, 1, ">=", "fail",
                                "no candidate has shadow rows in the selected range"))
    for candidate in report.candidates:
        checks.extend(_candidate_checks(candidate, gate))
    failed = [f"{check.candidate} {check.scope} {check.check}" for check in checks if check.status == "fail"]
    skipped = sum(check.status == "skipped" for check in checks)
    return GateVerdict(passed=not failed, checks=checks, failed=failed, skipped=skipped)


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


def _gated_dimension(dimension: str, wanted: list[str]) -> bool:
    return dimension in wanted or (dimension.startswith("tag:") and "tag" in wanted)


def _figure_checks(name: str, scope: str, figures: KeyFigures, gate: GateConfig) -> list[GateCheck]:
    return [_compare(name, scope, check, figure(figures), getattr(gate, check), comparison, missing)
            for check, comparison, figure, missing in _CHECKS]


def _compare(name: str, scope: str, check: str, figure: float | None, threshold: float, comparison: str,
             missing: str | None) -> GateCheck:
    if figure is None:
        return GateCheck(name, scope, check, None, threshold, comparison, "skipped", missing)
    ok = figure >= threshold - _EPSILON if comparison == ">=" else figure <= threshold + _EPSILON
    reason = None if ok else f"{figure:.4g} is not {comparison} {threshold:g}"
    return GateCheck(name, scope, check, figure, threshold, comparison, "pass" if ok else "fail", reason)
