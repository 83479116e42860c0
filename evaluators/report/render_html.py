"""The HTML report: one self-contained file, charts as inline SVG drawn here, no script at all.

Every string from the store (answers, candidate and category names, tags, exchange ids) is
captured traffic and therefore untrusted: it goes through `_e` (html.escape, quote=True) on its
way into text, SVG `<title>` tooltips and attributes alike, and the page's Content-Security-Policy
forbids script, so a missed escape still could not run.
"""

from __future__ import annotations

import difflib
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shadowtap.evaluators.report.error_reasons import describe_reasons
from shadowtap.evaluators.report.exchange_links import DEFAULT_UI_URL, exchanges_path
from shadowtap.evaluators.report.html_assets import (
    CANDIDATE_COLOURS,
    HEAT_SCALE,
    PRIMARY_COLOUR,
    distinct_colours,
    heat_colour,
    html_page,
    ticks,
)
from shadowtap.evaluators.report.model import READY, GateCheck
from shadowtap.evaluators.report.tables import VERDICT_NAMES, check_text

PRIMARY = "primary"
Cell = str | tuple[str, str]   # pre-escaped HTML, or (HTML, CSS class)
_TOKEN_RE = re.compile(r"^\s+|\S+\s*")      # words carry their trailing space, so lone spaces never "match"
_MAX_DIFF_TOKENS = 4000       # difflib is quadratic at worst; longer answers are shown undiffed
# (figure, what it is, the value drawn white): the first figure any cell has colours the map.
_HEAT_FIGURES = (("agreement_above_noise", "agreement above the primary's noise", 0.0),
                 ("grounding_difference", "grounding, candidate minus primary", 0.0),
                 ("faithfulness_difference", "faithfulness, candidate minus primary", 0.0),
                 ("agreement", "agreement with the primary (no twin samples for a noise floor)", 1.0))
_TREND_METRICS = (("agreement above noise", ("agreement", "above_noise")),
                  ("agreement", ("agreement", "candidate", "mean")),
                  ("faithfulness (candidate - primary)", ("faithfulness", "difference", "mean")),
                  ("grounding (candidate - primary)", ("grounding", "difference", "mean")),
                  ("latency p95 ratio", ("latency", "p95_ratio")))


def render_html(report: Any, *, ui_url: str = DEFAULT_UI_URL) -> str:
    """The report page for a `ReportData` (or its `to_json()` dict). Each failing figure of the
    verdict links to the exchanges behind it in the review UI at `ui_url` (`shadowtap ui`)."""
    from shadowtap.evaluators.report.render_html_canary import canary_section  # it imports this module's helpers
    from shadowtap.evaluators.report.render_html_outcomes import outcomes_section  # it imports this module's helpers

    data: Mapping[str, Any] = report.to_json() if hasattr(report, "to_json") else report
    candidates = [c["name"] for c in data.get("candidates") or []]
    for source in [d["source"] for d in data.get("distributions") or []] + [p["candidate"] for p in data.get("trends") or []]:
        if source != PRIMARY and source not in candidates:
            candidates.append(source)
    colours = {PRIMARY: PRIMARY_COLOUR} | distinct_colours(candidates, CANDIDATE_COLOURS)
    body = "\n".join([
        _header(data), _verdicts(data.get("gate"), ui_url.rstrip("/")), _summary(data), _gate(data.get("gate")),
        _section("Score distributions", _distributions(data.get("distributions") or [], colours)),
        _section("Latency", _latency(data.get("latency_samples") or [], colours)),
        _section("Trends", _trends(data.get("trends") or [], data.get("window"), colours)),
        _section("Categories", _heatmap(data.get("heatmap") or [], candidates)),
        _section("Human outcomes", outcomes_section(data.get("outcomes"))),
        *([_section("Canary", canary_section(data["canary"]))] if data.get("canary") else []),
        _section("Worst disagreements", _disagreements(data.get("worst_disagreements") or [])),
        _methods(data.get("methods") or {}),
        f'<footer>shadowtap report, schema {_e(data.get("schema_version"))}. This file loads nothing '
        f'from the network and runs no script.</footer>'])
    return html_page(f'shadowtap report, {"" if data.get("generated_at") is None else data.get("generated_at")}', body)


# -- text --------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float | None, digits: int = 2, *, signed: bool = False, percent: bool = False) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–" if value is None or isinstance(value, (int, float)) else _e(value)
    if percent:
        return f"{value * 100:{'+' if signed else ''}.{max(digits - 2, 0)}f}%"
    return f"{value:{'+' if signed else ''}.{digits}f}"


def _dig(data: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _section(title: str, content: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


def _table(headings: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Cells are pre-escaped HTML; a cell may be a (html, class) pair."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    lines = []
    for row in rows:
        cells = [cell if isinstance(cell, tuple) else (cell, "") for cell in row]
        lines.append("<tr>" + "".join(f'<td class="{k}">{v}</td>' if k else f"<td>{v}</td>" for v, k in cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _legend(names: Iterable[str], colours: Mapping[str, str]) -> str:
    items = "".join(f'<span><span class="swatch" style="background:{colours.get(n, "#999")}"></span>{_e(n)}</span>' for n in names)
    return f'<div class="legend">{items}</div>'


# -- page parts --------------------------------------------------------------------------------

def _header(data: Mapping[str, Any]) -> str:
    meta = [("Generated", data.get("generated_at")), ("Store", data.get("store")),
            ("Since", data.get("since") or "the first capture"), ("Until", data.get("until") or "now"),
            ("Window", data.get("window") or "1d"), ("Exchanges", data.get("exchanges"))]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    gate, verdict = data.get("gate"), ""
    if gate is not None:
        failed = len(gate.get("failed") or [])
        verdict = (f'<p><span class="verdict {"pass" if gate.get("passed") else "fail"}">Gate: '
                   f'{"PASS" if gate.get("passed") else "FAIL"}</span> {failed} failed check(s)</p>')
    return f"<header>\n<h1>shadowtap: candidates against the primary</h1>\n<dl class=\"meta\">{items}</dl>\n{verdict}\n</header>"


def _interval(d: Mapping[str, Any] | None, signed: bool = False) -> str:
    if not d or d.get("mean") is None:
        return "–"
    bounds = f' [{_num(d.get("low"), signed=signed)}, {_num(d.get("high"), signed=signed)}]' if d.get("low") is not None else ""
    return f'{_num(d.get("mean"), signed=signed)}{bounds}'


def _rate(d: Mapping[str, Any] | None) -> str:
    return "–" if not d or d.get("rate") is None else f'{_num(d["rate"], 3, percent=True)} ({_e(d.get("count"))}/{_e(d.get("n"))})'


def _pair(f: Mapping[str, Any], mine: Sequence[str], theirs: Sequence[str], show) -> str:
    return f"{show(_dig(f, mine))} vs {show(_dig(f, theirs))}"


# (row label, how to show it from a candidate's overall KeyFigures dict)
_SUMMARY_ROWS = (
    ("answered samples", lambda f: _e(f.get("samples"))),
    ("agreement [95% CI]", lambda f: _interval(_dig(f, ("agreement", "candidate")))),
    ("primary's own noise (vs twin)", lambda f: _interval(_dig(f, ("agreement", "noise")))),
    ("agreement above noise", lambda f: _num(_dig(f, ("agreement", "above_noise")), 3, signed=True)),
    ("disagreement above noise", lambda f: _num(_dig(f, ("agreement", "disagreement_above_noise")), 3, percent=True)),
    ("faithfulness Δ [95% CI]", lambda f: _interval(_dig(f, ("faithfulness", "difference")), True)),
    ("grounding Δ [95% CI]", lambda f: _interval(_dig(f, ("grounding", "difference")), True)),
    ("stale context", lambda f: _rate(f.get("stale_context"))),
    ("contract valid (vs primary)", lambda f: _pair(f, ("contract_valid",), ("primary_contract_valid",), _rate)),
    ("refusals (vs primary)", lambda f: _pair(f, ("refusal",), ("primary_refusal",), _rate)),
    # Both shares are the candidate's own (of its calls made): no "vs", which every other row keeps for the primary.
    ("errors, timeouts (of calls made)", lambda f: f'errors {_rate(_dig(f, ("calls", "error_rate")))}, '
                                                   f'timeouts {_rate(_dig(f, ("calls", "timeout_rate")))}'),
    ("top error reasons", lambda f: _e(describe_reasons(_dig(f, ("calls", "error_reasons")) or {})) or "–"),
    ("latency p50 / p95 ×", lambda f: f'{_num(_dig(f, ("latency", "p50_ratio")))} / {_num(_dig(f, ("latency", "p95_ratio")))}'
                                      + (" vs twin" if _dig(f, ("latency", "baseline")) == "primary_twin" else "")),
    ("time to first token p50 ×", lambda f: _num(_dig(f, ("latency", "ttft_p50_ratio")))),
    ("cost per 1k requests (USD) ×", lambda f: _num(_dig(f, ("cost", "ratio")))),
    ("tokens per request ×", lambda f: _num(_dig(f, ("cost", "tokens_ratio")))),
)


def _summary(data: Mapping[str, Any]) -> str:
    candidates = data.get("candidates") or []
    if not candidates:
        return _section("Candidates", '<p class="empty">No candidate answered in this selection.</p>')
    overall = [c.get("overall") or {} for c in candidates]
    rows: list[list[Cell]] = [[_e(label), *(show(f) for f in overall)] for label, show in _SUMMARY_ROWS]
    worse = [[str(finding.get("metric")) for finding in f.get("significantly_worse") or []] for f in overall]
    # A statistical finding, not the verdict: "none" here is not a pass, so it is never coloured as one.
    rows.append(["significantly worse than the primary",
                 *((_e(", ".join(w)), "fail") if w else "none" for w in worse)])
    verdicts = {v.get("candidate"): v for v in (data.get("gate") or {}).get("candidates") or []}
    if verdicts:
        rows.insert(0, ["verdict", *(_verdict_cell(verdicts.get(c.get("name"))) for c in candidates)])
    rows.insert(1 if verdicts else 0, ["model", *(_e(c.get("model") or "–") for c in candidates)])
    return _section("Candidates", _table(["overall"] + [str(c.get("name")) for c in candidates], rows))


def _verdict_cell(verdict: Mapping[str, Any] | None) -> Cell:
    if verdict is None:
        return "–"
    name = str(verdict.get("verdict"))
    return _e(VERDICT_NAMES.get(name, name)), (
        "pass" if verdict.get("verdict") == READY else "fail")


def _verdicts(gate: Mapping[str, Any] | None, ui_url: str) -> str:
    """Each candidate's verdict and the failing checks behind it: the gate's own, so the page cannot
    disagree. Each failing check links to its exchanges in the review UI."""
    items = (gate or {}).get("candidates") or []
    if not items:
        return ""
    rows: list[list[Cell]] = [[_e(v.get("candidate")), _verdict_cell(v), _why(v, ui_url)] for v in items]
    return _section("Verdict", "<p>Each candidate against the [gate] thresholds: the checks shadowtap gate exits "
                               f'on. Each failing figure opens its exchanges in the review UI (<code>shadowtap ui'
                               f"</code> at {_e(ui_url)}).</p>" + _table(["candidate", "verdict", "why"], rows))


def _why(verdict: Mapping[str, Any], ui_url: str) -> str:
    """The failing checks as links (HTML), or how many passed (as tables.why words it)."""
    failed = [GateCheck(**check) for check in verdict.get("failed") or []]
    if failed:
        return "; ".join(f'<a href="{_e(ui_url + exchanges_path(check))}">{_e(check_text(check))}</a>'
                         for check in failed)
    skipped = verdict.get("skipped") or 0
    return _e(f'all {(verdict.get("checks") or 0) - skipped} checks passed' + (f", {skipped} skipped" if skipped else ""))


def _gate(gate: Mapping[str, Any] | None) -> str:
    if not gate:
        return ""
    rows: list[list[Cell]] = [
        [_e(c.get("candidate")), _e(c.get("scope")), _e(c.get("check")), _num(c.get("figure"), 3),
         _e(f'{c.get("comparison")} {_num(c.get("threshold"), 3)}'),
         (_e(c.get("status")), "fail" if c.get("status") == "fail" else "pass" if c.get("status") == "pass" else ""),
         _e(c.get("reason") or "")] for c in gate.get("checks") or []]
    return _section("Gate", _table(["candidate", "scope", "check", "figure", "threshold", "status", "note"], rows))


def _methods(methods: Mapping[str, str]) -> str:
    if not methods:
        return ""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in sorted(methods.items()))
    return _section("How the figures are computed", f"<dl>{items}</dl>")


# -- charts ------------------------------------------------------------------------------------

def _svg(kind: str, width: int, height: int, label: str, content: str) -> str:
    return (f'<svg class="chart {kind}" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(label)}">'
            f"<title>{_e(label)}</title>{content}</svg>")


def _figure(svg: str, caption: str, legend: str = "") -> str:
    return f"<figure>{legend}{svg}<figcaption>{caption}</figcaption></figure>"


def _axes(x0: int, y0: int, x1: int, y1: int, y_ticks: Sequence[float], y_of, y_fmt) -> str:
    parts = [f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>',
             f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>']
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}"/>'
                     f'<text x="{x0 - 4}" y="{y + 3:.1f}" text-anchor="end">{_e(y_fmt(tick))}</text>')
    return "".join(parts)


def _distributions(distributions: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> str:
    by_evaluator: dict[str, list[Mapping[str, Any]]] = {}
    for d in sorted(distributions, key=lambda d: d["source"] != PRIMARY):  # stable: evaluators keep their order
        by_evaluator.setdefault(d["evaluator"], []).append(d)
    if not by_evaluator:
        return '<p class="empty">No scores in this selection.</p>'
    figures = [_histogram(evaluator, series, colours) for evaluator, series in by_evaluator.items()]
    return ('<p>Share of each source\'s scores per tenth of the 0–1 scale; hover a bar for its count.</p>'
            f'<div class="charts">{"".join(figures)}</div>')


def _histogram(evaluator: str, series: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> str:
    width, height, left, bottom, top = 380, 210, 40, 30, 10
    bins = max(len(d.get("counts") or []) for d in series) or 10
    shares = [[c / d["n"] if d.get("n") else 0.0 for c in d.get("counts") or []] for d in series]
    y_ticks = ticks(0, max((s for row in shares for s in row), default=0) or 1.0)
    plot_w, plot_h = width - left - 10, height - bottom - top
    y_of = lambda v: top + plot_h * (1 - v / y_ticks[-1])  # noqa: E731
    parts = [_axes(left, height - bottom, width - 10, top, y_ticks, y_of, lambda t: f"{t * 100:.0f}%")]
    slot = plot_w / bins
    bar_w = slot * 0.85 / len(series)
    parts += [f'<text x="{left + b * slot:.1f}" y="{height - bottom + 14}" text-anchor="middle">{b / bins:.1f}</text>'
              for b in range(0, bins + 1, 2)]
    for k, (d, row) in enumerate(zip(series, shares)):
        for b, (count, share) in enumerate(zip(d.get("counts") or [], row)):
            x, y = left + b * slot + slot * 0.075 + k * bar_w, y_of(share)
            tip = f'{d["source"]}: {count} of {d.get("n")} {evaluator} scores in [{b / bins:.1f}, {(b + 1) / bins:.1f})'
            parts.append(f'<rect class="bar" data-source="{_e(d["source"])}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{bar_w:.1f}" height="{height - bottom - y:.1f}" fill="{colours.get(d["source"], "#999")}">'
                         f"<title>{_e(tip)}</title></rect>")
    svg = _svg("histogram", width, height, f"{evaluator} score distribution", "".join(parts))
    means = "; ".join(f'{_e(d["source"])} mean {_num(d.get("mean"))} (n={_e(d.get("n"))})' for d in series)
    return _figure(svg, f"<strong>{_e(evaluator)}</strong>: {means}", _legend([d["source"] for d in series], colours))


def _latency(samples: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> str:
    samples = sorted(samples, key=lambda s: (s["source"] != PRIMARY, s["source"]))
    figures = [_cdf(f"{title} CDF", [(s["source"], s.get(key) or [], s.get(n_key)) for s in samples], colours)
               for title, key, n_key in (("Latency", "latency_ms", "n"), ("Time to first token", "ttft_ms", "ttft_n"))
               if any(s.get(key) for s in samples)]
    if not figures:
        return '<p class="empty">No latency samples in this selection.</p>'
    return f'<div class="charts">{"".join(figures)}</div>'


def _cdf(title: str, series: Sequence[tuple[str, Sequence[float], int | None]], colours: Mapping[str, str]) -> str:
    width, height, left, bottom, top, right = 520, 260, 44, 34, 10, 14
    x_ticks = ticks(0, max((max(values) for _, values, _ in series if values), default=1.0) or 1.0, 5)
    plot_w, plot_h = width - left - right, height - bottom - top
    x_of = lambda v: left + plot_w * v / x_ticks[-1]  # noqa: E731
    y_of = lambda v: top + plot_h * (1 - v)  # noqa: E731
    parts = [_axes(left, height - bottom, width - right, top, [0, .25, .5, .75, 1], y_of, lambda t: f"{t:.2f}")]
    parts += [f'<text x="{x_of(t):.1f}" y="{height - bottom + 14}" text-anchor="middle">{t:g}</text>' for t in x_ticks]
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">milliseconds</text>')
    for source, values, n in series:
        if not values:
            continue
        values = sorted(values)
        points, count = [f"M{x_of(values[0]):.1f},{y_of(0):.1f}"], len(values)
        for i, v in enumerate(values):
            points.append(f"H{x_of(v):.1f}V{y_of((i + 1) / count):.1f}")
        p50, p95 = values[min(count - 1, int(0.5 * count))], values[min(count - 1, int(0.95 * count))]
        tip = f"{source}: n={n if n is not None else count}, median ~{p50:.0f} ms, p95 ~{p95:.0f} ms"
        parts.append(f'<path class="cdf-line" data-source="{_e(source)}" d="{"".join(points)}" fill="none" '
                     f'stroke="{colours.get(source, "#999")}" stroke-width="2"><title>{_e(tip)}</title></path>')
    svg = _svg("cdf", width, height, title, "".join(parts))
    return _figure(svg, f"{_e(title)}: share of answers at or under each time.", _legend([s for s, v, _ in series if v], colours))


def _trends(points: Sequence[Mapping[str, Any]], window: str | None, colours: Mapping[str, str]) -> str:
    if not points:
        return '<p class="empty">No time windows in this selection.</p>'
    starts = sorted({p["start"] for p in points})
    figures = []
    for label, path in _TREND_METRICS:
        series: dict[str, dict[str, float]] = {}
        for p in points:
            value = _dig(p.get("figures"), path)
            if isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(p["candidate"], {})[p["start"]] = float(value)
        if series:
            figures.append(_line_chart(label, starts, series, colours))
    if not figures:
        return '<p class="empty">No figures to trend in this selection.</p>'
    return f'<p>One point per {_e(window or "1d")} window.</p><div class="charts">{"".join(figures)}</div>'


def _line_chart(label: str, starts: Sequence[str], series: Mapping[str, Mapping[str, float]],
                colours: Mapping[str, str]) -> str:
    width, height, left, bottom, top, right = 380, 210, 48, 30, 10, 24
    values = [v for s in series.values() for v in s.values()]
    y_ticks = ticks(min(values + [0.0]), max(values + [0.0]))
    low, high = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - bottom - top
    x_of = lambda i: left + (plot_w * i / (len(starts) - 1) if len(starts) > 1 else plot_w / 2)  # noqa: E731
    y_of = lambda v: top + plot_h * (high - v) / (high - low)  # noqa: E731
    parts = [_axes(left, height - bottom, width - right, top, y_ticks, y_of, lambda t: f"{t:g}")]
    if low < 0 < high:
        parts.append(f'<line class="axis" x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" stroke-dasharray="3,3"/>')
    step = max(1, math.ceil(len(starts) / 6))
    parts += [f'<text x="{x_of(i):.1f}" y="{height - bottom + 14}" text-anchor="middle">{_e(start[5:10])}</text>'
              for i, start in enumerate(starts) if i % step == 0]
    for name, by_start in sorted(series.items()):
        colour = colours.get(name, "#999")
        xy = [(x_of(i), y_of(by_start[s]), s) for i, s in enumerate(starts) if s in by_start]
        d = "".join(f'{"M" if j == 0 else "L"}{x:.1f},{y:.1f}' for j, (x, y, _) in enumerate(xy))
        parts.append(f'<path class="trend-line" data-source="{_e(name)}" d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle class="trend-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                  f"<title>{_e(f'{name}, window from {s}: {label} {by_start[s]:.3f}')}</title></circle>" for x, y, s in xy]
    svg = _svg("trend", width, height, f"{label} per window", "".join(parts))
    return _figure(svg, f"<strong>{_e(label)}</strong>", _legend(sorted(series), colours))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _heatmap(cells: Sequence[Mapping[str, Any]], candidates: Sequence[str]) -> str:
    if not cells:
        return '<p class="empty">No categories in this selection.</p>'
    key, described, centre = next((f for f in _HEAT_FIGURES if any(c.get(f[0]) is not None for c in cells)),
                                  _HEAT_FIGURES[0])
    columns = [c for c in candidates if any(cell["candidate"] == c for cell in cells)]
    columns += sorted({cell["candidate"] for cell in cells} - set(columns))
    rows = list(dict.fromkeys((cell["dimension"], cell["value"]) for cell in cells))  # the report's order
    by_key = {(cell["dimension"], cell["value"], cell["candidate"]): cell for cell in cells}
    label_w, cell_w, cell_h, head_h = 200, 160, 36, 24
    width, height = label_w + cell_w * len(columns) + 4, head_h + cell_h * len(rows) + 4
    parts = [f'<text x="{label_w + cell_w * (j + 0.5):.0f}" y="16" text-anchor="middle">{_e(_short(name, 24))}'
             f"<title>{_e(name)}</title></text>" for j, name in enumerate(columns)]
    for i, (dimension, value) in enumerate(rows):
        y = head_h + i * cell_h
        name = f"{dimension} = {value}"
        parts.append(f'<text x="{label_w - 6}" y="{y + cell_h / 2 + 4:.0f}" text-anchor="end">{_e(_short(name, 30))}'
                     f"<title>{_e(name)}</title></text>")
        for j, candidate in enumerate(columns):
            cell, x = by_key.get((dimension, value, candidate)), label_w + j * cell_w
            if cell is None:
                continue
            worse = [str(w) for w in cell.get("significantly_worse") or []]
            figure = cell.get(key)
            tip = (f"{candidate}, {name}: n={cell.get('samples')}; agreement {_num(cell.get('agreement'))}, "
                   f"above noise {_num(cell.get('agreement_above_noise'), signed=True)}; faithfulness Δ "
                   f"{_num(cell.get('faithfulness_difference'), signed=True)}; grounding Δ "
                   f"{_num(cell.get('grounding_difference'), signed=True)}; contract valid "
                   f"{_num(cell.get('contract_valid_rate'), 3, percent=True)}; significantly worse: {', '.join(worse) or 'none'}")
            offset = None if figure is None else figure - centre
            ink = "#fff" if offset is not None and abs(offset) > 0.6 * HEAT_SCALE else "#1b1b1b"
            lines = [f'{_num(figure, signed=not centre)} n={cell.get("samples")}', "▼ " + ", ".join(worse) if worse else ""]
            parts.append(
                f'<g class="heat-cell{" worse" if worse else ""}" data-candidate="{_e(candidate)}" '
                f'data-category="{_e(name)}"><title>{_e(tip)}</title><rect x="{x + 1}" y="{y + 1}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}" fill="{heat_colour(offset)}"/>'
                + (f'<rect class="worse-mark" x="{x + 2}" y="{y + 2}" width="{cell_w - 5}" height="{cell_h - 5}"/>'
                   if worse else "")
                + "".join(f'<text class="cell-text" style="fill:{ink}" x="{x + cell_w / 2:.0f}" y="{y + 15 + 13 * k}" '
                          f'text-anchor="middle">{_e(line)}</text>' for k, line in enumerate(lines))
                + "</g>")
    svg = _svg("heatmap", width, height, f"categories by candidate: {described}", "".join(parts))
    return _figure(svg, f"Colour: {_e(described)} (red worse, blue better, full at ±{HEAT_SCALE}). "
                        "Outlined cells with ▼ are significantly worse than the primary on the metrics named.")


# -- disagreements -------------------------------------------------------------------------------

def word_diff(primary: str, candidate: str) -> tuple[str, str]:
    """Both texts as escaped HTML: words only the primary has in `<del>`, only the candidate has in `<ins>`."""
    a, b = _TOKEN_RE.findall(primary), _TOKEN_RE.findall(candidate)
    if len(a) > _MAX_DIFF_TOKENS or len(b) > _MAX_DIFF_TOKENS:
        return _e(primary), _e(candidate)
    left, right = [], []
    matcher = difflib.SequenceMatcher(None, [t.strip() for t in a], [t.strip() for t in b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = _e("".join(a[i1:i2])), _e("".join(b[j1:j2]))
        left.append(old if op == "equal" or not old else f"<del>{old}</del>")
        right.append(new if op == "equal" or not new else f"<ins>{new}</ins>")
    return "".join(left), "".join(right)


def _disagreements(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return '<p class="empty">No scored disagreements in this selection.</p>'
    blocks = ["<p>Each candidate's lowest-agreement answers. Words only the primary wrote are struck through; "
              "words only the candidate wrote are highlighted.</p>"]
    for item in items:
        primary, candidate = item.get("primary_text"), item.get("candidate_text")
        left, right = word_diff(primary or "", candidate or "")
        where = ", ".join(f"{k} {item[k]}" for k in ("endpoint", "task", "risk_tier") if item.get(k))
        blocks.append(
            f'<article class="disagreement" data-candidate="{_e(item.get("candidate"))}" '
            f'data-exchange-id="{_e(item.get("exchange_id"))}">'
            f'<header><strong>{_e(item.get("candidate"))}</strong>: agreement {_num(item.get("agreement"), 3)} '
            f'({_e(item.get("label") or "")}, {_e(item.get("method") or "")}) · exchange <code>{_e(item.get("exchange_id"))}</code> '
            f'· {_e(item.get("started_at"))}{" · " + _e(where) if where else ""}</header>'
            f'<div class="side-by-side"><div><h4>primary</h4><pre class="answer primary-text">'
            f'{left if primary is not None else "<span class=empty>no text</span>"}</pre></div>'
            f'<div><h4>{_e(item.get("candidate"))}</h4><pre class="answer candidate-text">'
            f'{right if candidate is not None else "<span class=empty>no text</span>"}</pre></div></div></article>')
    return "\n".join(blocks)
