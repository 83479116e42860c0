"""The HTML report's fixed parts: its Content-Security-Policy, stylesheet, palette and chart scales.

Nothing here touches captured text; render_html.py fills the page. The report needs no script,
so the policy allows none: even a missed escape in captured text could not run.
"""

import html
import math

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                           "base-uri 'none'; form-action 'none'")

PRIMARY_COLOUR = "#4a4a4a"
CANDIDATE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
# Outcome and reviewer series get their own colours, so no line in the outcomes section wears a
# candidate's colour from the charts above it.
OUTCOME_COLOURS = ("#1b7a2e", "#b8860b", "#8a0015", "#5c2d91", "#00838f", "#6d4c41", "#ad1457", "#37474f")
OUTCOME_LIGHTNESS = 0.3

# Heat map cells run from red (the candidate is worse) through white to blue (better).
WORSE_RGB = (214, 39, 40)
NEUTRAL_RGB = (247, 247, 247)
BETTER_RGB = (31, 119, 180)
HEAT_SCALE = 0.2             # a cell is full colour at +-0.2 (agreement or score points)

STYLESHEET = """
:root { --ink: #1b1b1b; --muted: #666; --rule: #ddd; --bad: #b00020; --good: #1b7a2e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 1.5rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--rule); padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
.meta { color: var(--muted); margin: 0 0 1rem; }
.meta dt { display: inline; font-weight: 600; color: var(--ink); }
.meta dd { display: inline; margin: 0 1.25rem 0 .25rem; }
.verdict { display: inline-block; padding: .2rem .6rem; border-radius: 3px; font-weight: 700; }
.verdict.pass { background: #e3f4e6; color: var(--good); }
.verdict.fail { background: #fde7ea; color: var(--bad); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--rule); padding: .3rem .6rem; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #999; }
td.fail, span.fail { color: var(--bad); font-weight: 600; }
td.pass, span.pass { color: var(--good); }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0 0 1rem; break-inside: avoid; page-break-inside: avoid; }
.charts figure { max-width: 540px; }
figcaption { font-size: .85rem; color: var(--muted); }
svg.chart { display: block; max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg.chart .axis { stroke: #888; stroke-width: 1; }
svg.chart .grid { stroke: #eee; stroke-width: 1; }
svg.chart text { fill: #333; }
svg.chart .cell-text { font-size: 10px; }
svg.chart .worse-mark { fill: none; stroke: #000; stroke-width: 2; }
.legend { display: flex; flex-wrap: wrap; gap: .75rem; font-size: .85rem; margin: .25rem 0; }
.legend .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; }
.empty { color: var(--muted); font-style: italic; }
.disagreement { border: 1px solid var(--rule); border-radius: 4px; padding: .6rem .8rem; margin: 0 0 1rem;
                break-inside: avoid; page-break-inside: avoid; }
.disagreement header { color: var(--muted); font-size: .85rem; margin-bottom: .4rem; }
.disagreement .prompt { margin: 0 0 .5rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.side-by-side { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
.side-by-side h4 { margin: 0 0 .25rem; font-size: .9rem; }
.answer { white-space: pre-wrap; overflow-wrap: anywhere; background: #fafafa; border: 1px solid #eee;
          padding: .5rem; margin: 0; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
del { background: #fde7ea; color: #8a0015; text-decoration: line-through; }
ins { background: #e3f4e6; color: #0d5c1f; text-decoration: none; }
footer { margin-top: 2rem; color: var(--muted); font-size: .8rem; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  .scroll { overflow: visible; }
  th, td { padding: .15rem .3rem; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .side-by-side { grid-template-columns: 1fr 1fr; }
  del, ins, .verdict, .legend .swatch, svg.chart { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def html_page(title: str, body: str, *, extra_style: str = "") -> str:
    """A whole self-contained page: the policy that forbids scripts and network loads, the
    stylesheet inline, and `body` (already escaped by the caller) inside."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CONTENT_SECURITY_POLICY)}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="referrer" content="no-referrer">\n'
            f'<title>{html.escape(title)}</title>\n'
            f'<style>{STYLESHEET}{extra_style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n')


def ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round-numbered ticks covering [low, high], about `count` steps."""
    if high - low <= 0:
        low, high = (0.0, 1.0) if high <= 0 else (0.0, high)
    step = 10 ** math.floor(math.log10((high - low) / count))
    step *= next((f for f in (1, 2, 2.5, 5) if (high - low) / (step * f) <= count), 10)
    first = math.floor(low / step + 1e-9)
    return [round(step * i, 10) for i in range(first, math.ceil(high / step - 1e-9) + 1)]


def heat_colour(value: float | None) -> str:
    if value is None:
        return "#e6e6e6"
    t = max(-1.0, min(1.0, value / HEAT_SCALE))
    end = BETTER_RGB if t > 0 else WORSE_RGB
    r, g, b = (round(n + (e - n) * abs(t)) for n, e in zip(NEUTRAL_RGB, end))
    return f"#{r:02x}{g:02x}{b:02x}"


def distinct_colours(names, palette, *, lightness: float = 0.42) -> dict[str, str]:
    """A colour per name, no two alike however many there are: the palette first, then hues spread
    by the golden angle at `lightness` (a palette that wraps around gives two series one colour).
    Palettes that must not meet take different lightnesses for their extra colours."""
    colours: dict[str, str] = {}
    used = set()
    extra = 0
    for index, name in enumerate(dict.fromkeys(names)):
        colour = palette[index] if index < len(palette) else None
        while colour is None or colour in used:
            colour = _hsl_hex((extra * 137.508) % 360, 0.55, lightness)
            extra += 1
        colours[name] = colour
        used.add(colour)
    return colours


def _hsl_hex(hue: float, saturation: float, lightness: float) -> str:
    chroma = (1 - abs(2 * lightness - 1)) * saturation
    x = chroma * (1 - abs((hue / 60) % 2 - 1))
    m = lightness - chroma / 2
    r, g, b = [(chroma, x, 0), (x, chroma, 0), (0, chroma, x), (0, x, chroma), (x, 0, chroma), (chroma, 0, x)][
        int(hue // 60) % 6]
    return "#" + "".join(f"{round((value + m) * 255):02x}" for value in (r, g, b))
