"""Fixtures that run real processes on loopback: the simulated upstream and `shadowtap serve`."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shadowtap.proxy.local_processes import (
    free_port,
    proxy_command,
    simulator_command,
    stop_process,
    wait_until_serving,
)


@dataclass
class Simulator:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def recorded(self) -> list[dict]:
        return httpx.get(f"{self.url}/sim/requests").json()

    def clear(self) -> None:
        httpx.delete(f"{self.url}/sim/requests")


def start_simulator(*extra_args: str) -> Simulator:
    port = free_port()
    process = subprocess.Popen(simulator_command(port, "--record-requests", *extra_args))
    simulator = Simulator(process, port)
    wait_until_serving(f"{simulator.url}/v1/models", process)
    return simulator


@dataclass
class Proxy:
    process: subprocess.Popen
    port: int
    workdir: Path
    store_path: Path
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> int:
        return stop_process(self.process)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def write_config(workdir: Path, primary_base_url: str, port: int, extra: str = "") -> Path:
    """A config with [server], [primary] and [store] filled in; `extra` adds more TOML."""
    sections = {"server": f'host = "127.0.0.1"\nport = {port}\nlog_file = "{workdir / "proxy.log"}"\n',
                "primary": f'base_url = "{primary_base_url}"\n',
                "store": f'path = "{workdir / "captures.db"}"\nflush_interval_ms = 20\n'}
    arrays: list[str] = []  # [[candidates]] blocks are kept as written, in order
    current = None
    for line in extra.splitlines():
        stripped = line.strip()
        if stripped.startswith("[["):
            current = None
            arrays.append(stripped + "\n")
        elif stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            sections.setdefault(current, "")
        elif stripped and current:
            sections[current] += stripped + "\n"
        elif stripped and arrays:
            arrays[-1] += stripped + "\n"
    text = "".join(f"[{name}]\n{body}\n" for name, body in sections.items()) + "\n".join(arrays)
    path = workdir / "shadowtap.toml"
    path.write_text(text)
    return path


def start_proxy(workdir: Path, primary_base_url: str, *, extra_config: str = "", env: dict | None = None) -> Proxy:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = write_config(workdir, primary_base_url, port, extra_config)
    process_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(proxy_command(config_path), env=process_env, stderr=open(workdir / "stderr.log", "wb"))
    proxy = Proxy(process, port, workdir, workdir / "captures.db", workdir / "proxy.log", env or {})
    wait_until_serving(f"{proxy.url}/healthz", process)
    deadline = time.monotonic() + 90  # importing litellm takes seconds, far more on a loaded machine
    while httpx.get(f"{proxy.url}/healthz").json().get("shadow_worker", "ready") == "starting":
        if time.monotonic() > deadline:
            raise RuntimeError("the shadow worker did not become ready within 90s")
        time.sleep(0.1)
    return proxy


@pytest.fixture(scope="session")
def simulator():
    running = start_simulator()
    yield running
    stop_process(running.process)


@pytest.fixture
def proxy_factory(tmp_path):
    started: list[Proxy] = []

    def factory(primary_base_url: str, **kwargs) -> Proxy:
        proxy = start_proxy(tmp_path / f"proxy{len(started)}", primary_base_url, **kwargs)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy(proxy_factory, simulator) -> Proxy:
    """A running `shadowtap serve` in front of the session's simulated upstream."""
    return proxy_factory(simulator.base_url)
