"""`shadowtap report` and `shadowtap gate`: compare candidates with the primary, and turn that into an exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from shadowtap.core.captures_cli import time_option
from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.evaluators.report.exchange_links import DEFAULT_UI_URL

_config_option = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                              help="Config file: [gate] thresholds, and the store unless --store is given.")
_store_option = click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
                             help="Capture store (default: [store] path from --config, else shadowtap.db).")
_since_option = click.option("--since", metavar="TIME",
                             help="Only exchanges at or after this time (ISO, or an age like 2h, 7d).")
_until_option = click.option("--until", metavar="TIME", help="Only exchanges before this time (ISO, or an age).")
_candidate_option = click.option("--candidate", metavar="NAME", help="Only this candidate.")


@click.command("report")
@_config_option
@_store_option
@_since_option
@_until_option
@_candidate_option
@click.option("--window", metavar="LENGTH", default=None,
              help="Time windows for the trend figures: 30m, 6h, 1d (default), 1w.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the report as Markdown tables.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a self-contained HTML report with charts to FILE.")
@click.option("--ui-url", default=DEFAULT_UI_URL, show_default=True, metavar="URL",
              help="Where `shadowtap ui` runs: the HTML report's failing figures link to their exchanges there.")
@click.option("--details", is_flag=True,
              help="On the terminal, follow the verdicts with every table: quality, operations, categories, "
                   "windows and outcomes (the HTML, JSON and Markdown always hold them).")
@click.option("--gate", "with_gate", is_flag=True,
              help="Print every [gate] check too, and exit 1 if any fails (the verdict is always shown).")
def report_command(config_path, store_path, since, until, candidate, window, as_json, as_markdown, html_path,
                   ui_url, details, with_gate) -> None:
    """Compare each candidate with the primary: overall, by category and per time window.

    It opens with one line per candidate: READY, NOT READY or NOT ENOUGH DATA against the [gate]
    thresholds (the same checks `shadowtap gate` exits on), with the figure and 95% interval of
    each failing check. On the terminal the tables follow only with --details. Agreement is read
    against the primary's own noise (its twin), score means carry 95% intervals and are paired
    with the primary's on the same exchanges, and categories where the candidate is significantly
    worse are marked.

    Exit codes: 0 done (or the gate passed); 1 the gate failed (with --gate);
    2 usage or config error.
    """
    if as_json and as_markdown:
        fail_usage("--json and --markdown are alternatives: pass one")
    if not ui_url.startswith(("http://", "https://")):
        fail_usage(f"--ui-url {ui_url!r}: expected an http:// or https:// address, such as {DEFAULT_UI_URL}")
    # The verdict is always the gate's: every format shows it; --gate adds every check and the exit code.
    report, gate = _build(config_path, store_path, since, until, candidate, window)
    if html_path:
        _write_html(report, html_path, ui_url)
    if as_json:
        click.echo(orjson.dumps(report.to_json()).decode())
    elif as_markdown:
        from shadowtap.evaluators.report.render_markdown import render_markdown

        click.echo(render_markdown(report, checks=with_gate))
    else:
        from shadowtap.evaluators.report.render_terminal import render_terminal

        render_terminal(report, checks=with_gate, details=details)
    if with_gate and not gate.passed:
        sys.exit(1)


@click.command("gate")
@_config_option
@_store_option
@_since_option
@_until_option
@_candidate_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and every check as one JSON object.")
def gate_command(config_path, store_path, since, until, candidate, as_json) -> None:
    """Check each candidate against the [gate] thresholds and print every check.

    A check whose figure cannot be computed (no twin samples, no faithfulness scores, no cost)
    is skipped with the reason: it neither passes nor fails the gate.

    Exit codes: 0 every check passed or was skipped; 1 a check failed, or there is no candidate
    to check; 2 usage or config error.
    """
    report, gate = _build(config_path, store_path, since, until, candidate, None)
    if as_json:
        click.echo(orjson.dumps(gate).decode())
    else:
        from shadowtap.evaluators.report.render_terminal import render_gate_terminal

        render_gate_terminal(gate)
    if not gate.passed:
        sys.exit(1)


def _build(config_path, store_path, since, until, candidate, window):
    """The report with its gate verdict, which `report` and `gate` both read: one pass/fail for both."""
    from shadowtap.evaluators.report.build import build_report, parse_window
    from shadowtap.evaluators.report.gate import evaluate_gate

    config = load_config_or_exit(config_path)
    if window is not None:
        try:
            parse_window(window)
        except ValueError as exc:
            fail_usage(f"--window: {exc}")
    since, until = time_option(since, "--since"), time_option(until, "--until")
    store = open_store_or_exit(config, store_path)
    try:
        report = build_report(store.reports, store=store.path, since=since, until=until, window=window,
                              candidate=candidate, outcomes=config.outcomes, fork=True)
    finally:
        store.close()
    from dataclasses import replace

    gate = evaluate_gate(report, config.gate)
    return replace(report, gate=gate), gate


def _write_html(report, html_path: str, ui_url: str) -> None:
    try:
        from shadowtap.evaluators.report.render_html import render_html
    except ModuleNotFoundError as exc:
        if exc.name != "shadowtap.evaluators.report.render_html":
            raise
        fail_usage("--html: the HTML renderer (evaluators.report.render_html) is not installed in this build")
    try:
        Path(html_path).write_text(render_html(report, ui_url=ui_url), encoding="utf-8")
    except OSError as exc:
        fail_usage(f"--html: cannot write {html_path!r}: {exc.strerror or exc}")
    click.echo(f"wrote {html_path}", err=True)
