"""The demo's traffic: a realistic mix of OpenAI SDK calls an application would make.

Retrieval-augmented questions (HaluEval rows, context in the `shadowtap` body field), streamed
chat, tool calls, structured outputs, embeddings, the Responses API, a rate-limited call, and an
Anthropic-SDK part of the app (Messages, buffered and streamed with a tool) beside them.

The app is midway through a model migration: about half of its questions still go to its legacy
model (sim-drifty, tagged route=legacy), which now and then adds a claim its context does not
support. Question-answering calls return what a review tool needs to give feedback later: the
exchange id shadowtap sent back in x-shadowtap-exchange-id, and the answer the app received.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

import orjson
from anthropic import Anthropic
from openai import OpenAI, RateLimitError
from openai.types.chat import ChatCompletionFunctionToolParam
from openai.types.shared_params import ResponseFormatJSONSchema

from shadowtap.proxy.demo_reviewers import ReviewedAnswer

ORDER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up the status of a customer's order.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
            "required": ["order_id"],
        },
    },
}

ANSWER_SCHEMA: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "grounded_answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
            "required": ["answer", "confidence"],
            "additionalProperties": False,
        },
    },
}


QA_MODEL = "sim-large"
LEGACY_QA_MODEL = "sim-drifty"
LEGACY_SHARE = 0.5


@dataclass(frozen=True)
class DemoCall:
    kind: str
    run: Callable[[OpenAI], object]   # question answering returns a ReviewedAnswer


@dataclass(frozen=True)
class AnthropicCall:
    """A call the app's Anthropic-SDK part makes (through shadowtap's /v1/messages)."""

    kind: str
    run: Callable[[Anthropic], object]


def qa_route(index: int) -> str:
    """"legacy" or "main", drawn from the call's position so every run routes the same calls."""
    return "legacy" if random.Random(f"route:{index}").random() < LEGACY_SHARE else "main"


def halueval_rows() -> list[dict]:
    text = resources.files("shadowtap.proxy.demo_data").joinpath("halueval_sample.jsonl").read_text(encoding="utf-8")
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _rag_messages(row: dict) -> list[dict]:
    # As a RAG app sends it: the retrieved text in the prompt; the `shadowtap` field only adds
    # what the prompt does not say (ids, dates, versions) for scoring.
    return [
        {"role": "system", "content": "Answer only from the provided context. Be brief.\n"
                                      f"<context>{row['knowledge']}</context>"},
        {"role": "user", "content": row["question"]},
    ]


def _rag_metadata(row: dict, index: int) -> dict:
    # Some contexts are deliberately old so freshness scoring has something to find later.
    updated = "2026-11-01T00:00:00Z" if index % 4 else "2024-02-01T00:00:00Z"
    return {"contexts": [{"id": f"halueval-{index}", "source": "halueval", "text": row["knowledge"],
                          "updated_at": updated, "version": "v1"}]}


def _tags(task: str, tier: str) -> dict:
    return {"x-shadowtap-task": task, "x-shadowtap-risk-tier": tier, "x-shadowtap-team": "demo"}


def _qa_options(row: dict, index: int) -> dict:
    route = qa_route(index)
    return {"model": LEGACY_QA_MODEL if route == "legacy" else QA_MODEL, "messages": _rag_messages(row),
            "extra_body": {"shadowtap": _rag_metadata(row, index)},
            "extra_headers": {**_tags("qa", "medium"), "x-shadowtap-route": route}}


def _reviewed(raw, text: str, row: dict, index: int) -> ReviewedAnswer:
    return ReviewedAnswer(exchange_id=raw.headers["x-shadowtap-exchange-id"], index=index, text=text,
                          knowledge=row["knowledge"], right_answer=row["right_answer"])


def _rag_call(row: dict, index: int) -> DemoCall:
    def run(client: OpenAI) -> ReviewedAnswer:
        raw = client.chat.completions.with_raw_response.create(temperature=0, **_qa_options(row, index))
        return _reviewed(raw, raw.parse().choices[0].message.content or "", row, index)
    return DemoCall("rag", run)


def _streamed_call(row: dict, index: int) -> DemoCall:
    def run(client: OpenAI) -> ReviewedAnswer:
        raw = client.chat.completions.with_raw_response.create(
            stream=True, stream_options={"include_usage": True}, **_qa_options(row, index))
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
        return _reviewed(raw, text, row, index)
    return DemoCall("stream", run)


def _tool_call(index: int) -> DemoCall:
    def run(client: OpenAI):
        return client.chat.completions.create(
            model="sim-small", tools=[ORDER_TOOL], tool_choice="auto",
            messages=[{"role": "user", "content": f"Where is my order A-{1000 + index}?"}],
            extra_headers=_tags("support", "high"))
    return DemoCall("tools", run)


def _structured_call(row: dict) -> DemoCall:
    def run(client: OpenAI):
        return client.chat.completions.create(
            model="sim-large", response_format=ANSWER_SCHEMA,
            messages=[{"role": "system", "content": f"<context>{row['knowledge']}</context>"},
                      {"role": "user", "content": row["question"]}],
            extra_headers=_tags("extract", "low"))
    return DemoCall("structured", run)


def _embedding_call(row: dict) -> DemoCall:
    return DemoCall("embeddings", lambda client: client.embeddings.create(
        model="sim-embed", input=[row["question"], row["knowledge"][:200]]))


def _responses_call(row: dict) -> DemoCall:
    return DemoCall("responses", lambda client: client.responses.create(
        model="sim-large", input=row["question"], extra_headers=_tags("qa", "low")))


ORDER_TOOL_ANTHROPIC = {"name": ORDER_TOOL["function"]["name"],
                        "description": ORDER_TOOL["function"]["description"],
                        "input_schema": ORDER_TOOL["function"]["parameters"]}


def _anthropic_call(row: dict, index: int) -> AnthropicCall:
    """A retrieval-augmented question as an Anthropic-SDK app asks it: the context in `system`."""
    def run(client: Anthropic):
        return client.messages.create(
            model=QA_MODEL, max_tokens=300, system=_rag_messages(row)[0]["content"],
            messages=[{"role": "user", "content": row["question"]}],
            extra_body={"shadowtap": _rag_metadata(row, index)}, extra_headers=_tags("qa", "medium"))
    return AnthropicCall("anthropic", run)


def _anthropic_stream_call(index: int) -> AnthropicCall:
    """A streamed support question with a tool the model may call."""
    def run(client: Anthropic):
        with client.messages.stream(
                model=QA_MODEL, max_tokens=300, tools=[ORDER_TOOL_ANTHROPIC],  # type: ignore[list-item]
                messages=[{"role": "user", "content": f"Where is my order A-{2000 + index}?"}],
                extra_headers=_tags("support", "low")) as stream:
            return stream.get_final_message()
    return AnthropicCall("anthropic-stream", run)


def _rate_limited_call(index: int) -> DemoCall:
    def run(client: OpenAI):
        try:
            client.with_options(max_retries=0).chat.completions.create(
                model="sim-large", messages=[{"role": "user", "content": f"burst {index}"}],
                extra_headers={"x-sim-status": "429"})
        except RateLimitError as exc:
            return exc.status_code
        raise AssertionError("the simulated 429 did not reach the client")
    return DemoCall("rate-limited", run)


def demo_calls(count: int) -> Iterator[DemoCall | AnthropicCall]:
    """`count` calls in a fixed, interleaved mix (about half are retrieval-augmented)."""
    rows = halueval_rows()
    pattern = ["rag", "stream", "rag", "tools", "stream", "structured", "rag", "anthropic", "embeddings", "stream",
               "responses", "rag", "tools", "stream", "anthropic-stream", "structured", "rate-limited"]
    for index, kind in zip(range(count), itertools.cycle(pattern)):
        row = rows[index % len(rows)]
        builders: dict[str, Callable[[], DemoCall | AnthropicCall]] = {
            "rag": lambda: _rag_call(row, index),
            "stream": lambda: _streamed_call(row, index),
            "tools": lambda: _tool_call(index),
            "structured": lambda: _structured_call(row),
            "embeddings": lambda: _embedding_call(row),
            "responses": lambda: _responses_call(row),
            "rate-limited": lambda: _rate_limited_call(index),
            "anthropic": lambda: _anthropic_call(row, index),
            "anthropic-stream": lambda: _anthropic_stream_call(index),
        }
        yield builders[kind]()
