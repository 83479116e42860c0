"""The per-request knobs: x-sim-* headers that make one answer slow, broken or odd.

Every knob is a header so it passes through the proxy untouched; the simulator's settings give
the defaults for the pacing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import orjson

from .answers import InvalidRequest

_FORBIDDEN_IN_HEADERS = frozenset(b"\r\n\x00")

# Every knob and what it does, as `shadowtap simulator --help` lists them (docs/simulator.md too).
KNOB_HELP: tuple[tuple[str, str], ...] = (
    ("x-sim-status: 429", "answer with this status (200 or 400-599) and an OpenAI-style error; "
                          "429 adds retry-after"),
    ("x-sim-latency-ms: N", "wait N ms before the status line"),
    ("x-sim-ttft-ms: N", "wait N ms after the headers, before a stream's first event"),
    ("x-sim-chunk-delay-ms: N", "wait N ms between stream events"),
    ("x-sim-gzip: 1", "gzip the body (a stream is flushed event by event)"),
    ("x-sim-drop-after: N", "abort the connection after N body writes"),
    ("x-sim-hang: 1", "never send a status line: wait until the client leaves"),
    ("x-sim-hang-after: N", "send the headers and N body writes, then nothing until the client leaves"),
    ("x-sim-trickle-ms: N", "send the body one byte per write, N ms apart"),
    ("x-sim-split-utf8-ms: N", "cut the body's first multi-byte UTF-8 character into two writes, N ms "
                               "apart (not with gzip)"),
    ("x-sim-response-headers: JSON", "add these response headers, a JSON object of strings"),
)


@dataclass(frozen=True, slots=True)
class Knobs:
    """How one response is delivered. Counts of writes refer to body writes as sent: stream
    events, or single bytes when trickling."""

    status: int | None
    latency_ms: int
    ttft_ms: int
    chunk_delay_ms: int
    gzip: bool
    drop_after: int | None      # abort the connection after this many body writes
    hang: bool = False          # never send a status line; wait for the client to leave
    hang_after: int | None = None  # after this many body writes, wait for the client to leave
    trickle_ms: int | None = None  # send the body one byte at a time, this far apart
    split_utf8_ms: int | None = None  # cut the first multi-byte character into two writes
    response_headers: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def watches_the_client(self) -> bool:
        """True when the response takes long enough that the client leaving matters."""
        return bool(self.latency_ms or self.ttft_ms or self.chunk_delay_ms or self.hang
                    or self.hang_after is not None or self.trickle_ms or self.split_utf8_ms)


def knobs_from_headers(headers: dict[str, str], *, latency_ms: int, ttft_ms: int,
                       chunk_delay_ms: int) -> Knobs:
    """Read the x-sim-* headers; a bad value raises InvalidRequest naming the header."""
    status = int_header(headers, "x-sim-status", None)
    if status is not None and not (status == 200 or 400 <= status <= 599):
        raise InvalidRequest(f"x-sim-status must be 200 or 400-599, got {status}.", "x-sim-status")
    knobs = Knobs(
        status=None if status == 200 else status,
        latency_ms=int_header(headers, "x-sim-latency-ms", latency_ms),
        ttft_ms=int_header(headers, "x-sim-ttft-ms", ttft_ms),
        chunk_delay_ms=int_header(headers, "x-sim-chunk-delay-ms", chunk_delay_ms),
        gzip=_flag(headers, "x-sim-gzip"),
        drop_after=int_header(headers, "x-sim-drop-after", None),
        hang=_flag(headers, "x-sim-hang"),
        hang_after=int_header(headers, "x-sim-hang-after", None),
        trickle_ms=int_header(headers, "x-sim-trickle-ms", None),
        split_utf8_ms=int_header(headers, "x-sim-split-utf8-ms", None),
        response_headers=_extra_headers(headers.get("x-sim-response-headers")),
    )
    if knobs.gzip and knobs.split_utf8_ms is not None:
        raise InvalidRequest("x-sim-split-utf8-ms cannot be combined with x-sim-gzip: compressed "
                             "bytes have no characters to split.", "x-sim-split-utf8-ms")
    return knobs


@overload
def int_header(headers: dict[str, str], name: str, default: int) -> int: ...
@overload
def int_header(headers: dict[str, str], name: str, default: None) -> int | None: ...
def int_header(headers: dict[str, str], name: str, default: int | None) -> int | None:
    value = headers.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidRequest(f"{name} must be a non-negative integer, got {value!r}.", name)
    return number


def _flag(headers: dict[str, str], name: str) -> bool:
    return headers.get(name, "0").strip().lower() not in ("", "0", "false")


def _extra_headers(raw: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """x-sim-response-headers: a JSON object of extra response headers, added as given."""
    if raw is None:
        return ()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise InvalidRequest("x-sim-response-headers must be a JSON object of header names to "
                             f"string values, got {raw!r}.", "x-sim-response-headers")
    try:
        pairs = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in parsed.items())
    except UnicodeEncodeError:
        raise InvalidRequest("x-sim-response-headers must be Latin-1 text.", "x-sim-response-headers") from None
    if any(set(name + value) & _FORBIDDEN_IN_HEADERS for name, value in pairs):
        raise InvalidRequest("x-sim-response-headers cannot hold CR, LF or NUL.", "x-sim-response-headers")
    return pairs
