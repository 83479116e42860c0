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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from shadowtap.core.errors import StoreError
from shadowtap.core.ship.prefetch import Prefetcher
from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.errors import database_errors
from shadowtap.core.store.shipping import (
    SHIPPED_TABLES,
    Batch,
    Reject,
    ScoreOutbox,
    ShipTarget,
    SpoolReader,
    without_rejects,
)

log = logging.getLogger("shadowtap.ship")
# How often a shipper with [store] retention_days prunes the shared store (each shipper does).
PRUNE_EVERY_S = 3600
# How often a shipper with [store] spool_keep_hours prunes its own spool of shipped rows.
SPOOL_PRUNE_EVERY_S = 600
# The longest a spool prune holds up shipping; with more to prune, it goes on after the next round.
SPOOL_PRUNE_BUDGET_S = 5.0
# How often the shipper that exports scores looks for new ones in the shared store.
SCORE_EXPORT_EVERY_S = 10


@dataclass
class ShipCounters:
    """What a shipper did, for its log lines and tests."""

    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    failures: int = 0
    pruned: int = 0
    rejected: int = 0      # rows PostgreSQL refused, set aside in _shadowtap_ship_rejects
    spool_pruned: int = 0  # shipped exchanges deleted from the spool ([store] spool_keep_hours)
    scores_exported: int = 0  # scores found in the shared store and handed to `export_scores`

    def add(self, batch: Batch, rejects: list[Reject]) -> None:
        self.rows[batch.table] = self.rows.get(batch.table, 0) + len(batch.rows) - len(rejects)
        self.batches += 1
        self.rejected += len(rejects)


class Shipper:
    def __init__(self, spool: CaptureStore, open_target: Callable[[], CaptureStore], *,
                 tables: Sequence[str] = SHIPPED_TABLES, batch_size: int = 5000, interval_s: float = 1.0,
                 max_backoff_s: float = 30.0, retention_days: int = 0, spool_keep_hours: float = 0,
                 on_shipped: Callable[[CaptureStore, Batch], None] | None = None,
                 export_scores: Callable[[CaptureStore, Batch], None] | None = None,
                 score_export_every_s: float = SCORE_EXPORT_EVERY_S, direct: bool = True,
                 prefetch: bool = True) -> None:
        """`on_shipped` sees each batch once it is committed (less the rows set aside);
        `export_scores`, when given, sees the scores of the shared store not exported yet (those
        eval workers wrote there, and those this shipper shipped), if this shipper is the one
        that exports them (the first to ask; another takes over when it stops). `direct` and
        `prefetch` are the two ways shipping got faster (bench/ship_throughput.py --compare)."""
        self.reader = SpoolReader(spool)
        self.open_target = open_target
        self.tables = tuple(tables)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.retention_days = retention_days
        self.spool_keep_hours = spool_keep_hours
        self.on_shipped = on_shipped
        self.export_scores = export_scores
        self.score_export_every_s = score_export_every_s
        self.direct = direct
        self.prefetch = prefetch
        self._prefetcher: Prefetcher | None = None
        self._outbox: ScoreOutbox | None = None
        self._last_score_export: float | None = None
        self.counters = ShipCounters()
        self._target: CaptureStore | None = None
        self._ship: ShipTarget | None = None
        self._last_prune: float | None = None  # monotonic time of the last prune
        self._last_spool_prune: float | None = None

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
            for batch in self._batches(table, positions.get(table, 0)):
                try:
                    rejects = ship.write(store_id, batch, direct=self.direct)
                except StoreError:
                    self._disconnect()
                    raise
                positions[table] = batch.last_rowid
                shipped += len(batch.rows) - len(rejects)
                self.counters.add(batch, rejects)
                self._log_rejects(rejects)
                if self.on_shipped is not None:
                    self._guarded_hook(without_rejects(batch, rejects))
        self._maybe_export_scores()
        self._maybe_prune()
        self._maybe_prune_spool(positions)
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

    def status(self) -> dict:
        """What `shadowtap ship --status` shows: per table, the position and the rows still to ship;
        and the rows of this spool PostgreSQL refused (how many, and the latest few)."""
        ship = self._connect()
        store_id = self.reader.store_id
        positions = ship.positions(store_id)
        backlog = self.reader.backlog_by_table(positions, self.tables)
        rejected, latest = ship.rejects(store_id)
        return {"store_id": store_id, "spool": self.reader.store.path,
                "tables": {table: {"position": positions.get(table, 0), "backlog": backlog[table]}
                           for table in self.tables},
                "rejected": rejected, "latest_rejects": latest}

    def close(self) -> None:
        self._disconnect()
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def _batches(self, table: str, after_rowid: int) -> Iterator[Batch]:
        if not self.prefetch or self.reader.store.path == ":memory:":
            while (batch := self.reader.batch(table, after_rowid, self.batch_size)) is not None:
                yield batch
                if len(batch.rows) < self.batch_size:
                    return
                after_rowid = batch.last_rowid
            return
        if self._prefetcher is None:
            self._prefetcher = Prefetcher(self.reader.store.path, self.batch_size)
        yield from self._prefetcher.batches(table, after_rowid)

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
        if self._outbox is not None:
            try:
                self._outbox.release()
            except StoreError as exc:  # a dead connection has given it up already
                log.debug("releasing the score export failed: %s", exc)
        if self._target is not None:
            try:
                self._target.close()
            except Exception as exc:  # a dead connection may fail to close; it is dropped either way
                log.debug("closing the shared store failed: %s", exc)
        self._target, self._ship, self._outbox = None, None, None

    def _guarded_hook(self, batch: Batch) -> None:
        try:
            assert self.on_shipped is not None and self._target is not None
            self.on_shipped(self._target, batch)
            if batch.table == "scores" and self.export_scores is not None:
                self._score_outbox().mark(batch)  # exported: the score export passes them by
        except Exception as exc:  # export is best effort: it never stops shipping
            self.counters.failures += 1
            log.warning("after-ship hook failed on %d %s rows: %s", len(batch.rows), batch.table, exc)

    def _score_outbox(self) -> ScoreOutbox:
        if self._outbox is None:
            assert self._target is not None
            self._outbox = ScoreOutbox(self._target)
        return self._outbox

    def _maybe_export_scores(self) -> None:
        recently = (self._last_score_export is not None
                    and time.monotonic() - self._last_score_export < self.score_export_every_s)
        if self.export_scores is None or recently or self._target is None:
            return
        self._last_score_export = time.monotonic()
        outbox = self._score_outbox()
        try:
            if not outbox.claim():
                return  # another shipper exports them
            while (batch := outbox.pending(self.batch_size)) is not None:
                self.export_scores(self._target, batch)
                outbox.mark(batch)
                self.counters.scores_exported += len(batch.rows)
                if len(batch.rows) < self.batch_size:
                    break
        except Exception as exc:  # best effort, as the after-ship hook: shipping goes on
            self.counters.failures += 1
            log.warning("exporting the shared store's scores failed (tried again in %.0f s): %s",
                        self.score_export_every_s, _first_line(exc))

    def _log_rejects(self, rejects: list[Reject]) -> None:
        for reject in rejects:  # the kind and the column, never the refused value
            log.warning("set aside %s row %s: PostgreSQL refused it (%s); the rows after it keep shipping. "
                        "See `shadowtap ship --status`", reject.table, reject.row_id, reject.error)

    def _maybe_prune_spool(self, positions: dict[str, int]) -> None:
        recently = (self._last_spool_prune is not None
                    and time.monotonic() - self._last_spool_prune < SPOOL_PRUNE_EVERY_S)
        if not self.spool_keep_hours or recently:
            return
        from shadowtap.core.store.retention import cutoff_days_ago, prune_shipped

        self._last_spool_prune = time.monotonic()
        try:
            result = prune_shipped(self.reader.store, cutoff_days_ago(self.spool_keep_hours / 24), positions,
                                   budget_s=SPOOL_PRUNE_BUDGET_S)
        except database_errors() as exc:  # the spool keeps its rows until the next try; shipping goes on
            self.counters.failures += 1
            log.warning("pruning the spool failed: %s", _first_line(exc))
            return
        self.counters.spool_pruned += result.exchanges
        if result.more:
            self._last_spool_prune = None  # a backlog of old rows: go on after the next round of shipping
        if result.exchanges or result.dependents:
            log.info("pruned %d shipped exchanges (and %d rows of theirs) from the spool",
                     result.exchanges, result.dependents)

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
