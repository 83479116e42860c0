"""OpenAI Responses API: `/v1/responses` (and `/v1/responses/{id}`), output items in, typed
events out (`response.output_text.delta`, ..., ending with `response.completed`)."""

from __future__ import annotations

from collections.abc import Iterator

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
    RequestPart,
    ShadowRequest,
    StreamAccumulator,
    as_dict,
    as_list,
    normalise_usage,
    path_without_query,
    str_or_none,
)
from shadowtap.proxy.dialects.chat_completions import format_schema
from shadowtap.proxy.dialects.conversation import (
    block_parts,
    content_text,
    function_tools,
    replaced_user_text,
    user_text_slot,
)

# Chat Completions fields a Responses request carries under the same meaning and name.
_SAME_NAME = ("model", "temperature", "top_p", "parallel_tool_calls", "stream")

# A Responses stream ends with one of these event types instead of [DONE].
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


class Responses(Dialect):
    name = "responses"
    captured = True
    mirrorable = True
    replayable = True
    # POST creates (and cancels, counts input tokens, compacts), GET retrieves a stored response or
    # its input items, DELETE deletes one: the default set, said here so it is not inherited by accident.
    methods = ("GET", "POST", "DELETE")

    def owns(self, path: str) -> bool:
        path = path_without_query(path)
        return path.endswith("/responses") or "/responses/" in path

    def mirror_refusal(self, request: dict) -> str | None:
        # Only requests that lean on what the primary stored are refused: a candidate never saw
        # that state. `store` (true by default) only asks the primary to keep this answer, and
        # candidates are always asked with `store: false`.
        if request.get("previous_response_id") or request.get("conversation"):
            return "stateful"
        items = as_list(request.get("input"))
        if any(isinstance(item, dict) and item.get("type") == "item_reference" for item in items):
            return "stateful"
        if as_dict(request.get("prompt")).get("id"):
            return "stateful"  # a prompt template stored at the provider
        return None

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        result.text = output_text(body.get("output"))
        result.tool_calls = tool_calls(body.get("output"))
        result.finish_reason = finish_reason(body)

    def stream_accumulator(self) -> StreamAccumulator:
        return ResponsesStream()

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        return responses_parts(request)

    def declared_tools(self, request: dict) -> dict[str, dict | None]:
        return function_tools(request.get("tools"))

    def output_schema(self, request: dict) -> tuple[str, dict] | None:
        return format_schema("text.format", as_dict(request.get("text")).get("format"))

    def last_user_text(self, request: dict) -> str | None:
        if isinstance(request.get("input"), str):
            return request["input"] if request["input"].strip() else None
        slot = user_text_slot(request.get("input"))
        return slot.get() if slot is not None else None

    def with_user_text(self, request: dict, text: str) -> dict:
        if isinstance(request.get("input"), str):
            return {**request, "input": text}
        return replaced_user_text(request, "input", text)

    def chat_request(self, request: dict) -> dict:
        return responses_to_chat(request)

    def shadow_request(self, request: dict) -> ShadowRequest:
        native = {key: value for key, value in request.items()
                  if key not in ("store", "background", "metadata", "user", "safety_identifier", "prompt_cache_key")}
        native["store"] = False  # a candidate keeps nothing that a later request could lean on
        return ShadowRequest("chat", responses_to_chat(request), native)


class ResponsesStream(StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        kind = str_or_none(event.get("type")) or event_name
        response = as_dict(event.get("response"))
        self.model = str_or_none(response.get("model")) or self.model
        if kind == "response.output_text.delta":
            return self.add_text(event.get("delta"))
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._track_item(event)
        if kind == "response.function_call_arguments.delta":
            call = self.tool_calls.get(str_or_none(event.get("item_id")))
            if call is not None and isinstance(event.get("delta"), str):
                call["function"]["arguments"] += event["delta"]
            return call is not None
        if kind in TERMINAL_EVENTS:
            self.complete = True
            self._take_final_response(response)
        return False

    def _track_item(self, event: dict) -> bool:
        item = as_dict(event.get("item"))
        if item.get("type") != "function_call":
            return False
        call, item_id = tool_call(item), str_or_none(item.get("id"))
        known = self.tool_calls.get(item_id)
        if known is not None and not item.get("arguments"):
            call["function"]["arguments"] = known["function"]["arguments"]
        self.tool_calls[item_id] = call
        return True

    def _take_final_response(self, response: dict) -> None:
        self.usage = normalise_usage(response.get("usage")) or self.usage
        self.finish_reason = finish_reason(response)
        if self.text_parts is None:
            text = output_text(response.get("output"))
            self.text_parts = None if text is None else [text]
        final_calls = tool_calls(response.get("output"))
        if final_calls:  # the final response is authoritative over streamed fragments
            self.tool_calls = {call["id"]: call for call in final_calls}


def output_text(output: object) -> str | None:
    parts = [
        part["text"]
        for item in as_list(output)
        if isinstance(item, dict) and item.get("type") == "message"
        for part in as_list(item.get("content"))
        if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
    ]
    return "".join(parts) if parts else None


def tool_calls(output: object) -> list[dict] | None:
    calls = [tool_call(item) for item in as_list(output)
             if isinstance(item, dict) and item.get("type") == "function_call"]
    return calls or None


def tool_call(item: dict) -> dict:
    arguments = item.get("arguments")
    return {
        "id": str_or_none(item.get("call_id")) or str_or_none(item.get("id")),
        "type": "function",
        "function": {
            "name": str_or_none(item.get("name")),
            "arguments": arguments if isinstance(arguments, str) else "",
        },
    }


def finish_reason(response: dict) -> str | None:
    # The Responses API has no finish_reason; its status (or why it is incomplete) is kept as is.
    reason = as_dict(response.get("incomplete_details")).get("reason")
    return str_or_none(reason) or str_or_none(response.get("status"))


def responses_parts(request: dict) -> Iterator[RequestPart]:
    """`instructions`, then `input`: a string, or items (messages, function call outputs)."""
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        yield RequestPart("text", instructions, None, "system")
    value = request.get("input")
    if isinstance(value, str):
        if value:
            yield RequestPart("text", value, None, "user")
        return
    for item in as_list(value):
        if isinstance(item, str):
            if item:
                yield RequestPart("text", item, None, "user")
        elif not isinstance(item, dict) or item.get("role") == "assistant":
            continue
        elif item.get("type") == "function_call_output":
            yield RequestPart("tool", content_text(item.get("output")), str_or_none(item.get("call_id")), "tool")
        elif item.get("role") == "tool":
            yield RequestPart("tool", content_text(item.get("content")), str_or_none(item.get("tool_call_id")), "tool")
        elif isinstance(item.get("content"), str):
            if item["content"]:
                yield RequestPart("text", item["content"], None, str_or_none(item.get("role")))
        else:
            yield from block_parts(item.get("content"), str_or_none(item.get("role")))


def responses_to_chat(request: dict) -> dict:
    """A stateless Responses request as Chat Completions: instructions as the system turn, input
    items as turns (function calls and their outputs as tool calls and tool turns), function tools,
    `max_output_tokens` as `max_tokens` and `text.format` as `response_format`."""
    messages: list[dict] = []
    if isinstance(request.get("instructions"), str) and request["instructions"]:
        messages.append({"role": "system", "content": request["instructions"]})
    value = request.get("input")
    items = [{"role": "user", "content": value}] if isinstance(value, str) else as_list(value)
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            if messages and messages[-1].get("tool_calls"):  # parallel calls are one assistant turn
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": content_text(item.get("output"))})
        elif kind in (None, "message") and isinstance(item.get("role"), str):
            messages.append({"role": item["role"], "content": _chat_content(item.get("content"))})
    chat: dict = {key: request[key] for key in _SAME_NAME if key in request}
    chat["messages"] = messages
    if isinstance(request.get("max_output_tokens"), int):
        chat["max_tokens"] = request["max_output_tokens"]
    tools = [{"type": "function", "function": {key: tool[key] for key in ("name", "description", "parameters", "strict")
                                               if key in tool}}
             for tool in as_list(request.get("tools")) if isinstance(tool, dict) and tool.get("type") == "function"]
    if tools:
        chat["tools"] = tools
    choice = request.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    text_format = as_dict(as_dict(request.get("text")).get("format"))
    if text_format.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif text_format.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            key: text_format[key] for key in ("name", "schema", "strict", "description") if key in text_format}}
    return chat


def _chat_content(content: object) -> object:
    if isinstance(content, str):
        return content
    parts: list[dict] = []
    for part in as_list(content):
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def chat_to_responses(chat: dict) -> dict:
    """A Chat Completions request as a stateless Responses request."""
    instructions: list[str] = [m["content"] for m in chat.get("messages") or []
                    if isinstance(m, dict) and m.get("role") in ("system", "developer")
                    and isinstance(m.get("content"), str)]
    items: list[dict] = []
    for message in chat.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") in ("system", "developer"):
            continue
        if message.get("role") == "tool":
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"),
                          "output": message.get("content") if isinstance(message.get("content"), str) else ""})
            continue
        content = message.get("content")
        if content:
            items.append({"role": message.get("role"), "content": content if isinstance(content, str)
                          else _responses_parts(content, message.get("role"))})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments") or "{}"})
    request: dict = {"input": items}
    if instructions:
        request["instructions"] = "\n\n".join(instructions)
    for name in ("temperature", "top_p", "parallel_tool_calls", "tool_choice"):
        if name in chat:
            request[name] = chat[name]
    if isinstance(request.get("tool_choice"), dict):
        function = request["tool_choice"].get("function") or {}
        request["tool_choice"] = {"type": "function", "name": function.get("name")}
    requested = chat.get("max_completion_tokens") or chat.get("max_tokens")
    if isinstance(requested, int):
        request["max_output_tokens"] = requested
    tools = [{"type": "function", **tool["function"]} for tool in chat.get("tools") or []
             if isinstance(tool, dict) and isinstance(tool.get("function"), dict)]
    if tools:
        request["tools"] = tools
    response_format = chat.get("response_format") or {}
    if response_format.get("type") == "json_object":
        request["text"] = {"format": {"type": "json_object"}}
    elif response_format.get("type") == "json_schema":
        request["text"] = {"format": {"type": "json_schema", **(response_format.get("json_schema") or {})}}
    return request


def _responses_parts(content: list, role: object) -> list[dict]:
    kind = "output_text" if role == "assistant" else "input_text"
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"type": kind, "text": part.get("text", "")})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            parts.append({"type": "input_image", "image_url": (part.get("image_url") or {}).get("url")})
    return parts
