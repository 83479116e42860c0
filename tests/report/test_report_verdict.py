"""One pass/fail per candidate, shared by the report (terminal, Markdown, HTML, JSON) and `shadowtap gate`.

The store holds the demo's personas as the issue saw them: drifty loses grounding, sloppy breaks one
structured answer in sixteen (too few to be "significantly worse", enough to fail the gate), slow
errs, times out and lags with too few samples; plus one that matches the primary and one that only
lacks samples. Every format must say what the gate says about each of them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.report.cli import gate_command, report_command
from tests.support.report_support import StoreBuilder, write_config

GATE = "min_samples = 50"
VERDICTS = {"drifty": "NOT READY", "sloppy": "NOT READY", "slow": "NOT READY", "steady": "READY",
            "fresh": "NOT ENOUGH DATA"}
TIMEOUT = ("TimeoutError", "no complete answer within 2s")
CONNECTION = ("APIConnectionError", "litellm.APIConnectionError: APIConnectionError: OpenAIException - "
                                    "Connection error.")


def insert_failed_shadow(store: CaptureStore, exchange_id: str, candidate: str, outcome: str,
                         error: tuple[str, str]) -> None:
    store.db["shadows"].insert({
        "id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
        "model": f"openai/{candidate}", "is_twin": 0, "outcome": outcome, "started_at": "2026-02-01T00:00:00+00:00",
        "error_class": error[0], "error_message": error[1]})


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "personas.db"
    store = CaptureStore.open(path)
    build = StoreBuilder(store)
    for index in range(60):
        exchange_id = f"x{index:03d}"
        build.exchange(exchange_id, f"2026-02-01T{index // 60:02d}:{index % 60:02d}:00+00:00", task="qa")
        build.shadow(exchange_id, "primary_twin")
        build.score(exchange_id, "primary", "agreement", 1.0, "agree", {"baseline": "primary_twin"})
        grounding = 0.85 + (index % 3) * 0.05
        build.score(exchange_id, "primary", "grounding", grounding, "grounded")
        structured = index % 4 == 0 and index < 64
        if structured:
            build.score(exchange_id, "primary", "contract", 1.0, "valid")
        for name, candidate_grounding in (("drifty", grounding - 0.16 + (index % 2) * 0.02), ("sloppy", grounding),
                                          ("steady", grounding)):
            build.shadow(exchange_id, name)
            build.score(exchange_id, name, "agreement", 0.97, "agree")
            build.score(exchange_id, name, "grounding", candidate_grounding, "grounded")
            if structured:
                invalid = name == "sloppy" and index == 0
                build.score(exchange_id, name, "contract", 0.0 if invalid else 1.0, "invalid" if invalid else "valid")
        if index < 20:
            build.shadow(exchange_id, "fresh")
            build.score(exchange_id, "fresh", "agreement", 0.97, "agree")
        if index < 20:
            build.shadow(exchange_id, "slow", latency_ms=800.0 + index)
        elif index < 26:
            insert_failed_shadow(store, exchange_id, "slow", "timeout", TIMEOUT)
        elif index < 30:
            insert_failed_shadow(store, exchange_id, "slow", "error", CONNECTION)
    store.close()
    return path


def invoke(tmp_path, store_path, command, *args):
    config = write_config(tmp_path / "shadowtap.toml", store_path, GATE)
    return CliRunner().invoke(command, ["--config", str(config), *args], env={"COLUMNS": "250"})


def gate_verdict(tmp_path, store_path) -> dict:
    result = invoke(tmp_path, store_path, gate_command, "--json")
    assert result.exit_code == 1, result.output
    return orjson.loads(result.output)


def test_the_gate_names_a_verdict_per_candidate_that_follows_its_failed_checks(tmp_path, store_path):
    gate = gate_verdict(tmp_path, store_path)
    verdicts = {item["candidate"]: item for item in gate["candidates"]}
    assert set(verdicts) == set(VERDICTS)
    for name, item in verdicts.items():
        failed = [check for check in gate["failed"] if check.startswith(f"{name} ")]
        assert [f"{name} {c['scope']} {c['check']}" for c in item["failed"]] == failed
        assert (item["verdict"] == "ready") == (not failed)
    assert [c["check"] for c in verdicts["sloppy"]["failed"]] == ["max_contract_invalid_rate"]
    assert [c["check"] for c in verdicts["drifty"]["failed"]] == ["max_grounding_drop"]
    slow_failed = {c["check"] for c in verdicts["slow"]["failed"]}
    assert {"min_samples", "max_error_rate", "max_latency_p95_ratio"} <= slow_failed
    assert verdicts["fresh"]["verdict"] == "not_enough_data"


def test_report_json_carries_the_gates_own_verdicts_without_gate(tmp_path, store_path):
    gate = gate_verdict(tmp_path, store_path)
    result = invoke(tmp_path, store_path, report_command, "--json")
    assert result.exit_code == 0, result.output      # the verdict is shown; only --gate turns it into an exit code
    assert orjson.loads(result.output)["gate"]["candidates"] == gate["candidates"]


def test_terminal_and_markdown_reports_open_with_the_gates_verdict_for_every_candidate(tmp_path, store_path):
    expected = {item["candidate"]: item["verdict"].replace("_", " ").upper()
                for item in gate_verdict(tmp_path, store_path)["candidates"]}
    assert expected == VERDICTS
    terminal = invoke(tmp_path, store_path, report_command).output
    details = invoke(tmp_path, store_path, report_command, "--details").output
    markdown = invoke(tmp_path, store_path, report_command, "--markdown").output
    verdict_table = markdown.split("### verdict", 1)[1].split("###", 1)[0]
    for name, verdict in expected.items():
        assert re.search(rf"^{name} +{verdict}  ", terminal, re.MULTILINE), terminal
        assert f"| {name} | {verdict} |" in verdict_table
        assert details.index(f"{name} ") < details.index("quality: candidates")
    assert "quality: candidates" not in terminal              # the tables only with --details
    # the failing check, its figure with its 95% interval, and the threshold it is on the wrong side of
    assert "drifty  NOT READY        max_grounding_drop 0.15 [0.147, 0.153] > 0.05" in terminal
    assert "max_grounding_drop 0.15 [0.147, 0.153] &gt; 0.05" in verdict_table   # Markdown escapes ">"
    assert "PASS" not in terminal and "gate passed" not in terminal  # each check only with --gate


class _Cells(HTMLParser):
    """The rows of the HTML page's tables, as lists of (text, css class) cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, str]]] = []
        self._cell: list[str] | None = None
        self._class = ""

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._class = [], dict(attrs).get("class") or ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._class))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_html_page_shows_the_gates_verdict_and_never_a_green_none_for_a_failing_candidate(tmp_path, store_path):
    gate = gate_verdict(tmp_path, store_path)
    page_path = tmp_path / "report.html"
    assert invoke(tmp_path, store_path, report_command, "--html", str(page_path)).exit_code == 0
    parser = _Cells()
    parser.feed(page_path.read_text(encoding="utf-8"))
    header = next(row for row in parser.rows if row and row[0][0] == "overall")
    names = [text for text, _ in header[1:]]
    by_label = {row[0][0]: row[1:] for row in parser.rows if row and len(row) == len(header)}
    for item in gate["candidates"]:
        text, css = by_label["verdict"][names.index(item["candidate"])]
        assert text == VERDICTS[item["candidate"]]
        assert css == ("pass" if item["verdict"] == "ready" else "fail")
    assert all(css != "pass" for _, css in by_label["significantly worse than the primary"])
    verdict_rows = {row[0][0]: row[1][0] for row in parser.rows if len(row) == 3 and row[0][0] in VERDICTS}
    assert verdict_rows == VERDICTS


def test_each_failing_figure_of_the_html_verdict_links_to_its_exchanges_in_the_review_ui(tmp_path, store_path):
    page_path = tmp_path / "report.html"
    assert invoke(tmp_path, store_path, report_command, "--html", str(page_path), "--ui-url",
                  "http://reviews.internal:9000/").exit_code == 0
    page = page_path.read_text(encoding="utf-8")
    verdict = page[page.index("<h2>Verdict</h2>"):page.index("</section>", page.index("<h2>Verdict</h2>"))]
    assert ('<a href="http://reviews.internal:9000/exchanges?candidate=drifty&amp;evaluator=grounding&amp;'
            'sort=score_low&amp;source=drifty">max_grounding_drop 0.15') in verdict
    assert ('<a href="http://reviews.internal:9000/exchanges?candidate=slow&amp;failed=1">max_error_rate'
            in verdict)
    assert "steady" in verdict and "all 7 checks passed, 1 skipped" in verdict   # no link without a failure


def test_errors_and_timeouts_are_the_candidates_own_shares_and_the_top_error_reasons_are_shown(tmp_path, store_path):
    page_path = tmp_path / "report.html"
    invoke(tmp_path, store_path, report_command, "--html", str(page_path))
    parser = _Cells()
    parser.feed(page_path.read_text(encoding="utf-8"))
    header = next(row for row in parser.rows if row and row[0][0] == "overall")
    slow = [text for text, _ in header].index("slow")
    rows = {row[0][0]: row for row in parser.rows if row}
    assert "errors / timeouts" not in rows
    assert rows["errors, timeouts (of calls made)"][slow][0] == "errors 13.3% (4/30), timeouts 20.0% (6/30)"
    reasons = rows["top error reasons"][slow][0]
    assert reasons == "6× TimeoutError: no complete answer within 2s; 4× APIConnectionError: OpenAIException - " \
                      "Connection error."
    terminal = invoke(tmp_path, store_path, report_command, "--details").output
    assert "6× TimeoutError: no complete answer within 2s; 4× APIConnectionError" in terminal
    document = orjson.loads(invoke(tmp_path, store_path, report_command, "--json").output)
    slow_calls = next(c for c in document["candidates"] if c["name"] == "slow")["overall"]["calls"]
    assert slow_calls["error_reasons"] == {"TimeoutError: no complete answer within 2s": 6,
                                           "APIConnectionError: OpenAIException - Connection error.": 4}
