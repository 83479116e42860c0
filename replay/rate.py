"""A token bucket that paces a replay's model calls to `--rate` per second, across all its concurrent calls.

Concurrency caps how many calls are in flight; the rate caps how fast they start, which is what a
provider's requests-per-minute limit counts. The bucket holds one token, so calls start evenly
spaced at least 1/rate seconds apart, with no burst after an idle spell. The clock and the sleep
are passed in, so tests can run it on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_ROUNDING = 1e-9


class TokenBucket:
    """`await bucket.acquire()` returns when the caller may start one request."""

    def __init__(self, rate: float, *, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not rate > 0:
            raise ValueError(f"rate {rate!r}: expected a number of requests per second above 0")
        if capacity < 1:
            raise ValueError(f"capacity {capacity!r}: expected at least 1 token")
        self.rate, self.capacity = float(rate), float(capacity)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = asyncio.Lock()   # one waiter refills at a time, so waiters start in arrival order

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1 - _ROUNDING:   # a refill of exactly one token may land a hair short
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self.rate)

    def minimum_seconds(self, requests: int) -> float:
        """The least time `requests` acquisitions can take from a full bucket."""
        return max(0.0, requests - self.capacity) / self.rate

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
