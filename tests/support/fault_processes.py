"""A real `shadowtap serve` for the crash, disk and concurrency fault tests, and the traffic they send.

Unlike tests/servers.py's proxy fixture, the process runs in a session of its own (so a SIGKILL
can take the shadow worker with it, as a container kill would), and its log can go to a pipe
(a file-size limit must not stop the log that reports it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from shadowtap.proxy.local_processes import free_port, proxy_command, wait_until_serving
from tests.support.servers import Proxy, write_config

CHAT_PATH = "/chat/completions"


@dataclass
class ServeProcess(Proxy):
    """A Proxy in a process group of its own, whose log may be a pipe (then log_path is None)."""

    piped_log: list[str] = field(default_factory=list)

    def log_entries(self) -> list[dict]:
        lines = self.log_text().splitlines() if self.log_path else list(self.piped_log)
        return [orjson.loads(line) for line in lines if line.startswith("{")]

    def logged(self, message_start: str) -> list[dict]:
        return [entry for entry in self.log_entries() if entry.get("message", "").startswith(message_start)]

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def metric(self, name: str, labels: str = "") -> float:
        """One sample from /metrics, e.g. metric("shadowtap_capture_dropped_total", 'reason="queue_full"')."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def kill_all(self) -> None:
        """SIGKILL the whole process group: the proxy, its shadow worker and any uvicorn workers."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill_all()
        _kill_group_leftovers(self.process.pid)
        return self.process.returncode


def _kill_group_leftovers(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def write_serve_config(workdir: Path, primary_base_url: str, extra_config: str = "", *,
                       log_to_pipe: bool = False, port: int | None = None) -> tuple[Path, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    path = write_config(workdir, primary_base_url, port, extra_config)
    if log_to_pipe:
        path.write_text(path.read_text().replace(f'log_file = "{workdir / "proxy.log"}"\n', ""))
    return path, port


def start_serve(config_path: Path, port: int, *, args: tuple[str, ...] = (), log_to_pipe: bool = False,
                timeout_s: float = 60.0) -> ServeProcess:
    """Start `shadowtap serve` in its own session and wait until it (and any shadow worker) is ready."""
    workdir = config_path.parent
    process = subprocess.Popen([*proxy_command(config_path), *args], start_new_session=True,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE if log_to_pipe else open(workdir / "stderr.log", "ab"))
    serve = ServeProcess(process, port, workdir, workdir / "captures.db",
                         None if log_to_pipe else workdir / "proxy.log")
    if log_to_pipe:
        threading.Thread(target=_collect_lines, args=(process.stderr, serve.piped_log), daemon=True).start()
    try:
        wait_until_serving(f"{serve.url}/healthz", process, timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        while serve.health().get("shadow_worker", "ready") == "starting":
            assert time.monotonic() < deadline, "the shadow worker did not become ready"
            time.sleep(0.1)
    except BaseException:
        serve.kill_all()
        raise
    return serve


def _collect_lines(stream, lines: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode(errors="replace").rstrip("\n"))


def chat_body(index: int, *, stream: bool, padding: int = 0) -> dict:
    content = f"Where do orders ship from? #{index}" + (" " + "x" * padding if padding else "")
    body = {"model": "sim-small", "messages": [{"role": "user", "content": content}]}
    return {**body, "stream": True} if stream else body


@dataclass
class Received:
    """What one client saw: the exchange id header, and whether the whole answer arrived."""

    exchange_id: str | None
    status: int | None
    complete: bool
    body: bytes = b""
    finished_at: float = 0.0  # time.monotonic() when the last byte arrived
    headers_at: float = 0.0   # time.monotonic() when the response headers arrived


async def exchange(client: httpx.AsyncClient, base_url: str, body: dict, headers: dict | None = None) -> Received:
    """Send one chat request; never raises for transport errors (a killed proxy is expected)."""
    exchange_id, status, raw, headers_at = None, None, b"", 0.0
    try:
        async with client.stream("POST", base_url + CHAT_PATH, json=body, headers=headers or {}) as response:
            headers_at = time.monotonic()
            exchange_id, status = response.headers.get("x-shadowtap-exchange-id"), response.status_code
            async for chunk in response.aiter_raw():
                raw += chunk
    except httpx.HTTPError:
        return Received(exchange_id, status, False, raw, 0.0, headers_at)
    return Received(exchange_id, status, status == 200 and answer_complete(body, raw), raw, time.monotonic(),
                    headers_at)


def answer_complete(body: dict, raw: bytes) -> bool:
    if body.get("stream"):
        return raw.rstrip().endswith(b"data: [DONE]")
    try:
        return bool(orjson.loads(raw)["choices"][0]["message"]["content"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return False


async def send_until(base_url: str, stop: asyncio.Event, *, clients: int, results: list[Received],
                     make_request, keepalive: bool = True) -> None:
    """`clients` loops sending make_request(index) -> (body, headers) until `stop` is set."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients if keepalive else 0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        counter = iter(range(10**9))

        async def loop() -> None:
            while not stop.is_set():
                body, headers = make_request(next(counter))
                results.append(await exchange(client, base_url, body, headers))
                if results[-1].status is None:
                    await asyncio.sleep(0.05)  # the proxy is down or going down: do not spin

        await asyncio.gather(*(loop() for _ in range(clients)))


async def send_batch(base_url: str, bodies: list[tuple[dict, dict]], *, clients: int,
                     keepalive: bool = True) -> list[Received]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients if keepalive else 0)
    semaphore = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one(body: dict, headers: dict) -> Received:
            async with semaphore:
                return await exchange(client, base_url, body, headers)

        return list(await asyncio.gather(*(one(body, headers) for body, headers in bodies)))


def stored_rows(store_path: Path, table: str = "exchanges") -> list[dict]:
    connection = sqlite3.connect(store_path, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"select * from {table}")]
    finally:
        connection.close()


def integrity_check(store_path: Path) -> str:
    connection = sqlite3.connect(store_path, timeout=30)
    try:
        return ", ".join(row[0] for row in connection.execute("pragma integrity_check"))
    finally:
        connection.close()


def wait_for_ids(store_path: Path, ids: set[str], timeout_s: float = 30.0) -> set[str]:
    """Poll until every id is stored; return the ids stored (all of them unless the deadline passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        stored = {row["id"] for row in stored_rows(store_path)} & ids
        if stored == ids or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def wait_until(condition, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def mixed_request(index: int) -> tuple[dict, dict]:
    """JSON answers, paced streams and unpaced streams, in turn."""
    kind = index % 3
    if kind == 0:
        return chat_body(index, stream=False), {"x-sim-latency-ms": "30"}
    if kind == 1:
        return chat_body(index, stream=True), {"x-sim-chunk-delay-ms": "25"}
    return chat_body(index, stream=True), {}


SHADOW_OUTCOMES = {"ok", "error", "timeout", "skipped", "cancelled"}


def assert_rows_are_whole(exchanges: list[dict], shadows: list[dict]) -> None:
    for row in exchanges:
        assert row["status"] == 200 and row["endpoint"] == "chat.completions", row["id"]
        assert row["latency_ms"] is not None and row["started_at"], row["id"]
        assert row["response_text"] and row["finish_reason"], row["id"]
        assert row["stream_incomplete"] == 0 and row["client_disconnected"] == 0, row["id"]
        if row["is_stream"]:
            assert row["response_raw"] and row["ttft_ms"] is not None, row["id"]
        else:
            assert row["response_json"], row["id"]
    for row in shadows:
        assert row["candidate"] == "sim" and row["outcome"] in SHADOW_OUTCOMES, row
        assert row["id"] == f"{row['exchange_id']}:sim", row
