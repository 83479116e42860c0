"""Assembles a ReportData from the store: per candidate, per category, per time window, plus chart data."""

from __future__ import annotations

import contextlib
import gc
import heapq
import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from shadowtap.core.config import OutcomesConfig
from shadowtap.core.store.report_reads import ReportReads
from shadowtap.evaluators.report.canary_section import build_canary_section
from shadowtap.evaluators.report.forked import beside
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
from shadowtap.evaluators.report.slices import CandidateSlices, ReportSlices
from shadowtap.evaluators.report.source import (
    PRIMARY,
    REPORT_EVALUATORS,
    ReportInput,
    load_feedback,
    load_input,
)
from shadowtap.evaluators.report.stats import thin

LATENCY_SAMPLE_CAP = 2000
_TEN = 10.0  # value * 10 and 10.0 * value are the same double
WORST_PER_CANDIDATE = 20
FORK_AT_ROWS = 100_000  # shadow rows: below them a fork is not worth its start (tens of milliseconds)
DEFAULT_WINDOW = "1d"
_WINDOW_RE = re.compile(r"^(\d+)([mhdw])$")
_WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

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


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The report builds millions of long-lived records (rows, scores) and no reference cycles
    worth collecting; each of the collector's full passes walks all of them again. At 1,000,000
    exchanges, pausing it took a third off reading the store."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_report(reads: ReportReads, *, store: str, since: str | None = None, until: str | None = None,
                 window: str | None = None, candidate: str | None = None, now: datetime | None = None,
                 outcomes: OutcomesConfig | None = None, fork: bool = False) -> ReportData:
    """The report over exchanges with since <= started_at < until. `fork`: a process that owns its run
    (the `report` and `gate` commands, not the review app) may compute part of a large report in a
    forked child, on a second core (see forked.py)."""
    with _cyclic_gc_paused():
        return _build_report(reads, store=store, since=since, until=until, window=window, candidate=candidate,
                             now=now, outcomes=outcomes, fork=fork)


def _build_report(reads: ReportReads, *, store: str, since: str | None, until: str | None, window: str | None,
                  candidate: str | None, now: datetime | None, outcomes: OutcomesConfig | None,
                  fork: bool) -> ReportData:
    with reads.snapshot():
        data = load_input(reads, since=since, until=until)
        feedback = load_feedback(reads, since=since, until=until)
        names = [name for name in data.candidates if candidate is None or name == candidate]
        if candidate is not None and candidate not in names:
            names = [candidate]  # a report of nothing is still a report: zero samples, which the gate fails
        worst = [row for name in names for row in worst_disagreements(reads, data, name)]  # reads their texts
    step = parse_window(window or DEFAULT_WINDOW)
    by_candidate, score_distributions, samples = _figures(data, ReportSlices(data, step), names, fork=fork)
    reports = [candidate_report(data, name, by_candidate[name]) for name in names]
    return ReportData(
        schema_version=SCHEMA_VERSION,
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        store=store, since=since, until=until, window=window or DEFAULT_WINDOW, exchanges=data.exchange_count,
        candidates=reports,
        trends=[point for name in names for point in trends(name, by_candidate[name], step)],
        distributions=score_distributions,
        latency_samples=samples,
        heatmap=heatmap(reports),
        worst_disagreements=worst,
        methods={**METHODS, **OUTCOME_METHODS},
        outcomes=build_outcomes(data.exchanges, feedback, outcomes or OutcomesConfig()),
        canary=build_canary_section(reads, since=since, until=until, outcomes=outcomes or OutcomesConfig()),
    )


def _figures(data: ReportInput, slices: ReportSlices, names: list[str], *,
             fork: bool) -> tuple[dict[str, CandidateSlices], list[ScoreDistribution], list[LatencySamples]]:
    """Each candidate's figures, the score distributions and the latency samples. With `fork`, over
    FORK_AT_ROWS rows, every other candidate by size (the largest first) is worked out in a forked
    child while this process works out the rest: at 1,000,000 exchanges the two largest candidates
    take 3 s and 1.5 s, and the distributions and samples another 1.5 s."""
    by_size = sorted(names, key=lambda name: -len(data.shadows.get(name, ())))
    theirs, here = by_size[::2], by_size[1::2]
    rows = sum(len(data.shadows.get(name, ())) for name in names)

    def forked() -> dict[str, CandidateSlices]:
        return {name: slices.candidate(name) for name in theirs}

    def meanwhile() -> tuple[dict[str, CandidateSlices], list[ScoreDistribution], list[LatencySamples]]:
        return ({name: slices.candidate(name) for name in here}, distributions(data, names),
                latency_samples(data, names))

    figures, (more, score_distributions, samples) = beside(forked, meanwhile, fork=fork and rows >= FORK_AT_ROWS)
    figures.update(more)
    return {name: figures[name] for name in names}, score_distributions, samples


def candidate_report(data: ReportInput, name: str, slices: CandidateSlices) -> CandidateReport:
    # Each category's figures hold its whole traffic's twin scores, so its noise floor is complete.
    categories = [CategoryReport(dimension, value, figures)
                  for (dimension, value), figures in sorted(slices.categories.items(),
                                                            key=lambda kv: _category_order(kv[0]))]
    rows = data.shadows.get(name, [])
    model = next((row["model"] for row in reversed(rows) if row["model"]), None)
    return CandidateReport(name=name, model=model, overall=slices.overall, categories=categories)


def _category_order(pair: tuple[str, str]) -> tuple[int, str, str]:
    dimension, value = pair
    return ({"endpoint": 0, "task": 1, "risk_tier": 2}.get(dimension, 3), dimension, value)


def trends(name: str, slices: CandidateSlices, step: timedelta) -> list[TrendPoint]:
    points = []
    for start in sorted(slices.windows):
        figures = slices.windows[start]
        if figures.samples or figures.calls.made or figures.calls.skipped:
            points.append(TrendPoint(name, start.isoformat(), (start + step).isoformat(), figures))
    return points


def distributions(data: ReportInput, names: list[str]) -> list[ScoreDistribution]:
    result = []
    for evaluator in REPORT_EVALUATORS:
        for source in [PRIMARY, *names]:
            found = [score.value for score in data.scores_of(source, evaluator).values()]
            if found:
                counts = [0] * 10
                # int(value * 10) of each value, counted in C; bins clamped once per distinct bin.
                for index, count in Counter(map(int, map(_TEN.__mul__, found))).items():
                    counts[min(9, max(0, index))] += count
                # fsum: the correctly rounded sum, whatever order the database returned the scores in
                # (a plain sum differed in the last digits between SQLite and PostgreSQL).
                result.append(ScoreDistribution(evaluator, source, len(found), math.fsum(found) / len(found), counts))
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


def worst_disagreements(reads: ReportReads, data: ReportInput, name: str,
                        limit: int = WORST_PER_CANDIDATE) -> list[Disagreement]:
    agreement = data.scores_of(name, "agreement")
    answered = [(score.value, row) for row in data.shadows.get(name, [])
                if row["outcome"] == "ok" and (score := agreement.get(row["exchange_id"])) is not None]
    if len(answered) > limit:  # only rows at or below the limit-th lowest value can be among the worst
        highest = heapq.nsmallest(limit, [value for value, _ in answered])[-1]
        answered = [(value, row) for value, row in answered if value <= highest]
    scored = [(value, data.exchanges[row["exchange_id"]]["started_at"], row, agreement[row["exchange_id"]])
              for value, row in answered]
    # The `limit` lowest, as the head of a stable sort by (agreement, time, exchange id) would be.
    worst = heapq.nsmallest(limit, scored, key=lambda entry: (entry[0], entry[1], entry[2]["exchange_id"]))
    primary_texts = reads.texts("exchanges", [row["exchange_id"] for _, _, row, _ in worst])
    candidate_texts = reads.texts("shadows", [row["id"] for _, _, row, _ in worst])
    result = []
    for value, started_at, row, score in worst:
        exchange = data.exchanges[row["exchange_id"]]
        result.append(Disagreement(
            candidate=name, exchange_id=row["exchange_id"], started_at=started_at, endpoint=exchange["endpoint"],
            task=exchange["task"], risk_tier=exchange["risk_tier"], agreement=value, label=score.label,
            method=score.details.get("method"), primary_text=primary_texts.get(row["exchange_id"]),
            candidate_text=candidate_texts.get(row["id"])))
    return result
