"""Turn the raw bytes of a primary's response (JSON or an SSE stream) into one AssembledResponse,
with the request's dialect reading what its events and bodies mean.

Pure and defensive: upstream JSON of any shape yields a result, never an exception.
"""

from __future__ import annotations

import logging

import orjson

from shadowtap.proxy.dialects import AssembledResponse, Dialect
from shadowtap.proxy.dialects.base import StreamAccumulator, str_or_none

logger = logging.getLogger(__name__)


def assemble_response(dialect: Dialect, content_type: str | None, chunks: list[bytes]) -> AssembledResponse:
    """Assemble decoded network reads into one response; never raises.

    For a non-stream body `first_content_chunk` is the last chunk, since the content is
    only usable once the whole body has arrived.
    """
    try:
        if (content_type or "").lstrip().lower().startswith("text/event-stream"):
            return _assemble_stream(dialect, chunks)
        return _assemble_body(dialect, content_type, chunks)
    except Exception as exc:  # a bug here must not lose the capture; the record says why
        logger.exception("assembling a %s response failed", dialect.name)
        return AssembledResponse(complete=False, parse_error=f"assembler failed: {exc!r}")


def _assemble_body(dialect: Dialect, content_type: str | None, chunks: list[bytes]) -> AssembledResponse:
    raw = b"".join(chunks)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "empty body" if not raw.strip() else f"body is not valid JSON: {exc}"
        if content_type:
            reason += f" (content-type {content_type})"
        return AssembledResponse(complete=False, parse_error=reason)

    result = AssembledResponse(body=body)
    if not isinstance(body, dict):
        return result
    result.model = str_or_none(body.get("model"))
    result.usage = dialect.usage(body.get("usage"))
    dialect.assemble_body(body, result)
    if (result.text or result.tool_calls) and chunks:
        result.first_content_chunk = len(chunks) - 1
    return result


class _SSEReader:
    """Splits network reads into SSE events, however the reads cut lines and characters."""

    def __init__(self, accumulator: StreamAccumulator, result: AssembledResponse) -> None:
        self.accumulator = accumulator
        self.result = result
        self.pending = bytearray()
        self.data_lines: list[bytes] = []
        self.event_name: str | None = None
        self.bad_events = 0

    def feed_chunk(self, chunk: bytes, chunk_index: int) -> None:
        if chunk_index == 0 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        # What is pending holds no newline, so only the new read needs searching; this
        # keeps a long event arriving in many small reads linear.
        search_from = len(self.pending)
        self.pending += chunk
        start = 0
        # Lines are kept as bytes until an event is whole, so a UTF-8 character split
        # across reads is only decoded once both halves are present.
        while (newline := self.pending.find(b"\n", search_from)) >= 0:
            line = bytes(self.pending[start:newline])
            start = search_from = newline + 1
            self._line(line[:-1] if line.endswith(b"\r") else line, chunk_index)
        del self.pending[:start]

    def close(self, last_chunk_index: int) -> None:
        # An unterminated last line was cut off mid-way; an event whose lines all
        # arrived but whose blank separator did not is still worth keeping.
        self._dispatch(last_chunk_index)
        if self.bad_events > 1 and self.result.parse_error is not None:
            self.result.parse_error += f" (and {self.bad_events - 1} more invalid events)"

    def _line(self, line: bytes, chunk_index: int) -> None:
        if not line:
            self._dispatch(chunk_index)
        elif line.startswith(b"data:"):
            value = line[5:]
            self.data_lines.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            self.event_name = line[6:].strip().decode("utf-8", "replace")
        # comments (":"), id: and retry: carry nothing the record needs

    def _dispatch(self, chunk_index: int) -> None:
        if not self.data_lines:
            self.event_name = None
            return
        data = b"\n".join(self.data_lines)
        event_name, self.data_lines, self.event_name = self.event_name, [], None
        self.result.events += 1
        if data.strip() == b"[DONE]":
            self.accumulator.complete = True
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._invalid_event(f"event {self.result.events} is not valid JSON: {exc}")
            return
        if not isinstance(event, dict):
            self._invalid_event(f"event {self.result.events} is not a JSON object")
            return
        if self.accumulator.feed(event, event_name) and self.result.first_content_chunk is None:
            self.result.first_content_chunk = chunk_index

    def _invalid_event(self, message: str) -> None:
        self.bad_events += 1
        if self.result.parse_error is None:
            self.result.parse_error = message


def _assemble_stream(dialect: Dialect, chunks: list[bytes]) -> AssembledResponse:
    result = AssembledResponse()
    accumulator = dialect.stream_accumulator()
    reader = _SSEReader(accumulator, result)
    for index, chunk in enumerate(chunks):
        reader.feed_chunk(chunk, index)
    reader.close(max(len(chunks) - 1, 0))
    accumulator.finish(result)
    return result
