"""The overhead benchmark's results as a markdown table that can be pasted into a README."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import signal

GOAL_ADDED_P50_MS = 0.5
GOAL_PROXY_CPU_MS = 0.5

_COLUMNS = ("mode", "conns", "direct p50 / p99 ms", "added p50 ms", "added p99 ms", "direct req/s",
            "through/direct req/s", "proxy CPU ms/req (loop + other)", "CPU through/direct")


def machine_info() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for package in ("aiohttp", "uvicorn", "uvloop", "httptools"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "cpu_model": model,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": os.getloadavg()[0], "packages": versions}


def _row(cell: dict) -> list[str]:
    return [
        cell["mode"], str(cell["concurrency"]),
        f"{cell['direct_p50_ms']:.2f} / {cell['direct_p99_ms']:.2f}",
        f"{cell['added_p50_ms']:+.2f}", f"{cell['added_p99_ms']:+.2f}",
        f"{cell['direct_rps']:.0f}", f"{cell['rps_ratio']:.2f}",
        f"{cell['proxy_cpu_ms_per_request']:.2f} ({cell['proxy_loop_cpu_ms_per_request']:.2f} + "
        f"{cell['proxy_cpu_ms_per_request'] - cell['proxy_loop_cpu_ms_per_request']:.2f})",
        f"{cell['cpu_ratio']:.2f}x",
    ]


def capture_complete(results: dict) -> bool:
    """Every proxied request is in the store: otherwise the proxy skipped work it should do."""
    return results["captured"] == results["proxied_sent"]


def describe_exit(code: int) -> str:
    # Negative: the signal that ended the process (uvicorn re-raises the one it handled unless
    # the app stops it from doing so).
    return f"exit code {code}" if code >= 0 else f"exited on {signal.Signals(-code).name} after shutdown"


def _goals(cells: list[dict]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    parts = []
    for cell in cells:
        if cell["concurrency"] == 1:
            parts.append(f"{cell['mode']} added p50 at 1 conn {cell['added_p50_ms']:.2f} ms "
                         f"({verdict(cell['added_p50_ms'] < GOAL_ADDED_P50_MS)})")
    worst = max(cells, key=lambda cell: cell["proxy_cpu_ms_per_request"])
    worst_ms = worst["proxy_cpu_ms_per_request"]
    parts.append(f"highest proxy CPU {worst_ms:.2f} ms/req, {worst['mode']} at {worst['concurrency']} "
                 f"conn{'s' if worst['concurrency'] > 1 else ''} ({verdict(worst_ms < GOAL_PROXY_CPU_MS)})")
    return (f"Goals (< {GOAL_ADDED_P50_MS} ms added p50 at 1 connection, < {GOAL_PROXY_CPU_MS} ms proxy "
            f"CPU/request): " + "; ".join(parts) + ".")


def markdown_report(results: dict) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_row(cell)) + " |" for cell in results["cells"]]
    machine, settings = results["machine"], results["settings"]
    identical = ", ".join(f"{mode} {'yes' if same else 'NO'}" for mode, same in results["identical_bodies"].items())
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    lines += [
        "",
        _goals(results["cells"]),
        "",
        f"{'' if capture_complete(results) else '**Capture incomplete:** '}Captured {results['captured']} of "
        f"{results['proxied_sent']} proxied requests after the SIGTERM drain "
        f"(proxy {describe_exit(results['proxy_exit_code'])}). "
        f"Bodies through the proxy identical to direct: {identical}.",
        f"Each cell: {settings['requests']} measured requests per side in {settings['rounds']} "
        f"alternating rounds, after {settings['warmup']} warm-up requests per side.",
        "",
        f"Command: `{results['command']}`",
        f"Machine: {machine['usable_cores']} of {machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['platform']}, Python {machine['python']}, {packages}; "
        f"load average {machine['load_average_at_start']:.2f} at start.",
    ]
    return "\n".join(lines)
