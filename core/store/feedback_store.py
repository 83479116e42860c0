"""FeedbackStore: the only SQL for human outcomes (table `feedback`), stored idempotently.

A feedback id is the client's `feedback_id`, or "fb_" + a hash of the content, so posting or
importing the same thing twice changes nothing. The content's fingerprint tells such a repeat
("unchanged") from a reuse of an id for something else (FeedbackConflict). Edited text is never
stored: only its Levenshtein distance from the captured answer, and that distance as a ratio.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from shadowtap.core.errors import FeedbackConflict, FeedbackError, StoreError, UnknownExchange
from shadowtap.core.feedback_items import FeedbackItem, parse_feedback_item
from shadowtap.core.redaction import Redactor
from shadowtap.core.store.backend import SqlBackend, backend_of, upsert_sql
from shadowtap.core.store.errors import database_errors

FEEDBACK_COLUMNS = ("id", "exchange_id", "outcome", "edit_minutes", "edit_distance", "edit_ratio", "reviewer",
                    "label", "comment", "source", "at", "received_at", "fingerprint")
SOURCES = ("api", "import", "review")  # the feedback API, `feedback import`, `shadowtap ui`

# Postgres has no database-wide write lock to make the read-then-insert above race-free: a
# concurrent insert of the same id is left alone rather than failing the batch.
_INSERT = upsert_sql("feedback", FEEDBACK_COLUMNS, replace=False)


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to one item: "created", or "unchanged" when the same content was stored before."""

    feedback_id: str
    status: str


class FeedbackStore:
    """Validates, redacts and stores feedback over a CaptureStore's database."""

    def __init__(self, store_or_db: object, redactor: Redactor | None = None) -> None:
        self.sql: SqlBackend = backend_of(store_or_db)
        self._redactor = redactor or Redactor(emails=False, phones=False, card_numbers=False)

    def record(self, items: Sequence[object], *, source: str) -> list[FeedbackResult]:
        """Store a batch atomically: every item lands (or was already there) or none does.

        Raises the first item's FeedbackInvalid, then UnknownExchange (naming every unknown id),
        then FeedbackConflict, in that order, so a caller fixes the shape before the ids.
        """
        parsed = [parse_feedback_item(value, index) for index, value in enumerate(items)]
        answers = self._captured_answers(parsed)
        unknown = [(index, item.exchange_id) for index, item in enumerate(parsed) if item.exchange_id not in answers]
        if unknown:
            raise unknown_exchange_error(unknown)
        rows = [self._row(item, answers[item.exchange_id], source) for item in parsed]
        outcomes = self._store(rows, atomic=True)
        return [outcome for outcome in outcomes if isinstance(outcome, FeedbackResult)]

    def record_each(self, items: Sequence[object], *, source: str) -> list[FeedbackResult | FeedbackError]:
        """Store every good item and report each bad one in its place (for imports, where one bad
        row must not keep the others out)."""
        prepared: list[FeedbackItem | FeedbackError] = []
        for index, value in enumerate(items):
            try:
                prepared.append(parse_feedback_item(value, index))
            except FeedbackError as exc:
                prepared.append(exc)
        answers = self._captured_answers([item for item in prepared if isinstance(item, FeedbackItem)])
        rows: list[dict | FeedbackError] = []
        for index, item in enumerate(prepared):
            if isinstance(item, FeedbackError):
                rows.append(item)
            elif item.exchange_id not in answers:
                rows.append(unknown_exchange_error([(index, item.exchange_id)]))
            else:
                rows.append(self._row(item, answers[item.exchange_id], source))
        return self._store(rows, atomic=False)

    def feedback(self, *, exchange_id: str | None = None, limit: int | None = None) -> list[dict]:
        """Stored rows, newest `at` first, optionally for one exchange."""
        clause, params = ("exchange_id = :exchange_id", {"exchange_id": exchange_id}) if exchange_id else ("true", {})
        sql = f"select * from feedback where {clause} order by at desc, id"
        if limit:
            sql += f" limit {int(limit)}"
        return list(self.sql.query(sql, params))

    # -- internals ----------------------------------------------------------------------------

    def _captured_answers(self, items: Sequence[FeedbackItem]) -> dict[str, str]:
        """Exchange id -> captured response text ("" when it has none), for the ids that exist."""
        ids = sorted({item.exchange_id for item in items})
        if not ids:
            return {}
        rows = self.sql.execute("select id, coalesce(response_text, '') from exchanges "
                                f"where id in ({self.sql.list_values('?')})", [orjson.dumps(ids).decode()])
        return dict(rows.fetchall())

    def _row(self, item: FeedbackItem, answer: str, source: str) -> dict:
        if source not in SOURCES:
            raise ValueError(f"feedback source must be one of {SOURCES}, got {source!r}")
        comment = self._redactor.redact_text(item.comment) if item.comment else None
        distance = ratio = None
        if item.edited_text is not None:
            # Imported here: the live process serves the feedback API, and most feedback has no edit.
            from rapidfuzz.distance import Levenshtein

            # Captured text is stored redacted, so the edit is compared in the same redacted form.
            edited = self._redactor.redact_text(item.edited_text)
            distance = Levenshtein.distance(answer, edited)
            longest = max(len(answer), len(edited))
            ratio = distance / longest if longest else 0.0
        fingerprint = content_fingerprint(item, comment)
        received_at = datetime.now(UTC).isoformat(timespec="microseconds")
        return {"id": item.feedback_id or f"fb_{fingerprint[:32]}", "exchange_id": item.exchange_id,
                "outcome": item.outcome, "edit_minutes": item.edit_minutes, "edit_distance": distance,
                "edit_ratio": ratio, "reviewer": item.reviewer, "label": item.label, "comment": comment,
                "source": source, "at": item.at or received_at, "received_at": received_at,
                "fingerprint": fingerprint}

    def _store(self, rows: Sequence[dict | FeedbackError], *, atomic: bool) -> list[FeedbackResult | FeedbackError]:
        """Insert the rows whose id is new; compare the others' fingerprints. One transaction,
        begun IMMEDIATE so two writers cannot both find an id free and both insert it."""
        good = [row for row in rows if isinstance(row, dict)]
        try:
            with self.sql.transaction(immediate=True):
                stored = dict(self.sql.execute(
                    f"select id, fingerprint from feedback where id in ({self.sql.list_values('?')})",
                    [orjson.dumps([row["id"] for row in good]).decode()]).fetchall())
                results: list[FeedbackResult | FeedbackError] = []
                new_rows = []
                for index, row in enumerate(rows):
                    if isinstance(row, FeedbackError):
                        results.append(row)
                        continue
                    known = stored.get(row["id"])
                    if known is None:
                        stored[row["id"]] = row["fingerprint"]
                        new_rows.append(row)
                        results.append(FeedbackResult(row["id"], "created"))
                    elif known == row["fingerprint"]:
                        results.append(FeedbackResult(row["id"], "unchanged"))
                    else:
                        conflict = FeedbackConflict(
                            f"feedback id {row['id']!r} was already used for different content; "
                            "send a new feedback_id for a new judgement, or the same content to repeat one",
                            index=index, field="feedback_id")
                        if atomic:
                            raise conflict
                        results.append(conflict)
                if new_rows:
                    self.sql.executemany(_INSERT, [[row[column] for column in FEEDBACK_COLUMNS] for row in new_rows])
        except database_errors() as exc:
            raise StoreError(f"cannot store {len(good)} feedback items: {exc}") from None
        return results


def content_fingerprint(item: FeedbackItem, redacted_comment: str | None) -> str:
    """A hash of what the item says (not of its id, source or arrival time), so a repeat matches.

    The edited text enters only as its own hash, and the comment only redacted.
    """
    edited = hashlib.sha256(item.edited_text.encode()).hexdigest() if item.edited_text is not None else None
    content = [item.exchange_id, item.outcome, item.edit_minutes, edited, item.reviewer, item.label,
               redacted_comment, item.at]
    return hashlib.sha256(orjson.dumps(content)).hexdigest()


def unknown_exchange_error(unknown: Sequence[tuple[int, str]]) -> UnknownExchange:
    """The 404 message: which ids, and where valid ones come from."""
    index, first = unknown[0]
    ids = ", ".join(repr(exchange_id) for _, exchange_id in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    which = f"exchange with id {ids}" if len(unknown) == 1 else f"exchanges with ids {ids}{more}"
    return UnknownExchange(
        f"no captured {which}; feedback can only be given for exchanges "
        "shadowtap captured, whose id it returned in x-shadowtap-exchange-id", index=index, field="exchange_id",
        exchange_ids=[exchange_id for _, exchange_id in unknown])
