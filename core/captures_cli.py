"""`shadowtap captures`: list, show and export what the proxy captured."""

from __future__ import annotations

import base64
import sys

import click
import orjson

from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.timefmt import parse_moment, stored_time

_JSON_COLUMNS = ("request_json", "response_json", "request_headers", "response_headers", "tags",
                 "response_tool_calls", "shadowtap_metadata")


def time_option(value: str | None, option: str) -> str | None:
    """A --since/--until value (an ISO time, or an age such as 30m, 2h, 7d) in the store's shape;
    a bad one ends the command with exit code 2, naming the option."""
    if value is None:
        return None
    try:
        return stored_time(parse_moment(value, ages=True))
    except ValueError:
        fail_usage(f"{option} {value!r}: expected an ISO time (2026-11-23T10:00) or an age such as 30m, 2h, 7d")


def _open_store(config_path: str | None, store_path: str | None):
    return open_store_or_exit(load_config_or_exit(config_path), store_path).captures


def _filter(since, until, endpoint, model, status, tag, limit):
    from shadowtap.core.store.capture_store import ExchangeFilter

    tag_pair = None
    if tag:
        if "=" not in tag:
            fail_usage(f"--tag {tag!r}: expected NAME=VALUE, for example --tag team=search")
        name, value = tag.split("=", 1)
        tag_pair = (name.strip().lower(), value.strip())
    return ExchangeFilter(since=time_option(since, "--since"), until=time_option(until, "--until"),
                          endpoint=endpoint, model=model, status=status, tag=tag_pair, limit=limit)


def _store_options(command):
    command = click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
                           help="Capture store (default: [store] path from --config, else shadowtap.db).")(command)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="Config file whose [store] path to read.")(command)


def _filter_options(command):
    for option in reversed([
        click.option("--since", help="Only exchanges at or after this time (ISO, or an age like 2h)."),
        click.option("--until", help="Only exchanges before this time (ISO, or an age like 30m)."),
        click.option("--endpoint", help="chat.completions, completions, responses, embeddings or other."),
        click.option("--model", help="Model the client asked for."),
        click.option("--status", type=int, help="HTTP status of the primary's answer."),
        click.option("--tag", help="NAME=VALUE from an x-shadowtap-NAME request header."),
    ]):
        command = option(command)
    return command


@click.group()
def captures() -> None:
    """Inspect captured exchanges: list, show, export."""


@captures.command("list")
@_store_options
@_filter_options
@click.option("--limit", default=50, show_default=True, type=int, help="Most recent N exchanges.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def list_captures(config_path, store_path, since, until, endpoint, model, status, tag, limit, as_json):
    """List captured exchanges, newest first."""
    store = _open_store(config_path, store_path)
    rows = store.list_exchanges(_filter(since, until, endpoint, model, status, tag, limit))
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    from rich.console import Console

    from shadowtap.core.terminal_tables import print_table

    columns = ("id", "started_at", "endpoint", "model", "stream", "status", "latency ms", "ttft ms", "tokens",
               "cost $", "flags")
    table_rows = []
    for row in rows:
        flags = [name for name in ("client_disconnected", "stream_incomplete", "request_unparseable") if row[name]]
        table_rows.append([row["id"], row["started_at"][:23], row["endpoint"], row["model"] or "",
                           "yes" if row["is_stream"] else "", str(row["status"]), _num(row["latency_ms"]),
                           _num(row["ttft_ms"]), _num(row["total_tokens"]), _num(row["cost_usd"], 6), " ".join(flags)])
    print_table(Console(), f"{len(rows)} of {store.count_exchanges()} captured exchanges ({store.path})", columns,
                table_rows, list_rows=True)


@captures.command("show")
@click.argument("exchange_id")
@_store_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the exchange, its shadow rows and its scores as one JSON object.")
@click.option("--raw", is_flag=True, help="Also show the raw request and response bytes (a stream's SSE events).")
def show_capture(exchange_id, config_path, store_path, as_json, raw):
    """Show one exchange: what was asked, the answer (a stream assembled), each candidate's shadow
    answer and outcome, and the scores (an id prefix is enough)."""
    from shadowtap.core.captures_show import exchange_view, print_exchange
    from shadowtap.core.store import Store

    store = Store(_open_store(config_path, store_path))
    row = store.captures.get_exchange(exchange_id)
    if row is None:
        click.echo(f"shadowtap: no captured exchange with id {exchange_id!r} in {store.path}", err=True)
        sys.exit(1)
    document = exchange_document(row)
    shadows = store.tables.rows_where("shadows", "exchange_id", [row["id"]])
    shadows.sort(key=lambda shadow: (shadow["candidate"] == "primary_twin", shadow["candidate"]))
    scores = store.scores.scores(exchange_id=row["id"])
    if as_json:
        click.echo(orjson.dumps(exchange_view(row, document, shadows, scores, raw=raw),
                                option=orjson.OPT_INDENT_2).decode())
        return
    from rich.console import Console

    print_exchange(Console(), row, document, shadows, scores, raw=raw)


@captures.command("export")
@_store_options
@_filter_options
@click.option("--limit", default=None, type=int, help="At most N exchanges (oldest first).")
@click.option("--output", "-o", default="-", type=click.File("w"), help="File to write (default stdout).")
def export_captures(config_path, store_path, since, until, endpoint, model, status, tag, limit, output):
    """Export exchanges as JSONL, one exchange per line, oldest first."""
    store = _open_store(config_path, store_path)
    count = 0
    for row in store.iter_exchanges(_filter(since, until, endpoint, model, status, tag, limit)):
        output.write(orjson.dumps(exchange_document(row)).decode() + "\n")
        count += 1
    click.echo(f"exported {count} exchanges", err=True)


def exchange_document(row: dict) -> dict:
    """A stored row as a JSON-friendly document: JSON columns parsed, bytes as base64."""
    document: dict = {}
    for key, value in row.items():
        if key in _JSON_COLUMNS and value is not None:
            value = orjson.loads(value)
        elif isinstance(value, bytes):
            value = {"base64": base64.b64encode(value).decode()}
        document[key] = value
    document["request"] = document.pop("request_json") or document.pop("request_raw", None)
    document.pop("request_raw", None)
    document["response"] = document.pop("response_json") or {
        "text": document.get("response_text"), "tool_calls": document.get("response_tool_calls"),
        "finish_reason": document.get("finish_reason"), "raw": document.get("response_raw")}
    document.pop("response_raw", None)
    return document


def _num(value, digits: int = 1) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
