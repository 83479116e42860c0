"""Deterministic sampling: the same exchange id always gets the same decision per candidate.

A hash rather than a random draw keeps cohorts stable (re-running a decision gives the same answer)
and lets each candidate sample independently of the others.
"""

from __future__ import annotations

import hashlib


def sample_point(exchange_id: str, candidate: str) -> float:
    """A number in [0, 1) that is uniform over exchange ids and fixed for (id, candidate)."""
    digest = hashlib.blake2b(f"{candidate}\x00{exchange_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_sampled(exchange_id: str, candidate: str, rate: float) -> bool:
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return sample_point(exchange_id, candidate) < rate
