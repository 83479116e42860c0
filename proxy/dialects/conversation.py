"""Reading a list of conversation turns, as Chat Completions and Anthropic Messages both send it.

The two shapes agree on `{"role", "content"}` turns; they differ in where tool results live (a
chat `tool` turn, an Anthropic `tool_result` block in a user turn) and in the blocks a content
list may hold. One reader for both keeps what evaluators see the same whichever dialect asked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

from shadowtap.proxy.dialects.base import RequestPart, as_dict, as_list, str_or_none

_ANSWER_ROLES = frozenset({"assistant"})  # the model's own earlier words are not given to it as input
_TEXT_PART_TYPES = frozenset({"text", "input_text"})


def content_text(content: object, separator: str = "\n") -> str:
    """The text of a message content: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    parts = [part.get("text") if isinstance(part, dict) else part for part in as_list(content)]
    return separator.join(part for part in parts if isinstance(part, str))


def message_parts(messages: object) -> Iterator[RequestPart]:
    """Parts of a chat or Anthropic `messages` list: turns' text, tool results, documents."""
    for message in as_list(messages):
        if not isinstance(message, dict) or message.get("role") in _ANSWER_ROLES:
            continue
        role = str_or_none(message.get("role"))
        content = message.get("content")
        if role in ("tool", "function"):
            ref = str_or_none(message.get("tool_call_id")) or str_or_none(message.get("name"))
            yield RequestPart("tool", content_text(content), ref, role)
        elif isinstance(content, str):
            if content:
                yield RequestPart("text", content, None, role)
        else:
            yield from block_parts(content, role)


def block_parts(blocks: object, role: str | None) -> Iterator[RequestPart]:
    """Parts of a content-block list; runs of text blocks become one part, as one turn's text."""
    texts: list[str] = []
    for block in as_list(blocks):
        if isinstance(block, str):
            texts.append(block)
            continue
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            yield RequestPart("tool", content_text(block.get("content")), str_or_none(block.get("tool_use_id")), role)
        elif kind == "document":
            if text := document_text(block):
                yield RequestPart("document", text, str_or_none(block.get("title")), role)
        elif isinstance(block.get("text"), str) and kind in (None, *_TEXT_PART_TYPES):
            texts.append(block["text"])
    if joined := "\n".join(text for text in texts if text):
        yield RequestPart("text", joined, None, role)


def document_text(block: dict) -> str:
    """The text an Anthropic `document` block carries (plain text or content blocks; a PDF has none)."""
    source = as_dict(block.get("source"))
    if source.get("type") == "text":
        return str_or_none(source.get("data")) or ""
    if source.get("type") == "content":
        return content_text(source.get("content"))
    return ""


def function_tools(tools: object) -> dict[str, dict | None]:
    """Chat (`{"type": "function", "function": {...}}`), Responses (flat) and Anthropic
    (`input_schema`) function tools: name -> arguments schema."""
    declared: dict[str, dict | None] = {}
    for tool in as_list(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") not in ("function", "custom"):
            continue
        inner = tool.get("function")
        function = inner if isinstance(inner, dict) else tool
        name = function.get("name")
        if isinstance(name, str):
            schema = function.get("parameters", function.get("input_schema"))
            declared[name] = schema if isinstance(schema, dict) else None
    return declared


@dataclass
class TextSlot:
    """Where the last user turn's single piece of text lives, to read it or replace it."""

    holder: dict
    key: str

    def get(self) -> str | None:
        text = self.holder.get(self.key)
        return text if isinstance(text, str) and text.strip() else None

    def set(self, text: str) -> None:
        self.holder[self.key] = text


def user_text_slot(turns: object) -> TextSlot | None:
    """The last user turn's text when it is one string or one text part (tool results aside)."""
    users = [turn for turn in as_list(turns) if isinstance(turn, dict) and turn.get("role") == "user"]
    if not users:
        return None
    message = users[-1]
    if isinstance(message.get("content"), str):
        slot = TextSlot(message, "content")
        return slot if slot.get() is not None else None
    parts = [part for part in as_list(message.get("content")) if isinstance(part, dict)
             and part.get("type") in _TEXT_PART_TYPES and isinstance(part.get("text"), str)]
    if len(parts) == 1 and parts[0]["text"].strip():
        return TextSlot(parts[0], "text")
    return None


def replaced_user_text(request: dict, turns_key: str, text: str) -> dict:
    changed = copy.deepcopy(request)
    slot = user_text_slot(changed.get(turns_key))
    if slot is None:
        raise ValueError("the request has no user message with one piece of text to replace")
    slot.set(text)
    return changed
