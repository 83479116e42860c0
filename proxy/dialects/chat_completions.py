"""OpenAI Chat Completions: `POST /v1/chat/completions`, JSON or an event stream of deltas."""

from __future__ import annotations

from collections.abc import Iterator

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
    RequestPart,
    StreamAccumulator,
    as_dict,
    as_list,
    choice_zero,
    choice_zero_deltas,
    int_or_none,
    path_without_query,
    str_or_none,
)
from shadowtap.proxy.dialects.conversation import function_tools, message_parts, replaced_user_text, user_text_slot


class ChatCompletions(Dialect):
    name = "chat.completions"
    captured = True
    mirrorable = True
    twin_capable = True
    replayable = True
    # GET lists the completions stored with `"store": true` (the SDK's `chat.completions.list()`);
    # one stored completion, `/chat/completions/{id}`, is not this dialect's path.
    methods = ("GET", "POST")

    def owns(self, path: str) -> bool:
        return path_without_query(path).endswith("/chat/completions")

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        choice = choice_zero(body.get("choices"))
        message = as_dict(choice.get("message"))
        result.text = content_text(message.get("content"))
        calls = [call for call in as_list(message.get("tool_calls")) if isinstance(call, dict)]
        result.tool_calls = calls or None
        result.finish_reason = str_or_none(choice.get("finish_reason"))

    def stream_accumulator(self) -> StreamAccumulator:
        return ChatStream()

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        return message_parts(request.get("messages"))

    def declared_tools(self, request: dict) -> dict[str, dict | None]:
        return chat_tools(request)

    def output_schema(self, request: dict) -> tuple[str, dict] | None:
        return format_schema("response_format", request.get("response_format"))

    def last_user_text(self, request: dict) -> str | None:
        slot = user_text_slot(request.get("messages"))
        return slot.get() if slot is not None else None

    def with_user_text(self, request: dict, text: str) -> dict:
        return replaced_user_text(request, "messages", text)


class ChatStream(StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        super().feed(event, event_name)
        carried = False
        for choice in choice_zero_deltas(event):
            delta = as_dict(choice.get("delta"))
            carried |= self.add_text(delta.get("content"))
            for fragment in as_list(delta.get("tool_calls")):
                if isinstance(fragment, dict):
                    self._add_tool_call_fragment(fragment)
                    carried = True
            self.finish_reason = str_or_none(choice.get("finish_reason")) or self.finish_reason
        return carried

    def _add_tool_call_fragment(self, fragment: dict) -> None:
        function = as_dict(fragment.get("function"))
        index = int_or_none(fragment.get("index")) or 0
        call = self.tool_calls.get(index)
        if call is None:
            call = {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            self.tool_calls[index] = call
        # Only the first fragment names the call; later ones add argument text.
        call["id"] = call["id"] or str_or_none(fragment.get("id"))
        call["type"] = str_or_none(fragment.get("type")) or call["type"]
        call["function"]["name"] = call["function"]["name"] or str_or_none(function.get("name"))
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments


def content_text(content: object) -> str | None:
    """A message's content as text: the string itself, or its text parts joined."""
    if isinstance(content, str) or content is None:
        return content
    texts = [part["text"] for part in as_list(content) if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return "".join(texts) if texts else None


def chat_tools(request: dict) -> dict[str, dict | None]:
    """`tools` plus the legacy `functions` field: name -> parameters schema."""
    tools = function_tools(request.get("tools"))
    tools.update(function_tools([{"type": "function", "function": function}
                                 for function in as_list(request.get("functions")) if isinstance(function, dict)]))
    return tools


def format_schema(origin: str, response_format: object) -> tuple[str, dict] | None:
    """The schema of a chat `response_format` or a Responses `text.format` (json_object: any object)."""
    response_format = as_dict(response_format)
    kind = response_format.get("type")
    if kind == "json_object":
        return origin, {"type": "object"}
    if kind == "json_schema":
        # Chat nests the schema under json_schema; the Responses API puts it in the format itself.
        holder = response_format.get("json_schema", response_format)
        schema = holder.get("schema") if isinstance(holder, dict) else None
        if isinstance(schema, dict):
            return origin, schema
    return None
