"""The report's data model: frozen dataclasses that every renderer (terminal, Markdown, JSON, HTML) reads.

`ReportData.to_json()` is the `--json` document. Field names are a public interface: add fields,
never rename or remove one without bumping `SCHEMA_VERSION`. A figure that cannot be computed
(no samples, no twin, no cost) is None / JSON null, never zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # canary_model uses this module's Rate and Interval
    from shadowtap.evaluators.report.canary_model import CanarySection

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval over `n` values (Student t; None bounds when n < 2)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class Rate:
    """`count` of `n`, as a share with its 95% Wilson score interval; all None when n = 0."""

    count: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class PairedMean:
    """An evaluator's mean for the candidate and for the primary on the same exchanges.

    `difference` is candidate minus primary, a paired t-interval over per-exchange differences;
    `n` is the number of exchanges where both answers have a score.
    """

    candidate: Interval
    primary: Interval
    difference: Interval
    n: int


@dataclass(frozen=True)
class AgreementFigures:
    """The candidate's agreement with the primary, read against the primary's own noise.

    `noise` is the primary-vs-twin agreement over the same slice of traffic (all twin-scored
    exchanges in it, not only those the candidate answered). `above_noise` = candidate mean minus
    noise mean. `disagreement_above_noise` = max(0, candidate share below 0.9 minus the twin share
    below 0.9), Diffy-style. Everything that needs the twin is None when there are no twin samples.
    """

    candidate: Interval
    noise: Interval
    above_noise: float | None
    disagreement: Rate            # candidate answers with agreement < 0.9
    noise_disagreement: Rate      # primary-vs-twin pairs with agreement < 0.9
    disagreement_above_noise: float | None


@dataclass(frozen=True)
class CallCounts:
    """What happened to the shadow calls: made = ok + error + timeout (cancelled-at-shutdown and
    skipped are not calls the candidate answered or failed)."""

    made: int
    answered: int
    errors: int
    timeouts: int
    cancelled: int
    skipped: dict[str, int]       # skip_reason -> count
    error_rate: Rate              # outcome error over made
    timeout_rate: Rate            # outcome timeout over made
    failure_rate: Rate            # error + timeout over made (what [gate] max_error_rate checks)
    error_reasons: dict[str, int] = field(default_factory=dict)   # why calls erred or timed out, most frequent first


@dataclass(frozen=True)
class LatencyFigures:
    """Percentiles over the exchanges where both the candidate and its baseline have the figure;
    ratios are candidate percentile over baseline percentile (None when the baseline's is 0).
    The baseline is the primary twin's answers when there are enough of them (timed by the same
    shadow worker as the candidate), else the primary's live latency: `baseline` says which, and
    the `primary_*` figures are the baseline's."""

    n: int
    candidate_p50_ms: float | None
    candidate_p95_ms: float | None
    primary_p50_ms: float | None
    primary_p95_ms: float | None
    p50_ratio: float | None
    p95_ratio: float | None
    ttft_n: int
    candidate_ttft_p50_ms: float | None
    primary_ttft_p50_ms: float | None
    ttft_p50_ratio: float | None
    baseline: str = "primary"     # primary_twin | primary


@dataclass(frozen=True)
class CostFigures:
    """Cost per 1,000 requests (mean cost x 1,000) over answered exchanges where both costs are
    known (`n`), and mean total tokens per request over those where both token counts are known."""

    n: int
    candidate_per_1k_usd: float | None
    primary_per_1k_usd: float | None
    ratio: float | None
    tokens_n: int
    candidate_tokens_mean: float | None
    primary_tokens_mean: float | None
    tokens_ratio: float | None


@dataclass(frozen=True)
class Finding:
    """A metric on which the candidate is significantly worse than the primary in this slice."""

    metric: str                   # agreement | faithfulness | grounding | contract
    test: str                     # "paired t-interval" | "two-proportion z-test"
    candidate: float | None       # t-intervals: the candidate's mean; z-tests: its bad share (< 0.9, invalid)
    primary: float | None         # the same for the primary (for agreement: the twin pairs' share below 0.9)
    statistic: float | None       # z for z-tests; the interval's upper bound for t-intervals
    p_value: float | None         # two-sided, z-tests only


@dataclass(frozen=True)
class KeyFigures:
    """Every figure for one candidate over one slice of traffic (all, a category, a time window)."""

    samples: int                  # answered shadows (outcome ok)
    calls: CallCounts
    agreement: AgreementFigures
    faithfulness: PairedMean
    grounding: PairedMean
    stale_context: Rate           # primary freshness label "stale", on the candidate's answered exchanges
    contract_valid: Rate          # candidate contract label "valid"
    primary_contract_valid: Rate  # primary's, on the same exchanges
    refusal: Rate                 # candidate refused (labels both_refused, refused_where_primary_answered)
    primary_refusal: Rate         # primary refused, on the same exchanges
    latency: LatencyFigures
    cost: CostFigures
    significantly_worse: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class CategoryReport:
    dimension: str                # endpoint | task | risk_tier | tag:NAME
    value: str
    figures: KeyFigures


@dataclass(frozen=True)
class CandidateReport:
    name: str
    model: str | None             # the litellm model string of its latest shadow row
    overall: KeyFigures
    categories: list[CategoryReport]


@dataclass(frozen=True)
class TrendPoint:
    """One time window's key figures for one candidate (windows with no exchanges are left out)."""

    candidate: str
    start: str                    # ISO 8601 UTC, inclusive
    end: str                      # exclusive
    figures: KeyFigures


@dataclass(frozen=True)
class ScoreDistribution:
    """Histogram of one evaluator's scores for one answer source: `counts[i]` holds values in
    [i/10, (i+1)/10), the last bin also holds 1.0."""

    evaluator: str
    source: str                   # primary | a candidate name
    n: int
    mean: float | None
    counts: list[int]


@dataclass(frozen=True)
class LatencySamples:
    """Latencies for a CDF, sorted ascending; evenly thinned to at most `cap` values, `n` before thinning."""

    source: str
    n: int
    latency_ms: list[float]
    ttft_n: int
    ttft_ms: list[float]


@dataclass(frozen=True)
class HeatmapCell:
    """One category x candidate cell: headline figures, and which metrics are significantly worse."""

    candidate: str
    dimension: str
    value: str
    samples: int
    agreement: float | None
    agreement_above_noise: float | None
    faithfulness_difference: float | None
    grounding_difference: float | None
    contract_valid_rate: float | None
    significantly_worse: list[str]


@dataclass(frozen=True)
class Disagreement:
    """One of a candidate's lowest-agreement answers, with both texts (untrusted: escape to render)."""

    candidate: str
    exchange_id: str
    started_at: str
    endpoint: str | None
    task: str | None
    risk_tier: str | None
    agreement: float
    label: str | None
    method: str | None            # text | json | tool_calls, from the agreement details
    primary_text: str | None
    candidate_text: str | None


@dataclass(frozen=True)
class GateCheck:
    candidate: str
    scope: str                    # "overall" or "<dimension>=<value>"
    check: str                    # min_samples, min_agreement_above_noise, ...
    figure: float | None
    threshold: float
    comparison: str               # ">=" or "<=": the figure passes when `figure comparison threshold`
    status: str                   # pass | fail | skipped
    reason: str | None = None     # why skipped, or what failed
    low: float | None = None      # the figure's 95% interval, when the figure has one
    high: float | None = None


READY, NOT_READY, NOT_ENOUGH_DATA = "ready", "not_ready", "not_enough_data"


@dataclass(frozen=True)
class CandidateVerdict:
    """One candidate's verdict, decided by its [gate] checks alone: the gate and every rendering of the
    report read this, so they cannot disagree. ready: no check failed; not_enough_data: only
    min_samples failed; not_ready: any other check failed (named in `failed`)."""

    candidate: str
    verdict: str                  # ready | not_ready | not_enough_data
    failed: list[GateCheck]
    checks: int
    skipped: int


@dataclass(frozen=True)
class GateVerdict:
    passed: bool                  # no check failed (skipped checks do not fail the gate)
    checks: list[GateCheck]
    failed: list[str]             # "<candidate> <scope> <check>" for each failed check
    skipped: int
    candidates: list[CandidateVerdict] = field(default_factory=list)   # one per candidate in the report


@dataclass(frozen=True)
class OutcomeFigures:
    """Human outcomes of the primary's live answers over one slice of exchanges with feedback.

    Each exchange has one outcome (evaluators.outcomes.resolution says which row counts), so the
    five outcome rates are shares of `exchanges` that add up to 1. Edit effort is per completed
    (accepted or edited) answer; `evaluator_means` are the primary's scores on the same exchanges.
    """

    exchanges: int                      # exchanges with feedback in the slice
    outcomes: dict[str, int]            # outcome -> exchanges
    trusted_completion: Rate            # completed, no heavy correction, within budgets
    completed: Rate                     # accepted or edited
    heavy_correction: Rate              # some reviewer's edit over a heavy-correction threshold
    escalation: Rate
    rejection: Rate                     # outcome rejected (policy violations are counted apart)
    policy_violation: Rate
    over_budget: int                    # completed answers over the latency or cost budget
    edit_minutes: Interval              # per completed answer (accepted without minutes: 0)
    edit_ratio: Interval                # likewise, edit distance / longer text
    evaluator_means: dict[str, Interval]


@dataclass(frozen=True)
class OutcomeCategory:
    value: str                          # a value of OutcomesReport.category
    figures: OutcomeFigures


@dataclass(frozen=True)
class KappaWindow:
    start: str                          # ISO 8601 UTC, inclusive
    end: str                            # exclusive
    items: int                          # exchanges judged by 2+ reviewers
    kappa: float | None


@dataclass(frozen=True)
class ReviewerAgreement:
    """Chance-corrected agreement of the reviewers' outcome labels on exchanges judged by 2+ of them.

    `falling`: among windows with at least [outcomes] falling_min_items items and a kappa, the last
    one's kappa is at least falling_kappa_drop below the first one's (`drop` = first - last).
    """

    scope: str                          # "overall" or a category value
    items: int
    reviewers: int
    kappa: float | None                 # None without items, or when chance agreement is 1
    observed: float | None              # observed agreement
    expected: float | None              # agreement expected by chance
    windows: list[KappaWindow]
    drop: float | None
    falling: bool


@dataclass(frozen=True)
class EvaluatorValidity:
    """How well one evaluator's primary score predicts the human outcome: ROC AUC, oriented so that
    above 0.5 means higher scores go with good outcomes, with a DeLong 95% interval (None with fewer
    than two of either class); `auc` is None when a class is empty."""

    evaluator: str
    n: int
    positives: int                      # bad outcomes: needed heavy correction, escalated, rejected, violation
    negatives: int                      # good outcomes: accepted, or edited lightly
    auc: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class OutcomeTrendPoint:
    start: str
    end: str
    figures: OutcomeFigures
    agreement_items: int
    kappa: float | None


@dataclass(frozen=True)
class OutcomesReport:
    """Human outcomes (feedback) on the primary's live answers: figures, validity, agreement, trend."""

    feedback_rows: int                  # feedback rows on exchanges in range
    exchanges: int                      # exchanges with feedback; 0: nothing below is meaningful
    category: str                       # the [outcomes] category dimension
    window: str                         # day | week
    thresholds: dict[str, float]        # the [outcomes] thresholds used
    overall: OutcomeFigures
    categories: list[OutcomeCategory]
    trends: list[OutcomeTrendPoint]
    validity: list[EvaluatorValidity]
    agreement_method: str | None        # "cohen" (exactly two reviewers) | "fleiss" | None (no item)
    agreement: list[ReviewerAgreement]  # overall first, then by category
    falling_categories: list[str]


@dataclass(frozen=True)
class ReportData:
    schema_version: int
    generated_at: str
    store: str
    since: str | None
    until: str | None
    window: str | None            # e.g. "1d"; trends use it (1d when not given)
    exchanges: int                # exchanges in the selected time range
    candidates: list[CandidateReport]
    trends: list[TrendPoint]
    distributions: list[ScoreDistribution]
    latency_samples: list[LatencySamples]
    heatmap: list[HeatmapCell]
    worst_disagreements: list[Disagreement]
    methods: dict[str, str]       # how each figure and test is computed, in words
    gate: GateVerdict | None = None
    outcomes: OutcomesReport | None = None   # None only for reports built without the store's feedback
    canary: CanarySection | None = None      # None when the range holds no canary (evaluators/report/canary_section.py)

    def to_json(self) -> dict[str, Any]:
        """A plain dict of lists, dicts, strings, numbers and None, ready for orjson."""
        return asdict(self)
