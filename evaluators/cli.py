"""`shadowtap eval`: score captured answers with the configured evaluators and summarise the scores."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import orjson

from shadowtap.core.captures_cli import time_option
from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.errors import ConfigError, StoreError
from shadowtap.core.store.errors import database_errors


@click.command("eval")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Config file: evaluator settings, and the store unless --store is given.")
@click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
              help="Capture store (default: [store] path from --config, else shadowtap.db).")
@click.option("--since", metavar="TIME", help="Only exchanges at or after this time (ISO, or an age like 2h, 7d).")
@click.option("--candidate", metavar="NAME", help="Only this answer source: a candidate name, primary or primary_twin.")
@click.option("--evaluator", "evaluator_names", multiple=True, metavar="NAME",
              help="Run only this evaluator (repeatable, or comma-separated). Default: [eval] evaluators, "
                   "else every registered one (judge evaluators only when [judge] model is set).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N exchanges with pending scores, oldest first.")
@click.option("--dry-run", is_flag=True, help="Count pending scores, judge calls and their rough cost; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its summary as one JSON object.")
def eval_command(config_path, store_path, since, candidate, evaluator_names, limit, dry_run, as_json) -> None:
    """Score captured answers: the primary's, its twin's and every candidate's.

    Incremental: only answers without a score from the evaluator's current version are scored,
    so a second run scores nothing new, and a run that was killed carries on where it stopped.
    An evaluator that raises is recorded as that evaluator's error; the run goes on.

    Exit codes: 0 done (some scores may be errors: they are listed); 1 an evaluator failed on
    every answer it tried in this run, or the store could not be written; 2 usage or config error.
    """
    from shadowtap.evaluators.registry import build_evaluators
    from shadowtap.evaluators.runner import EvalRunner, EvalSelection

    config = load_config_or_exit(config_path)
    config_dir = Path(config_path).resolve().parent if config_path else Path.cwd()
    names = [name.strip() for value in evaluator_names for name in value.split(",") if name.strip()]
    selection = EvalSelection(since=time_option(since, "--since"), source=candidate, limit=limit)
    try:
        evaluators, skipped = build_evaluators(config, names, config_dir=config_dir)
    except ConfigError as exc:
        fail_usage(str(exc))
    store = open_store_or_exit(config, store_path)  # the shared store when [store] url is set
    try:
        _evaluate(EvalRunner.from_config(store.scores, evaluators, config), selection, config, skipped,
                  dry_run=dry_run, as_json=as_json)
    finally:
        store.close()


def _evaluate(runner, selection, config, skipped: list[str], *, dry_run: bool, as_json: bool) -> None:
    if dry_run:
        _print_plan(runner.plan(selection), config.judge.budget_usd, skipped, as_json)
        return
    try:
        report = _run_with_progress(runner, selection, show=not as_json)
    except (StoreError, *database_errors()) as exc:  # type: ignore[misc]
        click.echo(f"shadowtap: eval stopped: {exc}; scores written so far are kept, run again to resume", err=True)
        sys.exit(1)
    summary = runner.store.summary(versions=runner.versions, since=selection.since, source=selection.source)
    _print_report(report, summary, skipped, as_json)
    if report.failed_evaluators():
        sys.exit(1)


def _run_with_progress(runner, selection, *, show: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not show:
        return asyncio.run(runner.run(selection))
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("scoring", total=None)
        return asyncio.run(runner.run(selection, on_start=lambda total: progress.update(task, total=total),
                                      on_scored=lambda row: progress.advance(task)))


def _print_report(report, summary: list[dict], skipped: list[str], as_json: bool) -> None:
    run = {"pending": report.pending, "scored": report.total("score"),
           "not_applicable": report.total("not_applicable"), "errors": report.total("error"),
           "by_evaluator": {name: dict(counts) for name, counts in sorted(report.outcomes.items())},
           "first_errors": report.first_errors, "failed_evaluators": report.failed_evaluators()}
    if as_json:
        click.echo(orjson.dumps({"run": run, "skipped_evaluators": skipped, "summary": summary}).decode())
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console()
    for note in skipped:
        console.print(f"skipped {note}", markup=False, highlight=False)
    console.print(f"this run: {run['scored']} scores, {run['not_applicable']} not applicable, "
                  f"{run['errors']} errors ({report.pending} pending at start)")
    table = Table(title="scores (current evaluator versions)")
    for column in ("evaluator", "source", "scored", "mean", "labels", "n/a", "errors"):
        table.add_column(column, overflow="fold")
    for row in summary:
        labels = ", ".join(f"{label} {count}" for label, count in row["labels"].items())
        mean = "" if row["mean"] is None else f"{row['mean']:.3f}"
        table.add_row(escape(row["evaluator"]), escape(row["source"]), str(row["scored"]), mean, escape(labels),
                      str(row["not_applicable"]), str(row["errors"]))
    console.print(table)
    for name, error in sorted(report.first_errors.items()):
        count = report.outcomes[name]["error"]
        console.print(Text(f"{name}: {count} errors, first: {error}", style="red"), highlight=False)


def _print_plan(plan, budget_usd: float, skipped: list[str], as_json: bool) -> None:
    rows = [{"evaluator": name, "source": source, "pending": count}
            for (name, source), count in sorted(plan.pending.items())]
    judged = sorted(set(plan.judge_calls) | set(plan.cost_unknown))
    cost = {name: round(plan.cost_usd.get(name, 0.0), 6) for name in judged}
    document = {"dry_run": True, "exchanges": plan.exchanges, "pending": sum(plan.pending.values()),
                "by_evaluator": rows, "judge_calls": dict(plan.judge_calls), "estimated_cost_usd": cost,
                "cost_unknown_items": dict(plan.cost_unknown), "judge_budget_usd": budget_usd,
                "skipped_evaluators": skipped}
    if as_json:
        click.echo(orjson.dumps(document).decode())
        return
    click.echo(f"dry run: {document['pending']} scores pending over {plan.exchanges} exchanges; nothing written")
    for row in rows:
        click.echo(f"  {row['evaluator']:<16} {row['source']:<16} {row['pending']}")
    for name in judged:
        calls, unknown = plan.judge_calls.get(name, 0), plan.cost_unknown.get(name, 0)
        if not calls:
            estimate = "nothing to pay for"
        elif unknown:
            estimate = f"cost unknown for {unknown} of the answers" + (f", ~${cost[name]:.4f} for the rest"
                                                                         if cost[name] else "")
        else:
            estimate = f"~${cost[name]:.4f}"
        click.echo(f"  judge: {name}: {calls} calls, {estimate}")
    if sum(cost.values()) > budget_usd:
        click.echo(f"  note: the estimate exceeds [judge] budget_usd = {budget_usd}")
    for note in skipped:
        click.echo(f"  skipped {note}")
