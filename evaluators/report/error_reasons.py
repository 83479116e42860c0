"""Why calls failed, as short reasons that group well: shared by the report (per candidate) and replay.

A stored error is "<ExceptionClass>: message". Provider messages run long and often repeat the
request or an id, so the reason is the class and the message's first sentence, shortened; equal
reasons are counted together, most frequent first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

REASON_LENGTH = 90
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s|\n")
_LITELLM_PREFIX = "litellm."


def error_reason(error_class: str | None, message: str | None, outcome: str = "error") -> str:
    """`APIConnectionError: Connection error.` from a class and message; `timeout` when there is neither."""
    message = _first_sentence(message or "")
    name = (error_class or "").removeprefix(_LITELLM_PREFIX)
    # litellm repeats its class at the start of the message ("litellm.BadRequestError: ...").
    for prefix in (f"{_LITELLM_PREFIX}{name}:", f"{name}:"):
        if name and message.startswith(prefix):
            message = message[len(prefix):].strip()
    reason = f"{name}: {message}" if name and message else name or message or outcome
    return reason if len(reason) <= REASON_LENGTH else reason[:REASON_LENGTH - 1] + "…"


def stored_error_reason(error: str | None, outcome: str = "error") -> str:
    """The reason of a replay result's stored `error` ("<ExceptionClass>: message")."""
    name, _, message = (error or "").partition(": ")
    return error_reason(name, message, outcome) if message else error_reason(None, name, outcome)


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """Reason -> count, most frequent first (ties by reason, so the order is stable)."""
    counts = Counter(reasons)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def describe_reasons(counts: dict[str, int], limit: int = 3) -> str:
    """`5× APIConnectionError: Connection error.; 2× Timeout` for the `limit` most frequent reasons."""
    shown = [f"{count}× {reason}" for reason, count in list(counts.items())[:limit]]
    rest = sum(list(counts.values())[limit:])
    return "; ".join(shown) + (f"; {rest} more" if rest else "")


def _first_sentence(text: str) -> str:
    text = text.strip()
    return _FIRST_SENTENCE.split(text, maxsplit=1)[0].strip() if text else ""
