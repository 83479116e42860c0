"""`shadowtap feedback`: import outcomes kept in review or ticketing tools, and list what was recorded.

Exit codes of `import`: 0 every row stored (or already there), 1 some rows were bad (the good
ones are stored), 2 the file or the store cannot be used at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import click
import orjson

from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.errors import FeedbackError
from shadowtap.core.store import FeedbackResult, FeedbackStore

CHUNK_ROWS = 500                  # rows stored per transaction
PROGRESS_FROM_BYTES = 1 << 20     # show a progress bar for files from 1 MiB
SHOWN_BAD_ROWS = 50               # bad rows listed one by one; the rest are only counted


def _store_options(command):
    command = click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
                           help="Capture store (default: [store] path from --config, else shadowtap.db).")(command)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="Config file whose [store] path and [redaction] rules to use.")(command)


def _open_feedback_store(config_path: str | None, store_path: str | None):
    from shadowtap.core.redaction import Redactor
    from shadowtap.core.store import FeedbackStore

    config = load_config_or_exit(config_path)
    store = open_store_or_exit(config, store_path)
    return store, FeedbackStore(store.captures, Redactor.from_rules(config.redaction))


@click.group()
def feedback() -> None:
    """Record what really happened to captured answers: import, list."""


@feedback.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@_store_options
def import_feedback(file: str, config_path: str | None, store_path: str | None) -> None:
    """Import outcomes from a CSV or JSONL FILE whose columns are the feedback API's fields.

    Bad rows are reported by line number and skipped; good rows are stored. Importing the
    same file again changes nothing.
    """
    from shadowtap.core.feedback_file import FeedbackFileError, file_format, read_feedback_rows

    path = Path(file)
    try:
        stream = path.open("rb")
    except OSError as exc:
        fail_usage(f"cannot read {file!r}: {exc.strerror or exc}")
    store, feedback_store = _open_feedback_store(config_path, store_path)
    counts = {"read": 0, "created": 0, "unchanged": 0, "bad": 0}
    try:
        with stream, ImportProgress(path, stream) as advance:
            kind = file_format(path, stream.peek(64)[:64])
            for chunk in _chunks(read_feedback_rows(stream, kind), CHUNK_ROWS):
                for line, outcome in _store_chunk(feedback_store, chunk):
                    counts["read"] += 1
                    if isinstance(outcome, str):
                        counts["bad"] += 1
                        if counts["bad"] <= SHOWN_BAD_ROWS:
                            click.echo(f"{file}:{line}: {outcome}", err=True)
                    else:
                        counts[outcome.status] += 1
                advance()
    except FeedbackFileError as exc:
        fail_usage(f"cannot import {file!r}: {exc}")
    finally:
        store.close()
    if counts["bad"] > SHOWN_BAD_ROWS:
        click.echo(f"... and {counts['bad'] - SHOWN_BAD_ROWS} more bad rows", err=True)
    click.echo(f"{file}: {counts['read']} rows, {counts['created']} stored, {counts['unchanged']} already there, "
               f"{counts['bad']} bad")
    sys.exit(1 if counts["bad"] else 0)


def _store_chunk(feedback_store: FeedbackStore, rows) -> Iterator[tuple[int, FeedbackResult | str]]:
    """(line, FeedbackResult or the reason the row is bad), in file order."""
    readable = [row for row in rows if row.item is not None]
    results = iter(feedback_store.record_each([row.item for row in readable], source="import"))
    for row in rows:
        if row.item is None:
            yield row.line, row.error
            continue
        result = next(results)
        yield row.line, result.reason if isinstance(result, FeedbackError) else result


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


class ImportProgress:
    """A rich progress bar over the file's bytes, on stderr, for big files only."""

    def __init__(self, path: Path, stream) -> None:
        self._stream = stream
        self._size = path.stat().st_size
        self._bar = None

    def __enter__(self):
        if self._size >= PROGRESS_FROM_BYTES:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("importing feedback"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("import", total=self._size)
        return self._advance

    def _advance(self) -> None:
        if self._bar is not None and not self._stream.closed:
            self._bar.update(self._task, completed=self._stream.tell())

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.stop()


@feedback.command("list")
@_store_options
@click.option("--exchange", "exchange_id", default=None, help="Only feedback for this exchange id.")
@click.option("--limit", default=50, show_default=True, type=int, help="Most recent N items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def list_feedback(config_path, store_path, exchange_id, limit, as_json):
    """List recorded feedback, newest first."""
    store, feedback_store = _open_feedback_store(config_path, store_path)
    rows = feedback_store.feedback(exchange_id=exchange_id, limit=limit)
    store.close()
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    from rich.console import Console

    from shadowtap.core.terminal_tables import print_table

    title = f"{len(rows)} feedback items" + (f" for {exchange_id}" if exchange_id else "")
    columns = ("exchange", "at", "outcome", "reviewer", "label", "edit min", "edit dist", "source", "comment")
    print_table(Console(), title, columns,
                [[row["exchange_id"], row["at"][:19], row["outcome"], row["reviewer"] or "", row["label"] or "",
                  _num(row["edit_minutes"]), _num(row["edit_distance"]), row["source"], row["comment"] or ""]
                 for row in rows], list_rows=True)


def _num(value) -> str:
    return "" if value is None else f"{value:g}"
