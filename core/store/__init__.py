"""The capture store: one handle (`Store`) with a typed part per record kind, its migrations, and
the only code in shadowtap that runs SQL."""

from shadowtap.core.store.capture_store import CaptureStore
from shadowtap.core.store.feedback_store import FeedbackResult, FeedbackStore
from shadowtap.core.store.handle import Store

__all__ = ["CaptureStore", "FeedbackResult", "FeedbackStore", "Store"]
