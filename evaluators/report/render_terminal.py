"""The report as rich tables on a terminal. Every cell is plain text: names and values never become markup."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluators.report.model import GateVerdict, ReportData
from evaluators.report.outcome_tables import outcome_tables, outcomes_note
from evaluators.report.tables import TextTable, report_tables

_STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIPPED": "yellow"}


def _rich_table(table: TextTable) -> Table:
    rich_table = Table(title=Text(table.title), title_justify="left")
    for column in table.columns:
        rich_table.add_column(Text(column), overflow="fold")
    for row in table.rows:
        rich_table.add_row(*(Text(cell, style=_STATUS_STYLE.get(cell, "")) for cell in row))
    return rich_table


def _natural_width(table: TextTable) -> int:
    """Columns at their widest cell or header, plus rich's borders and padding."""
    widths = [max(len(column), *(len(row[index]) for row in table.rows)) if table.rows else len(column)
              for index, column in enumerate(table.columns)]
    return sum(widths) + 3 * len(widths) + 1


def _stacked_tables(table: TextTable) -> list[Table]:
    """A table too wide for the terminal, one row at a time: each figure on a line of its own, so
    an 80-column terminal (or a CI log) shows whole numbers instead of slivers of them."""
    stacked = []
    for row in table.rows:
        card = Table(title=Text(f"{table.title}: {row[0]}"), title_justify="left", show_header=False)
        card.add_column(overflow="fold")
        card.add_column(overflow="fold")
        for column, cell in zip(table.columns[1:], row[1:]):
            card.add_row(Text(column), Text(cell, style=_STATUS_STYLE.get(cell, "")))
        stacked.append(card)
    return stacked


def _print_table(console: Console, table: TextTable) -> None:
    if _natural_width(table) <= console.width or not table.rows:
        console.print(_rich_table(table))
    else:
        for card in _stacked_tables(table):
            console.print(card)


def render_terminal(report: ReportData, console: Console | None = None) -> None:
    console = console or Console()
    console.print(Text(f"{report.exchanges} exchanges in {report.store}"
                       f"{' since ' + report.since if report.since else ''}"
                       f"{' until ' + report.until if report.until else ''}"))
    if not report.candidates:
        console.print(Text("no candidate has shadow rows in this range"))
    for table in report_tables(report):
        _print_table(console, table)
    console.print(Text(outcomes_note(report.outcomes)), soft_wrap=True)
    for table in outcome_tables(report.outcomes):
        _print_table(console, table)
    if report.gate is not None:
        render_gate_terminal(report.gate, console)


def render_gate_terminal(verdict: GateVerdict, console: Console | None = None) -> None:
    """One line per check, never wrapped, so CI logs stay greppable at any width."""
    console = console or Console()
    for check in verdict.checks:
        figure = "–" if check.figure is None else f"{check.figure:.4g}"
        status = check.status.upper()
        line = Text(f"{status:<8}", style=_STATUS_STYLE[status])
        line.append(f"{check.candidate}  {check.scope}  {check.check}: {figure} (must be {check.comparison} "
                    f"{check.threshold:g})" + (f"  [{check.reason}]" if check.reason else ""))
        console.print(line, soft_wrap=True)
    if verdict.failed:
        console.print(Text("failed: " + "; ".join(verdict.failed), style="bold red"), soft_wrap=True)
    console.print(Text(f"gate {'passed' if verdict.passed else 'FAILED'} "
                       f"({len(verdict.checks)} checks, {len(verdict.failed)} failed, {verdict.skipped} skipped)"),
                  soft_wrap=True)
