"""Deterministic perturbations of a request, and how often they flip a pass/fail outcome.

Requests in every replayable dialect are perturbed in their own shape: chat `messages`, Anthropic
Messages `system` and `messages` (text blocks), and Responses `instructions` and `input` (a string
or input items with `input_text` parts).

Each perturbation changes one thing a robust prompt should not care about (white space, casing,
punctuation, the order of retrieved contexts, a few typos) and returns a deep copy; the input is
never mutated. The same request always yields the same perturbations, so runs are comparable.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable

PERTURBATIONS = ("whitespace", "casing", "punctuation", "context_order", "typos")

_CONTEXT_KEYS = ("contexts", "context", "retrieved_contexts")
_BLOCK = {tag: re.compile(rf"<{tag}\b[^>]*>.*?</{tag}\s*>", re.DOTALL | re.IGNORECASE)
          for tag in ("context", "document")}
_ANY_BLOCK = re.compile(r"<(context|document)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_WHITESPACE_RUN = re.compile(r"[ \t]{2,}|\n{2,}")
_SINGLE_SPACE = re.compile(r"( |\n)")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
                         "\u2018": "'", "\u2019": "'", "\u201a": "'"})
_TRAILING_PUNCTUATION = ".!?;:,\u2026"
# A token that is a plain lower-case word (optionally quoted or followed by punctuation): never a
# number, a capitalised name, an acronym, or an identifier such as get_weather, userId or a.b.
_PLAIN_WORD = re.compile(r"^([(\"']?)([a-z]{4,})([)\"'.,!?;:]*)$")

Text = Callable[[str], str]


def perturbations(request: dict, contexts: list[str] | None = None) -> list[tuple[str, dict]]:
    """(name, perturbed deep copy) for each perturbation that applies to `request`, in a fixed order.

    `contexts` are the exchange's retrieved-context texts (e.g. from its stored `shadowtap`
    metadata); where two or more appear verbatim in one message, their order there is reversed too.
    A perturbation that would not change the request is omitted.
    """
    if not isinstance(request, dict):
        return []
    builders = {
        "whitespace": _whitespace,
        "casing": _casing,
        "punctuation": _punctuation,
        "context_order": lambda r: _context_order(r, contexts or []),
        "typos": _typos,
    }
    found = []
    for name in PERTURBATIONS:
        perturbed = builders[name](copy.deepcopy(request))
        if perturbed is not None and perturbed != request:
            found.append((name, perturbed))
    return found


def sensitivity(outcomes: dict[str, bool], baseline: bool) -> dict:
    """How often a perturbation flips the unperturbed pass/fail outcome.

    Returns {"perturbations": n, "changed": m, "sensitivity": m / n (None when n is 0),
    "flags": {name: True when that perturbation's outcome differs from the baseline}}.
    """
    flags = {name: bool(outcome) != bool(baseline) for name, outcome in outcomes.items()}
    changed = sum(flags.values())
    return {"perturbations": len(flags), "changed": changed,
            "sensitivity": changed / len(flags) if flags else None, "flags": flags}


# --- the perturbations; each takes a private deep copy and returns it changed, or None ---------

def _whitespace(request: dict) -> dict | None:
    def change(text: str) -> str:
        collapsed = _WHITESPACE_RUN.sub(lambda m: " " if m.group(0)[0] in " \t" else "\n", text)
        if collapsed != text:
            return collapsed
        expanded = _SINGLE_SPACE.sub(lambda m: m.group(1) * 2, text)
        return expanded if expanded != text else text + "\n"
    return request if _edit_messages(request, change, only_last_user=False) else None


def _casing(request: dict) -> dict | None:
    return request if _edit_messages(request, str.lower, only_last_user=True) else None


def _punctuation(request: dict) -> dict | None:
    def change(text: str) -> str:
        text = text.translate(_QUOTES)
        body = text.rstrip()
        tail = text[len(body):]
        if not body or body.endswith(">"):  # ends in a tag: leave the markup alone
            return text
        stripped = body.rstrip(_TRAILING_PUNCTUATION)
        return (stripped if stripped != body else body + ".") + tail
    return request if _edit_messages(request, change, only_last_user=True) else None


def _context_order(request: dict, contexts: list[str]) -> dict | None:
    changed = False
    metadata = request.get("shadowtap")
    if isinstance(metadata, dict):
        for key in _CONTEXT_KEYS:
            items = metadata.get(key)
            if isinstance(items, list) and len(items) > 1 and items[::-1] != items:
                metadata[key] = items[::-1]
                changed = True
                break

    def reverse_blocks(text: str) -> str:
        for pattern in _BLOCK.values():
            text = _reverse_spans(text, [m.span() for m in pattern.finditer(text)])
        if contexts:
            text = _reverse_spans(text, _verbatim_spans(text, contexts))
        return text

    turns = _Turns(request)
    for message in turns.all:
        changed |= _edit_content(message, reverse_blocks)
    turns.write_back()
    return request if changed else None


def _typos(request: dict) -> dict | None:
    def change(text: str) -> str:
        # Context passages are evidence, not the user's typing: typos go only between blocks.
        pieces, last = [], 0
        for match in _ANY_BLOCK.finditer(text):
            pieces += [(text[last:match.start()], True), (match.group(0), False)]
            last = match.end()
        pieces.append((text[last:], True))
        tokens = [(i, re.split(r"(\s+)", piece)) for i, (piece, prose) in enumerate(pieces) if prose]
        candidates = [(i, j) for i, parts in tokens for j, token in enumerate(parts)
                      if _swappable(token) is not None]
        if not candidates:
            return text
        digest = hashlib.sha256(text.encode()).digest()
        count = max(1, min(3, len(candidates) // 5))
        chosen = sorted({candidates[int.from_bytes(digest[k * 4:k * 4 + 4], "big") % len(candidates)]
                         for k in range(count)})
        by_piece = dict(tokens)
        for k, (i, j) in enumerate(chosen):
            by_piece[i][j] = _swap_letters(by_piece[i][j], digest[16 + k])
        return "".join("".join(by_piece[i]) if i in by_piece else piece for i, (piece, _) in enumerate(pieces))
    return request if _edit_messages(request, change, only_last_user=True) else None


# --- helpers -----------------------------------------------------------------------------------

class _Turns:
    """A request's turns as {"role", "content"} dicts, whatever its dialect: the edits below work on
    these. Turns held in a top-level string (Anthropic `system`, Responses `instructions`, a string
    `input`) are wrapped, and `write_back()` puts the edited strings where they came from."""

    _WRAPPED = (("system", "system"), ("instructions", "system"), ("input", "user"))

    def __init__(self, request: dict) -> None:
        self._request = request
        self._wrapped: list[tuple[str, dict]] = []
        self.all: list[dict] = []
        for key, role in self._WRAPPED:
            value = request.get(key)
            if isinstance(value, str) or (key == "system" and isinstance(value, list)):
                holder = {"role": role, "content": value}
                self._wrapped.append((key, holder))
                self.all.append(holder)
        for key in ("messages", "input"):
            items = request.get(key)
            if isinstance(items, list):
                self.all += [item for item in items if isinstance(item, dict)]

    def users(self) -> list[dict]:
        return [turn for turn in self.all if turn.get("role") == "user"]

    def write_back(self) -> None:
        for key, holder in self._wrapped:
            self._request[key] = holder["content"]


def _edit_messages(request: dict, change: Text, *, only_last_user: bool) -> bool:
    turns = _Turns(request)
    users = turns.users()
    if only_last_user:
        users = users[-1:]
    changed = False
    for message in users:
        changed |= _edit_content(message, change)
    turns.write_back()
    return changed


def _edit_content(message: dict, change: Text) -> bool:
    """Apply `change` to a message's text (a string, or the text parts of a content list)."""
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = change(content)
        return message["content"] != content
    changed = False
    if isinstance(content, list):
        for part in content:
            if (isinstance(part, dict) and part.get("type") in ("text", "input_text")
                    and isinstance(part.get("text"), str)):
                before = part["text"]
                part["text"] = change(before)
                changed |= part["text"] != before
    return changed


def _reverse_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the substrings at the (sorted, non-overlapping) spans in reverse order."""
    if len(spans) < 2:
        return text
    blocks = [text[start:end] for start, end in spans]
    out, last = [], 0
    for (start, end), block in zip(spans, reversed(blocks)):
        out += [text[last:start], block]
        last = end
    out.append(text[last:])
    return "".join(out)


def _verbatim_spans(text: str, contexts: list[str]) -> list[tuple[int, int]]:
    spans = []
    for context in contexts:
        if isinstance(context, str) and context.strip():
            start = text.find(context)
            if start >= 0:
                spans.append((start, start + len(context)))
    spans.sort()
    if any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])):
        return []  # overlapping passages: no unambiguous order to reverse
    return spans


def _swappable(token: str) -> str | None:
    match = _PLAIN_WORD.match(token)
    if not match:
        return None
    word = match.group(2)
    # Keep the first and last letters, as real typos mostly do; need two differing neighbours.
    return word if any(word[i] != word[i + 1] for i in range(1, len(word) - 2)) else None


def _swap_letters(token: str, seed: int) -> str:
    match = _PLAIN_WORD.match(token)
    assert match is not None, "only called on tokens _swappable accepted"
    prefix, word, suffix = match.groups()
    positions = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
    i = positions[seed % len(positions)]
    return prefix + word[:i] + word[i + 1] + word[i] + word[i + 2:] + suffix
