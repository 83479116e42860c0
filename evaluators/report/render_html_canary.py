"""The HTML report's "Canary" section: each canary's share over time as a chart, then the canary
tables of the terminal and Markdown reports (share changes, rollbacks, fallbacks by cohort).

It reads the report's JSON dict; every cell goes through `_e` (candidate names, reasons and cohort
values come from config and captured traffic). render_html imports it inside `render_html()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shadowtap.evaluators.report.canary_section import canary_tables
from shadowtap.evaluators.report.html_assets import CANDIDATE_COLOURS, distinct_colours
from shadowtap.evaluators.report.render_html import _e, _line_chart, _table


def canary_section(canary: Mapping[str, Any] | None) -> str:
    if not canary:
        return ""
    changes = canary.get("changes") or []
    parts = []
    if changes:
        starts = sorted({change["at"] for change in changes})
        series: dict[str, dict[str, float]] = {}
        for change in changes:
            series.setdefault(change["candidate"], {})[change["at"]] = change["share_after"]
        parts.append(_line_chart("canary share", starts, series, distinct_colours(sorted(series), CANDIDATE_COLOURS)))
    for table in canary_tables(dict(canary)):
        parts.append(f"<h3>{_e(table.title)}</h3>" + _table(table.columns, [[_e(cell) for cell in row]
                                                                           for row in table.rows]))
    return "\n".join(parts)
