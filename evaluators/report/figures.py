"""The key figures for one candidate over one slice of traffic, and which of them are significantly worse.

A slice is a set of exchange ids (all in range, a category, a time window). Every candidate figure
is taken over the candidate's answered exchanges in the slice; every primary figure it is compared
with over the same exchanges (paired). The twin noise floor is taken over the whole slice.

The figures are computed from a slice's `TallySums` (tally.py), which add up over parts of a slice:
`key_figures` tallies one slice's rows directly; the report (slices.py) adds up tallied cells.
"""

from __future__ import annotations

from collections.abc import Collection
from operator import itemgetter

from shadowtap.evaluators.report.model import (
    AgreementFigures,
    CallCounts,
    CostFigures,
    Finding,
    KeyFigures,
    LatencyFigures,
    PairedMean,
    Rate,
)
from shadowtap.evaluators.report.source import PRIMARY, TWIN, ReportInput
from shadowtap.evaluators.report.stats import (
    DIFFERENCE_RANGE,
    SCORE_RANGE,
    percentile_of_sorted,
    ratio,
    two_proportion_z,
    wilson,
)
from shadowtap.evaluators.report.tally import (
    AgreementSums,
    LatencyLists,
    RowReader,
    RowTally,
    TallySums,
    add_noise,
)

ALPHA = 0.05
CALL_OUTCOMES = ("ok", "error", "timeout")
TWIN_BASELINE_MIN_PAIRS = 20  # fewer twin answers than this: a p95 over them is noise; the primary's is used


def key_figures(data: ReportInput, candidate: str, exchange_ids: Collection[str] | None = None) -> KeyFigures:
    """Every figure for `candidate` over the exchanges in `exchange_ids` (None: all in range)."""
    in_slice = (lambda exchange_id: True) if exchange_ids is None else exchange_ids.__contains__
    reader, tally = RowReader(data, candidate), RowTally()
    for place, row in enumerate(data.shadows.get(candidate, [])):
        if in_slice(row["exchange_id"]):
            reader.add_row(tally, row, place)
    for exchange_id in (data.exchanges if exchange_ids is None else exchange_ids):
        if exchange_id in data.exchanges:
            add_noise(data, tally, exchange_id)
    return figures_of(tally.sums())


def figures_of(sums: TallySums) -> KeyFigures:
    """Every figure of a slice from its tally."""
    figures = KeyFigures(
        samples=sums.outcomes["ok"],
        calls=_calls(sums),
        agreement=_agreement(sums.agreement, sums.noise),
        faithfulness=_paired(sums, "faithfulness"),
        grounding=_paired(sums, "grounding"),
        stale_context=_rate(sums, "stale_context"),
        contract_valid=_rate(sums, "contract_valid"),
        primary_contract_valid=_rate(sums, "primary_contract_valid"),
        refusal=_rate(sums, "refusal"),
        primary_refusal=_rate(sums, "primary_refusal"),
        latency=_latency(sums),
        cost=_cost(sums),
    )
    findings = significance(figures)
    return KeyFigures(**{**figures.__dict__, "significantly_worse": findings})


def _calls(sums: TallySums) -> CallCounts:
    outcomes = sums.outcomes
    made = sum(outcomes[outcome] for outcome in CALL_OUTCOMES)
    reasons = dict(sorted(sums.error_reasons.items(), key=lambda item: (-item[1], item[0])))  # as count_reasons
    return CallCounts(made=made, answered=outcomes["ok"], errors=outcomes["error"], timeouts=outcomes["timeout"],
                      cancelled=outcomes["cancelled"], skipped=dict(sorted(sums.skipped.items())),
                      error_rate=wilson(outcomes["error"], made), timeout_rate=wilson(outcomes["timeout"], made),
                      failure_rate=wilson(outcomes["error"] + outcomes["timeout"], made), error_reasons=reasons)


def _agreement(candidate: AgreementSums, noise: AgreementSums) -> AgreementFigures:
    mean, noise_mean = candidate.moments.interval(within=SCORE_RANGE), noise.moments.interval(within=SCORE_RANGE)
    differs = wilson(candidate.below, candidate.moments.n)
    noise_differs = wilson(noise.below, noise.moments.n)
    above = None if mean.mean is None or noise_mean.mean is None else mean.mean - noise_mean.mean
    excess = None if differs.rate is None or noise_differs.rate is None else max(0.0, differs.rate - noise_differs.rate)
    return AgreementFigures(candidate=mean, noise=noise_mean, above_noise=above, disagreement=differs,
                            noise_disagreement=noise_differs, disagreement_above_noise=excess)


def _paired(sums: TallySums, evaluator: str) -> PairedMean:
    paired = sums.paired[evaluator]
    return PairedMean(candidate=paired.mine.interval(within=SCORE_RANGE),
                      primary=paired.theirs.interval(within=SCORE_RANGE),
                      difference=paired.difference.interval(within=DIFFERENCE_RANGE), n=paired.mine.n)


def _rate(sums: TallySums, name: str) -> Rate:
    count = sums.label(name)
    return wilson(count.count, count.n)


def latency_baseline(sums: TallySums) -> tuple[str, LatencyLists]:
    """What a candidate's latency is compared with: the primary twin's answers to the same
    exchanges when at least TWIN_BASELINE_MIN_PAIRS of them exist (the twin is timed by the same
    worker, client and clock as the candidate), else the primary's live latency, which the
    candidate's path cannot match (the worker's own overhead is in every candidate figure)."""
    if len(sums.latency_vs_twin.mine) >= TWIN_BASELINE_MIN_PAIRS:
        return TWIN, sums.latency_vs_twin
    return PRIMARY, sums.latency_vs_primary


def _latency(sums: TallySums) -> LatencyFigures:
    baseline, lists = latency_baseline(sums)
    # Sorted once here (each part's list is sorted: the sort merges runs), not once per quantile.
    mine, theirs = sorted(lists.mine), sorted(lists.theirs)
    at = percentile_of_sorted
    c50, c95, p50, p95 = at(mine, .5), at(mine, .95), at(theirs, .5), at(theirs, .95)
    t_mine, t_theirs = at(sorted(lists.ttft_mine), .5), at(sorted(lists.ttft_theirs), .5)
    return LatencyFigures(n=len(mine), candidate_p50_ms=c50, candidate_p95_ms=c95, primary_p50_ms=p50,
                          primary_p95_ms=p95, p50_ratio=ratio(c50, p50), p95_ratio=ratio(c95, p95),
                          ttft_n=len(lists.ttft_mine), candidate_ttft_p50_ms=t_mine, primary_ttft_p50_ms=t_theirs,
                          ttft_p50_ratio=ratio(t_mine, t_theirs), baseline=baseline)


def _cost(sums: TallySums) -> CostFigures:
    costs = sums.costs  # in the order the rows were read: a float sum depends on it
    n = len(costs)
    mine = sum(map(itemgetter(1), costs)) / n if n else None
    theirs = sum(map(itemgetter(2), costs)) / n if n else None
    mine_1k, theirs_1k = (None if mine is None else mine * 1000), (None if theirs is None else theirs * 1000)
    count = sums.tokens_n
    t_mine = sums.tokens_mine / count if count else None
    t_theirs = sums.tokens_theirs / count if count else None
    return CostFigures(n=n, candidate_per_1k_usd=mine_1k, primary_per_1k_usd=theirs_1k,
                       ratio=ratio(mine_1k, theirs_1k), tokens_n=count, candidate_tokens_mean=t_mine,
                       primary_tokens_mean=t_theirs, tokens_ratio=ratio(t_mine, t_theirs))


def significance(figures: KeyFigures) -> list[Finding]:
    """Metrics on which the candidate is significantly worse than the primary (alpha 0.05, two-sided).

    - faithfulness, grounding: the paired t-interval of (candidate - primary) lies wholly below 0;
    - agreement: the candidate's share of answers below 0.9 exceeds the twin's share below 0.9
      (two-proportion z-test), i.e. it differs from the primary more than the primary from itself;
    - contract: the candidate's invalid share exceeds the primary's on the same exchanges
      (two-proportion z-test; the pairing is ignored, which makes the test conservative).
    """
    findings = []
    for metric, paired in (("faithfulness", figures.faithfulness), ("grounding", figures.grounding)):
        if paired.difference.high is not None and paired.difference.high < 0:
            findings.append(Finding(metric, "paired t-interval", paired.candidate.mean, paired.primary.mean,
                                    paired.difference.high, None))
    agreement = figures.agreement
    finding = _proportion_worse("agreement", agreement.disagreement, agreement.noise_disagreement)
    if finding:
        findings.append(finding)
    invalid = _complement(figures.contract_valid)
    finding = _proportion_worse("contract", invalid, _complement(figures.primary_contract_valid))
    if finding:
        findings.append(finding)
    return findings


def _complement(rate: Rate) -> Rate:
    return wilson(rate.n - rate.count, rate.n)


def _proportion_worse(metric: str, candidate: Rate, primary: Rate) -> Finding | None:
    """A finding when the candidate's bad-outcome share is significantly higher than the primary's."""
    tested = two_proportion_z(candidate.count, candidate.n, primary.count, primary.n)
    if tested is None:
        return None
    z, p_value = tested
    if z <= 0 or p_value >= ALPHA:
        return None
    return Finding(metric, "two-proportion z-test", candidate.rate, primary.rate, z, p_value)
