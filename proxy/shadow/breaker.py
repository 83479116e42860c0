"""A circuit breaker per candidate: open after consecutive failures, one trial after a cool-down."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """closed -> (N consecutive failures) -> open -> (cool-down) -> half-open: one trial call;
    its success closes the breaker, its failure opens it again."""

    def __init__(self, failure_threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call start now? In half-open state only one trial call is let through."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        if self._trial_in_flight or self._consecutive_failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_in_flight = False
