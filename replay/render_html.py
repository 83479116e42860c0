"""`replay show --html`: a replay run as one self-contained HTML page, drawn from `show.run_summary`.

It follows the report's page conventions (evaluators/report/html_assets.py): inline CSS, no
script at all, nothing fetched, and a Content-Security-Policy that forbids script. Everything the
page shows from a run is captured or replayed traffic, hence untrusted: every string goes through
`_e` (html.escape, quote=True), and text diffs through replay.diff.render_text_diff_html, which
escapes each piece it marks up.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shadowtap.evaluators.report.html_assets import html_page
from shadowtap.replay.diff import render_text_diff_html
from shadowtap.replay.failures import not_measured
from shadowtap.replay.show import failure_line, measured_figure, overall_figures

_OVERALL_ROWS = (("exchanges", "exchanges"), ("results", "results"), ("answered", "answered"),
                 ("failed (error or timeout)", "errors"), ("skipped", "skipped"),
                 ("identical to the captured answer", "identical_to_original"), ("pass@k", "pass_at_k"),
                 ("pass rate", "pass_rate"), ("outcome consistency", "outcome_consistency"),
                 ("answer consistency", "answer_consistency"), ("perturbation sensitivity", "sensitivity"))
_EXTRA_STYLE = """
.exchange { border: 1px solid var(--rule); border-radius: 4px; padding: .6rem .8rem; margin: 0 0 1rem;
            break-inside: avoid; page-break-inside: avoid; }
.exchange > header { color: var(--muted); font-size: .85rem; margin-bottom: .4rem; }
.exchange h4 { margin: .6rem 0 .25rem; font-size: .9rem; }
.diff-lines { margin: 0; padding-left: 1.2rem; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
"""


def render_html(summary: Mapping[str, Any]) -> str:
    """The page for one run's summary (the dict `replay show --json` prints)."""
    run, overall = summary["run"], summary["overall"]
    exchanges = summary.get("exchanges") or []
    measured = overall_figures(summary)   # consistency and sensitivity: never over failed calls
    failures = failure_line(summary)
    body = "\n".join([
        _header(run),
        _section("Overall", _table(["figure", "value"], [[_e(label), _e(measured[key]) if key in measured and
                                                          overall["failed_calls"] else _num(overall.get(key))]
                                                         for label, key in _OVERALL_ROWS])
                 + (f'<p class="fail">{_e(failures)}</p>' if failures else "")),
        _section("Exchanges", _exchange_table(exchanges)),
        _section("Per exchange", "\n".join(_exchange(figures) for figures in exchanges)
                 or '<p class="empty">No exchange in this run.</p>'),
        '<footer>shadowtap replay run. This file loads nothing from the network and runs no script.</footer>'])
    return html_page(f'shadowtap replay run {"" if run.get("id") is None else run.get("id")}', body,
                     extra_style=_EXTRA_STYLE)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else _e(value)


def _section(title: str, content: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


def _table(headings: Sequence[str], rows: Iterable[Sequence[str]], css_class: str = "") -> str:
    """Cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    table_class = f' class="{css_class}"' if css_class else ""
    return f'<div class="scroll"><table{table_class}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _header(run: Mapping[str, Any]) -> str:
    target = run.get("target") or {}
    filters = "; ".join(f"{key} {value}" for key, value in (run.get("selection") or {}).items()) or "none"
    paraphrase = run.get("paraphrase")
    meta = [("Run", run.get("id")), ("Status", run.get("status")), ("Created", run.get("created_at")),
            ("Finished", run.get("finished_at") or "not yet"),
            ("Target", f"{target.get('kind')}:{target.get('name')}"), ("k", run.get("k")), ("Pass", run.get("pass")),
            ("Selection", filters), ("Sample", run.get("sample") or "all"),
            ("Perturbations", "yes" if run.get("perturb") else "no"),
            ("Paraphrases", f"{paraphrase['count']} by {paraphrase['model']}" if paraphrase else "none")]
    if target.get("system_prompt") or target.get("params"):
        meta.append(("Variant", f"system prompt {target.get('system_prompt') or '(as captured)'}; "
                                f"params {target.get('params') or {}}"))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    return f'<header>\n<h1>shadowtap: replay run</h1>\n<dl class="meta">{items}</dl>\n</header>'


def _exchange_table(exchanges: Sequence[Mapping[str, Any]]) -> str:
    rows = [[f"<code>{_e(f['exchange_id'])}</code>", _num(f.get("pass_at_k")), f"{f['passed']}/{f['judged']}",
             _measured(f.get("outcome_consistency"), f["errors"]), _measured(f.get("answer_consistency"), f["errors"]),
             f"{f['identical_to_original']}/{f['answered']}", _sensitivity(f)]
            for f in exchanges]
    return _table(["exchange", "pass@k", "passed", "outcome consistency", "answer consistency", "identical",
                   "sensitivity"], rows, "exchanges")


def _measured(value: Any, errors: int) -> str:
    return _e(measured_figure(value, errors)) if errors else _num(value)


def _sensitivity(figures: Mapping[str, Any]) -> str:
    if figures.get("sensitivity"):
        return _num(figures["sensitivity"].get("share"))
    errors = figures["errors"] + figures.get("perturbation_errors", 0)
    return _e(not_measured(errors)) if errors and figures.get("perturbations") else "–"


def _exchange(figures: Mapping[str, Any]) -> str:
    captured = figures.get("captured") or {}
    parts = [f'<header>exchange <code>{_e(figures["exchange_id"])}</code> · pass@k {_num(figures.get("pass_at_k"))}'
             f' · passed {figures["passed"]}/{figures["judged"]} · identical {figures["identical_to_original"]}/'
             f'{figures["answered"]}</header>']
    if figures.get("prompt") is not None:
        parts.append(f'<h4>asked (last user message)</h4><pre class="answer prompt">{_e(figures["prompt"])}</pre>')
    shown = _first_differing(figures["repetitions"])
    if shown is None:
        note = "every replay answered as captured" if figures["answered"] else "no replay answered"
        parts.append(f'<p class="empty">{_e(note)}.</p>')
    else:
        diff = shown.get("diff") or {}
        parts.append(
            f'<div class="side-by-side"><div><h4>captured answer</h4><pre class="answer captured-text">'
            f'{_e(captured.get("text"))}</pre></div><div><h4>replay {shown["repetition"]}, words removed struck '
            f'through and added highlighted</h4><pre class="answer text-diff">'
            f'{render_text_diff_html(captured.get("text"), shown.get("response_text"))}</pre></div></div>')
        parts += [_diff_list(title, css_class, diff.get(key) or [])
                  for title, css_class, key in (("JSON diff", "json-diff", "json_diff"),
                                                ("tool-call diff", "tool-call-diff", "tool_call_diff"))]
    parts.append(_table(["repetition", "outcome", "passed", "value", "latency ms", "error"],
                        [[_e(r["repetition"]), _e(r["outcome"]), _e({1: "yes", 0: "no"}.get(r["passed"], "–")),
                          _num(r.get("pass_value")), _num(r.get("latency_ms")), _e(r.get("error") or "")]
                         for r in figures["repetitions"]], "repetitions"))
    if figures.get("perturbations"):
        parts.append(_perturbations(figures))
    return f'<article class="exchange" data-exchange-id="{_e(figures["exchange_id"])}">{"".join(parts)}</article>'


def _first_differing(repetitions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for repetition in repetitions:
        diff = repetition.get("diff")
        if diff and not diff.get("identical"):
            return repetition
    return None


def _diff_list(title: str, css_class: str, lines: Sequence[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f'<h4>{_e(title)}</h4><ul class="diff-lines {css_class}">{items}</ul>'


def _perturbations(figures: Mapping[str, Any]) -> str:
    sensitivity = figures.get("sensitivity") or {}
    changed = set(sensitivity.get("changed_by") or [])
    rows = []
    for name, fig in sorted(figures["perturbations"].items()):
        written = fig.get("paraphrase")
        request = "" if written is None else (
            f'<pre class="answer paraphrase">{_e(written["text"])}</pre>' if written.get("text")
            else f'<span class="empty">not written: {_e(written.get("error") or "no text")}</span>')
        rows.append([_e(name), request, f"{fig['passed']}/{fig['judged']}", _num(fig.get("pass_at_k")),
                     "yes" if name in changed else "no"])
    caption = (f"<p>Sensitivity {_num(sensitivity.get('share'))}: {sensitivity.get('changed', 0)} of "
               f"{sensitivity.get('perturbations', 0)} perturbations changed the outcome or the answer.</p>"
               if sensitivity else "")
    return "<h4>perturbations</h4>" + caption + _table(["perturbation", "paraphrase written", "passed", "pass@k",
                                                        "changed"], rows, "perturbations")
