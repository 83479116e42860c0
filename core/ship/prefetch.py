"""Prefetcher: reads a spool's next batch while the shipper writes the current one to PostgreSQL.

Reading a batch out of SQLite is about a third of a shipper's work; done in a thread of its own,
on a connection of its own, it overlaps PostgreSQL's work on the batch before (the driver lets go
of the GIL while it waits for the server). One batch ahead at most, so memory stays at two batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.shipping import Batch, SpoolReader


class Prefetcher:
    def __init__(self, spool_path: str, batch_size: int) -> None:
        self.spool_path = spool_path
        self.batch_size = batch_size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="shadowtap-ship-read")
        self._reader: SpoolReader | None = None  # opened, used and closed in the pool's one thread

    def batches(self, table: str, after_rowid: int) -> Iterator[Batch]:
        """The batches of `table` after `after_rowid`, in rowid order, each read while the one
        before it is being shipped; ends after the first batch that is not full."""
        future = self._pool.submit(self._read, table, after_rowid)
        while (batch := future.result()) is not None:
            full = len(batch.rows) >= self.batch_size
            if full:
                future = self._pool.submit(self._read, table, batch.last_rowid)
            yield batch
            if not full:
                return

    def close(self) -> None:
        self._pool.submit(self._close_reader).result()
        self._pool.shutdown()

    def _read(self, table: str, after_rowid: int) -> Batch | None:
        if self._reader is None:
            self._reader = SpoolReader(CaptureStore.open(self.spool_path))
        return self._reader.batch(table, after_rowid, self.batch_size)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.store.close()
            self._reader = None
