"""OpenAI legacy Completions: `POST /v1/completions`, a prompt in, `choices[].text` out."""

from __future__ import annotations

from collections.abc import Iterator

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
    RequestPart,
    StreamAccumulator,
    choice_zero,
    choice_zero_deltas,
    path_without_query,
    str_or_none,
)


class Completions(Dialect):
    name = "completions"
    captured = True
    mirrorable = True
    methods = ("POST",)

    def owns(self, path: str) -> bool:
        return path_without_query(path).endswith("/completions")

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        choice = choice_zero(body.get("choices"))
        result.text = str_or_none(choice.get("text"))
        result.finish_reason = str_or_none(choice.get("finish_reason"))

    def stream_accumulator(self) -> StreamAccumulator:
        return CompletionsStream()

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        return prompt_parts(request.get("prompt"))

    def chat_request(self, request: dict) -> dict:
        prompt = "\n".join(part.text for part in prompt_parts(request.get("prompt")))
        chat = {key: value for key, value in request.items() if key not in ("prompt", "echo", "suffix", "best_of")}
        return {**chat, "messages": [{"role": "user", "content": prompt}]}


class CompletionsStream(StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        super().feed(event, event_name)
        carried = False
        for choice in choice_zero_deltas(event):
            carried |= self.add_text(choice.get("text"))
            self.finish_reason = str_or_none(choice.get("finish_reason")) or self.finish_reason
        return carried


def prompt_parts(prompt: object) -> Iterator[RequestPart]:
    """A completions prompt: one string, or a list of strings (token-id lists carry no text)."""
    for text in [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []:
        if isinstance(text, str) and text:
            yield RequestPart("text", text, None, "user")
