"""OpenAI Responses API: `/v1/responses` (and `/v1/responses/{id}`), output items in, typed
events out (`response.output_text.delta`, ..., ending with `response.completed`)."""

from __future__ import annotations

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
    StreamAccumulator,
    as_dict,
    as_list,
    normalise_usage,
    path_without_query,
    str_or_none,
)

# A Responses stream ends with one of these event types instead of [DONE].
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


class Responses(Dialect):
    name = "responses"
    captured = True
    mirrorable = True
    # POST creates (and cancels, counts input tokens, compacts), GET retrieves a stored response or
    # its input items, DELETE deletes one: the default set, said here so it is not inherited by accident.
    methods = ("GET", "POST", "DELETE")

    def owns(self, path: str) -> bool:
        path = path_without_query(path)
        return path.endswith("/responses") or "/responses/" in path

    def mirror_refusal(self, request: dict) -> str | None:
        if request.get("previous_response_id") or request.get("store", True) is not False:
            # The Responses API stores by default: mirroring would create state at the candidate.
            return "stateful"
        return None

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        result.text = output_text(body.get("output"))
        result.tool_calls = tool_calls(body.get("output"))
        result.finish_reason = finish_reason(body)

    def stream_accumulator(self) -> StreamAccumulator:
        return ResponsesStream()


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
