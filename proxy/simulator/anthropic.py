"""The simulator's Anthropic Messages answers: `POST /v1/messages` (a message, or its event stream)
and `POST /v1/messages/count_tokens`, decided like chat answers (same text, same tool calls).

Deterministic cache counts, so capture can be tested: the tokens of `system` blocks marked with
`cache_control` are reported as cache writes, those of marked message blocks as cache reads.
With `thinking` enabled, a short thinking block comes before the answer.
"""

from __future__ import annotations

import hashlib

import orjson

from shadowtap.proxy.dialects.messages import messages_to_chat

from .answers import InvalidRequest, Reply, chat_reply, count_tokens, text_of, topic_word
from .answers import _pieces as pieces  # one chunking rule for every simulated stream
from .answers import _word_pieces as word_pieces

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def error_body(status: int, message: str) -> dict:
    """Anthropic's error shape: {"type": "error", "error": {"type", "message"}}."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def message(body: dict, digest: str) -> dict:
    reply, thinking = _reply(body, digest)
    content: list[dict] = []
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": f"sig_sim_{digest}"})
    if reply.tool_call:
        content.append(_tool_use(reply))
    else:
        content.append({"type": "text", "text": reply.content or ""})
    return {"id": f"msg_sim_{digest}", "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": _stop_reason(reply), "stop_sequence": None,
            "usage": {**_input_usage(body), "output_tokens": reply.tokens + _thinking_tokens(thinking)}}


def message_events(body: dict, digest: str) -> list[dict]:
    """The event stream Anthropic sends for `message(body)`, ping included."""
    done = message(body, digest)
    started = {**done, "content": [], "stop_reason": None, "usage": {**done["usage"], "output_tokens": 1}}
    events: list[dict] = [{"type": "message_start", "message": started}]
    for index, block in enumerate(done["content"]):
        events += _block_events(index, block)
        if index == 0:
            events.insert(2, {"type": "ping"})
    events += [{"type": "message_delta", "delta": {"stop_reason": done["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": done["usage"]["output_tokens"]}},
               {"type": "message_stop"}]
    return events


def token_count(body: dict) -> dict:
    _check(body, count=True)
    return {"input_tokens": _all_input_tokens(body)}


def _block_events(index: int, block: dict) -> list[dict]:
    kind = block["type"]
    opening: dict
    deltas: list[dict]
    if kind == "thinking":
        opening = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in word_pieces(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        opening = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces(list(arguments))]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in word_pieces(block["text"])]
    return ([{"type": "content_block_start", "index": index, "content_block": opening}]
            + [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
            + [{"type": "content_block_stop", "index": index}])


def _reply(body: dict, digest: str) -> tuple[Reply, str | None]:
    _check(body)
    chat = messages_to_chat(body)
    reply = chat_reply(chat, digest)
    thinking = None
    if isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled":
        question = text_of(next((m.get("content") for m in reversed(chat["messages"]) if m.get("role") == "user"), ""))
        thinking = f"The question is about {topic_word(question)}; answer from what the request gives."
    return reply, thinking


def _check(body: dict, *, count: bool = False) -> None:
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("model: Field required", "model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequest("messages: Field required", "messages")
    if not count and not isinstance(body.get("max_tokens"), int):
        raise InvalidRequest("max_tokens: Field required", "max_tokens")


def _tool_use(reply: Reply) -> dict:
    call = reply.tool_call or {}
    function = call.get("function") or {}
    tool_id = "toolu_sim_" + hashlib.sha256(str(call.get("id")).encode()).hexdigest()[:20]
    return {"type": "tool_use", "id": tool_id, "name": function.get("name"),
            "input": orjson.loads(function.get("arguments") or "{}")}


def _stop_reason(reply: Reply) -> str:
    return "tool_use" if reply.tool_call else "end_turn"


def _input_usage(body: dict) -> dict:
    written = sum(_block_tokens(block) for block in _blocks(body.get("system")) if block.get("cache_control"))
    read = sum(_block_tokens(block) for message in body.get("messages") or [] if isinstance(message, dict)
               for block in _blocks(message.get("content")) if block.get("cache_control"))
    return {"input_tokens": _all_input_tokens(body) - written - read,
            "cache_creation_input_tokens": written, "cache_read_input_tokens": read}


def _all_input_tokens(body: dict) -> int:
    system = body.get("system")
    total = count_tokens(system) if isinstance(system, str) else sum(map(_block_tokens, _blocks(system)))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            content = message.get("content")
            total += count_tokens(content) if isinstance(content, str) else sum(map(_block_tokens, _blocks(content)))
    return total


def _blocks(content: object) -> list[dict]:
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _block_tokens(block: dict) -> int:
    if isinstance(block.get("text"), str):
        return count_tokens(block["text"])
    if block.get("type") == "tool_result":
        return count_tokens(text_of(block.get("content")))
    if block.get("type") == "tool_use":
        return count_tokens(orjson.dumps(block.get("input")).decode())
    return 0


def _thinking_tokens(thinking: str | None) -> int:
    return count_tokens(thinking) if thinking else 0
