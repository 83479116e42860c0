"""The load generator: N workers, each sending requests one after another over its own
keep-alive connection, timing every request from send to last byte."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import aiohttp
import orjson

# The simulator answers this prompt with 19 chat.completion.chunk events plus `data: [DONE]`.
PROMPT = "Say hello."
# What the OpenAI SDK always sends; a bearer key also exercises the proxy's client-key hashing.
REQUEST_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-real-key"}
_STREAM_END = b"data: [DONE]\n\n"


class BenchError(Exception):
    """A request failed or answered wrongly: the numbers of this run would mean nothing."""


@dataclass
class Phase:
    """One burst of `len(latencies_ms)` requests against one target."""

    latencies_ms: list[float]
    wall_s: float
    client_cpu_s: float


# Anthropic Messages modes: the same question to `POST /v1/messages`, buffered or as an event stream.
MESSAGES_MODES = ("messages", "messages-stream")
_MESSAGES_STREAM_END = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def chat_request_body(mode: str) -> bytes:
    if mode in MESSAGES_MODES:
        body: dict = {"model": "claude-bench", "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]}
    else:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
    if mode in ("stream", "messages-stream"):
        body["stream"] = True
    return orjson.dumps(body)


def request_path(mode: str) -> str:
    return "/v1/messages" if mode in MESSAGES_MODES else "/v1/chat/completions"


def stream_end(mode: str) -> bytes | None:
    """How the mode's answer ends when it is a stream (None: not a stream)."""
    return {"stream": _STREAM_END, "messages-stream": _MESSAGES_STREAM_END}.get(mode)


def open_session(concurrency: int) -> aiohttp.ClientSession:
    """A client whose pool holds one keep-alive connection per worker."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def fetch(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes]:
    async with session.post(url, data=body, headers=REQUEST_HEADERS) as response:
        return response.status, await response.read()


async def run_phase(session: aiohttp.ClientSession, url: str, body: bytes, *, stream: bool,
                    count: int, concurrency: int, ends_with: bytes = _STREAM_END) -> Phase:
    """Send `count` requests from `concurrency` workers; raise BenchError on any bad answer."""
    latencies: list[float] = []
    tickets = iter(range(count))  # shared: each worker takes the next ticket until none are left

    async def worker() -> None:
        for _ in tickets:
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=REQUEST_HEADERS) as response:
                    payload = await response.read()
            except aiohttp.ClientError as exc:
                raise BenchError(f"POST {url} failed: {type(exc).__name__}: {exc}") from None
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or (stream and not payload.endswith(ends_with)):
                raise BenchError(f"POST {url} answered {response.status}: {payload[:300]!r}")

    cpu_started, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return Phase(latencies, time.perf_counter() - started, time.process_time() - cpu_started)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q from 0 to 100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` requests as `parts` phase sizes that differ by at most one."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]
