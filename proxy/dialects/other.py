"""Requests of an API shadowtap forwards but does not understand, or read without knowing which
API they were for (a stored row without an endpoint, a request given to an evaluator by hand):
read in every shape the known dialects send, so nothing a model was given is missed."""

from __future__ import annotations

from collections.abc import Iterator

from shadowtap.proxy.dialects.base import Dialect, RequestPart
from shadowtap.proxy.dialects.chat_completions import ChatCompletions, chat_tools
from shadowtap.proxy.dialects.completions import prompt_parts
from shadowtap.proxy.dialects.messages import Messages
from shadowtap.proxy.dialects.responses import Responses, responses_parts


class Other(Dialect):
    """Forwarded, not captured (unless `[store] capture_all_endpoints`), never mirrored or replayed."""

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        # Anthropic's `system` and chat or Anthropic `messages`, then Responses `instructions` and
        # `input`, then a completions `prompt`: each reader looks only at its own fields.
        yield from Messages().request_parts(request)
        yield from responses_parts(request)
        yield from prompt_parts(request.get("prompt"))

    def declared_tools(self, request: dict) -> dict[str, dict | None]:
        return chat_tools(request)

    def output_schema(self, request: dict) -> tuple[str, dict] | None:
        return (ChatCompletions().output_schema(request) or Responses().output_schema(request)
                or Messages().output_schema(request))

    def last_user_text(self, request: dict) -> str | None:
        return ChatCompletions().last_user_text(request) or Responses().last_user_text(request)

    def with_user_text(self, request: dict, text: str) -> dict:
        if ChatCompletions().last_user_text(request) is not None:
            return ChatCompletions().with_user_text(request, text)
        return Responses().with_user_text(request, text)
