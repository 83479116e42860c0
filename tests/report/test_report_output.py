"""`shadowtap report` formats and usage errors: terminal, Markdown, --html, bad options."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore, Store
from shadowtap.evaluators.report.cli import report_command
from tests.support.report_support import StoreBuilder, balanced_store


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.db"
    store = CaptureStore.open(path)
    balanced_store(store, "small|<b>", count=10)
    StoreBuilder(store).score("x000", "small|<b>", "faithfulness", 0.5)
    store.close()
    return path


def invoke(*args):
    return CliRunner().invoke(report_command, list(args))


def test_markdown_output_contains_the_tables_when_markdown_is_given(store_path):
    result = invoke("--store", str(store_path), "--markdown")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "### quality: candidates against the primary" in lines
    header = next(line for line in lines if line.startswith("| candidate | samples |"))
    separator = lines[lines.index(header) + 1]
    assert separator.count("---") == header.count(" | ") + 1
    # The candidate's name is escaped: its pipe cannot split the row, its tag cannot become HTML.
    row = next(line for line in lines[lines.index(header):] if line.startswith("| small"))
    assert row.startswith("| small\\|&lt;b&gt; | 10 | 0.950")
    assert "### small\\|&lt;b&gt; by category" in result.output
    assert "task=qa" in result.output


def test_terminal_output_is_the_verdict_line_of_each_candidate_and_where_the_details_are(store_path):
    result = invoke("--store", str(store_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "small|<b>  NOT ENOUGH DATA  min_samples 10 < 50",
        "details (categories, windows, outcomes): add --details, or write --html FILE or --json",
    ]
    assert "quality: candidates against the primary" not in result.output


def test_terminal_output_shows_every_table_of_each_candidate_with_details(store_path):
    result = invoke("--store", str(store_path), "--details")
    assert result.exit_code == 0, result.output
    assert "quality: candidates against the primary" in result.output
    assert result.output.index("NOT ENOUGH DATA") < result.output.index("quality: candidates")
    assert "10 exchanges" in result.output


@pytest.mark.parametrize("width", [80, 250])
def test_terminal_tables_fit_the_terminal_and_never_cut_a_figure_in_pieces(store_path, width):
    from rich.console import Console

    from shadowtap.evaluators.report.build import build_report
    from shadowtap.evaluators.report.render_terminal import render_terminal
    from shadowtap.evaluators.report.tables import report_tables

    report = build_report(Store.open(store_path).reports, store=str(store_path))
    console = Console(width=width, record=True)
    render_terminal(report, console)
    text = console.export_text()
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└┌"]
    assert table_lines and max(len(line) for line in table_lines) <= width  # sentences may wrap; tables do not
    quality = report_tables(report)[0]
    words = set(text.split())
    for column, cell in zip(quality.columns, quality.rows[0]):
        assert set(cell.split()) <= words, (column, cell)  # a long cell may wrap, but never inside a number
    stacked = "quality: candidates against the primary: small|<b>" in text
    assert stacked == (width == 80)  # one card per candidate only when the table is too wide


def test_html_is_written_by_render_html_when_html_is_given(store_path, tmp_path, monkeypatch):
    module = type(sys)("shadowtap.evaluators.report.render_html")
    module.render_html = lambda report, ui_url: f"<html>{len(report.candidates)} candidates, ui {ui_url}</html>"
    monkeypatch.setitem(sys.modules, "shadowtap.evaluators.report.render_html", module)
    out = tmp_path / "report.html"
    result = invoke("--store", str(store_path), "--html", str(out), "--json", "--ui-url", "https://review.example")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "<html>1 candidates, ui https://review.example</html>"


@pytest.mark.parametrize("ui_url", ["javascript:alert(1)", "review.example", "file:///etc/passwd"])
def test_a_ui_url_that_is_not_an_http_address_is_a_usage_error(store_path, tmp_path, ui_url):
    result = invoke("--store", str(store_path), "--html", str(tmp_path / "report.html"), "--ui-url", ui_url)
    assert result.exit_code == 2 and "--ui-url" in result.output
    assert not (tmp_path / "report.html").exists()


def test_html_gives_a_clear_error_when_the_renderer_is_missing(store_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "shadowtap.evaluators.report.render_html", None)  # makes the import fail
    result = invoke("--store", str(store_path), "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "HTML renderer" in result.output


@pytest.mark.parametrize("args, message", [
    (["--json", "--markdown"], "alternatives"),
    (["--window", "fortnight"], "--window"),
    (["--window", "0d"], "--window"),
    (["--since", "yesterday-ish"], "--since"),
])
def test_report_exits_2_when_options_are_bad(store_path, args, message):
    result = invoke("--store", str(store_path), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_report_exits_2_when_the_store_does_not_exist(tmp_path):
    result = invoke("--store", str(tmp_path / "missing.db"))
    assert result.exit_code == 2
    assert "no capture store" in result.output


def test_report_and_gate_are_subcommands_of_shadowtap_when_installed():
    from shadowtap.core.cli import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert "report" in result.output and "gate" in result.output


def test_the_report_reads_the_store_at_one_moment_while_the_proxy_keeps_writing(store_path):
    from shadowtap.evaluators.report.source import load_input

    reader, writer = Store.open(store_path), CaptureStore.open(store_path)
    with reader.reports.snapshot():
        before = load_input(reader.reports)
        StoreBuilder(writer).exchange("late", "2030-01-01T00:00:00.000000+00:00")
        StoreBuilder(writer).score("late", "primary", "grounding", 1.0)
        during = load_input(reader.reports)
    after = load_input(reader.reports)
    # `exchanges` holds only exchanges a figure reads (with a shadow, a twin score or feedback): count them all.
    assert set(during.exchanges) == set(before.exchanges)
    assert during.exchange_count == before.exchange_count
    assert during.score("late", "primary", "grounding") is None
    assert after.exchange_count == before.exchange_count + 1
    assert after.score("late", "primary", "grounding") is not None
