"""The report's outcomes section as plain-text tables for the terminal and Markdown renderers.

Without feedback there are no tables, only `outcomes_note`'s one line saying how to send some.
"""

from __future__ import annotations

from shadowtap.evaluators.report.model import OutcomeFigures, OutcomesReport, Rate
from shadowtap.evaluators.report.tables import NONE, TextTable, interval, number, percent, signed

NO_FEEDBACK = ("no human outcomes for these exchanges yet: POST them to /shadowtap/feedback with the "
               "x-shadowtap-exchange-id of each answer, or run `shadowtap feedback import FILE`")
KAPPA_NAMES = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa"}
FALLING = "▼ falling"


def outcomes_note(outcomes: OutcomesReport | None) -> str:
    """One line: how many exchanges have feedback, or how to send some."""
    if outcomes is None or outcomes.exchanges == 0:
        return NO_FEEDBACK
    falling = f"; reviewer agreement falling in {', '.join(outcomes.falling_categories)}" \
        if outcomes.falling_categories else ""
    return (f"human outcomes: {outcomes.exchanges} exchanges with feedback ({outcomes.feedback_rows} rows), "
            f"by {outcomes.category}, per {outcomes.window}{falling}")


def rate_interval(rate: Rate) -> str:
    if rate.rate is None:
        return NONE
    return f"{rate.rate:.1%} [{rate.low:.1%}, {rate.high:.1%}] ({rate.count}/{rate.n})"


def _evaluators(outcomes: OutcomesReport) -> list[str]:
    slices = [outcomes.overall, *(category.figures for category in outcomes.categories)]
    return sorted({name for figures in slices for name in figures.evaluator_means})


def _slices(outcomes: OutcomesReport) -> list[tuple[str, OutcomeFigures]]:
    return [("overall", outcomes.overall),
            *((f"{outcomes.category}={category.value}", category.figures) for category in outcomes.categories)]


def outcome_tables(outcomes: OutcomesReport | None) -> list[TextTable]:
    if outcomes is None or outcomes.exchanges == 0:
        return []
    slices = _slices(outcomes)
    # Three narrow tables rather than one wide one: a terminal is often 80 columns.
    tables = [
        TextTable("outcomes: the primary's live answers as people judged them (edits per completed answer)",
                  ["slice", "with feedback", "trusted completion [95% CI]", "edit minutes [95% CI]",
                   "edit ratio [95% CI]"],
                  [[name, str(figures.exchanges), rate_interval(figures.trusted_completion),
                    interval(figures.edit_minutes), interval(figures.edit_ratio)] for name, figures in slices]),
        TextTable("outcome rates",
                  ["slice", "escalated", "rejected", "policy violation", "heavy correction"],
                  [[name, percent(figures.escalation), percent(figures.rejection), percent(figures.policy_violation),
                    percent(figures.heavy_correction)] for name, figures in slices]),
    ]
    evaluators = _evaluators(outcomes)
    if evaluators:
        tables.append(TextTable(
            "evaluator means on the same exchanges", ["slice", *evaluators],
            [[name, *(number(figures.evaluator_means[evaluator].mean) if evaluator in figures.evaluator_means
                      else NONE for evaluator in evaluators)] for name, figures in slices]))
    tables.append(TextTable(
        f"outcomes per {outcomes.window}",
        ["window start", "with feedback", "trusted completion", "edit minutes", "escalated", "rejected",
         "kappa (items)"],
        [[_window_label(point.start), str(point.figures.exchanges), percent(point.figures.trusted_completion),
          number(point.figures.edit_minutes.mean, 1), percent(point.figures.escalation),
          percent(point.figures.rejection), f"{number(point.kappa)} ({point.agreement_items})"]
         for point in outcomes.trends]))
    if outcomes.validity:
        tables.append(TextTable(
            "evaluator validity: ROC AUC of the primary's score for a good outcome (> 0.5: higher scores go with "
            "good outcomes; bad = escalated, rejected, policy violation or heavily corrected)",
            ["evaluator", "n", "bad", "good", "AUC [95% CI]"],
            [[row.evaluator, str(row.n), str(row.positives), str(row.negatives), _auc(row.auc, row.low, row.high)]
             for row in outcomes.validity]))
    if outcomes.agreement_method:
        tables.append(TextTable(
            f"reviewer agreement: {KAPPA_NAMES[outcomes.agreement_method]} on the outcome labels "
            f"(falling = down {outcomes.thresholds['falling_kappa_drop']:g} or more from the first to the last "
            f"{outcomes.window} with {outcomes.thresholds['falling_min_items']:g}+ items)",
            ["slice", "items", "reviewers", "kappa", "observed", "by chance", "first → last", "trend"],
            [["overall" if row.scope == "overall" else f"{outcomes.category}={row.scope}", str(row.items),
              str(row.reviewers), number(row.kappa), number(row.observed), number(row.expected),
              signed(None if row.drop is None else -row.drop), FALLING if row.falling else ""]
             for row in outcomes.agreement]))
    return tables


def _auc(auc: float | None, low: float | None, high: float | None) -> str:
    if auc is None:
        return NONE
    return f"{auc:.3f}" + ("" if low is None else f" [{low:.3f}, {high:.3f}]")


def _window_label(start: str) -> str:
    """A day or week starts at midnight UTC, so its date says it all."""
    return start[:10] if start.endswith("T00:00:00+00:00") else start
