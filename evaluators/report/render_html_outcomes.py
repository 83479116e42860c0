"""The HTML report's "Human outcomes" section: the outcome figures beside the evaluator scores, a
trend, evaluator validity and reviewer agreement with falling categories marked.

It reads the report's JSON dict, like render_html, and uses its escaping and table helpers: every
category value is captured traffic (a task header, a tag, a free label), so it goes through `_e`.
render_html imports this module inside `render_html()`, after both are loaded, to avoid a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shadowtap.evaluators.report.html_assets import OUTCOME_COLOURS, OUTCOME_LIGHTNESS, distinct_colours
from shadowtap.evaluators.report.outcome_tables import FALLING, KAPPA_NAMES, NO_FEEDBACK
from shadowtap.evaluators.report.render_html import _dig, _e, _interval, _line_chart, _num, _rate, _table

_RATE_SERIES = (("trusted completion", ("trusted_completion", "rate")), ("escalated", ("escalation", "rate")),
                ("rejected", ("rejection", "rate")), ("policy violation", ("policy_violation", "rate")))


def outcomes_section(outcomes: Mapping[str, Any] | None) -> str:
    if not outcomes or not outcomes.get("exchanges"):
        return f'<p class="empty">{_e(NO_FEEDBACK[0].upper() + NO_FEEDBACK[1:])}.</p>'
    category = str(outcomes.get("category"))
    parts = [f'<p>{_e(outcomes.get("exchanges"))} exchanges with feedback ({_e(outcomes.get("feedback_rows"))} rows): '
             "the primary's live answers as people judged them. Edit effort is per completed (accepted or edited) "
             "answer; evaluator means are the primary's scores on the same exchanges.</p>",
             _figures_table(outcomes, category), _trend(outcomes), _validity(outcomes.get("validity") or []),
             _agreement(outcomes, category)]
    return "\n".join(part for part in parts if part)


def _figures_table(outcomes: Mapping[str, Any], category: str) -> str:
    slices = [("overall", outcomes.get("overall") or {})]
    slices += [(f'{category}={c.get("value")}', c.get("figures") or {}) for c in outcomes.get("categories") or []]
    evaluators = sorted({name for _, figures in slices for name in figures.get("evaluator_means") or {}})
    rows = []
    for name, f in slices:
        means = f.get("evaluator_means") or {}
        rows.append([_e(name), _e(f.get("exchanges")), _rate_interval(f.get("trusted_completion")),
                     _interval(f.get("edit_minutes")), _interval(f.get("edit_ratio")), _rate(f.get("escalation")),
                     _rate(f.get("rejection")), _rate(f.get("policy_violation")), _rate(f.get("heavy_correction")),
                     *(_num(_dig(means, (e, "mean")), 3) for e in evaluators)])
    return _table(["slice", "with feedback", "trusted completion [95% CI]", "edit minutes [95% CI]",
                   "edit ratio [95% CI]", "escalated", "rejected", "policy violation", "heavy correction",
                   *(f"{e} mean" for e in evaluators)], rows)


def _rate_interval(d: Mapping[str, Any] | None) -> str:
    if not d or d.get("rate") is None:
        return "–"
    return (f'{_num(d["rate"], 3, percent=True)} [{_num(d.get("low"), 3, percent=True)}, '
            f'{_num(d.get("high"), 3, percent=True)}] ({_e(d.get("count"))}/{_e(d.get("n"))})')


def _trend(outcomes: Mapping[str, Any]) -> str:
    points = outcomes.get("trends") or []
    if not points:
        return ""
    starts = [p["start"] for p in points]
    rates = {label: {p["start"]: _dig(p.get("figures"), path) for p in points
                     if _dig(p.get("figures"), path) is not None} for label, path in _RATE_SERIES}
    colours = distinct_colours([label for label, _ in _RATE_SERIES], OUTCOME_COLOURS, lightness=OUTCOME_LIGHTNESS)
    charts = [_line_chart("outcome shares", starts, {k: v for k, v in rates.items() if v}, colours)]
    kappas = {("overall" if row["scope"] == "overall" else f'{outcomes.get("category")}={row["scope"]}'):
              {w["start"]: w["kappa"] for w in row.get("windows") or [] if w.get("kappa") is not None}
              for row in outcomes.get("agreement") or []}
    kappas = {name: series for name, series in kappas.items() if series}
    if kappas:
        kappa_starts = sorted({start for series in kappas.values() for start in series})
        kappa_colours = distinct_colours(kappas, OUTCOME_COLOURS, lightness=OUTCOME_LIGHTNESS)
        charts.append(_line_chart("reviewer kappa", kappa_starts, kappas, kappa_colours))
    rows = [[_e(p["start"]), _e(_dig(p, ("figures", "exchanges"))), _rate(_dig(p, ("figures", "trusted_completion"))),
             _num(_dig(p, ("figures", "edit_minutes", "mean")), 1), _rate(_dig(p, ("figures", "escalation"))),
             _rate(_dig(p, ("figures", "rejection"))), f'{_num(p.get("kappa"), 3)} ({_e(p.get("agreement_items"))})']
            for p in points]
    return (f'<h3>Per {_e(outcomes.get("window"))}</h3><div class="charts">{"".join(charts)}</div>'
            + _table(["window start", "with feedback", "trusted completion", "edit minutes", "escalated", "rejected",
                      "kappa (items)"], rows))


def _validity(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    body = [[_e(r.get("evaluator")), _e(r.get("n")), _e(r.get("positives")), _e(r.get("negatives")),
             _num(r.get("auc"), 3) + (f' [{_num(r.get("low"), 3)}, {_num(r.get("high"), 3)}]'
                                      if r.get("low") is not None else "")] for r in rows]
    return ("<h3>Evaluator validity</h3><p>ROC AUC of the primary's score for a good outcome: above 0.5, higher "
            "scores go with good outcomes. Bad = escalated, rejected, policy violation or heavily corrected; "
            "DeLong 95% interval.</p>" + _table(["evaluator", "n", "bad", "good", "AUC [95% CI]"], body))


def _agreement(outcomes: Mapping[str, Any], category: str) -> str:
    method = outcomes.get("agreement_method")
    if not method:
        return "<h3>Reviewer agreement</h3><p class=\"empty\">No exchange was judged by two or more reviewers.</p>"
    rows = []
    for r in outcomes.get("agreement") or []:
        scope = "overall" if r.get("scope") == "overall" else f'{category}={r.get("scope")}'
        drop = r.get("drop")
        rows.append([_e(scope), _e(r.get("items")), _e(r.get("reviewers")), _num(r.get("kappa"), 3),
                     _num(r.get("observed"), 3), _num(r.get("expected"), 3),
                     _num(None if drop is None else -drop, 3, signed=True),
                     (_e(FALLING), "fail") if r.get("falling") else ""])
    thresholds = outcomes.get("thresholds") or {}
    return (f"<h3>Reviewer agreement</h3><p>{_e(KAPPA_NAMES.get(method, method))} on the outcome labels. "
            f"Falling (marked) = down {_num(thresholds.get('falling_kappa_drop'))} or more from the first to the last "
            f"{_e(outcomes.get('window'))} with {_e(thresholds.get('falling_min_items'))}+ items: the early sign of "
            "guidelines drifting.</p>"
            + _table(["slice", "items", "reviewers", "kappa", "observed", "by chance", "first → last", "trend"],
                     rows))
