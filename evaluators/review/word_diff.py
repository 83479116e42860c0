"""Word diff of two answers, as segments a template marks up: what the candidate added and dropped."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Segment:
    kind: str   # same | added | removed
    text: str


def word_diff(reference: str | None, other: str | None) -> list[Segment]:
    """Segments that read as `other`, with what `reference` had and `other` lacks marked removed."""
    old, new = _TOKENS.findall(reference or ""), _TOKENS.findall(other or "")
    segments: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(new[new_start:new_end])))
            continue
        if old_end > old_start:
            segments.append(Segment("removed", "".join(old[old_start:old_end])))
        if new_end > new_start:
            segments.append(Segment("added", "".join(new[new_start:new_end])))
    return segments
