"""The figures of a replay run (per exchange and overall) and their renderings: text, Markdown, JSON."""

from __future__ import annotations

from collections import defaultdict

from proxy.store.replay_store import ReplayStore
from replay.passing import answer_consistency, outcome_consistency, pass_at_k

_DIFF_LINES = 12


def run_summary(store: ReplayStore, run: dict) -> dict:
    """{"run": ..., "overall": ..., "exchanges": [...]} for one run; perturbed results are summarised
    as sensitivity (how often a perturbation changes the outcome or the answer)."""
    k = run["k"]
    by_exchange: dict[str, dict[str | None, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in store.results(run["id"]):
        by_exchange[row["exchange_id"]][row["perturbation"]].append(row)
    exchanges = []
    for exchange_id in run["selection"].get("exchange_ids", []):
        variants = by_exchange.get(exchange_id, {})
        figures = _figures(variants.get(None, []), k)
        figures["exchange_id"] = exchange_id
        perturbed = {name: _figures(rows, k) for name, rows in variants.items() if name is not None}
        if perturbed:
            figures["perturbations"] = perturbed
            changed = [name for name, fig in perturbed.items()
                       if fig["majority_passed"] != figures["majority_passed"] or fig["answers"] != figures["answers"]]
            figures["sensitivity"] = {"perturbations": len(perturbed), "changed": len(changed),
                                      "share": len(changed) / len(perturbed), "changed_by": sorted(changed)}
        del figures["answers"]
        exchanges.append(figures)
    return {"run": _run_header(run), "overall": _overall(exchanges), "exchanges": exchanges}


def _figures(rows: list[dict], k: int) -> dict:
    judged = [bool(row["passed"]) for row in rows if row["passed"] is not None]
    answered = [row for row in rows if row["outcome"] == "ok"]
    answers = [(row["response_text"] or "", repr(_call_shapes(row["response_tool_calls"]))) for row in answered]
    majority = None
    if judged:
        majority = sum(judged) * 2 >= len(judged)
    return {
        "results": len(rows), "answered": len(answered), "errors": sum(row["outcome"] in ("error", "timeout")
                                                                       for row in rows),
        "skipped": sum(row["outcome"] == "skipped" for row in rows),
        "judged": len(judged), "passed": sum(judged), "pass_at_k": pass_at_k(len(judged), sum(judged), k),
        "pass_rate": sum(judged) / len(judged) if judged else None,
        "outcome_consistency": outcome_consistency(judged), "answer_consistency": answer_consistency(answers),
        "identical_to_original": sum(bool(row["diff"] and row["diff"].get("identical")) for row in answered),
        "majority_passed": majority, "answers": sorted(set(answers)),
        "repetitions": [{"repetition": row["repetition"], "outcome": row["outcome"], "passed": row["passed"],
                         "pass_value": row["pass_value"], "latency_ms": row["latency_ms"], "error": row["error"],
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
    return {"id": run["id"], "created_at": run["created_at"], "finished_at": run["finished_at"],
            "status": run["status"], "k": run["k"], "pass": run["pass_criterion"], "target": run["target"],
            "selection": run["selection"].get("filters", {}), "sample": run["selection"].get("sample")}


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


def render_text(summary: dict) -> str:
    run, overall = summary["run"], summary["overall"]
    target = run["target"]
    lines = [f"replay run {run['id']}  status {run['status']}  target {target['kind']}:{target['name']}  "
             f"k={run['k']}  pass {run['pass']}",
             f"exchanges {overall['exchanges']}  results {overall['results']}  errors {overall['errors']}  "
             f"skipped {overall['skipped']}  identical {overall['identical_to_original']}/{overall['answered']}",
             f"pass@k {_fmt(overall['pass_at_k'])}  pass rate {_fmt(overall['pass_rate'])}  "
             f"outcome consistency {_fmt(overall['outcome_consistency'])}  "
             f"answer consistency {_fmt(overall['answer_consistency'])}"
             + (f"  perturbation sensitivity {_fmt(overall['sensitivity'])}" if overall["sensitivity"] is not None
                else ""), ""]
    lines.append(f"{'exchange':<34} {'pass@k':>7} {'passed':>7} {'consist':>7} {'identical':>9}")
    for figures in summary["exchanges"]:
        lines.append(f"{figures['exchange_id']:<34} {_fmt(figures['pass_at_k']):>7} "
                     f"{figures['passed']}/{figures['judged']:<5} {_fmt(figures['outcome_consistency']):>7} "
                     f"{figures['identical_to_original']}/{figures['answered']:<7}")
        lines += [f"    {line}" for line in _diff_lines(figures)]
    return "\n".join(lines)


def render_markdown(summary: dict) -> str:
    run, overall = summary["run"], summary["overall"]
    target = run["target"]
    lines = [f"## Replay run `{run['id']}`", "",
             f"Target `{target['kind']}:{target['name']}`, k = {run['k']}, pass criterion `{run['pass']}`, "
             f"status {run['status']}.", "",
             "| figure | value |", "|---|---|"]
    for name in ("exchanges", "results", "errors", "skipped", "identical_to_original", "pass_at_k", "pass_rate",
                 "outcome_consistency", "answer_consistency", "sensitivity"):
        lines.append(f"| {name.replace('_', ' ')} | {_fmt(overall[name])} |")
    lines += ["", "| exchange | pass@k | passed | consistency | identical |", "|---|---|---|---|---|"]
    for figures in summary["exchanges"]:
        lines.append(f"| `{figures['exchange_id']}` | {_fmt(figures['pass_at_k'])} | "
                     f"{figures['passed']}/{figures['judged']} | {_fmt(figures['outcome_consistency'])} | "
                     f"{figures['identical_to_original']}/{figures['answered']} |")
    differing = [(figures["exchange_id"], _diff_lines(figures)) for figures in summary["exchanges"]]
    differing = [(exchange_id, diff) for exchange_id, diff in differing if diff]
    if differing:
        lines += ["", "### Differences from the captured answers", ""]
        for exchange_id, diff in differing:
            lines += [f"`{exchange_id}`", "", "```diff", *diff, "```", ""]
    return "\n".join(lines)
