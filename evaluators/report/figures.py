"""The key figures for one candidate over one slice of traffic, and which of them are significantly worse.

A slice is a set of exchange ids (all in range, a category, a time window). Every candidate figure
is taken over the candidate's answered exchanges in the slice; every primary figure it is compared
with over the same exchanges (paired). The twin noise floor is taken over the whole slice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from shadowtap.evaluators.report.error_reasons import count_reasons, error_reason
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
    mean_interval,
    percentile,
    ratio,
    two_proportion_z,
    wilson,
)

AGREE_AT = 0.9          # evaluators.agreement's "agree" threshold: below it an answer "differs"
ALPHA = 0.05
REFUSED_LABELS = frozenset({"both_refused", "refused_where_primary_answered"})
CALL_OUTCOMES = ("ok", "error", "timeout")
TWIN_BASELINE_MIN_PAIRS = 20  # fewer twin answers than this: a p95 over them is noise; the primary's is used


def key_figures(data: ReportInput, candidate: str, exchange_ids: Collection[str] | None = None) -> KeyFigures:
    """Every figure for `candidate` over the exchanges in `exchange_ids` (None: all in range)."""
    in_slice = (lambda exchange_id: True) if exchange_ids is None else exchange_ids.__contains__
    rows = [row for row in data.shadows.get(candidate, []) if in_slice(row["exchange_id"])]
    answered = [row for row in rows if row["outcome"] == "ok"]
    answered_ids = [row["exchange_id"] for row in answered]
    slice_ids = list(data.exchanges) if exchange_ids is None else [i for i in exchange_ids if i in data.exchanges]

    agreement = _agreement(data, candidate, answered_ids, slice_ids)
    faithfulness = _paired(data, candidate, answered_ids, "faithfulness")
    grounding = _paired(data, candidate, answered_ids, "grounding")
    contract_valid = _label_rate(data, candidate, answered_ids, "contract", {"valid"})
    primary_contract_valid = _label_rate(data, PRIMARY, answered_ids, "contract", {"valid"})
    figures = KeyFigures(
        samples=len(answered),
        calls=_calls(rows),
        agreement=agreement,
        faithfulness=faithfulness,
        grounding=grounding,
        stale_context=_label_rate(data, PRIMARY, answered_ids, "freshness", {"stale"}),
        contract_valid=contract_valid,
        primary_contract_valid=primary_contract_valid,
        refusal=_label_rate(data, candidate, answered_ids, "refusal", REFUSED_LABELS),
        primary_refusal=_label_rate(data, PRIMARY, answered_ids, "refusal", {"refused"}),
        latency=_latency(data, answered),
        cost=_cost(data, answered),
    )
    findings = significance(figures)
    return KeyFigures(**{**figures.__dict__, "significantly_worse": findings})


def _calls(rows: list[dict]) -> CallCounts:
    outcomes = Counter(row["outcome"] for row in rows)
    skipped = Counter(row["skip_reason"] or "unknown" for row in rows if row["outcome"] == "skipped")
    made = sum(outcomes[outcome] for outcome in CALL_OUTCOMES)
    reasons = count_reasons(error_reason(row.get("error_class"), row.get("error_message"), row["outcome"])
                            for row in rows if row["outcome"] in ("error", "timeout"))
    return CallCounts(made=made, answered=outcomes["ok"], errors=outcomes["error"], timeouts=outcomes["timeout"],
                      cancelled=outcomes["cancelled"], skipped=dict(sorted(skipped.items())),
                      error_rate=wilson(outcomes["error"], made), timeout_rate=wilson(outcomes["timeout"], made),
                      failure_rate=wilson(outcomes["error"] + outcomes["timeout"], made), error_reasons=reasons)


def _values(data: ReportInput, source: str, exchange_ids: list[str], evaluator: str) -> list[float]:
    return [score.value for exchange_id in exchange_ids
            if (score := data.score(exchange_id, source, evaluator)) is not None]


def _agreement(data: ReportInput, candidate: str, answered_ids: list[str], slice_ids: list[str]) -> AgreementFigures:
    values = _values(data, candidate, answered_ids, "agreement")
    # The primary's agreement score is always against its twin (details baseline "primary_twin").
    noise = [score.value for exchange_id in slice_ids
             if (score := data.score(exchange_id, PRIMARY, "agreement")) is not None
             and score.details.get("baseline", "primary_twin") == "primary_twin"]
    mean, noise_mean = mean_interval(values, within=SCORE_RANGE), mean_interval(noise, within=SCORE_RANGE)
    differs = wilson(sum(value < AGREE_AT for value in values), len(values))
    noise_differs = wilson(sum(value < AGREE_AT for value in noise), len(noise))
    above = None if mean.mean is None or noise_mean.mean is None else mean.mean - noise_mean.mean
    excess = None if differs.rate is None or noise_differs.rate is None else max(0.0, differs.rate - noise_differs.rate)
    return AgreementFigures(candidate=mean, noise=noise_mean, above_noise=above, disagreement=differs,
                            noise_disagreement=noise_differs, disagreement_above_noise=excess)


def _paired(data: ReportInput, candidate: str, answered_ids: list[str], evaluator: str) -> PairedMean:
    pairs = [(mine.value, theirs.value) for exchange_id in answered_ids
             if (mine := data.score(exchange_id, candidate, evaluator)) is not None
             and (theirs := data.score(exchange_id, PRIMARY, evaluator)) is not None]
    return PairedMean(candidate=mean_interval([a for a, _ in pairs], within=SCORE_RANGE),
                      primary=mean_interval([b for _, b in pairs], within=SCORE_RANGE),
                      difference=mean_interval([a - b for a, b in pairs], within=DIFFERENCE_RANGE), n=len(pairs))


def _label_rate(data: ReportInput, source: str, exchange_ids: list[str], evaluator: str, labels) -> Rate:
    scored = [score for exchange_id in exchange_ids if (score := data.score(exchange_id, source, evaluator))]
    return wilson(sum(score.label in labels for score in scored), len(scored))


def latency_baseline(data: ReportInput, answered: list[dict]) -> tuple[str, dict[str, dict]]:
    """What a candidate's latency is compared with: the primary twin's answers to the same
    exchanges when at least TWIN_BASELINE_MIN_PAIRS of them exist (the twin is timed by the same
    worker, client and clock as the candidate), else the primary's live latency, which the
    candidate's path cannot match (the worker's own overhead is in every candidate figure)."""
    twin_rows = {row["exchange_id"]: row for row in data.shadows.get(TWIN, ()) if row["outcome"] == "ok"}
    paired = sum(row["exchange_id"] in twin_rows and row["latency_ms"] is not None
                 and twin_rows[row["exchange_id"]]["latency_ms"] is not None for row in answered)
    if paired >= TWIN_BASELINE_MIN_PAIRS:
        return TWIN, twin_rows
    return PRIMARY, data.exchanges


def _latency(data: ReportInput, answered: list[dict]) -> LatencyFigures:
    baseline, rows = latency_baseline(data, answered)
    pairs = [(row["latency_ms"], rows[row["exchange_id"]]["latency_ms"]) for row in answered
             if row["exchange_id"] in rows]
    pairs = [(mine, theirs) for mine, theirs in pairs if mine is not None and theirs is not None]
    ttft = [(row["ttft_ms"], rows[row["exchange_id"]]["ttft_ms"]) for row in answered if row["exchange_id"] in rows]
    ttft = [(mine, theirs) for mine, theirs in ttft if mine is not None and theirs is not None]
    mine, theirs = [a for a, _ in pairs], [b for _, b in pairs]
    c50, c95, p50, p95 = percentile(mine, .5), percentile(mine, .95), percentile(theirs, .5), percentile(theirs, .95)
    t_mine, t_theirs = percentile([a for a, _ in ttft], .5), percentile([b for _, b in ttft], .5)
    return LatencyFigures(n=len(pairs), candidate_p50_ms=c50, candidate_p95_ms=c95, primary_p50_ms=p50,
                          primary_p95_ms=p95, p50_ratio=ratio(c50, p50), p95_ratio=ratio(c95, p95),
                          ttft_n=len(ttft), candidate_ttft_p50_ms=t_mine, primary_ttft_p50_ms=t_theirs,
                          ttft_p50_ratio=ratio(t_mine, t_theirs), baseline=baseline)


def total_tokens(row: dict) -> int | None:
    if row.get("total_tokens") is not None:
        return row["total_tokens"]
    if row.get("prompt_tokens") is not None and row.get("completion_tokens") is not None:
        return row["prompt_tokens"] + row["completion_tokens"]
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cost(data: ReportInput, answered: list[dict]) -> CostFigures:
    primary = [data.exchanges[row["exchange_id"]] for row in answered]
    costs = [(row["cost_usd"], exchange["cost_usd"]) for row, exchange in zip(answered, primary)
             if row["cost_usd"] is not None and exchange["cost_usd"] is not None]
    all_tokens = [(total_tokens(row), total_tokens(exchange)) for row, exchange in zip(answered, primary)]
    tokens = [(mine, theirs) for mine, theirs in all_tokens if mine is not None and theirs is not None]
    mine, theirs = _mean([a for a, _ in costs]), _mean([b for _, b in costs])
    mine_1k, theirs_1k = (None if mine is None else mine * 1000), (None if theirs is None else theirs * 1000)
    t_mine, t_theirs = _mean([a for a, _ in tokens]), _mean([b for _, b in tokens])
    return CostFigures(n=len(costs), candidate_per_1k_usd=mine_1k, primary_per_1k_usd=theirs_1k,
                       ratio=ratio(mine_1k, theirs_1k), tokens_n=len(tokens), candidate_tokens_mean=t_mine,
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
