"""Shipper: the loop that copies a spool's new rows into the shared store, batch by batch.

The live process never waits for it: the spool is the capture store `shadowtap serve` writes
anyway, and the shipper only reads it. While the shared store is unreachable the shipper logs,
waits (doubling up to `max_backoff_s`) and tries again from the position the shared store last
recorded, so an outage delays rows and never loses them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shadowtap.core.errors import StoreError
from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.errors import database_errors
from shadowtap.core.store.shipping import SHIPPED_TABLES, Batch, ShipTarget, SpoolReader

log = logging.getLogger("shadowtap.ship")
# How often a shipper with [store] retention_days prunes the shared store (each shipper does).
PRUNE_EVERY_S = 3600


@dataclass
class ShipCounters:
    """What a shipper did, for its log lines and tests."""

    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    failures: int = 0
    pruned: int = 0

    def add(self, batch: Batch) -> None:
        self.rows[batch.table] = self.rows.get(batch.table, 0) + len(batch.rows)
        self.batches += 1


class Shipper:
    def __init__(self, spool: CaptureStore, open_target: Callable[[], CaptureStore], *,
                 tables: Sequence[str] = SHIPPED_TABLES, batch_size: int = 5000, interval_s: float = 1.0,
                 max_backoff_s: float = 30.0, retention_days: int = 0,
                 on_shipped: Callable[[CaptureStore, Batch], None] | None = None) -> None:
        self.reader = SpoolReader(spool)
        self.open_target = open_target
        self.tables = tuple(tables)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.retention_days = retention_days
        self.on_shipped = on_shipped
        self.counters = ShipCounters()
        self._target: CaptureStore | None = None
        self._ship: ShipTarget | None = None
        self._last_prune: float | None = None  # monotonic time of the last prune

    def ship_once(self) -> int:
        """Ship everything the spool holds now; returns rows shipped. Raises StoreError when the
        shared store cannot be reached or written (nothing after the last committed batch counts)."""
        ship = self._connect()
        store_id = self.reader.store_id
        try:
            positions = ship.positions(store_id)
        except StoreError:
            self._disconnect()
            raise
        shipped = 0
        for table in self.tables:
            while (batch := self.reader.batch(table, positions.get(table, 0), self.batch_size)) is not None:
                try:
                    ship.write(store_id, batch)
                except StoreError:
                    self._disconnect()
                    raise
                positions[table] = batch.last_rowid
                shipped += len(batch.rows)
                self.counters.add(batch)
                if self.on_shipped is not None:
                    self._guarded_hook(batch)
                if len(batch.rows) < self.batch_size:
                    break
        self._maybe_prune()
        return shipped

    def run(self, stop: threading.Event) -> None:
        """Ship until `stop` is set; then ship what is left once more, if the shared store answers."""
        backoff = self.interval_s
        while not stop.is_set():
            try:
                shipped = self.ship_once()
                backoff = self.interval_s
                if shipped:
                    log.info("shipped %d rows (%s)", shipped, self.counters.rows)
                    continue  # more may have come meanwhile
            except StoreError as exc:
                self.counters.failures += 1
                log.warning("shared store unavailable, retrying in %.1f s: %s", backoff, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            stop.wait(self.interval_s)
        try:
            self.ship_once()
        except StoreError as exc:
            log.warning("stopped with rows still to ship (they go on the next start): %s", exc)
        self.close()

    def backlog(self) -> int:
        """Rows in the spool the shared store does not have yet."""
        return self.reader.backlog(self._connect().positions(self.reader.store_id), self.tables)

    def close(self) -> None:
        self._disconnect()

    def _connect(self) -> ShipTarget:
        if self._ship is None:
            target = self.open_target()  # StoreError when unreachable
            try:
                self._ship = ShipTarget(target)
            except StoreError:
                target.close()
                raise
            self._target = target
        return self._ship

    def _disconnect(self) -> None:
        if self._target is not None:
            try:
                self._target.close()
            except Exception as exc:  # a dead connection may fail to close; it is dropped either way
                log.debug("closing the shared store failed: %s", exc)
        self._target, self._ship = None, None

    def _guarded_hook(self, batch: Batch) -> None:
        try:
            assert self.on_shipped is not None and self._target is not None
            self.on_shipped(self._target, batch)
        except Exception as exc:  # export is best effort: it never stops shipping
            self.counters.failures += 1
            log.warning("after-ship hook failed on %d %s rows: %s", len(batch.rows), batch.table, exc)

    def _maybe_prune(self) -> None:
        recently = self._last_prune is not None and time.monotonic() - self._last_prune < PRUNE_EVERY_S
        if not self.retention_days or recently or self._target is None:
            return
        from shadowtap.core.store.retention import cutoff_days_ago, prune_before

        self._last_prune = time.monotonic()
        try:
            self.counters.pruned += prune_before(self._target, cutoff_days_ago(self.retention_days)).exchanges
        except database_errors() as exc:  # retention waits for the next hour; shipping goes on
            self.counters.failures += 1
            log.warning("pruning the shared store failed: %s", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
