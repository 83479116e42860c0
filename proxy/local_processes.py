"""Start and stop local shadowtap processes on loopback (the demo, the benchmark and the tests)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float = 20.0) -> float:
    """Poll `url` until anything answers; return the seconds it took."""
    import httpx  # here, not at the top: `shadowtap serve` imports this module, and never polls

    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before serving {url}")
        try:
            httpx.get(url, timeout=0.5)
            return time.monotonic() - started
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answered at {url} within {timeout_s:.0f}s")


def stop_process(process: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """SIGTERM, wait, and SIGKILL only if it will not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def simulator_command(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "shadowtap.proxy.simulator", "--host", "127.0.0.1", "--port", str(port), *options]


def shadowtap_command(*arguments: str) -> list[str]:
    """`shadowtap ARGUMENTS...` run with this interpreter (no console script needed on PATH)."""
    return [sys.executable, "-m", "shadowtap.core.cli", *arguments]


def proxy_command(config_path: Path) -> list[str]:
    return shadowtap_command("serve", "--config", str(config_path))


def start_canary_guard(config_path: str | Path) -> subprocess.Popen:
    """`shadowtap canary guard` as a child of this process (its logs go where this one's do); it
    stops by itself when this process is gone. The live process never imports the guards."""
    return subprocess.Popen(shadowtap_command("canary", "guard", "--config", str(config_path), "--exit-with-parent"))
