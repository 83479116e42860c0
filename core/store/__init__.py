"""The capture store: one handle (`Store`) with a typed part per record kind, its migrations, and
the only code in shadowtap that runs SQL.

The names below are imported when first used, not with the package: importing one module of the
store (its URL helpers for config validation, its error classes) must not load every part and
sqlite-utils with it. The live process depends on that for its memory and start-up time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shadowtap.core.store.capture_store import CaptureStore
    from shadowtap.core.store.feedback_store import FeedbackResult, FeedbackStore
    from shadowtap.core.store.handle import Store

__all__ = ["CaptureStore", "FeedbackResult", "FeedbackStore", "Store"]

# name -> the module of this package that defines it
_DEFINED_IN = {
    "CaptureStore": "capture_store",
    "FeedbackResult": "feedback_store",
    "FeedbackStore": "feedback_store",
    "Store": "handle",
}


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
