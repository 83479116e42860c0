"""The HTML report: one self-contained page whose charts render and whose captured text stays text.

The store holds hostile strings where captured data can carry them (a candidate answer, a
candidate name, a task, a tag value, an exchange id). The page must show them as text in every
place they land, reference nothing on the network, and, opened in headless Chromium, run nothing.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import orjson
import pytest

from shadowtap.core.store import CaptureStore
from shadowtap.core.store.report_reads import ReportReads
from shadowtap.core.store.score_store import ScoreStore, score_id
from shadowtap.evaluators.report.build import build_report
from shadowtap.evaluators.report.model import GateCheck, GateVerdict
from shadowtap.evaluators.report.render_html import render_html, word_diff
from tests.support.browser import chromium

XSS = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
ALPHA, BETA = "alpha", 'beta"><b onmouseover=alert(2)>β</b>'
HOSTILE_TASK, HOSTILE_TAG = "<i>qa</i>", "<b>ops</b>"
HOSTILE_ID = 'ex-6"><svg onload=alert(3)>'
DAY_1, DAY_2 = datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 2, 9, tzinfo=UTC)

# Six exchanges over two days; per exchange: primary latency, alpha's and beta's agreement with it.
EXCHANGES = [("ex-1", DAY_1, 100.0, 1.0, 0.2), ("ex-2", DAY_1, 200.0, 0.95, 0.4), ("ex-3", DAY_1, 300.0, 0.92, 0.6),
             ("ex-4", DAY_2, 400.0, 0.5, 0.9), ("ex-5", DAY_2, 500.0, 0.3, 1.0), (HOSTILE_ID, DAY_2, 600.0, 0.97, 0.1)]
EVALUATED = 2          # agreement and grounding
SOURCES = 3            # primary (agreement against its twin), alpha, beta
BINS = 10              # ScoreDistribution: one bin per tenth of [0, 1]
TREND_METRICS = 4      # agreement above noise, agreement, grounding difference, latency p95 ratio (no faithfulness)
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h4", "dl", "dt", "dd", "p",
                "span", "section", "table", "thead", "tbody", "tr", "th", "td", "div", "figure", "figcaption", "svg",
                "rect", "line", "text", "path", "circle", "g", "strong", "article", "code", "pre", "del", "ins",
                "footer"}


def exchange_row(exchange_id: str, started: datetime, latency_ms: float, text: str, task: str) -> dict:
    return {"id": exchange_id, "started_at": started.isoformat(), "method": "POST", "path": "/v1/chat/completions",
            "endpoint": "chat.completions", "model": "gpt-4o-mini", "status": 200, "latency_ms": latency_ms,
            "response_text": text, "task": task, "risk_tier": "high",
            "tags": orjson.dumps({"team": HOSTILE_TAG}).decode(), "cost_usd": 0.001, "total_tokens": 100}


def shadow_row(exchange_id: str, candidate: str, started: datetime, latency_ms: float, text: str) -> dict:
    return {"id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
            "model": f"openai/{candidate}"[:40], "is_twin": int(candidate == "primary_twin"), "outcome": "ok",
            "started_at": started.isoformat(), "latency_ms": latency_ms, "response_text": text,
            "cost_usd": 0.002, "total_tokens": 120}


def score_row(exchange_id: str, source: str, evaluator: str, value: float, label: str, details: dict) -> dict:
    return {"id": score_id(exchange_id, source, evaluator), "exchange_id": exchange_id, "source": source,
            "evaluator": evaluator, "evaluator_version": "1", "outcome": "score", "value": value, "label": label,
            "details": orjson.dumps(details).decode(), "scored_at": "2026-11-03T00:00:00+00:00", "duration_ms": 1.0}


@pytest.fixture
def store(tmp_path):
    capture = CaptureStore.open(tmp_path / "report.db")
    yield capture
    capture.close()


@pytest.fixture
def report(store):
    """Primary scores grounding 1.0 and agrees 0.95 with its twin; beta grounds at 0.45 (significantly worse)."""
    exchanges, shadows, scores = [], [], []
    for k, (exchange_id, started, latency, alpha_agrees, beta_agrees) in enumerate(EXCHANGES):
        primary_text = f"The refund for order {k} is issued within five working days."
        beta_text = XSS if exchange_id == "ex-1" else f"Refunds for order {k} take about a week, maybe."
        exchanges.append(exchange_row(exchange_id, started + timedelta(minutes=k), latency, primary_text,
                                      HOSTILE_TASK if k % 2 else "qa"))
        shadows += [shadow_row(exchange_id, "primary_twin", started, latency, primary_text),
                    shadow_row(exchange_id, ALPHA, started, latency * 1.5, primary_text.replace("five", "5")),
                    shadow_row(exchange_id, BETA, started, latency * 2, beta_text)]
        scores += [score_row(exchange_id, "primary", "agreement", 0.95, "agree",
                             {"method": "text", "baseline": "primary_twin"}),
                   score_row(exchange_id, ALPHA, "agreement", alpha_agrees, "agree", {"method": "text"}),
                   score_row(exchange_id, BETA, "agreement", beta_agrees, "disagree", {"method": "text"}),
                   score_row(exchange_id, "primary", "grounding", 1.0, "grounded", {}),
                   score_row(exchange_id, ALPHA, "grounding", 0.9, "grounded", {}),
                   score_row(exchange_id, BETA, "grounding", 0.45, "ungrounded", {})]
    store.insert_capture(exchanges, shadows)
    ScoreStore(store).write(scores)
    built = build_report(ReportReads(store.db), store="report.db", window="1d",
                         now=datetime(2026, 11, 3, 12, tzinfo=UTC))
    gate = GateVerdict(passed=False, failed=[f"{BETA} overall max_grounding_drop"], skipped=0, checks=[
        GateCheck(ALPHA, "overall", "max_grounding_drop", 0.1, 0.15, "<=", "pass"),
        GateCheck(BETA, "overall", "max_grounding_drop", 0.55, 0.15, "<=", "fail", "grounding dropped 0.55")])
    return dataclasses.replace(built, gate=gate)


@pytest.fixture
def page(report) -> str:
    return render_html(report)


class _Elements(HTMLParser):
    """Every element the page really contains, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.elements


# -- without a browser ---------------------------------------------------------------------------

def test_candidate_answer_with_script_is_escaped_text_when_rendered(page):
    assert "<script>document.title" not in page
    assert XSS_ESCAPED in page


def test_every_hostile_data_string_stays_text_in_content_and_attributes(page):
    found = elements(page)
    assert {tag for tag, _ in found} <= ALLOWED_TAGS
    assert [name for _, attrs in found for name in attrs if name.startswith("on")] == []
    for hostile in (BETA, HOSTILE_TASK, HOSTILE_TAG, HOSTILE_ID):
        assert hostile not in page
        assert html.escape(hostile, quote=True) in page
    # Attributes come back from the parser unescaped, exactly as the data was.
    assert {attrs.get("data-exchange-id") for tag, attrs in found if tag == "article"} >= {HOSTILE_ID}
    assert BETA in {attrs.get("data-source") for tag, attrs in found if tag == "rect"}


def test_page_references_no_network_resource(page):
    assert "http://" not in page and "https://" not in page
    found = elements(page)
    assert {"script", "link", "img", "iframe", "object", "embed", "base", "image", "use"}.isdisjoint(
        t for t, _ in found)
    assert [name for _, attrs in found for name in attrs
            if name in ("src", "href", "xlink:href", "srcset", "action")] == []
    assert "url(" not in page and "@import" not in page


def test_content_security_policy_forbids_script_and_network_when_present(page):
    [policy] = [attrs["content"] for tag, attrs in elements(page)
                if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy and "connect-src" not in policy


def test_header_names_generation_time_store_selection_and_gate_verdict(page):
    header = page.split("<header>", 1)[1].split("</header>", 1)[0]
    for expected in ("2026-11-03T12:00:00+00:00", "report.db", "Since", "the first capture", "Window", "1d",
                     "Exchanges", "Gate: FAIL"):
        assert expected in header


def test_charts_hold_one_mark_per_datum_when_rendered(page, report):
    assert (page.count('<rect class="bar"') == EVALUATED * SOURCES * BINS
            == sum(len(d.counts) for d in report.distributions))
    assert page.count('<path class="cdf-line"') == SOURCES
    assert page.count('class="chart trend"') == TREND_METRICS
    assert page.count('<circle class="trend-point"') == TREND_METRICS * 2 * 2     # two candidates, two days
    assert page.count('<g class="heat-cell') == len(report.heatmap) == 2 * 5      # endpoint, 2 tasks, tier, tag
    assert page.count('<g class="heat-cell worse"') == sum(bool(c.significantly_worse) for c in report.heatmap) > 0
    assert page.count('<article class="disagreement"') == len(report.worst_disagreements) == 2 * len(EXCHANGES)


def test_render_accepts_the_reports_json_dict(report, page):
    assert render_html(report.to_json()) == page


def test_word_diff_marks_words_only_one_side_has_when_answers_differ():
    left, right = word_diff("the cat sat <here>", "the dog sat <here>")
    assert left == "the <del>cat </del>sat &lt;here&gt;"
    assert right == "the <ins>dog </ins>sat &lt;here&gt;"


def test_empty_store_renders_a_report_that_says_there_is_nothing(store):
    page = render_html(build_report(ReportReads(store.db), store="empty.db"))
    assert "No candidate answered" in page and "No scores in this selection" in page
    assert "<svg" not in page


# -- in a browser --------------------------------------------------------------------------------


@pytest.mark.e2e  # starts a browser
def test_charts_render_and_captured_script_stays_text_when_opened_in_chromium(tmp_path, page, report):
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", path.as_uri())

    title = re.search(r"<title>(.*?)</title>", dom, re.DOTALL).group(1)
    assert title.startswith("shadowtap report") and "pwned" not in title
    assert "<script" not in dom and "<img" not in dom        # serialised DOM: real elements only
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in dom
    assert dom.count("<svg") == len(re.findall(r"<svg", page)) > 0
    assert len(re.findall(r'<rect class="bar"', dom)) == EVALUATED * SOURCES * BINS
    assert len(re.findall(r'<path class="cdf-line"', dom)) == SOURCES
    assert len(re.findall(r'<g class="heat-cell', dom)) == len(report.heatmap)
    # Data-driven bars: every primary grounding score is 1.0, so all six sit in the top bin.
    assert "primary: 6 of 6 grounding scores in [0.9, 1.0)" in dom
    assert "Gate: FAIL" in dom


@pytest.mark.e2e  # starts a browser
def test_report_prints_to_pdf_when_opened_in_chromium(tmp_path, page):
    path, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    path.write_text(page, encoding="utf-8")
    chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", path.as_uri())
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
