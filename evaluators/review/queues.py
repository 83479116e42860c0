"""Review queues: build one from the exchange list's filter, and read its progress and the
reviewers' agreement, overall and by category, as items are labelled."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from shadowtap.core.errors import ConfigError
from shadowtap.core.store.review_queues import QueueStore
from shadowtap.evaluators.report.outcomes.kappa import agreement_method, kappa_of


def guideline_version(path: str | None) -> str | None:
    """The sha256 of the guideline file's content (its version), or None without a file."""
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"cannot read the guideline {path!r}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Agreement:
    scope: str            # "overall" or a category value
    items: int            # items labelled by two or more reviewers
    method: str | None    # cohen | fleiss
    kappa: float | None


@dataclass(frozen=True)
class QueueProgress:
    items: int
    labels_needed: int
    labels: int
    complete_items: int
    reviewers: list[str]
    agreement: list[Agreement]


def queue_progress(queues: QueueStore, queue: dict) -> QueueProgress:
    labels = queues.labels(queue["id"], queue["category"])
    verdicts: dict[str, dict[str, str]] = defaultdict(dict)
    category_of: dict[str, str] = {}
    for label in labels:
        verdicts[label["exchange_id"]][label["reviewer"]] = label["outcome"]
        category_of[label["exchange_id"]] = label["category"] or "(none)"
    needed = queue["reviewers_per_item"]
    shared = {exchange_id: item for exchange_id, item in verdicts.items() if len(item) >= 2}
    scopes: dict[str, list[dict[str, str]]] = {"overall": list(shared.values())}
    for exchange_id, item in shared.items():
        scopes.setdefault(category_of[exchange_id], []).append(item)
    agreement = []
    for scope, items in scopes.items():
        method = agreement_method(items)
        agreement.append(Agreement(scope, len(items), method, kappa_of(items, method).kappa if method else None))
    return QueueProgress(
        items=queue["items"], labels_needed=queue["items"] * needed, labels=len(labels),
        complete_items=sum(len(item) >= needed for item in verdicts.values()),
        reviewers=sorted({label["reviewer"] for label in labels}), agreement=agreement)
