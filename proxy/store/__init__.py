"""The SQLite capture store: schema migrations and the one class that reads and writes SQL."""

from shadowtap.proxy.store.capture_store import CaptureStore
from shadowtap.proxy.store.feedback_store import FeedbackResult, FeedbackStore

__all__ = ["CaptureStore", "FeedbackResult", "FeedbackStore"]
