"""Candidate personas: simulated models with distinct, deterministic flaws, for the demo.

sim-drifty   about one answer in three adds a claim its context does not support;
sim-slow     answers 0.3-0.8 s late, and about one request in eight hangs for 30 s;
sim-sloppy   about one structured answer in four breaks its JSON schema.
sim-souring  answers as the plain simulator until it is soured (`POST /sim/sour`); from then on
             every structured answer breaks its JSON schema and every other answer adds a claim
             its context does not support: a candidate that turns bad partway through a canary.
Other model names behave as the plain simulator. Draws come from the request digest, so the same
request always gets the same behaviour (for sim-souring: the same, once soured).
"""

from __future__ import annotations

import hashlib

import orjson

PERSONAS = ("sim-drifty", "sim-slow", "sim-sloppy", "sim-souring")
SOURING = "sim-souring"
_soured: set[str] = set()   # personas turned bad by POST /sim/sour, in this simulator process


def sour(model: str = SOURING) -> None:
    _soured.add(model)


def sweeten() -> None:
    """Every soured persona back to its good behaviour (DELETE /sim/sour)."""
    _soured.clear()


def soured() -> list[str]:
    return sorted(_soured)
_UNSUPPORTED_CLAIMS = (
    "It has also been available in 47 regions since 2009.",
    "Independent audits rate it 99.999% reliable.",
    "The founder, Maria Kessler, announced this in Geneva.",
)


def _draw(digest: str, salt: str) -> float:
    value = hashlib.sha256(f"{salt}:{digest}".encode()).digest()
    return int.from_bytes(value[:8], "big") / 2**64


def extra_latency_ms(model: str, digest: str) -> int:
    if model != "sim-slow":
        return 0
    if _draw(digest, "hang") < 1 / 8:
        return 30_000
    return 300 + int(500 * _draw(digest, "latency"))


def adjust_content(model: str, digest: str, content: str | None, structured: bool) -> str | None:
    """The persona's version of an answer's text (tool calls are left alone)."""
    if content is None:
        return None
    if model == SOURING and model in _soured:
        return _broken_schema(content) if structured else _with_claim(content, digest)
    if model == "sim-drifty" and not structured and _draw(digest, "drift") < 1 / 3:
        return _with_claim(content, digest)
    if model == "sim-sloppy" and structured and _draw(digest, "sloppy") < 1 / 4:
        return _broken_schema(content)
    return content


def _with_claim(content: str, digest: str) -> str:
    claim = _UNSUPPORTED_CLAIMS[int(_draw(digest, "claim") * len(_UNSUPPORTED_CLAIMS))]
    return f"{content} {claim}"


def _broken_schema(content: str) -> str:
    """The JSON answer with its first field given a value of the wrong type."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content
    if isinstance(value, dict) and value:
        first = next(iter(value))
        value[first] = 42 if isinstance(value[first], str) else "not the declared type"
        return orjson.dumps(value).decode()
    return content
