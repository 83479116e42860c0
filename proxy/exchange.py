"""The raw exchange: what the live path hands to capture, and exchange ids.

The request path only collects bytes and timestamps here; parsing, assembly, redaction and
pricing happen later in the capture row builder process, off the request path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Two characters per 10 bits, and one character per random byte (its low 5 bits: 256 is a
# multiple of 32, so each character is uniform). Both replace a loop of 26 steps per request.
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_BYTE_TO_CHARACTER = bytes(ord(_CROCKFORD[byte & 31]) for byte in range(256))


def new_exchange_id() -> str:
    """A 26-character, time-sortable id (ULID layout: 48 bits of milliseconds, 80 random bits).

    The first 10 characters are the milliseconds (50 bits, the top two zero), the last 16 the
    random bits, 5 to a character, as the 26 base-32 digits of one 128-bit number would be."""
    ms = time.time_ns() // 1_000_000
    prefix = (_PAIRS[ms >> 40 & 1023] + _PAIRS[ms >> 30 & 1023] + _PAIRS[ms >> 20 & 1023]
              + _PAIRS[ms >> 10 & 1023] + _PAIRS[ms & 1023])
    return prefix + os.urandom(16).translate(_BYTE_TO_CHARACTER).decode("ascii")


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
