"""The report as GitHub-flavoured Markdown tables (for PR comments and CI summaries)."""

from __future__ import annotations

from shadowtap.evaluators.report.canary_section import canary_tables
from shadowtap.evaluators.report.model import ReportData
from shadowtap.evaluators.report.outcome_tables import outcome_tables, outcomes_note
from shadowtap.evaluators.report.tables import TextTable, gate_table, report_tables, verdict_table


def _cell(text: str) -> str:
    # Captured names and tag values are untrusted: keep them from closing the cell or adding HTML.
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", " "))


def markdown_table(table: TextTable) -> str:
    lines = [f"### {_cell(table.title)}", "", "| " + " | ".join(_cell(c) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def render_markdown(report: ReportData, *, checks: bool = True) -> str:
    """The verdict first (when the report carries the gate), then the tables; every gate check only with `checks`."""
    parts = [f"## shadowtap report\n\n{report.exchanges} exchanges in `{_cell(report.store)}`"
             f"{', since ' + report.since if report.since else ''}{', until ' + report.until if report.until else ''}; "
             "intervals are 95% (t for means, Wilson for rates).\n"]
    if not report.candidates:
        parts.append("No candidate has shadow rows in this range.\n")
    if report.gate is not None and report.gate.candidates:
        parts.append(markdown_table(verdict_table(report.gate)))
    parts += [markdown_table(table) for table in report_tables(report)]
    parts.append(_cell(outcomes_note(report.outcomes)) + "\n")
    parts += [markdown_table(table) for table in outcome_tables(report.outcomes) + canary_tables(report.canary)]
    if report.gate is not None and checks:
        parts.append(markdown_table(gate_table(report.gate)))
    return "\n".join(parts)
