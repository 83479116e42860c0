"""Slow, obviously correct reference implementations the fast ones are checked against."""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """The textbook dynamic programme, independent of the library the store uses."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


