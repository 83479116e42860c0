"""`replay show --html`: one self-contained page per run, whose captured and replayed text stays text.

Captured traffic is hostile where it can be: a captured answer carrying a script, a question with
markup, an exchange id built to break out of an attribute. The page must show them as text, hold
the diffs and figures the run's JSON holds, reference nothing on the network, and run nothing
when a browser opens it.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import orjson
import pytest

from tests.support.replay_support import ScriptedModel, StoreBuilder, chat, cli_run, last_user, replay, show

XSS = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
HOSTILE_ID = 'ex-3"><svg onload=alert(3)>'
HOSTILE_QUESTION = "Is <b>bold</b> allowed & safe?"
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h4", "dl", "dt", "dd", "p",
                "span", "section", "table", "thead", "tbody", "tr", "th", "td", "div", "strong", "article", "code",
                "pre", "del", "ins", "ul", "li", "footer"}


def lookup(city: str) -> list:
    return [{"id": "call_1", "type": "function", "function": {"name": "lookup",
                                                              "arguments": orjson.dumps({"city": city}).decode()}}]


# exchange id -> (question, captured answer, captured tool calls)
CAPTURED = {
    "ex-1": ("Say something risky.", f"Here it is: {XSS}", None),
    "ex-2": ("Score this as JSON.", '{"score": 3}', None),
    HOSTILE_ID: (HOSTILE_QUESTION, "Yes, it is.", None),
    "ex-4": ("Weather in Paris?", None, lookup("Paris")),
}


def target_answer(body: dict):
    question = last_user(body)
    if question.startswith("Say something"):
        return f"Here it was: {XSS} replayed"
    if question.startswith("Score"):
        return '{"score": 4, "extra": true}'
    if question.startswith("Weather"):
        return {"role": "assistant", "content": None, "tool_calls": lookup("Rome")}
    return CAPTURED[HOSTILE_ID][1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of the four exchanges, k=2, with perturbations; its JSON summary and its HTML page."""
    directory = tmp_path_factory.mktemp("replay-html")
    builder = StoreBuilder(directory / "s.db")
    for minute, (exchange_id, (question, answer, calls)) in enumerate(CAPTURED.items()):
        builder.exchange(exchange_id, f"2026-11-20T10:0{minute}:00.000000+00:00", chat(question), answer,
                         tool_calls=calls)
    with ScriptedModel(target_answer) as target:
        run_id = replay("run", "--store", str(builder.path), "--target", "model:openai/x", "--api-base",
                        target.base_url, "-k", "2", "--perturb")
    page_path = directory / "run.html"
    result = cli_run("replay", "show", run_id, "--store", str(builder.path), "--html", str(page_path))
    assert f"wrote {page_path}" in result.stderr
    assert result.stdout.startswith(f"replay run {run_id}")          # the terminal table is still printed
    return {"id": run_id, "summary": show(builder.path, run_id), "page": page_path.read_text(encoding="utf-8"),
            "path": page_path, "dir": directory}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self._open.append(attributes.get("class") or "")

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for css_class in self._open:
            self.text.setdefault(css_class, []).append(data)


def article(page: str, exchange_id: str) -> str:
    """The page's <article> for one exchange."""
    start = page.index(f'<article class="exchange" data-exchange-id="{html.escape(exchange_id, quote=True)}"')
    return page[start:page.index("</article>", start) + len("</article>")]


def parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


def test_captured_and_replayed_script_is_escaped_text(run):
    page = run["page"]
    assert "<script" not in page and "<img" not in page and "<svg" not in page
    assert html.escape(XSS, quote=True) in page
    assert html.escape(HOSTILE_QUESTION, quote=True) in page and HOSTILE_QUESTION not in page


def test_every_element_is_an_expected_one_and_no_attribute_runs_anything(run):
    found = parse(run["page"]).elements
    assert {tag for tag, _ in found} <= ALLOWED_TAGS
    assert [name for _, attrs in found for name in attrs if name.startswith("on")] == []
    ids = [attrs["data-exchange-id"] for tag, attrs in found if tag == "article"]
    assert ids == list(CAPTURED)                         # the hostile id came back whole, as data


def test_page_references_nothing_on_the_network_and_its_policy_forbids_script(run):
    page = run["page"]
    assert "http://" not in page and "https://" not in page and "url(" not in page and "@import" not in page
    found = parse(page).elements
    assert [name for _, attrs in found for name in attrs if name in ("src", "href", "srcset", "action")] == []
    [policy] = [attrs["content"] for tag, attrs in found
                if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_text_json_and_tool_call_diffs_are_on_the_page(run):
    page, parsed = run["page"], parse(run["page"])
    risky = parse(article(page, "ex-1"))
    assert "".join(risky.text["answer captured-text"]) == CAPTURED["ex-1"][1]     # escaped, so parsed back whole
    assert "".join(risky.text["answer text-diff"]) == f"Here it iswas: {XSS} replayed"  # removed and added words
    assert re.search(r"<del>is</del><ins>was</ins>", page)        # the word-level change, marked up
    assert re.search(r"<ins>\s*replayed</ins>", page)
    json_lines = parsed.text["diff-lines json-diff"]
    assert json_lines == ["$.score: 3 -> 4", "$.extra: added"]
    assert parsed.text["diff-lines tool-call-diff"] == ["call 0 lookup: $.city: 'Paris' -> 'Rome'"]
    # The exchange answered exactly as captured says so instead of showing a diff.
    assert "every replay answered as captured" in article(page, HOSTILE_ID)


def test_figures_match_the_runs_json(run):
    summary, page = run["summary"], run["page"]
    overall = summary["overall"]
    for label, key in (("pass@k", "pass_at_k"), ("outcome consistency", "outcome_consistency"),
                       ("perturbation sensitivity", "sensitivity")):
        assert f"<td>{html.escape(label)}</td><td>{overall[key]:.3f}</td>" in page
    assert overall["sensitivity"] is not None
    rows = re.findall(r'<table class="exchanges">.*?</table>', page, re.DOTALL)[0]
    for figures in summary["exchanges"]:
        pass_at_k = "–" if figures["pass_at_k"] is None else f"{figures['pass_at_k']:.3f}"
        assert (f"<code>{html.escape(figures['exchange_id'], quote=True)}</code></td><td>{pass_at_k}</td>"
                f"<td>{figures['passed']}/{figures['judged']}</td>") in rows
    assert page.count('<table class="perturbations">') == len(
        [f for f in summary["exchanges"] if f.get("perturbations")]) > 0


def test_an_unwritable_html_path_is_a_usage_error(run):
    result = cli_run("replay", "show", run["id"], "--store", str(run["dir"] / "s.db"), "--html",
                     str(run["dir"] / "missing" / "run.html"), expect=2)
    assert "--html: cannot write" in result.stderr


@pytest.mark.e2e  # starts a browser
def test_page_stays_inert_when_opened_in_chromium(run, tmp_path):
    from tests.support.browser import chromium

    dom = chromium(tmp_path, "--dump-dom", run["path"].as_uri())
    title = re.search(r"<title>(.*?)</title>", dom, re.DOTALL).group(1)
    assert title == f"shadowtap replay run {run['id']}"
    assert "<script" not in dom and "<img" not in dom and "<svg" not in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert dom.count('<article class="exchange"') == len(CAPTURED)
