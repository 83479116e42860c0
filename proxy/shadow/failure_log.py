"""FailureLog: a warning when a candidate's calls fail, at most one per candidate per interval.

A misconfigured candidate fails every call; without a line in the log, the first sign was an
error rate in the report days later. One line per minute per candidate says so at once without
flooding the log. The line names the kind of failure, never the provider's message: providers
quote requests back in their errors, and logs never show a prompt. The full (redacted) message is
in the shadow row's `error_message`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("shadowtap.shadow")

INTERVAL_S = 60.0

# What a failure means, by a phrase litellm puts in its message, or by the exception's class.
_KNOWN_MESSAGES = (
    ("LLM Provider NOT provided", "litellm knows no provider for this model string; check `model` "
                                  "(`shadowtap check` lists it)"),
)
_KNOWN_CLASSES = {
    "AuthenticationError": "the provider refused the key; check `api_key_env`",
    "PermissionDeniedError": "the key may not use this model",
    "NotFoundError": "the provider does not know this model or path; check `model` and `api_base`",
    "APIConnectionError": "the candidate cannot be reached; check `api_base`",
    "RateLimitError": "the provider is rate limiting these calls",
    "BadRequestError": "the provider refused the request as malformed",
    "ServiceUnavailableError": "the provider is unavailable",
    "InternalServerError": "the provider failed with a server error",
}


def failure_reason(outcome: str, error_class: str | None, error_message: str | None) -> str:
    """A short reason for a failed call that quotes nothing the provider wrote, except for
    messages shadowtap wrote itself (a timeout's)."""
    if outcome == "timeout":
        return f"timeout: {error_message}" if error_message and error_class == "TimeoutError" else "timeout"
    for phrase, meaning in _KNOWN_MESSAGES:
        if error_message and phrase in error_message:
            return f"{error_class}: {meaning}"
    known = _KNOWN_CLASSES.get(error_class or "")
    return f"{error_class}: {known}" if known else (error_class or "unknown error")


@dataclass
class _Episode:
    failures: int = 0                 # since the last line
    logged_at: float | None = None


class FailureLog:
    """Call `failed` for each failed call. Strictly one line per candidate per interval, even
    for a candidate that alternates between answers and failures."""

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._episodes: dict[str, _Episode] = {}

    def failed(self, candidate: str, model: str, outcome: str, error_class: str | None,
               error_message: str | None) -> bool:
        """Count the failure; log a warning when this candidate has had none logged within the
        interval. True when a line was written."""
        episode = self._episodes.setdefault(candidate, _Episode())
        episode.failures += 1
        now = self._clock()
        if episode.logged_at is not None and now - episode.logged_at < self._interval_s:
            return False
        reason = failure_reason(outcome, error_class, error_message)
        log.warning("candidate %r (%s): shadow calls are failing: %s (%d failed since the last such line; "
                    "the full message is in the shadows table's error_message)",
                    candidate, model, reason, episode.failures,
                    extra={"candidate": candidate, "model": model, "outcome": outcome, "error_class": error_class,
                           "reason": reason, "failures": episode.failures})
        episode.failures = 0
        episode.logged_at = now
        return True
