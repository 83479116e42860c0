"""A bounded memo for answers computed from a request path, for the few paths that carry nearly
every request.

Clients choose paths, so the memo is bounded twice: only paths up to `max_length` long are
remembered, and at most `maxsize` of them (least recently used first out). An answer that raises
is never remembered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

Key = TypeVar("Key", str, bytes)
Answer = TypeVar("Answer")


def remembered_for_short_paths(*, max_length: int = 256, maxsize: int = 512
                               ) -> Callable[[Callable[[Key], Answer]], Callable[[Key], Answer]]:
    def decorate(compute: Callable[[Key], Answer]) -> Callable[[Key], Answer]:
        remembered = functools.lru_cache(maxsize=maxsize)(compute)

        @functools.wraps(compute)
        def answer(path: Key) -> Answer:
            return remembered(path) if len(path) <= max_length else compute(path)

        return answer

    return decorate
