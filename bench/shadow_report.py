"""The shadow benchmark's results as markdown tables that can be pasted into a README."""

from __future__ import annotations

from bench.report import describe_exit

_LATENCY_COLUMNS = ("mode", "conns", "direct p50 / p99 ms", "off: added p50 / p99 ms", "on: added p50 / p99 ms",
                    "on/off added p50 / p99", "on - off p50 ms (per round)", "req/s off / on (direct)")
_COST_COLUMNS = ("mode", "conns", "off CPU ms/req (loop + other)", "on live CPU ms/req (loop + other)",
                 "on worker CPU ms/req", "candidates' sim CPU ms/req", "shadows ok / saturated / other",
                 "worker CPU ms per ok call")


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _cpu(total: float, loop: float) -> str:
    return f"{total:.2f} ({loop:.2f} + {total - loop:.2f})"


def _latency_row(cell: dict) -> list[str]:
    return [
        cell["mode"], str(cell["concurrency"]),
        f"{cell['direct_p50_ms']:.2f} / {cell['direct_p99_ms']:.2f}",
        f"{cell['off_added_p50_ms']:+.2f} / {cell['off_added_p99_ms']:+.2f}",
        f"{cell['on_added_p50_ms']:+.2f} / {cell['on_added_p99_ms']:+.2f}",
        f"{_ratio(cell['on_off_added_p50_ratio'])} / {_ratio(cell['on_off_added_p99_ratio'])}",
        f"{cell['on_minus_off_p50_ms']:+.2f} ({min(cell['round_on_minus_off_p50_ms']):+.2f} to "
        f"{max(cell['round_on_minus_off_p50_ms']):+.2f})",
        f"{cell['off_rps']:.0f} / {cell['on_rps']:.0f} ({cell['direct_rps']:.0f})",
    ]


def _cost_row(cell: dict, candidates: int) -> list[str]:
    shadows = cell["shadows"]
    per_call = cell["worker_cpu_ms_per_ok_call"]
    return [
        cell["mode"], str(cell["concurrency"]),
        _cpu(cell["off_cpu_ms_per_request"], cell["off_loop_cpu_ms_per_request"]),
        _cpu(cell["on_live_cpu_ms_per_request"], cell["on_live_loop_cpu_ms_per_request"]),
        f"{cell['worker_cpu_ms_per_request']:.2f}", f"{cell['candidates_upstream_cpu_ms_per_request']:.2f}",
        f"{shadows['ok']} / {shadows['saturated']} / {shadows['other']} "
        f"(of {candidates} x {cell['proxied_in_cell']['on']})",
        "n/a" if per_call is None else f"{per_call:.2f}",
    ]


def _table(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + \
        ["| " + " | ".join(row) + " |" for row in rows]


def valid(results: dict) -> list[str]:
    """What makes the run's numbers mean nothing: lost captures or shadow rows, changed bodies."""
    problems = []
    for name, sent in results["proxied_sent"].items():
        if results["captured"][name] != sent:
            problems.append(f"proxy {name} captured {results['captured'][name]} of {sent} requests")
    expected = results["candidates"] * results["proxied_sent"]["on"]
    if results["shadows_total"]["total"] != expected:
        problems.append(f"proxy on recorded {results['shadows_total']['total']} shadow rows, expected {expected}")
    changed = [key for key, same in results["identical_bodies"].items() if not same]
    if changed:
        problems.append("bodies differ from direct: " + ", ".join(changed))
    return problems


def _verdict(cells: list[dict]) -> str:
    parts = []
    for cell in cells:
        paired = cell["round_on_minus_off_p50_ms"]
        if cell["p50_within_noise"]:
            verdict = "within noise (off as slow or slower in some round)"
        else:
            verdict = f"on {'slower' if min(paired) > 0 else 'faster'} in all {len(paired)} rounds"
        parts.append(f"{cell['mode']} at {cell['concurrency']}: {cell['on_minus_off_p50_ms']:+.2f} ms, {verdict}")
    return "Shadows on minus off, added p50: " + "; ".join(parts) + "."


def markdown_report(results: dict) -> str:
    cells, machine, settings = results["cells"], results["machine"], results["settings"]
    candidates = results["candidates"]
    lines = ["Primary latency, shadows off and on:", ""]
    lines += _table(_LATENCY_COLUMNS, [_latency_row(cell) for cell in cells])
    lines += ["", "Cost, per proxied request, and what became of the shadows:", ""]
    lines += _table(_COST_COLUMNS, [_cost_row(cell, candidates) for cell in cells])
    totals = results["shadows_total"]
    other = ", ".join(f"{key} {value}" for key, value in sorted(totals["other_detail"].items())) or "none"
    identical = ", ".join(f"{key} {'yes' if same else 'NO'}" for key, same in results["identical_bodies"].items())
    codes = ", ".join(f"{name} {describe_exit(code)}" for name, code in results["proxy_exit_codes"].items())
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    problems = valid(results)
    lines += [
        "",
        _verdict(cells),
        "",
        f"Captured after the SIGTERM drain: off {results['captured']['off']} of {results['proxied_sent']['off']}, "
        f"on {results['captured']['on']} of {results['proxied_sent']['on']} (proxies: {codes}). "
        f"Shadow rows: {totals['total']} for {candidates} x {results['proxied_sent']['on']} requests: "
        f"ok {totals['ok']}, skipped saturated {totals['saturated']} "
        f"({results['shadow_queue_dropped'] or 0:.0f} requests refused by a full worker queue), other: {other}. "
        f"Bodies identical to direct: {identical}.",
        *([f"**Invalid run:** {'; '.join(problems)}."] if problems else []),
        *([f"Waits that gave up: {'; '.join(results['incomplete_waits'])}."] if results["incomplete_waits"] else []),
        f"Each cell: {settings['requests']} measured requests per side in {settings['rounds']} alternating "
        f"rounds, after {settings['warmup']} warm-up requests per side; primary simulator latency "
        f"{settings['primary_latency_ms']} ms.",
        "",
        f"Command: `{results['command']}`",
        f"Machine: {machine['usable_cores']} of {machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['platform']}, Python {machine['python']}, {packages}; "
        f"load average {machine['load_average_at_start']:.2f} at start.",
    ]
    return "\n".join(lines)
