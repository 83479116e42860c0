"""Assembles a ReportData from the store: per candidate, per category, per time window, plus chart data."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from shadowtap.core.config import OutcomesConfig
from shadowtap.core.store.report_reads import ReportReads
from shadowtap.evaluators.report.canary_section import build_canary_section
from shadowtap.evaluators.report.figures import key_figures
from shadowtap.evaluators.report.model import (
    SCHEMA_VERSION,
    CandidateReport,
    CategoryReport,
    Disagreement,
    HeatmapCell,
    LatencySamples,
    ReportData,
    ScoreDistribution,
    TrendPoint,
)
from shadowtap.evaluators.report.outcomes_build import OUTCOME_METHODS, build_outcomes
from shadowtap.evaluators.report.slices import overall_slice, slices_by
from shadowtap.evaluators.report.source import (
    PRIMARY,
    REPORT_EVALUATORS,
    ReportInput,
    categories_of,
    load_feedback,
    load_input,
)
from shadowtap.evaluators.report.stats import thin

LATENCY_SAMPLE_CAP = 2000
WORST_PER_CANDIDATE = 20
DEFAULT_WINDOW = "1d"
_WINDOW_RE = re.compile(r"^(\d+)([mhdw])$")
_WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

METHODS = {
    "samples": "answered shadow calls (outcome ok) in the slice",
    "calls": "made = ok + error + timeout; cancelled (at shutdown) and skipped are counted apart; "
             "error, timeout and failure (error + timeout) rates are over calls made",
    "error_reasons": "per candidate, why calls erred or timed out: the error's class and the first sentence of "
                     "its message, counted, most frequent first (the operations table shows the top three)",
    "verdict": "per candidate, from its [gate] checks (the same ones `shadowtap gate` exits on): ready when none "
               "fails, not enough data when only min_samples fails, not ready when any other check fails",
    "agreement": "mean agreement score of the candidate's answers against the primary's",
    "noise": "mean agreement of the primary against its twin (its own second answer) over every "
             "twin-scored exchange in the slice; null when the slice has no twin samples",
    "agreement_above_noise": "candidate agreement mean minus noise mean",
    "disagreement_above_noise": "max(0, share of candidate answers with agreement < 0.9 minus share of "
                                "primary-vs-twin pairs with agreement < 0.9), Diffy-style",
    "faithfulness, grounding": "means for the candidate and for the primary over the exchanges where both "
                               "answers have a score (paired); difference = candidate - primary",
    "intervals": "means: 95% Student t-interval (no bounds below 2 values); rates: 95% Wilson score interval",
    "stale_context": "share of the candidate's answered exchanges whose primary freshness label is stale, "
                     "over those with a freshness score",
    "contract_valid": "share of contract scores labelled valid (candidate; primary on the same exchanges)",
    "refusal": "candidate: labels both_refused or refused_where_primary_answered over refusal scores; "
               "primary: label refused, on the same exchanges",
    "latency": "p50/p95 (linear interpolation) of candidate and baseline latency over exchanges where both "
               "are known; ratio = candidate percentile / baseline percentile; ttft likewise (streams); the "
               "baseline (latency.baseline) is the primary twin, timed by the same shadow worker, when it "
               "answered at least 20 of the candidate's exchanges, else the primary's live latency",
    "cost": "cost per 1,000 requests = mean cost_usd x 1000 over answered exchanges where both costs are "
            "known; tokens = mean total tokens per request; ratios candidate / primary",
    "significantly_worse": "faithfulness, grounding: paired 95% t-interval of the difference wholly below 0; "
                           "agreement: candidate share below 0.9 higher than the twin's (two-proportion "
                           "z-test, two-sided p < 0.05); contract: candidate invalid share higher than the "
                           "primary's (same test)",
    "categories": "endpoint, task, risk_tier and tag:NAME for each x-shadowtap tag; an exchange without a "
                  "task or risk tier is in no category of that dimension",
    "windows": "fixed windows aligned to the Unix epoch (UTC midnight for days); empty windows omitted",
}


def parse_window(text: str) -> timedelta:
    """A window such as 30m, 6h, 1d, 1w; ValueError otherwise."""
    match = _WINDOW_RE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"window {text!r}: expected a positive length such as 30m, 6h, 1d or 1w")
    return timedelta(**{_WINDOW_UNITS[match.group(2)]: int(match.group(1))})


def build_report(reads: ReportReads, *, store: str, since: str | None = None, until: str | None = None,
                 window: str | None = None, candidate: str | None = None, now: datetime | None = None,
                 outcomes: OutcomesConfig | None = None) -> ReportData:
    with reads.snapshot():
        data = load_input(reads, since=since, until=until)
        feedback = load_feedback(reads, since=since, until=until)
    names = [name for name in data.candidates if candidate is None or name == candidate]
    if candidate is not None and candidate not in names:
        names = [candidate]  # a report of nothing is still a report: zero samples, which the gate fails
    step = parse_window(window or DEFAULT_WINDOW)
    reports = [candidate_report(data, name) for name in names]
    return ReportData(
        schema_version=SCHEMA_VERSION,
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        store=store, since=since, until=until, window=window or DEFAULT_WINDOW, exchanges=data.exchange_count,
        candidates=reports,
        trends=[point for name in names for point in trends(data, name, step)],
        distributions=distributions(data, names),
        latency_samples=latency_samples(data, names),
        heatmap=heatmap(reports),
        worst_disagreements=[row for name in names for row in worst_disagreements(data, name)],
        methods={**METHODS, **OUTCOME_METHODS},
        outcomes=build_outcomes(data.exchanges, feedback, outcomes or OutcomesConfig()),
        canary=build_canary_section(reads, since=since, until=until, outcomes=outcomes or OutcomesConfig()),
    )


def candidate_report(data: ReportInput, name: str) -> CandidateReport:
    # Each category's slice holds its whole traffic's twin scores, so its noise floor is complete.
    by_category = slices_by(data, name, categories_of)
    categories = [CategoryReport(dimension, value, key_figures(part.data, name, part.exchange_ids))
                  for (dimension, value), part in sorted(by_category.items(), key=lambda kv: _category_order(kv[0]))]
    rows = data.shadows.get(name, [])
    model = next((row["model"] for row in reversed(rows) if row["model"]), None)
    overall = overall_slice(data, name)
    return CandidateReport(name=name, model=model, overall=key_figures(overall.data, name, overall.exchange_ids),
                           categories=categories)


def _category_order(pair: tuple[str, str]) -> tuple[int, str, str]:
    dimension, value = pair
    return ({"endpoint": 0, "task": 1, "risk_tier": 2}.get(dimension, 3), dimension, value)


def window_start(moment: datetime, step: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // step) * step


def trends(data: ReportInput, name: str, step: timedelta) -> list[TrendPoint]:
    buckets = slices_by(data, name, lambda exchange: (window_start(exchange["started_dt"], step),))
    points = []
    for start in sorted(buckets):
        figures = key_figures(buckets[start].data, name, buckets[start].exchange_ids)
        if figures.samples or figures.calls.made or figures.calls.skipped:
            points.append(TrendPoint(name, start.isoformat(), (start + step).isoformat(), figures))
    return points


def distributions(data: ReportInput, names: list[str]) -> list[ScoreDistribution]:
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    wanted = {PRIMARY, *names}
    for (_, source, evaluator), score in data.scores.items():
        if source in wanted:
            values[evaluator, source].append(score.value)
    result = []
    for evaluator in REPORT_EVALUATORS:
        for source in [PRIMARY, *names]:
            found = values.get((evaluator, source))
            if found:
                counts = [0] * 10
                for value in found:
                    counts[min(9, max(0, int(value * 10)))] += 1
                result.append(ScoreDistribution(evaluator, source, len(found), sum(found) / len(found), counts))
    return result


def latency_samples(data: ReportInput, names: list[str]) -> list[LatencySamples]:
    result = [LatencySamples(PRIMARY, len(data.primary_latency), thin(data.primary_latency, LATENCY_SAMPLE_CAP),
                             len(data.primary_ttft), thin(data.primary_ttft, LATENCY_SAMPLE_CAP))]
    sources = [(name, [row for row in data.shadows.get(name, []) if row["outcome"] == "ok"]) for name in names]
    for source, rows in sources:
        latency = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
        ttft = [row["ttft_ms"] for row in rows if row["ttft_ms"] is not None]
        result.append(LatencySamples(source, len(latency), thin(latency, LATENCY_SAMPLE_CAP), len(ttft),
                                     thin(ttft, LATENCY_SAMPLE_CAP)))
    return result


def heatmap(reports: list[CandidateReport]) -> list[HeatmapCell]:
    cells = []
    for report in reports:
        for category in report.categories:
            figures = category.figures
            cells.append(HeatmapCell(
                candidate=report.name, dimension=category.dimension, value=category.value, samples=figures.samples,
                agreement=figures.agreement.candidate.mean, agreement_above_noise=figures.agreement.above_noise,
                faithfulness_difference=figures.faithfulness.difference.mean,
                grounding_difference=figures.grounding.difference.mean,
                contract_valid_rate=figures.contract_valid.rate,
                significantly_worse=[finding.metric for finding in figures.significantly_worse]))
    return cells


def worst_disagreements(data: ReportInput, name: str, limit: int = WORST_PER_CANDIDATE) -> list[Disagreement]:
    scored = []
    for row in data.shadows.get(name, []):
        score = data.score(row["exchange_id"], name, "agreement") if row["outcome"] == "ok" else None
        if score is not None:
            scored.append((score.value, data.exchanges[row["exchange_id"]]["started_at"], row, score))
    scored.sort(key=lambda entry: (entry[0], entry[1], entry[2]["exchange_id"]))
    result = []
    for value, started_at, row, score in scored[:limit]:
        exchange = data.exchanges[row["exchange_id"]]
        result.append(Disagreement(
            candidate=name, exchange_id=row["exchange_id"], started_at=started_at, endpoint=exchange["endpoint"],
            task=exchange["task"], risk_tier=exchange["risk_tier"], agreement=value, label=score.label,
            method=score.details.get("method"), primary_text=exchange["response_text"],
            candidate_text=row["response_text"]))
    return result
