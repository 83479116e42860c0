"""The SQLite capture store: schema migrations and the one class that reads and writes SQL."""

from proxy.store.capture_store import CaptureStore

__all__ = ["CaptureStore"]
