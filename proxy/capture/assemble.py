"""Turn the raw bytes of a primary's response (JSON or an SSE stream) into one AssembledResponse.

Pure and defensive: upstream JSON of any shape yields a result, never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

logger = logging.getLogger(__name__)

# The Responses API ends a stream with one of these event types instead of [DONE].
_RESPONSES_TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


@dataclass
class AssembledResponse:
    text: str | None = None  # chat content, completions text, or Responses output_text joined
    tool_calls: list[dict] | None = None  # OpenAI shape: {"id", "type": "function", "function": {...}}
    finish_reason: str | None = None  # Responses API: incomplete reason, else status
    usage: dict | None = None  # {"prompt_tokens", "completion_tokens", "total_tokens"}
    model: str | None = None  # as the upstream reported it
    body: object | None = None  # the parsed JSON of a non-stream response
    events: int = 0  # SSE data events seen, [DONE] included
    complete: bool = True  # stream saw its terminal event; body parsed
    parse_error: str | None = None  # why the body, or the first bad event, did not parse
    first_content_chunk: int | None = None  # read that completed the first content event (TTFT)


def endpoint_for_path(path: str) -> str:
    """Name the OpenAI endpoint a request path targets, or "other"."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat.completions"
    if path.endswith("/completions"):
        return "completions"
    if path.endswith("/embeddings"):
        return "embeddings"
    if path.endswith("/responses") or "/responses/" in path:
        return "responses"
    return "other"


def assemble_response(endpoint: str, content_type: str | None, chunks: list[bytes]) -> AssembledResponse:
    """Assemble decoded network reads into one response; never raises.

    For a non-stream body `first_content_chunk` is the last chunk, since the content is
    only usable once the whole body has arrived.
    """
    try:
        if (content_type or "").lstrip().lower().startswith("text/event-stream"):
            return _assemble_stream(endpoint, chunks)
        return _assemble_body(endpoint, content_type, chunks)
    except Exception as exc:  # a bug here must not lose the capture; the record says why
        logger.exception("assembling a %s response failed", endpoint)
        return AssembledResponse(complete=False, parse_error=f"assembler failed: {exc!r}")


# --- non-stream bodies -------------------------------------------------------------------


def _assemble_body(endpoint: str, content_type: str | None, chunks: list[bytes]) -> AssembledResponse:
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
    result.model = _str_or_none(body.get("model"))
    result.usage = _normalise_usage(body.get("usage"))
    if endpoint == "chat.completions":
        choice = _choice_zero(body.get("choices"))
        message = _dict(choice.get("message"))
        result.text = _content_text(message.get("content"))
        calls = [call for call in _list(message.get("tool_calls")) if isinstance(call, dict)]
        result.tool_calls = calls or None
        result.finish_reason = _str_or_none(choice.get("finish_reason"))
    elif endpoint == "completions":
        choice = _choice_zero(body.get("choices"))
        result.text = _str_or_none(choice.get("text"))
        result.finish_reason = _str_or_none(choice.get("finish_reason"))
    elif endpoint == "responses":
        result.text = _responses_output_text(body.get("output"))
        result.tool_calls = _responses_tool_calls(body.get("output"))
        result.finish_reason = _responses_finish_reason(body)
    if (result.text or result.tool_calls) and chunks:
        result.first_content_chunk = len(chunks) - 1
    return result


# --- SSE streams -------------------------------------------------------------------------


class _StreamAccumulator:
    """Collects one stream's events; `feed` returns True when an event carried content."""

    def __init__(self) -> None:
        self.text_parts: list[str] | None = None
        self.tool_calls: dict[object, dict] = {}
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.model: str | None = None
        self.complete = False

    def feed(self, event: dict, event_name: str | None) -> bool:
        self.model = _str_or_none(event.get("model")) or self.model
        self.usage = _normalise_usage(event.get("usage")) or self.usage
        return False

    def add_text(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        if self.text_parts is None:
            self.text_parts = []
        self.text_parts.append(text)
        return bool(text)

    def finish(self, result: AssembledResponse) -> None:
        result.text = "".join(self.text_parts) if self.text_parts is not None else None
        result.tool_calls = list(self.tool_calls.values()) or None
        result.finish_reason = self.finish_reason
        result.usage = self.usage
        result.model = self.model
        result.complete = self.complete


class _ChatStream(_StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        super().feed(event, event_name)
        carried = False
        for choice in _list(event.get("choices")):
            # With n > 1 choices interleave chunk by chunk; only choice 0 is assembled.
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _dict(choice.get("delta"))
            carried |= self.add_text(delta.get("content"))
            for fragment in _list(delta.get("tool_calls")):
                if isinstance(fragment, dict):
                    self._add_tool_call_fragment(fragment)
                    carried = True
            self.finish_reason = _str_or_none(choice.get("finish_reason")) or self.finish_reason
        return carried

    def _add_tool_call_fragment(self, fragment: dict) -> None:
        function = _dict(fragment.get("function"))
        index = _int_or_none(fragment.get("index")) or 0
        call = self.tool_calls.get(index)
        if call is None:
            call = {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            self.tool_calls[index] = call
        # Only the first fragment names the call; later ones add argument text.
        call["id"] = call["id"] or _str_or_none(fragment.get("id"))
        call["type"] = _str_or_none(fragment.get("type")) or call["type"]
        call["function"]["name"] = call["function"]["name"] or _str_or_none(function.get("name"))
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments


class _CompletionsStream(_StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        super().feed(event, event_name)
        carried = False
        for choice in _list(event.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            carried |= self.add_text(choice.get("text"))
            self.finish_reason = _str_or_none(choice.get("finish_reason")) or self.finish_reason
        return carried


class _ResponsesStream(_StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        kind = _str_or_none(event.get("type")) or event_name
        response = _dict(event.get("response"))
        self.model = _str_or_none(response.get("model")) or self.model
        if kind == "response.output_text.delta":
            return self.add_text(event.get("delta"))
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._track_item(event)
        if kind == "response.function_call_arguments.delta":
            call = self.tool_calls.get(_str_or_none(event.get("item_id")))
            if call is not None and isinstance(event.get("delta"), str):
                call["function"]["arguments"] += event["delta"]
            return call is not None
        if kind in _RESPONSES_TERMINAL_EVENTS:
            self.complete = True
            self._take_final_response(response)
        return False

    def _track_item(self, event: dict) -> bool:
        item = _dict(event.get("item"))
        if item.get("type") != "function_call":
            return False
        call, item_id = _responses_tool_call(item), _str_or_none(item.get("id"))
        known = self.tool_calls.get(item_id)
        if known is not None and not item.get("arguments"):
            call["function"]["arguments"] = known["function"]["arguments"]
        self.tool_calls[item_id] = call
        return True

    def _take_final_response(self, response: dict) -> None:
        self.usage = _normalise_usage(response.get("usage")) or self.usage
        self.finish_reason = _responses_finish_reason(response)
        if self.text_parts is None:
            text = _responses_output_text(response.get("output"))
            self.text_parts = None if text is None else [text]
        final_calls = _responses_tool_calls(response.get("output"))
        if final_calls:  # the final response is authoritative over streamed fragments
            self.tool_calls = {call["id"]: call for call in final_calls}


_STREAM_ACCUMULATORS: dict[str, type[_StreamAccumulator]] = {
    "chat.completions": _ChatStream,
    "completions": _CompletionsStream,
    "responses": _ResponsesStream,
}


class _SSEReader:
    """Splits network reads into SSE events, however the reads cut lines and characters."""

    def __init__(self, accumulator: _StreamAccumulator, result: AssembledResponse) -> None:
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
        if self.bad_events > 1:
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


def _assemble_stream(endpoint: str, chunks: list[bytes]) -> AssembledResponse:
    result = AssembledResponse()
    accumulator = _STREAM_ACCUMULATORS.get(endpoint, _StreamAccumulator)()
    reader = _SSEReader(accumulator, result)
    for index, chunk in enumerate(chunks):
        reader.feed_chunk(chunk, index)
    reader.close(max(len(chunks) - 1, 0))
    accumulator.finish(result)
    return result


# --- shape helpers shared by both paths ----------------------------------------------------


def _normalise_usage(usage: object) -> dict | None:
    """Map chat/completions and Responses API usage onto prompt/completion/total tokens."""
    if not isinstance(usage, dict):
        return None
    prompt = _int_or_none(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int_or_none(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _int_or_none(usage.get("total_tokens"))
    if completion is None and prompt is not None and total is not None and total >= prompt:
        completion = total - prompt  # embeddings report only prompt and total
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    if prompt is None and completion is None and total is None:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _responses_output_text(output: object) -> str | None:
    parts = [
        part["text"]
        for item in _list(output)
        if isinstance(item, dict) and item.get("type") == "message"
        for part in _list(item.get("content"))
        if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
    ]
    return "".join(parts) if parts else None


def _responses_tool_calls(output: object) -> list[dict] | None:
    calls = [
        _responses_tool_call(item)
        for item in _list(output)
        if isinstance(item, dict) and item.get("type") == "function_call"
    ]
    return calls or None


def _responses_tool_call(item: dict) -> dict:
    arguments = item.get("arguments")
    return {
        "id": _str_or_none(item.get("call_id")) or _str_or_none(item.get("id")),
        "type": "function",
        "function": {
            "name": _str_or_none(item.get("name")),
            "arguments": arguments if isinstance(arguments, str) else "",
        },
    }


def _responses_finish_reason(response: dict) -> str | None:
    # The Responses API has no finish_reason; its status (or why it is incomplete) is kept as is.
    reason = _dict(response.get("incomplete_details")).get("reason")
    return _str_or_none(reason) or _str_or_none(response.get("status"))


def _content_text(content: object) -> str | None:
    if isinstance(content, str) or content is None:
        return content
    texts = [
        part["text"]
        for part in _list(content)
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    return "".join(texts) if texts else None


def _choice_zero(choices: object) -> dict:
    candidates = [choice for choice in _list(choices) if isinstance(choice, dict)]
    for choice in candidates:
        if choice.get("index", 0) == 0:
            return choice
    return candidates[0] if candidates else {}


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
