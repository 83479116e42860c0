"""The figures of a replay run (per exchange and overall) and their renderings: text, Markdown, JSON.
(The HTML page is replay/render_html.py, drawn from the same summary.)"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import orjson

from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.evaluators.items import parse_request
from shadowtap.evaluators.report.error_reasons import describe_reasons
from shadowtap.replay.failures import FAILED_OUTCOMES, call_failures, not_measured
from shadowtap.replay.paraphrase import last_user_text
from shadowtap.replay.passing import answer_consistency, outcome_consistency, pass_at_k

_DIFF_LINES = 12
_SHORT = 200


def run_summary(store: ReplayStore, run: dict) -> dict:
    """{"run": ..., "overall": ..., "exchanges": [...]} for one run; perturbed results are summarised
    as sensitivity (how often a perturbation changes the outcome or the answer). Each exchange also
    carries what was asked and the captured answer, and each paraphrase the text the writer wrote."""
    k = run["k"]
    by_exchange: dict[str, dict[str | None, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in store.results(run["id"]):
        by_exchange[row["exchange_id"]][row["perturbation"]].append(row)
    written: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in store.paraphrase_rows(run["id"]):
        written[row["exchange_id"]][row["perturbation"]] = {
            "text": row["response_text"], "outcome": row["outcome"], "error": row["error"], "cost_usd": row["cost_usd"]}
    exchange_ids = run["selection"].get("exchange_ids", [])
    captured = {row["id"]: row for row in store.exchanges(exchange_ids)}
    exchanges = []
    for exchange_id in exchange_ids:
        variants = by_exchange.get(exchange_id, {})
        figures = {"exchange_id": exchange_id, **_captured(captured.get(exchange_id)),
                   **_figures(variants.get(None, []), k)}
        perturbed = {name: _figures(rows, k) for name, rows in variants.items() if name is not None}
        for name, paraphrase in written.get(exchange_id, {}).items():
            perturbed.setdefault(name, _figures([], k))["paraphrase"] = paraphrase
        if perturbed:
            figures["perturbations"] = perturbed
        # A perturbation with nothing replayed (a paraphrase that could not be written) measures nothing;
        # one whose calls failed, or an exchange whose own replays failed, measures the failures.
        measured = {name: fig for name, fig in perturbed.items() if fig["answered"] and not fig["errors"]}
        figures["perturbation_errors"] = sum(fig["errors"] for fig in perturbed.values())
        if measured and figures["answered"] and not figures["errors"]:
            changed = [name for name, fig in measured.items()
                       if fig["majority_passed"] != figures["majority_passed"] or fig["answers"] != figures["answers"]]
            figures["sensitivity"] = {"perturbations": len(measured), "changed": len(changed),
                                      "share": len(changed) / len(measured), "changed_by": sorted(changed)}
        del figures["answers"]
        exchanges.append(figures)
    calls, failed = call_failures(store, run["id"])
    overall = {**_overall(exchanges), "calls": calls, "failed_calls": sum(failed.values()), "failed": failed}
    return {"run": _run_header(run), "overall": overall, "exchanges": exchanges}


def _captured(exchange: dict | None) -> dict:
    """What was asked (the last user message) and what the primary answered, as captured."""
    if exchange is None:
        return {}
    calls = exchange.get("response_tool_calls")
    return {"prompt": last_user_text(parse_request(exchange)),
            "captured": {"text": exchange.get("response_text"), "tool_calls": orjson.loads(calls) if calls else None}}


def _figures(rows: list[dict], k: int) -> dict:
    judged = [bool(row["passed"]) for row in rows if row["passed"] is not None]
    answered = [row for row in rows if row["outcome"] == "ok"]
    errors = sum(row["outcome"] in FAILED_OUTCOMES for row in rows)
    answers = [(row["response_text"] or "", repr(_call_shapes(row["response_tool_calls"]))) for row in answered]
    majority = None
    if judged:
        majority = sum(judged) * 2 >= len(judged)
    return {
        "results": len(rows), "answered": len(answered), "errors": errors,
        "skipped": sum(row["outcome"] == "skipped" for row in rows),
        "judged": len(judged), "passed": sum(judged), "pass_at_k": pass_at_k(len(judged), sum(judged), k),
        "pass_rate": sum(judged) / len(judged) if judged else None,
        # Consistency over the answers that came back would hide the calls that did not: none when any failed.
        "outcome_consistency": None if errors else outcome_consistency(judged),
        "answer_consistency": None if errors else answer_consistency(answers),
        "identical_to_original": sum(bool(row["diff"] and row["diff"].get("identical")) for row in answered),
        "majority_passed": majority, "answers": sorted(set(answers)),
        "repetitions": [{"repetition": row["repetition"], "outcome": row["outcome"], "passed": row["passed"],
                         "pass_value": row["pass_value"], "latency_ms": row["latency_ms"], "error": row["error"],
                         "response_text": row["response_text"], "response_tool_calls": row["response_tool_calls"],
                         "diff": row["diff"]} for row in rows],
    }


def _call_shapes(calls: list | None) -> list:
    return [((call.get("function") or {}).get("name"), (call.get("function") or {}).get("arguments"))
            for call in calls or []]


def _overall(exchanges: list[dict]) -> dict:
    def mean(values):
        values = [value for value in values if value is not None]
        return sum(values) / len(values) if values else None

    sensitive = [e["sensitivity"] for e in exchanges if "sensitivity" in e]
    return {
        "exchanges": len(exchanges), "results": sum(e["results"] for e in exchanges),
        "answered": sum(e["answered"] for e in exchanges), "errors": sum(e["errors"] for e in exchanges),
        "skipped": sum(e["skipped"] for e in exchanges),
        "pass_at_k": mean(e["pass_at_k"] for e in exchanges), "pass_rate": mean(e["pass_rate"] for e in exchanges),
        "outcome_consistency": mean(e["outcome_consistency"] for e in exchanges),
        "answer_consistency": mean(e["answer_consistency"] for e in exchanges),
        "identical_to_original": sum(e["identical_to_original"] for e in exchanges),
        "sensitivity": mean(s["share"] for s in sensitive) if sensitive else None,
    }


def _run_header(run: dict) -> dict:
    selection = run["selection"]
    paraphrase = selection.get("paraphrase")
    return {"id": run["id"], "created_at": run["created_at"], "finished_at": run["finished_at"],
            "status": run["status"], "k": run["k"], "pass": run["pass_criterion"], "target": run["target"],
            "selection": selection.get("filters", {}), "sample": selection.get("sample"),
            "perturb": bool(selection.get("perturb")), "budget_usd": selection.get("budget_usd"),
            "paraphrase": ({"model": paraphrase["writer"]["model"], "count": paraphrase["count"]}
                           if paraphrase else None)}


def paraphrase_lines(figures: dict) -> list[str]:
    """One line per paraphrase of an exchange: the text the writer wrote, shortened, or why there is none."""
    lines = []
    for name, fig in sorted((figures.get("perturbations") or {}).items()):
        written = fig.get("paraphrase")
        if written is None:
            continue
        text = " ⏎ ".join((written["text"] or "").splitlines())   # one line per paraphrase
        if written["outcome"] != "ok" or not text:
            lines.append(f"{name}: not written ({written['error'] or 'no text'})")
            continue
        line = f"{name}: {text if len(text) <= _SHORT else text[:_SHORT - 1] + '…'}"
        if fig["results"] and fig["skipped"] == fig["results"]:
            line += f"  (not replayed: {fig['repetitions'][0]['error']})"
        lines.append(line)
    return lines


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _diff_lines(figures: dict) -> list[str]:
    """The first differing repetition's diff, shortened."""
    for rep in figures["repetitions"]:
        diff = rep["diff"]
        if diff and not diff.get("identical"):
            lines = [*diff.get("tool_call_diff", []), *diff.get("json_diff", []), *diff.get("text_diff", [])]
            return lines[:_DIFF_LINES] + (["…"] if len(lines) > _DIFF_LINES else [])
    return []


def measured_figure(value, errors: int) -> str:
    """A figure that is not computed over failed calls: `n/a (k errors)` in its place, or the value
    with the number of failed calls it leaves out."""
    if not errors:
        return _fmt(value)
    if value is None:
        return not_measured(errors)
    return f"{_fmt(value)} ({errors} error{'s' if errors != 1 else ''} left out)"


def overall_figures(summary: Mapping[str, Any]) -> dict[str, str]:
    """The overall consistency and sensitivity figures as shown, failed calls accounted for."""
    run, overall = summary["run"], summary["overall"]
    shown = {name: measured_figure(overall[name], overall["errors"])
             for name in ("outcome_consistency", "answer_consistency")}
    perturbed = run["perturb"] or run["paraphrase"]
    if overall["sensitivity"] is not None or (perturbed and overall["failed_calls"]):
        shown["sensitivity"] = measured_figure(overall["sensitivity"], overall["failed_calls"])
    return shown


def failure_line(summary: Mapping[str, Any]) -> str | None:
    overall = summary["overall"]
    if not overall["failed_calls"]:
        return None
    return (f"failed calls {overall['failed_calls']} of {overall['calls']}: {describe_reasons(overall['failed'], 5)}"
            f" (no figure is computed over them; `shadowtap replay resume {summary['run']['id']}` retries them)")


def render_text(summary: dict) -> str:
    run, overall = summary["run"], summary["overall"]
    target = run["target"]
    shown = overall_figures(summary)
    lines = [f"replay run {run['id']}  status {run['status']}  target {target['kind']}:{target['name']}  "
             f"k={run['k']}  pass {run['pass']}",
             f"exchanges {overall['exchanges']}  results {overall['results']}  errors {overall['errors']}  "
             f"skipped {overall['skipped']}  identical {overall['identical_to_original']}/{overall['answered']}",
             f"pass@k {_fmt(overall['pass_at_k'])}  pass rate {_fmt(overall['pass_rate'])}  "
             f"outcome consistency {shown['outcome_consistency']}  "
             f"answer consistency {shown['answer_consistency']}"
             + (f"  perturbation sensitivity {shown['sensitivity']}" if "sensitivity" in shown else "")]
    lines += [line for line in [failure_line(summary)] if line] + [""]
    lines.append(f"{'exchange':<34} {'pass@k':>7} {'passed':>7} {'consist':>7} {'identical':>9}")
    for figures in summary["exchanges"]:
        lines.append(f"{figures['exchange_id']:<34} {_fmt(figures['pass_at_k']):>7} "
                     f"{figures['passed']}/{figures['judged']:<5} "
                     f"{measured_figure(figures['outcome_consistency'], figures['errors']):>7} "
                     f"{figures['identical_to_original']}/{figures['answered']:<7}")
        lines += [f"    {line}" for line in _diff_lines(figures) + paraphrase_lines(figures)]
    return "\n".join(lines)


def render_markdown(summary: dict) -> str:
    run, overall = summary["run"], summary["overall"]
    target = run["target"]
    lines = [f"## Replay run `{run['id']}`", "",
             f"Target `{target['kind']}:{target['name']}`, k = {run['k']}, pass criterion `{run['pass']}`, "
             f"status {run['status']}.", "",
             "| figure | value |", "|---|---|"]
    shown = {name: _fmt(overall[name]) for name in ("exchanges", "results", "errors", "skipped",
                                                     "identical_to_original", "pass_at_k", "pass_rate", "sensitivity")}
    shown |= overall_figures(summary)
    for name in ("exchanges", "results", "errors", "skipped", "identical_to_original", "pass_at_k", "pass_rate",
                 "outcome_consistency", "answer_consistency", "sensitivity"):
        lines.append(f"| {name.replace('_', ' ')} | {shown[name]} |")
    failures = failure_line(summary)
    if failures:
        lines += ["", failures.replace("`", "")]
    lines += ["", "| exchange | pass@k | passed | consistency | identical |", "|---|---|---|---|---|"]
    for figures in summary["exchanges"]:
        lines.append(f"| `{figures['exchange_id']}` | {_fmt(figures['pass_at_k'])} | "
                     f"{figures['passed']}/{figures['judged']} | "
                     f"{measured_figure(figures['outcome_consistency'], figures['errors'])} | "
                     f"{figures['identical_to_original']}/{figures['answered']} |")
    lines += _fenced_per_exchange(summary, "Differences from the captured answers", "diff", _diff_lines)
    lines += _fenced_per_exchange(summary, "Paraphrases replayed", "text", paraphrase_lines)
    return "\n".join(lines)


def _fenced_per_exchange(summary: dict, title: str, language: str, lines_of) -> list[str]:
    """A Markdown section with one fenced block per exchange that `lines_of(figures)` has lines for."""
    blocks = [(figures["exchange_id"], lines_of(figures)) for figures in summary["exchanges"]]
    blocks = [(exchange_id, lines) for exchange_id, lines in blocks if lines]
    if not blocks:
        return []
    out = ["", f"### {title}", ""]
    for exchange_id, lines in blocks:
        out += [f"`{exchange_id}`", "", f"```{language}", *lines, "```", ""]
    return out
