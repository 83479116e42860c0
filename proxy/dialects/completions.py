"""OpenAI legacy Completions: `POST /v1/completions`, a prompt in, `choices[].text` out."""

from __future__ import annotations

from shadowtap.proxy.dialects.base import (
    AssembledResponse,
    Dialect,
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


class CompletionsStream(StreamAccumulator):
    def feed(self, event: dict, event_name: str | None) -> bool:
        super().feed(event, event_name)
        carried = False
        for choice in choice_zero_deltas(event):
            carried |= self.add_text(choice.get("text"))
            self.finish_reason = str_or_none(choice.get("finish_reason")) or self.finish_reason
        return carried
