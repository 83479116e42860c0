"""The review UI's pages: the Jinja templates in templates/, rendered with autoescaping on.
Captured text is hostile, and every value reaches the page escaped. The pages carry no script at
all (the Content-Security-Policy allows none), so a missed escape still could not run."""

from __future__ import annotations

from pathlib import Path

import jinja2

from shadowtap.evaluators.report.html_assets import STYLESHEET

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")

_EXTRA_STYLE = """
nav { display: flex; gap: 1.25rem; align-items: baseline; border-bottom: 1px solid var(--rule);
      padding-bottom: .5rem; margin-bottom: 1rem; }
nav .who { margin-left: auto; color: var(--muted); }
nav form { display: inline; }
.verdict.not_ready { background: #fde7ea; color: var(--bad); }
.verdict.ready { background: #e3f4e6; color: var(--good); }
.verdict.not_enough_data { background: #eee; color: var(--muted); }
.answers { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.answer { border: 1px solid var(--rule); border-radius: 4px; padding: .6rem; }
.answer pre, pre.text { white-space: pre-wrap; word-break: break-word; margin: 0; font: inherit; }
ins { background: #d7f5dd; text-decoration: none; }
del { background: #fbdada; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
form.review { display: grid; gap: .5rem; max-width: 640px; }
.flash { padding: .5rem .75rem; background: #eef4fb; border-left: 3px solid #1f77b4; }
.error { padding: .5rem .75rem; background: #fde7ea; border-left: 3px solid var(--bad); }
td.text { text-align: left; max-width: 520px; }
"""

_ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                  autoescape=True, undefined=jinja2.StrictUndefined)


def render(template: str, **values) -> str:
    """`template` is a file name in templates/ without `.html`."""
    return _ENVIRONMENT.get_template(f"{template}.html").render(stylesheet=STYLESHEET + _EXTRA_STYLE, **values)
