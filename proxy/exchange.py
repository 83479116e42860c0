"""The raw exchange: what the live path hands to capture, and exchange ids.

The request path only collects bytes and timestamps here; parsing, assembly, redaction and
pricing happen later in the capture row builder process, off the request path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_exchange_id() -> str:
    """A 26-character, time-sortable id (ULID layout: 48 bits of milliseconds, 80 random bits)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@dataclass(slots=True)
class RawExchange:
    """One request and the primary's answer, as bytes on the wire, with timings.

    Times are `time.perf_counter()` readings except `started_at`, which is wall-clock seconds.
    """

    id: str
    started_at: float
    t_start: float
    method: str
    path: str
    query: str
    request_headers: list[tuple[bytes, bytes]]
    request_body: bytes | bytearray  # a bytearray when it arrived in several pieces
    status: int = 0
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_chunks: list[bytes] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)
    t_upstream_start: float = 0.0
    t_upstream_headers: float = 0.0
    t_response_started: float = 0.0
    t_end: float = 0.0
    client_disconnected: bool = False
    upstream_error: str | None = None
    stream_broken: bool = False
    shadow_skips: list[tuple[str, str]] = field(default_factory=list)  # (candidate, reason)
    # Canaries: the candidate that answered the app, or "primary" when a canaried request fell back.
    served_by: str | None = None
    fallback_reason: str | None = None  # why a canaried request was answered by the primary
