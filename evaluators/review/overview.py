"""The review UI's overview: the gate's verdict per candidate (the same one `shadowtap report` and
`shadowtap gate` give), the human outcome figures, and the trend per window."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from shadowtap.core.config import ShadowtapConfig as Config
from shadowtap.core.store import Store
from shadowtap.evaluators.report.build import build_report
from shadowtap.evaluators.report.exchange_links import exchanges_path
from shadowtap.evaluators.report.gate import evaluate_gate
from shadowtap.evaluators.report.model import CandidateReport, CategoryReport, Interval, Rate
from shadowtap.evaluators.report.tables import check_text

WORST_CATEGORIES = 3
VERDICT_TEXT = {"ready": "READY", "not_ready": "NOT READY", "not_enough_data": "NOT ENOUGH DATA"}


@dataclass(frozen=True)
class Overview:
    exchanges: int
    generated_at: str
    verdicts: list[dict]
    outcomes: dict
    trends: list[dict]
    worst_categories: list[dict]

    def values(self) -> dict:
        return {"exchanges": self.exchanges, "generated_at": self.generated_at, "verdicts": self.verdicts,
                "outcomes": self.outcomes, "trends": self.trends, "worst_categories": self.worst_categories}


def build_overview(config: Config, store: Store) -> Overview:
    report = build_report(store.reports, store=store.path, outcomes=config.outcomes)
    gate = evaluate_gate(report, config.gate)
    verdicts = [{"candidate": verdict.candidate, "verdict": verdict.verdict,
                 "verdict_text": VERDICT_TEXT.get(verdict.verdict, verdict.verdict.upper()),
                 "failed": [{"text": check_text(check), "link": exchanges_path(check)} for check in verdict.failed]}
                for verdict in gate.candidates]
    outcomes = report.outcomes
    if outcomes is None:  # build_report always fills it; the model allows None for older JSON
        raise ValueError("the report has no outcomes section")
    overall_agreement = next((row for row in outcomes.agreement if row.scope == "overall"), None)
    return Overview(
        exchanges=report.exchanges, generated_at=report.generated_at, verdicts=verdicts,
        outcomes={"exchanges": outcomes.exchanges,
                  "trusted_completion": _rate(outcomes.overall.trusted_completion),
                  "heavy_correction": _rate(outcomes.overall.heavy_correction),
                  "agreement_method": outcomes.agreement_method or "kappa",
                  "kappa": _number(overall_agreement.kappa if overall_agreement else None),
                  "agreement_items": overall_agreement.items if overall_agreement else 0},
        trends=[{"candidate": point.candidate, "window": point.start[:10],
                 "agreement": _interval(point.figures.agreement.candidate),
                 "grounding": _number(point.figures.grounding.difference.mean, signed=True)}
                for point in report.trends],
        worst_categories=[row for candidate in report.candidates for row in _worst_categories(candidate)],
    )


def _worst_categories(candidate: CandidateReport, limit: int = WORST_CATEGORIES) -> list[dict]:
    """The candidate's categories with the lowest agreement with the primary, worst first."""
    scored = [category for category in candidate.categories
              if category.figures.agreement.candidate.mean is not None]
    scored.sort(key=lambda category: category.figures.agreement.candidate.mean or 0.0)
    return [{"candidate": candidate.name, "category": f"{category.dimension}={category.value}",
             "samples": category.figures.samples, "agreement": _interval(category.figures.agreement.candidate),
             "grounding": _number(category.figures.grounding.difference.mean, signed=True),
             "link": f"/exchanges?{urlencode({'candidate': candidate.name, **_category_filter(category)})}"}
            for category in scored[:limit]]


def _category_filter(category: CategoryReport) -> dict[str, str]:
    """The exchange-list filter that shows a category's exchanges (sorted by the candidate's agreement)."""
    chosen = {"evaluator": "agreement", "sort": "score_low"}
    if category.dimension in ("task", "risk_tier", "endpoint"):
        chosen[category.dimension] = category.value
    elif category.dimension.startswith("tag:"):
        chosen["tag"] = f"{category.dimension[4:]}={category.value}"
    return chosen


def _rate(rate: Rate) -> str:
    if rate.rate is None:
        return "n/a (no feedback)"
    return f"{rate.rate:.0%} ({rate.count}/{rate.n})"


def _interval(interval: Interval) -> str:
    if interval.mean is None:
        return "n/a"
    if interval.low is None or interval.high is None:
        return f"{interval.mean:.3f} (n={interval.n})"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _number(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
