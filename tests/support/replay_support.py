"""Shared by the replay tests (no tests here): stores built row by row, a scripted fake model on
loopback, and the CLI calls the tests make."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import orjson
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.score_store import ScoreStore, score_id
from shadowtap.proxy.capture.pricing import LITELLM_PRICES_FILE
from tests.support.fake_candidates import FakeCandidate


def chat(question: str, *, system: str | None = None, **fields) -> dict:
    messages = [{"role": "user", "content": question}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return {"model": "gpt-4o-mini", "messages": messages, **fields}


class StoreBuilder:
    """Inserts captured exchanges and primary scores directly, with only the columns a test cares about."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = CaptureStore.open(path)

    def exchange(self, exchange_id: str, started_at: str, request: dict | None, answer: str | None = "captured answer",
                 *, endpoint: str = "chat.completions", status: int = 200, tags: dict | None = None,
                 prompt_tokens: int | None = 100, completion_tokens: int | None = 20, tool_calls: list | None = None,
                 **columns) -> str:
        self.store.db["exchanges"].insert({
            "id": exchange_id, "started_at": started_at, "method": "POST", "path": "/v1/chat/completions",
            "endpoint": endpoint, "model": (request or {}).get("model"), "status": status,
            "request_json": orjson.dumps(request).decode() if request is not None else None,
            "response_text": answer, "response_tool_calls": orjson.dumps(tool_calls).decode() if tool_calls else None,
            "tags": orjson.dumps(tags).decode() if tags else None, "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": None if prompt_tokens is None else prompt_tokens + (completion_tokens or 0), **columns})
        return exchange_id

    def score(self, exchange_id: str, evaluator: str, value: float, source: str = "primary") -> None:
        ScoreStore(self.store).write([{
            "id": score_id(exchange_id, source, evaluator), "exchange_id": exchange_id, "source": source,
            "evaluator": evaluator, "evaluator_version": "1", "outcome": "score", "value": value, "label": "x",
            "details": "{}", "scored_at": "2026-11-20T00:00:00+00:00", "duration_ms": 1.0}])


class ScriptedModel(FakeCandidate):
    """An OpenAI-compatible model on loopback whose answer is `answer_for(request body)` (the text, or a
    whole assistant message as a dict), with fixed usage. It records every request like FakeCandidate."""

    def __init__(self, answer_for: Callable[[dict], str | dict], *, usage: tuple[int, int] = (10, 10),
                 status: int = 200) -> None:
        super().__init__("ok")
        self.answer_for, self.usage, self.status = answer_for, usage, status

    async def _respond(self, writer, stream: bool) -> bool:
        body = self.requests[-1]["body"]   # appended by _handle just before this, with no await between
        if self.status != 200:
            payload = orjson.dumps({"error": {"message": "scripted failure", "type": "server_error"}})
            head = f"HTTP/1.1 {self.status} Failure\r\n".encode()
        else:
            prompt, completion = self.usage
            answer = self.answer_for(body)
            message = answer if isinstance(answer, dict) else {"role": "assistant", "content": answer}
            payload = orjson.dumps({
                "id": "chatcmpl-scripted", "object": "chat.completion", "created": 1, "model": body.get("model"),
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}})
            head = b"HTTP/1.1 200 OK\r\n"
        writer.write(head + b"content-type: application/json\r\ncontent-length: " + str(len(payload)).encode()
                     + b"\r\n\r\n" + payload)
        await writer.drain()
        return True


def last_user(request: dict) -> str:
    return [m["content"] for m in request["messages"] if m.get("role") == "user"][-1]


def litellm_price(model: str) -> tuple[float, float]:
    """(input, output) USD per token for `model`, read straight from litellm's bundled price file."""
    spec = importlib.util.find_spec("litellm")
    prices = orjson.loads((Path(spec.origin).parent / LITELLM_PRICES_FILE).read_bytes())
    return prices[model]["input_cost_per_token"], prices[model]["output_cost_per_token"]


def cli_run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def replay(*args: str) -> str:
    """`shadowtap replay ARGS`, which must succeed; the run id it prints first."""
    return cli_run("replay", *args).stdout.splitlines()[0]


def show(db, run_id: str) -> dict:
    return orjson.loads(cli_run("replay", "show", run_id, "--store", str(db), "--json").stdout)
