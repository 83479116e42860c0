"""Anthropic Messages: `POST /v1/messages` (a message of content blocks, or an event stream of
`message_start`, `content_block_*`, `message_delta`, `message_stop`, `ping` and `error`), and
`POST /v1/messages/count_tokens`, forwarded and never mirrored.

Answers are assembled into the columns chat fills: text blocks joined, `tool_use` blocks as
OpenAI-shaped tool calls (their streamed `partial_json` joined), thinking kept apart. Usage counts
cache writes and reads into the prompt tokens, as OpenAI's `prompt_tokens` counts cached input.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
    RequestPart,
    StreamAccumulator,
    as_dict,
    as_list,
    int_or_none,
    path_without_query,
    str_or_none,
)
from shadowtap.proxy.dialects.conversation import (
    block_parts,
    content_text,
    document_text,
    function_tools,
    message_parts,
    replaced_user_text,
    user_text_slot,
)

# Chat Completions fields a Messages request carries under the same meaning and name.
_SAME_NAME = ("temperature", "top_p", "max_tokens", "stream")
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class Messages(Dialect):
    name = "anthropic.messages"
    captured = True
    mirrorable = True
    replayable = True
    upstream = "anthropic"
    methods = ("POST",)

    def owns(self, path: str) -> bool:
        # /v1/messages exactly: OpenAI's /v1/threads/{id}/messages is another API.
        return path_without_query(path).endswith("/v1/messages")

    def mirror_refusal(self, request: dict) -> str | None:
        if request.get("container"):
            return "stateful"  # a code-execution container the primary keeps between calls
        return None

    def usage(self, usage: object) -> dict | None:
        return anthropic_usage(usage)

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        if body.get("type") == "error":
            result.finish_reason = "error"
            return
        blocks = [block for block in as_list(body.get("content")) if isinstance(block, dict)]
        texts = [block["text"] for block in blocks
                 if block.get("type") == "text" and isinstance(block.get("text"), str)]
        result.text = "".join(texts) if texts else None
        thinking = [block["thinking"] for block in blocks
                    if block.get("type") == "thinking" and isinstance(block.get("thinking"), str)]
        result.reasoning = "".join(thinking) or None
        calls = [tool_call(block, orjson.dumps(block.get("input", {})).decode())
                 for block in blocks if block.get("type") == "tool_use"]
        result.tool_calls = calls or None
        result.finish_reason = str_or_none(body.get("stop_reason"))

    def stream_accumulator(self) -> StreamAccumulator:
        return MessagesStream()

    # -- reading a request ------------------------------------------------------------------------

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        system = request.get("system")
        if isinstance(system, str):
            if system:
                yield RequestPart("text", system, None, "system")
        else:
            yield from block_parts(system, "system")
        yield from message_parts(request.get("messages"))

    def declared_tools(self, request: dict) -> dict[str, dict | None]:
        return function_tools(request.get("tools"))

    def output_schema(self, request: dict) -> tuple[str, dict] | None:
        # Structured outputs: `output_format` {"type": "json_schema", "schema": {...}}.
        output_format = as_dict(request.get("output_format"))
        schema = output_format.get("schema")
        if output_format.get("type") == "json_schema" and isinstance(schema, dict):
            return "output_format", schema
        return None

    def last_user_text(self, request: dict) -> str | None:
        slot = user_text_slot(request.get("messages"))
        return slot.get() if slot is not None else None

    def with_user_text(self, request: dict, text: str) -> dict:
        return replaced_user_text(request, "messages", text)

    # -- shadow calls and replay ------------------------------------------------------------------

    def chat_request(self, request: dict) -> dict:
        return messages_to_chat(request)


class MessagesStream(StreamAccumulator):
    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[int, dict] = {}  # content block index -> block being assembled
        self.usage_fields: dict = {}

    def feed(self, event: dict, event_name: str | None) -> bool:
        kind = str_or_none(event.get("type")) or event_name
        if kind == "message_start":
            message = as_dict(event.get("message"))
            self.model = str_or_none(message.get("model")) or self.model
            self._take_usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._start_block(event)
        elif kind == "content_block_delta":
            return self._delta(event)
        elif kind == "message_delta":
            self.finish_reason = str_or_none(as_dict(event.get("delta")).get("stop_reason")) or self.finish_reason
            self._take_usage(event.get("usage"))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.finish_reason = "error"
            self.complete = True
        return False  # ping and unknown events carry nothing

    def _take_usage(self, usage: object) -> None:
        # message_start holds input and cache counts; message_delta the running output count.
        self.usage_fields.update({key: value for key, value in as_dict(usage).items() if value is not None})
        self.usage = anthropic_usage(self.usage_fields) or self.usage

    def _start_block(self, event: dict) -> bool:
        index = int_or_none(event.get("index")) or 0
        block = dict(as_dict(event.get("content_block")))
        self.blocks[index] = block
        if block.get("type") == "tool_use":
            block["partial_json"] = ""
            self.tool_calls[index] = tool_call(block, "")
            return True
        if block.get("type") == "text":
            return self.add_text(block.get("text"))
        if block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            self.reasoning_parts.append(block["thinking"])
        return False

    def _delta(self, event: dict) -> bool:
        index = int_or_none(event.get("index")) or 0
        delta = as_dict(event.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            return self.add_text(delta.get("text"))
        if kind == "input_json_delta":
            call = self.tool_calls.get(index)
            piece = delta.get("partial_json")
            if call is None or not isinstance(piece, str):
                return False
            call["function"]["arguments"] += piece
            return bool(piece)
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            self.reasoning_parts.append(delta["thinking"])
        return False

    def finish(self, result: AssembledResponse) -> None:
        for call in self.tool_calls.values():
            # A tool call without input deltas has the (empty) input its start block carried.
            if not call["function"]["arguments"]:
                call["function"]["arguments"] = "{}"
        super().finish(result)


class MessagesCountTokens(Dialect):
    """`POST /v1/messages/count_tokens`: forwarded to the Anthropic primary, never mirrored."""

    name = "anthropic.count_tokens"
    streams_when_asked = False
    upstream = "anthropic"
    methods = ("POST",)

    def owns(self, path: str) -> bool:
        return path_without_query(path).endswith("/v1/messages/count_tokens")


def anthropic_usage(usage: object) -> dict | None:
    """Anthropic usage as prompt/completion/total tokens, with the two cache counts kept.

    Anthropic's `input_tokens` leaves out cache writes and reads; `prompt_tokens` counts them, as
    OpenAI's does, so prompt sizes compare across dialects (pricing tells the kinds apart)."""
    usage = as_dict(usage)
    fresh = int_or_none(usage.get("input_tokens"))
    written = int_or_none(usage.get("cache_creation_input_tokens"))
    read = int_or_none(usage.get("cache_read_input_tokens"))
    output = int_or_none(usage.get("output_tokens"))
    if fresh is None and output is None:
        return None
    prompt = None if fresh is None else fresh + (written or 0) + (read or 0)
    total = None if prompt is None or output is None else prompt + output
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": total,
            "cache_creation_tokens": written or 0, "cache_read_tokens": read or 0}


def tool_call(block: dict, arguments: str) -> dict:
    return {"id": str_or_none(block.get("id")), "type": "function",
            "function": {"name": str_or_none(block.get("name")), "arguments": arguments}}


def messages_to_chat(request: dict) -> dict:
    """A Messages request as Chat Completions: system first, content blocks as parts, tool_use
    blocks as tool calls, tool_result blocks as tool turns, tools with their input schemas.
    Thinking blocks stay behind (their signatures mean nothing to another model)."""
    messages: list[dict] = []
    system = request.get("system")
    system_text = system if isinstance(system, str) else content_text(system, "")
    if system_text:
        messages.append({"role": "system", "content": system_text})
    for message in as_list(request.get("messages")):
        if isinstance(message, dict):
            messages.extend(_chat_turns(message))
    chat: dict = {"model": request.get("model"), "messages": messages}
    for name in _SAME_NAME:
        if name in request:
            chat[name] = request[name]
    if isinstance(request.get("stop_sequences"), list):
        chat["stop"] = request["stop_sequences"]
    tools = [{"type": "function", "function": {key: value for key, value in (
        ("name", tool.get("name")), ("description", tool.get("description")),
        ("parameters", tool.get("input_schema"))) if value is not None}}
        for tool in as_list(request.get("tools"))
        if isinstance(tool, dict) and tool.get("type", "custom") == "custom"]  # server tools run at Anthropic
    if tools:
        chat["tools"] = tools
    choice = as_dict(request.get("tool_choice"))
    if choice.get("type") in _TOOL_CHOICES:
        chat["tool_choice"] = _TOOL_CHOICES[choice["type"]]
    elif choice.get("type") == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("disable_parallel_tool_use") is True and tools:
        chat["parallel_tool_calls"] = False
    schema = as_dict(request.get("output_format")).get("schema")
    if isinstance(schema, dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return chat


def _chat_turns(message: dict) -> list[dict]:
    role = message.get("role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    parts: list[dict] = []
    calls: list[dict] = []
    results: list[dict] = []
    for block in as_list(content):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            url = _image_url(as_dict(block.get("source")))
            if url:
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "document" and (text := document_text(block)):
            title = str_or_none(block.get("title"))
            parts.append({"type": "text", "text": f"{title}\n{text}" if title else text})
        elif kind == "tool_use":
            calls.append(tool_call(block, orjson.dumps(block.get("input", {})).decode()))
        elif kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                            "content": content_text(block.get("content"))})
    turns: list[dict] = list(results)  # tool results answer the previous turn's calls, so they come first
    if role == "assistant":
        text = "".join(part["text"] for part in parts if part["type"] == "text")
        turn: dict = {"role": "assistant", "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        if text or calls:
            turns.append(turn)
    elif parts:
        only_text = all(part["type"] == "text" for part in parts)
        turns.append({"role": role, "content": "\n".join(part["text"] for part in parts) if only_text else parts})
    return turns


def _image_url(source: dict) -> str | None:
    if source.get("type") == "url":
        return str_or_none(source.get("url"))
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    return None
