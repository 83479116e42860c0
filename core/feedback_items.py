"""Feedback items as apps and reviewers send them: the accepted fields, checked and normalised.

One definition serves the HTTP API (JSON values) and `shadowtap feedback import` (CSV cells are
converted to these types first), so both accept exactly the same items and name the same fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shadowtap.core.errors import FeedbackInvalid
from shadowtap.core.timefmt import parse_moment, stored_time

OUTCOMES = ("accepted", "edited", "escalated", "rejected", "policy_violation")
FIELDS = ("feedback_id", "exchange_id", "outcome", "edit_minutes", "edited_text", "reviewer", "label",
          "comment", "at")
REQUIRED = ("exchange_id", "outcome")

# Longest accepted value per text field, in characters: ids and labels are meant to be short.
MAX_LENGTH = {"feedback_id": 200, "exchange_id": 200, "outcome": 64, "reviewer": 200, "label": 200, "comment": 10_000,
              "edited_text": 1_000_000, "at": 64}


@dataclass(frozen=True)
class FeedbackItem:
    """One validated outcome for one captured exchange; `at` is ISO 8601 UTC when given."""

    exchange_id: str
    outcome: str
    feedback_id: str | None = None
    edit_minutes: float | None = None
    edited_text: str | None = None
    reviewer: str | None = None
    label: str | None = None
    comment: str | None = None
    at: str | None = None


def parse_feedback_item(value: object, index: int = 0) -> FeedbackItem:
    """Check one item (a JSON object) and return it normalised; FeedbackInvalid names the field."""
    if not isinstance(value, dict):
        raise FeedbackInvalid(f"expected a JSON object with exchange_id and outcome, "
                              f"got {_describe(value)}", index=index)
    unknown = [name for name in value if name not in FIELDS]
    if unknown:
        raise FeedbackInvalid(f"unknown field {unknown[0]!r}; accepted fields are "
                              f"{', '.join(FIELDS)}", index=index, field=str(unknown[0]))
    present = {name: item for name, item in value.items() if item is not None}
    for name in REQUIRED:
        if name not in present:
            raise FeedbackInvalid(f"{name} is missing: it is required", index=index, field=name)
    texts = {name: _text(present, name, index) for name in FIELDS if name not in ("edit_minutes", "at")}
    outcome = texts["outcome"]
    if outcome not in OUTCOMES:
        raise FeedbackInvalid(f"outcome = {outcome!r}: expected one of {', '.join(OUTCOMES)}",
                              index=index, field="outcome")
    for name in ("feedback_id", "exchange_id"):
        text = texts[name]
        if text is not None and not text.strip():
            raise FeedbackInvalid(f"{name} is empty", index=index, field=name)
    exchange_id = texts["exchange_id"]
    if exchange_id is None:  # REQUIRED holds it, but a JSON null is present and empty
        raise FeedbackInvalid("exchange_id is missing: it is required", index=index, field="exchange_id")
    # An empty reviewer, label or comment says nothing; an empty edited_text means "deleted it all".
    for name in ("reviewer", "label", "comment"):
        texts[name] = texts[name] or None
    return FeedbackItem(
        exchange_id=exchange_id, outcome=outcome, feedback_id=texts["feedback_id"],
        edit_minutes=_minutes(present.get("edit_minutes"), index), edited_text=texts["edited_text"],
        reviewer=texts["reviewer"], label=texts["label"], comment=texts["comment"],
        at=parse_feedback_time(present.get("at"), index))


def parse_feedback_time(value: object, index: int = 0) -> str | None:
    """ISO 8601 to ISO 8601 UTC; a time without an offset is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_LENGTH["at"]:
        raise FeedbackInvalid(f"at = {value!r}: expected an ISO 8601 time such as "
                              "2026-11-23T10:15:00Z", index=index, field="at")
    try:
        return stored_time(parse_moment(value))
    except ValueError:
        raise FeedbackInvalid(f"at = {value!r}: not an ISO 8601 time (expected for example "
                              "2026-11-23T10:15:00Z)", index=index, field="at") from None


def _text(values: dict, name: str, index: int) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FeedbackInvalid(f"{name} = {value!r}: expected a string, got {_describe(value)}",
                              index=index, field=name)
    if len(value) > MAX_LENGTH[name]:
        raise FeedbackInvalid(f"{name} is {len(value)} characters long; at most "
                              f"{MAX_LENGTH[name]} are accepted", index=index, field=name)
    return value


def _minutes(value: object, index: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FeedbackInvalid(f"edit_minutes = {value!r}: expected a number of minutes, 0 or more",
                              index=index, field="edit_minutes")
    return float(value)


def _describe(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
