"""The report laid out as plain-text tables, shared by the terminal and Markdown renderers."""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.evaluators.report.error_reasons import describe_reasons
from shadowtap.evaluators.report.model import (
    NOT_ENOUGH_DATA,
    NOT_READY,
    READY,
    CandidateVerdict,
    GateCheck,
    GateVerdict,
    Interval,
    KeyFigures,
    LatencyFigures,
    PairedMean,
    Rate,
    ReportData,
)
from shadowtap.evaluators.report.source import TWIN

NONE = "–"


@dataclass(frozen=True)
class TextTable:
    title: str
    columns: list[str]
    rows: list[list[str]]


def number(value: float | None, digits: int = 3) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 3) -> str:
    return NONE if value is None else f"{value:+.{digits}f}"


def times(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}×"


def percent(rate: Rate) -> str:
    return NONE if rate.rate is None else f"{rate.rate:.1%} ({rate.count}/{rate.n})"


def interval(value: Interval) -> str:
    if value.mean is None:
        return NONE
    bounds = "" if value.low is None else f" [{value.low:.3f}, {value.high:.3f}]"
    return f"{value.mean:.3f}{bounds}"


def paired(value: PairedMean) -> str:
    """Candidate mean vs primary mean, and the difference with its interval."""
    if value.n == 0:
        return NONE
    diff = value.difference
    bounds = "" if diff.low is None else f" [{diff.low:+.3f}, {diff.high:+.3f}]"
    return f"{value.candidate.mean:.3f} vs {value.primary.mean:.3f}: {diff.mean:+.3f}{bounds} n={value.n}"


QUALITY_COLUMNS = ["samples", "agreement [95% CI]", "noise", "above noise", "disagree > noise",
                   "faithfulness cand vs prim: Δ [95% CI]", "grounding cand vs prim: Δ [95% CI]",
                   "stale ctx", "contract valid", "refusal", "worse"]
OPERATIONS_COLUMNS = ["calls", "skipped", "errors", "timeouts", "top error reasons", "p50 ×", "p95 ×", "ttft p50 ×",
                      "$/1k req", "cost ×", "tokens ×"]
VERDICT_NAMES = {READY: "READY", NOT_READY: "NOT READY", NOT_ENOUGH_DATA: "NOT ENOUGH DATA"}
WRONG_SIDE = {">=": "<", "<=": ">"}   # how a failed check's figure stands to its threshold


def quality_cells(figures: KeyFigures) -> list[str]:
    agreement = figures.agreement
    return [str(figures.samples), interval(agreement.candidate), number(agreement.noise.mean),
            signed(agreement.above_noise), number(agreement.disagreement_above_noise),
            paired(figures.faithfulness), paired(figures.grounding), percent(figures.stale_context),
            percent(figures.contract_valid), percent(figures.refusal),
            ", ".join(finding.metric for finding in figures.significantly_worse) or ""]


def operations_cells(figures: KeyFigures) -> list[str]:
    calls, latency, cost = figures.calls, figures.latency, figures.cost
    skipped = ", ".join(f"{reason} {count}" for reason, count in calls.skipped.items())
    per_1k = NONE if cost.candidate_per_1k_usd is None else f"${cost.candidate_per_1k_usd:.4f}"
    return [str(calls.made), skipped, percent(calls.error_rate), percent(calls.timeout_rate),
            describe_reasons(calls.error_reasons), times(latency.p50_ratio), against(latency),
            times(latency.ttft_p50_ratio), per_1k, times(cost.ratio), times(cost.tokens_ratio)]


def against(latency: LatencyFigures) -> str:
    """The p95 ratio, naming the twin when it is the baseline (the table's title names the primary)."""
    figure = times(latency.p95_ratio)
    return f"{figure} vs twin" if latency.baseline == TWIN and latency.p95_ratio is not None else figure


def check_text(check: GateCheck) -> str:
    """A failed check as `max_grounding_drop 0.163 [0.057, 0.269] > 0.05` (the figure with its 95%
    interval when it has one, on the wrong side of the threshold), with the scope when it is not
    overall."""
    figure = NONE if check.figure is None else f"{check.figure:.3g}"
    if check.low is not None and check.high is not None:
        figure += f" [{check.low:.3g}, {check.high:.3g}]"
    scope = "" if check.scope == "overall" else f"{check.scope} "
    return f"{scope}{check.check} {figure} {WRONG_SIDE[check.comparison]} {check.threshold:g}"


def verdict_table(verdict: GateVerdict) -> TextTable:
    """One line per candidate: its verdict and the checks that decide it (the gate's own)."""
    rows = [[item.candidate, VERDICT_NAMES[item.verdict], why(item)] for item in verdict.candidates]
    return TextTable("verdict: each candidate against the [gate] thresholds", ["candidate", "verdict", "why"], rows)


def why(item: CandidateVerdict) -> str:
    """The failing checks, or how many passed (the HTML page words it alike: render_html._why)."""
    if item.failed:
        return "; ".join(check_text(check) for check in item.failed)
    return f"all {item.checks - item.skipped} checks passed" + (f", {item.skipped} skipped" if item.skipped else "")


def report_tables(report: ReportData) -> list[TextTable]:
    tables = [
        TextTable("quality: candidates against the primary", ["candidate", *QUALITY_COLUMNS],
                  [[c.name, *quality_cells(c.overall)] for c in report.candidates]),
        TextTable("operations: ratios to the primary on the same exchanges", ["candidate", *OPERATIONS_COLUMNS],
                  [[c.name, *operations_cells(c.overall)] for c in report.candidates]),
    ]
    for candidate in report.candidates:
        # Categories the candidate was never called in (every row skipped) stay in the JSON only.
        called = [c for c in candidate.categories if c.figures.calls.made or c.figures.samples]
        if called:
            tables.append(TextTable(
                f"{candidate.name} by category (worse = significantly worse than the primary)",
                ["category", *QUALITY_COLUMNS, "errors", "p95 ×", "cost ×"],
                [[f"{c.dimension}={c.value}", *quality_cells(c.figures), percent(c.figures.calls.error_rate),
                  times(c.figures.latency.p95_ratio), times(c.figures.cost.ratio)] for c in called]))
        points = [point for point in report.trends if point.candidate == candidate.name]
        if points:
            tables.append(TextTable(
                f"{candidate.name} per {report.window} window",
                ["window start", "samples", "agreement", "above noise", "faithfulness Δ", "grounding Δ",
                 "contract valid", "errors", "p95 ×", "cost ×", "worse"],
                [[point.start, str(point.figures.samples), number(point.figures.agreement.candidate.mean),
                  signed(point.figures.agreement.above_noise), signed(point.figures.faithfulness.difference.mean),
                  signed(point.figures.grounding.difference.mean), percent(point.figures.contract_valid),
                  percent(point.figures.calls.failure_rate), times(point.figures.latency.p95_ratio),
                  times(point.figures.cost.ratio),
                  ", ".join(finding.metric for finding in point.figures.significantly_worse)] for point in points]))
    return tables


def gate_table(verdict: GateVerdict) -> TextTable:
    rows = [[check.candidate, check.scope, check.check, number(check.figure, 4),
             f"{check.comparison} {check.threshold:g}", check.status.upper(), check.reason or ""]
            for check in verdict.checks]
    return TextTable("gate: " + ("PASSED" if verdict.passed else "FAILED"),
                     ["candidate", "scope", "check", "figure", "threshold", "result", "note"], rows)
