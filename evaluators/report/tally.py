"""What one candidate's key figures are made of, tallied from its shadow rows once and added up per slice.

`RowTally` reads a candidate's rows (and the twin-scored exchanges, for the noise floor) into lists;
`TallySums` is what a tally reduces to: counts, exact moments (`moments.Moments`), latencies
sorted for percentiles, and costs with their place in the candidate's rows, so that sums keep the
order in which the rows were read. TallySums add up: the figures of several disjoint parts of a
slice added together are the figures of the whole slice (`TallySums.figures`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from shadowtap.evaluators.report.error_reasons import error_reason
from shadowtap.evaluators.report.moments import Moments
from shadowtap.evaluators.report.source import PRIMARY, TWIN, ReportInput

AGREE_AT = 0.9          # evaluators.agreement's "agree" threshold: below it an answer "differs"
REFUSED_LABELS = frozenset({"both_refused", "refused_where_primary_answered"})
PAIRED_EVALUATORS = ("faithfulness", "grounding")


@dataclass
class PairedLists:
    """Values of one evaluator where both the candidate's and the primary's answers have a score."""

    mine: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    difference: list[float] = field(default_factory=list)


@dataclass
class LatencyLists:
    """(candidate, baseline) latencies and times to first token, against one baseline."""

    mine: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    ttft_mine: list[float] = field(default_factory=list)
    ttft_theirs: list[float] = field(default_factory=list)

    def add(self, other: LatencyLists) -> None:
        self.mine += other.mine
        self.theirs += other.theirs
        self.ttft_mine += other.ttft_mine
        self.ttft_theirs += other.ttft_theirs


@dataclass
class LabelCount:
    """How many scores were read (`n`), and how many of them carried one of the labels counted."""

    count: int = 0
    n: int = 0

    def add(self, other: LabelCount) -> None:
        self.count += other.count
        self.n += other.n


@dataclass
class PairedSums:
    mine: Moments = field(default_factory=Moments)
    theirs: Moments = field(default_factory=Moments)
    difference: Moments = field(default_factory=Moments)

    @classmethod
    def of(cls, lists: PairedLists) -> PairedSums:
        return cls(Moments.of(lists.mine), Moments.of(lists.theirs), Moments.of(lists.difference))

    def add(self, other: PairedSums) -> None:
        self.mine.add(other.mine)
        self.theirs.add(other.theirs)
        self.difference.add(other.difference)


@dataclass
class AgreementSums:
    """Agreement values' moments and how many of them are below AGREE_AT."""

    moments: Moments = field(default_factory=Moments)
    below: int = 0

    @classmethod
    def of(cls, values: list[float]) -> AgreementSums:
        # AGREE_AT > value is value < AGREE_AT, counted in C (a generator took a second at 1,000,000 exchanges).
        return cls(Moments.of(values), sum(map(AGREE_AT.__gt__, values)))

    def add(self, other: AgreementSums) -> None:
        self.moments.add(other.moments)
        self.below += other.below


@dataclass
class TallySums:
    """Everything a KeyFigures is computed from, for one part of a slice; `add` joins two parts."""

    outcomes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    error_reasons: Counter[str] = field(default_factory=Counter)
    agreement: AgreementSums = field(default_factory=AgreementSums)
    noise: AgreementSums = field(default_factory=AgreementSums)
    paired: dict[str, PairedSums] = field(default_factory=lambda: {name: PairedSums() for name in PAIRED_EVALUATORS})
    labels: dict[str, LabelCount] = field(default_factory=dict)
    latency_vs_twin: LatencyLists = field(default_factory=LatencyLists)      # sorted runs, one per part
    latency_vs_primary: LatencyLists = field(default_factory=LatencyLists)
    costs: list[tuple[int, float, float]] = field(default_factory=list)     # (place in the rows, mine, theirs)
    tokens_n: int = 0
    tokens_mine: int = 0
    tokens_theirs: int = 0

    def add(self, other: TallySums) -> None:
        self.outcomes.update(other.outcomes)
        self.skipped.update(other.skipped)
        self.error_reasons.update(other.error_reasons)
        self.agreement.add(other.agreement)
        self.noise.add(other.noise)
        for name, sums in other.paired.items():
            self.paired[name].add(sums)
        for name, count in other.labels.items():
            self.labels.setdefault(name, LabelCount()).add(count)
        self.latency_vs_twin.add(other.latency_vs_twin)
        self.latency_vs_primary.add(other.latency_vs_primary)
        self.costs += other.costs
        self.tokens_n += other.tokens_n
        self.tokens_mine += other.tokens_mine
        self.tokens_theirs += other.tokens_theirs

    def label(self, name: str) -> LabelCount:
        return self.labels.get(name) or LabelCount()

    @classmethod
    def joined(cls, parts: Iterable[TallySums]) -> TallySums:
        """One TallySums of every part; costs in the order their rows were read."""
        total = cls()
        for part in parts:
            total.add(part)
        total.costs.sort(key=itemgetter(0))
        return total


# Label rates: (name, source, evaluator, labels counted).
LABEL_RATES = (
    ("contract_valid", "candidate", "contract", frozenset({"valid"})),
    ("primary_contract_valid", PRIMARY, "contract", frozenset({"valid"})),
    ("stale_context", PRIMARY, "freshness", frozenset({"stale"})),
    ("refusal", "candidate", "refusal", REFUSED_LABELS),
    ("primary_refusal", PRIMARY, "refusal", frozenset({"refused"})),
)


@dataclass
class RowTally:
    """Rows of one candidate (in the order read) and twin-scored exchanges, as lists to reduce once."""

    outcomes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    error_reasons: Counter[str] = field(default_factory=Counter)
    agreement: list[float] = field(default_factory=list)
    noise: list[float] = field(default_factory=list)
    paired: dict[str, PairedLists] = field(default_factory=lambda: {name: PairedLists()
                                                                    for name in PAIRED_EVALUATORS})
    labels: dict[str, LabelCount] = field(default_factory=lambda: {name: LabelCount() for name, *_ in LABEL_RATES})
    latency_vs_twin: LatencyLists = field(default_factory=LatencyLists)
    latency_vs_primary: LatencyLists = field(default_factory=LatencyLists)
    costs: list[tuple[int, float, float]] = field(default_factory=list)
    tokens_n: int = 0
    tokens_mine: int = 0
    tokens_theirs: int = 0

    def sums(self) -> TallySums:
        # Each cell's latencies sorted once: a slice's sort of many cells' lists then only merges runs.
        for lists in (self.latency_vs_twin, self.latency_vs_primary):
            for values in (lists.mine, lists.theirs, lists.ttft_mine, lists.ttft_theirs):
                values.sort()
        return TallySums(
            outcomes=self.outcomes, skipped=self.skipped, error_reasons=self.error_reasons,
            agreement=AgreementSums.of(self.agreement), noise=AgreementSums.of(self.noise),
            paired={name: PairedSums.of(lists) for name, lists in self.paired.items()},
            labels=self.labels, latency_vs_twin=self.latency_vs_twin, latency_vs_primary=self.latency_vs_primary,
            costs=self.costs, tokens_n=self.tokens_n, tokens_mine=self.tokens_mine, tokens_theirs=self.tokens_theirs)


class RowReader:
    """Adds a candidate's shadow rows, and twin-scored exchanges, to a RowTally.

    What a row adds: its outcome (and skip or error reason); when answered, the candidate's
    agreement, the paired faithfulness and grounding values, the label counts, its latencies
    against the twin's (the twin's last answer to the exchange) and against the primary's, its
    cost and tokens against the primary's.
    """

    def __init__(self, data: ReportInput, candidate: str, twin_answers: dict[str, dict] | None = None) -> None:
        self.exchanges = data.exchanges
        self.twin_answers = twin_answers_of(data) if twin_answers is None else twin_answers
        self.agreement = data.scores_of(candidate, "agreement")
        # Evaluators nobody ran are not looked up at all.
        self.paired = [(evaluator, mine, theirs) for evaluator in PAIRED_EVALUATORS
                       if (mine := data.scores_of(candidate, evaluator))
                       and (theirs := data.scores_of(PRIMARY, evaluator))]
        self.labels = [(name, scores, labels) for name, source, evaluator, labels in LABEL_RATES
                       if (scores := data.scores_of(candidate if source == "candidate" else PRIMARY, evaluator))]

    def add_row(self, tally: RowTally, row: dict, place: int) -> None:
        # One function, no helpers: at 1,000,000 exchanges this runs for half a million rows.
        outcome = row["outcome"]
        tally.outcomes[outcome] += 1
        if outcome != "ok":
            if outcome == "skipped":
                tally.skipped[row["skip_reason"] or "unknown"] += 1
            elif outcome in ("error", "timeout"):
                tally.error_reasons[error_reason(row.get("error_class"), row.get("error_message"), outcome)] += 1
            return
        exchange_id = row["exchange_id"]
        mine = self.agreement.get(exchange_id)
        if mine is not None:
            tally.agreement.append(mine.value)
        for evaluator, candidate_scores, primary_scores in self.paired:
            mine = candidate_scores.get(exchange_id)
            if mine is not None:
                theirs = primary_scores.get(exchange_id)
                if theirs is not None:
                    lists = tally.paired[evaluator]
                    lists.mine.append(mine.value)
                    lists.theirs.append(theirs.value)
                    lists.difference.append(mine.value - theirs.value)
        for name, scores, labels in self.labels:
            found = scores.get(exchange_id)
            if found is not None:
                count = tally.labels[name]
                count.n += 1
                count.count += found.label in labels
        # Latency against the twin's answer and against the primary's; cost and tokens against the primary's.
        latency, ttft = row["latency_ms"], row["ttft_ms"]
        primary = self.exchanges[exchange_id]
        for baseline, timings in ((self.twin_answers.get(exchange_id), tally.latency_vs_twin),
                                  (primary, tally.latency_vs_primary)):
            if baseline is None:
                continue
            if latency is not None and baseline["latency_ms"] is not None:
                timings.mine.append(latency)
                timings.theirs.append(baseline["latency_ms"])
            if ttft is not None and baseline["ttft_ms"] is not None:
                timings.ttft_mine.append(ttft)
                timings.ttft_theirs.append(baseline["ttft_ms"])
        if row["cost_usd"] is not None and primary["cost_usd"] is not None:
            tally.costs.append((place, row["cost_usd"], primary["cost_usd"]))
        if row["tokens"] is not None and primary["tokens"] is not None:
            tally.tokens_n += 1
            tally.tokens_mine += row["tokens"]
            tally.tokens_theirs += primary["tokens"]


def twin_answers_of(data: ReportInput) -> dict[str, dict]:
    """Exchange id -> the twin's answered row (the last one read, when it answered twice)."""
    return {row["exchange_id"]: row for row in data.shadows.get(TWIN, ()) if row["outcome"] == "ok"}


def add_noise(data: ReportInput, tally: RowTally, exchange_id: str) -> None:
    """The primary's agreement with its twin on `exchange_id`, if scored (the noise floor)."""
    score = data.score(exchange_id, PRIMARY, "agreement")
    # The primary's agreement score is always against its twin (details baseline "primary_twin").
    if score is not None and score.details.get("baseline", "primary_twin") == "primary_twin":
        tally.noise.append(score.value)

