"""The report as rich tables on a terminal. Every cell is plain text: names and values never become markup."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from shadowtap.core.terminal_tables import STATUS_STYLE, print_table
from shadowtap.evaluators.report.canary_section import canary_tables
from shadowtap.evaluators.report.model import READY, GateVerdict, ReportData
from shadowtap.evaluators.report.outcome_tables import outcome_tables, outcomes_note
from shadowtap.evaluators.report.tables import VERDICT_NAMES, TextTable, check_text, report_tables, why


def _print_table(console: Console, table: TextTable) -> None:
    print_table(console, table.title, table.columns, table.rows)


def render_terminal(report: ReportData, console: Console | None = None, *, checks: bool = True,
                    details: bool = True) -> None:
    """The verdict first (when the report carries the gate): one line per candidate. Then, with
    `details`, the tables (quality, operations, categories, windows, outcomes); every gate check at
    the end only with `checks`."""
    console = console or Console()
    console.print(Text(f"{report.exchanges} exchanges in {report.store}"
                       f"{' since ' + report.since if report.since else ''}"
                       f"{' until ' + report.until if report.until else ''}"))
    if not report.candidates:
        console.print(Text("no candidate has shadow rows in this range"))
    if report.gate is not None and report.gate.candidates:
        _print_verdicts(console, report.gate)
    if details:
        for table in report_tables(report):
            _print_table(console, table)
        console.print(Text(outcomes_note(report.outcomes)), soft_wrap=True)
        for table in outcome_tables(report.outcomes) + canary_tables(report.canary):
            _print_table(console, table)
    else:
        console.print(Text("details (categories, windows, outcomes): add --details, or write --html FILE or --json"),
                      soft_wrap=True)
    if report.gate is not None and checks:
        render_gate_terminal(report.gate, console)


def _print_verdicts(console: Console, verdict: GateVerdict) -> None:
    """`drifty  NOT READY  max_grounding_drop 0.163 [0.057, 0.269] > 0.05`: never wrapped, so each
    candidate's verdict stays one greppable line."""
    width = max(len(item.candidate) for item in verdict.candidates)
    for item in verdict.candidates:
        name = VERDICT_NAMES[item.verdict]
        line = Text(f"{item.candidate:<{width}}  ")
        line.append(f"{name:<15}", style="green" if item.verdict == READY else "bold red")
        line.append("  " + why(item))
        console.print(line, soft_wrap=True)


def render_gate_terminal(verdict: GateVerdict, console: Console | None = None) -> None:
    """One line per check, never wrapped, so CI logs stay greppable at any width."""
    console = console or Console()
    for check in verdict.checks:
        figure = "–" if check.figure is None else f"{check.figure:.4g}"
        status = check.status.upper()
        line = Text(f"{status:<8}", style=STATUS_STYLE[status])
        line.append(f"{check.candidate}  {check.scope}  {check.check}: {figure} (must be {check.comparison} "
                    f"{check.threshold:g})" + (f"  [{check.reason}]" if check.reason else ""))
        console.print(line, soft_wrap=True)
    for item in verdict.candidates:   # the same verdict the report opens with
        name = VERDICT_NAMES[item.verdict]
        line = Text(f"{item.candidate}: ")
        line.append(name, style="green" if item.verdict == READY else "bold red")
        if item.failed:
            line.append(" (" + "; ".join(check_text(check) for check in item.failed) + ")")
        console.print(line, soft_wrap=True)
    if verdict.failed:
        console.print(Text("failed: " + "; ".join(verdict.failed), style="bold red"), soft_wrap=True)
    console.print(Text(f"gate {'passed' if verdict.passed else 'FAILED'} "
                       f"({len(verdict.checks)} checks, {len(verdict.failed)} failed, {verdict.skipped} skipped)"),
                  soft_wrap=True)
