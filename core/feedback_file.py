"""Reading feedback files for `shadowtap feedback import`: CSV or JSONL rows, each with its line number.

Columns (CSV) and keys (JSONL) are the API's field names. A row that cannot even be read (bad
JSON, a bad number) comes back with the reason instead of an item; the rest is checked by the
store, exactly as the API checks it. A file that cannot be read at all raises FeedbackFileError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from shadowtap.core.feedback_items import FIELDS, REQUIRED

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
_NUMBER_FIELDS = ("edit_minutes",)
_MAX_CELL_CHARS = 2_000_000


class FeedbackFileError(Exception):
    """The file cannot be read as feedback at all (missing, not UTF-8, no usable header)."""


@dataclass(frozen=True)
class FeedbackRow:
    """One row: an item for the store, or the reason it could not be read."""

    line: int
    item: dict | None = None
    error: str | None = None


def file_format(path: Path, head: bytes) -> str:
    """"csv" or "jsonl": by extension, else by the first character that is not blank."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "jsonl" if first == b"{" else "csv"


def read_feedback_rows(stream: BinaryIO, file_format: str) -> Iterator[FeedbackRow]:
    """Rows in file order; `stream` is read once, from its current position."""
    if file_format == "jsonl":
        return _jsonl_rows(stream)
    return _csv_rows(stream)


def _jsonl_rows(stream: BinaryIO) -> Iterator[FeedbackRow]:
    for number, raw in enumerate(stream, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield FeedbackRow(number, error=f"bad JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield FeedbackRow(number, error="bad JSON: expected an object with exchange_id and outcome")
            continue
        yield FeedbackRow(number, item=value)


def _csv_rows(stream: BinaryIO) -> Iterator[FeedbackRow]:
    # Edited texts can be long; the csv module refuses cells over 128 KiB by default.
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_CELL_CHARS))
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = [name.strip() for name in header]
        _check_header(columns)
        line = reader.line_num + 1  # where the next record starts (a quoted cell may span lines)
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                yield FeedbackRow(start, error=f"expected {len(columns)} cells (one per column), got {len(cells)}")
                continue
            yield _csv_row(start, columns, cells)
    except UnicodeDecodeError as exc:
        raise FeedbackFileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise FeedbackFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from None
    finally:
        text.detach()


def _check_header(columns: list[str]) -> None:
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise FeedbackFileError(f"unknown column {unknown[0]!r} in the header; accepted columns are "
                                f"{', '.join(FIELDS)}")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise FeedbackFileError(f"the header has no {missing[0]!r} column; {' and '.join(REQUIRED)} are required")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise FeedbackFileError(f"column {repeated[0]!r} appears twice in the header")


def _csv_row(line: int, columns: list[str], cells: list[str]) -> FeedbackRow:
    """Cells as the API's JSON values: an empty cell is an absent field (so an edit to nothing
    cannot be written in CSV; use JSONL), numbers are parsed."""
    item: dict = {}
    for name, cell in zip(columns, cells):
        if cell == "":
            continue
        if name in _NUMBER_FIELDS:
            number = _number(cell)
            if number is None:
                return FeedbackRow(line, error=f"bad number: {name} = {cell!r}")
            item[name] = number
        else:
            item[name] = cell
    return FeedbackRow(line, item=item)


def _number(cell: str) -> float | None:
    try:
        return float(cell.strip())
    except ValueError:
        return None
