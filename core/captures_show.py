"""`shadowtap captures show`: one exchange as a person reads it — what was asked, the answer the app
got (assembled, for a stream), each candidate's shadow answer and outcome, and every score. Raw
bytes (a stream's SSE, an unparseable body) only when asked for.

Captured text is untrusted: it reaches the terminal only as rich `Text`, never as markup.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from shadowtap.core.terminal_tables import print_table

_FLAGS = ("client_disconnected", "stream_incomplete", "request_unparseable", "response_unparseable",
          "capture_truncated")
_RAW_COLUMNS = ("request_raw", "response_raw")


def exchange_view(row: dict, document: dict, shadows: list[dict], scores: list[dict], *, raw: bool = False) -> dict:
    """The `--json` document of `captures show`: the exchange, its shadows and scores; the raw bytes
    (a stream's SSE, as text when it is UTF-8) only with `raw`."""
    view = {**document, "shadows": [_shadow(shadow) for shadow in shadows], "scores": scores}
    response = view.get("response")
    if isinstance(response, dict) and "raw" in response:
        view["response"] = {key: value for key, value in response.items() if key != "raw"}
    if raw:
        view["raw"] = {column: _raw_text(row.get(column)) for column in _RAW_COLUMNS}
    return view


def print_exchange(console: Console, row: dict, document: dict, shadows: list[dict], scores: list[dict], *,
                   raw: bool = False) -> None:
    _facts(console, row, document)
    console.rule("request")
    _request(console, document.get("request"))
    console.rule(f"answer: primary (status {row.get('status')})")
    response = document.get("response")
    parsed = response if isinstance(response, dict) and "raw" not in response else None   # the JSON body, if any
    _answer(console, row.get("response_text"), _json(row.get("response_tool_calls")), row.get("finish_reason"),
            parsed)
    for shadow in shadows:
        console.rule(f"shadow: {shadow['candidate']} ({shadow.get('model') or 'no model'}) — {_outcome(shadow)}")
        if shadow["outcome"] == "ok":
            _answer(console, shadow.get("response_text"), _json(shadow.get("response_tool_calls")),
                    shadow.get("finish_reason"), None)
    if not shadows:
        console.print(Text("not mirrored: no shadow row for this exchange"))
    _scores(console, scores)
    if raw:
        for column in _RAW_COLUMNS:
            console.rule(column.replace("_", " "))
            console.print(Text(_raw_text(row.get(column)) or "(none)"), soft_wrap=True)


def _facts(console: Console, row: dict, document: dict) -> None:
    flags = [name for name in _FLAGS if row.get(name)]
    tags = document.get("tags") or {}
    facts = [("id", row.get("id")), ("started", row.get("started_at")), ("endpoint", row.get("endpoint")),
             ("model", row.get("model")), ("status", row.get("status")),
             ("stream", "yes" if row.get("is_stream") else "no"), ("latency ms", _num(row.get("latency_ms"))),
             ("ttft ms", _num(row.get("ttft_ms"))), ("tokens", _num(row.get("total_tokens"))),
             ("prompt cache", _cache_tokens(row)),
             ("cost $", _num(row.get("cost_usd"), 6)), ("task", row.get("task")), ("risk tier", row.get("risk_tier")),
             ("tags", ", ".join(f"{k}={v}" for k, v in tags.items()) if isinstance(tags, dict) else str(tags)),
             ("flags", " ".join(flags)), ("upstream error", row.get("upstream_error"))]
    print_table(console, "exchange", ["field", "value"],
                [[name, str(value)] for name, value in facts if value not in (None, "")])


def _cache_tokens(row: dict) -> str | None:
    """`100 written, 2000 read` of the prompt tokens, when the API reported its prompt cache."""
    written, read = row.get("cache_creation_tokens"), row.get("cache_read_tokens")
    if written is None and read is None:
        return None
    return f"{written or 0} written, {read or 0} read"


def _request(console: Console, request: Any) -> None:
    if not isinstance(request, dict):
        console.print(Text("(not JSON; `--raw` shows the bytes)" if request is not None else "(not captured)"))
        return
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                line = Text(f"{message.get('role', '?')}: ", style="bold")
                line.append(_content_text(message.get("content")))
                if message.get("tool_calls"):
                    line.append(f" [tool calls: {orjson.dumps(message['tool_calls']).decode()}]")
                console.print(line, soft_wrap=True)
    elif "input" in request:
        console.print(Text(f"input: {_content_text(request['input'])}"), soft_wrap=True)
    rest = {key: value for key, value in request.items() if key not in ("messages", "input")}
    if rest:
        console.print(Text(f"parameters: {orjson.dumps(rest).decode()}", style="dim"), soft_wrap=True)


def _answer(console: Console, text: str | None, tool_calls: Any, finish_reason: str | None, fallback: Any) -> None:
    if text is not None:
        console.print(Text(text), soft_wrap=True)
    for call in tool_calls or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            console.print(Text(f"tool call {function.get('name')}({function.get('arguments')})"), soft_wrap=True)
    if text is None and not tool_calls:
        console.print(Text(orjson.dumps(fallback).decode() if fallback is not None
                           else "(no answer text; `--raw` shows the bytes)"), soft_wrap=True)
    if finish_reason:
        console.print(Text(f"finish reason: {finish_reason}", style="dim"))


def _scores(console: Console, scores: list[dict]) -> None:
    """One row per evaluator, one column per answer (`n/a`: the evaluator does not apply; `--json` says why)."""
    if not scores:
        console.print(Text("no scores yet: `shadowtap eval` scores captured answers"))
        return
    sources = sorted({score["source"] for score in scores},
                     key=lambda source: ({"primary": 0, "primary_twin": 1}.get(source, 2), source))
    cells: dict[tuple[str, str], str] = {}
    for score in scores:
        if score["outcome"] == "score":
            value = "" if score.get("value") is None else f"{score['value']:.3f}"
            cell = f"{value} {score.get('label') or ''}".strip()
        else:
            cell = "n/a" if score["outcome"] == "not_applicable" else score["outcome"]
        cells[score["evaluator"], score["source"]] = cell
    evaluators = sorted({score["evaluator"] for score in scores})
    print_table(console, "scores", ["evaluator", *sources],
                [[name, *(cells.get((name, source), "") for source in sources)] for name in evaluators],
                list_rows=True)
    for score in scores:
        if score["outcome"] == "error":
            console.print(Text(f"{score['evaluator']} on {score['source']} failed: {score.get('error')}"),
                          soft_wrap=True)


def _outcome(shadow: dict) -> str:
    outcome = shadow["outcome"]
    if outcome == "ok":
        return f"answered in {_num(shadow.get('latency_ms'))} ms"
    if outcome == "skipped":
        return f"skipped: {shadow.get('skip_reason') or 'no reason recorded'}"
    error = ": ".join(part for part in (shadow.get("error_class"), shadow.get("error_message")) if part)
    return f"{outcome}{': ' + error if error else ''}"


def _shadow(row: dict) -> dict:
    return {**row, "response_tool_calls": _json(row.get("response_tool_calls"))}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", f"[{part.get('type')}]") if isinstance(part, dict) else str(part)
                        for part in content)
    return orjson.dumps(content).decode()


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) and value else value


def _raw_text(value: Any) -> str | None:
    """Raw bytes as text when they are UTF-8 (SSE, JSON), else as base64; a document's {"base64": ...} too."""
    if isinstance(value, dict) and "base64" in value:
        value = base64.b64decode(value["base64"])
    if not isinstance(value, bytes | bytearray):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
