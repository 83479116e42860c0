"""The live process's copy of the canary state: a background thread re-reads it from the store.

The request path never touches the store for a canary: it reads `CanaryShares.current`, an
immutable snapshot the poller thread swaps in whole every `[canary] state_poll_s`. The state is
read from the store every replica shares (`[store] url` when set, else the local file), so
`shadowtap canary rollback` and the guard loop reach every live process within one poll.

When the store cannot be read for `[canary] state_stale_s`, the snapshot is stale and no request
is served by a candidate: the canary stops, never the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shadowtap.core.store.canary_store import CanaryState, read_canary_states
from shadowtap.proxy.canary.assignment import Slice, regions_of, slices_for

log = logging.getLogger("shadowtap.canary")

RUNNING = "running"


@dataclass(frozen=True)
class SharesSnapshot:
    """What the poller last read: every candidate's state, and the slices of those that serve."""

    states: dict[str, CanaryState] = field(default_factory=dict)
    slices: tuple[Slice, ...] = ()
    read_at: float | None = None       # time.monotonic() of the read; None: never read yet


def snapshot_of(states: dict[str, CanaryState], max_shares: list[tuple[str, float]],
                read_at: float) -> SharesSnapshot:
    """The slices of the configured candidates whose status is running. Each region is `max_share`
    long, or the share itself when one was forced above it (the regions after it then move)."""
    shares = {name: state.share for name, state in states.items() if state.status == RUNNING}
    regions = regions_of([(name, max(limit, shares.get(name, 0.0))) for name, limit in max_shares])
    return SharesSnapshot(states, slices_for(regions, shares), read_at)


class CanaryShares:
    """Polls `read_canary_states` off the request path; `current` is always a whole snapshot."""

    def __init__(self, open_store: Callable[[], object], max_shares: list[tuple[str, float]], *, poll_s: float,
                 stale_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._open_store = open_store
        self._max_shares = list(max_shares)  # (candidate, max_share) in config order: their regions
        self._poll_s = poll_s
        self._stale_s = stale_s
        self._clock = clock
        self._store: object | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self.current = SharesSnapshot()

    @property
    def running(self) -> bool:
        """True when some candidate has a share to serve (the live path's only question when idle)."""
        return bool(self.current.slices)

    def stale(self, snapshot: SharesSnapshot) -> bool:
        return snapshot.read_at is None or self.age_s(snapshot.read_at) > self._stale_s

    def age_s(self, read_at: float) -> float:
        return self._clock() - read_at

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, daemon=True, name="canary-state")
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def read_once(self) -> bool:
        """Read the state now (the poller's step); False when the store could not be read."""
        try:
            if self._store is None:
                self._store = self._open_store()
            states = read_canary_states(self._store)
        except Exception as exc:
            self._close_store()
            now = self._clock()
            if self._failing_since is None:
                self._failing_since = now
                # The message names the error, never the store URL (it may hold a password).
                log.warning("cannot read the canary state; candidates stop serving after [canary] state_stale_s",
                            extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            return False
        if self._failing_since is not None:
            unreadable_s = round(self._clock() - self._failing_since, 3)
            log.info("canary state readable again", extra={"unreadable_s": unreadable_s})
            self._failing_since = None
        self.current = snapshot_of(states, self._max_shares, self._clock())
        return True

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self._poll_s)
        self._close_store()

    def _close_store(self) -> None:
        store, self._store = self._store, None
        close = getattr(store, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.debug("closing the canary state store failed", exc_info=True)
