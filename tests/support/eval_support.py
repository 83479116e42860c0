"""Shared by the eval tests (no tests here): capture stores with answers, and fake evaluators.

The fakes register as third-party evaluators through a replaced entry-point list, the same way a
package would; `install_fake_evaluators()` does that in a subprocess too.
"""

from __future__ import annotations

import asyncio
import os
import time
from importlib.metadata import EntryPoint
from pathlib import Path

from shadowtap.core.store import CaptureStore
from shadowtap.evaluators.base import EvalItem, NotApplicable, Score
from tests.support.factories import raw_exchange, row_builder

ROOT = Path(__file__).resolve().parents[2]


def chat_request(content: str = "hi", **extra) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


def chat_response(content: str | None = "hello", tool_calls: list | None = None) -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


def add_exchanges(store: CaptureStore, count: int = 1, *, request: dict | None = None, response: dict | None = None,
                  started_at: float | None = None, headers: list | None = None) -> list[dict]:
    """Insert `count` captured exchanges, one second apart, and return their rows."""
    builder = row_builder()
    start = started_at if started_at is not None else time.time() - count
    rows = [builder.build(raw_exchange(request=request, response=response, started_at=start + index,
                                       request_headers=headers)) for index in range(count)]
    store.insert_exchanges(rows)
    return rows


def add_shadow(store: CaptureStore, exchange_id: str, candidate: str, *, outcome: str = "ok",
               text: str | None = "hello from a candidate", tool_calls: str | None = None) -> None:
    store.db["shadows"].insert_all([{
        "id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
        "model": "openai/small", "is_twin": int(candidate == "primary_twin"), "outcome": outcome,
        "response_text": text if outcome == "ok" else None, "response_tool_calls": tool_calls,
        "finish_reason": "stop", "latency_ms": 12.0, "prompt_tokens": 5, "completion_tokens": 2, "cost_usd": 0.0001,
    }])


def item_for(exchange_row: dict, *, contexts_config=None, source: str = "primary") -> EvalItem:
    from shadowtap.core.config import ContextsConfig
    from shadowtap.evaluators.items import build_items

    return build_items(exchange_row, [], contexts_config or ContextsConfig())[source]


class _Fake:
    version = "1"
    needs_judge = False

    @classmethod
    def from_config(cls, config, *, config_dir):
        return cls()

    def applies(self, item: EvalItem) -> bool:
        return True


class LengthEvaluator(_Fake):
    """Scores every answer by whether it has text; counts its calls."""

    name = "length"
    calls = 0

    async def score(self, item: EvalItem) -> Score:
        type(self).calls += 1
        return Score(1.0 if item.answer.text else 0.0, "has_text" if item.answer.text else "empty")


class LengthEvaluatorV2(LengthEvaluator):
    version = "2"


class BrokenEvaluator(_Fake):
    """Raises on every answer, with a credential in the message as HTTP clients sometimes do."""

    name = "broken"

    async def score(self, item: EvalItem) -> Score:
        raise RuntimeError("judge said 401 for Bearer sk-test-abcdefghijklmnop")


class FlakyEvaluator(_Fake):
    """Raises on the twin's answers only."""

    name = "flaky"

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        if item.answer.source == "primary_twin":
            raise ValueError("cannot score a twin")
        return Score(0.5, "half")


class SlowEvaluator(_Fake):
    """Takes SHADOWTAP_TEST_SLOW_S seconds per answer, so a test can kill a run halfway."""

    name = "slow"

    async def score(self, item: EvalItem) -> Score:
        await asyncio.sleep(float(os.environ.get("SHADOWTAP_TEST_SLOW_S", "0.05")))
        return Score(1.0, "done")


class JudgeEvaluator(_Fake):
    """Pretends to call a judge twice per answer at a known price."""

    name = "judged"
    needs_judge = True
    judge_calls_per_item = 2
    active = 0
    peak = 0

    def estimate_cost_usd(self, item: EvalItem) -> float:
        return 0.001

    async def score(self, item: EvalItem) -> Score:
        type(self).active += 1
        type(self).peak = max(type(self).peak, type(self).active)
        await asyncio.sleep(0.01)
        type(self).active -= 1
        return Score(1.0, "ok")


FAKES = {cls.name: cls for cls in (LengthEvaluator, BrokenEvaluator, FlakyEvaluator, SlowEvaluator, JudgeEvaluator)}


def fake_entry_points() -> list[EntryPoint]:
    return [EntryPoint(name=name, value=f"tests.support.eval_support:{cls.__name__}", group="shadowtap.evaluators")
            for name, cls in FAKES.items()]


def install_fake_evaluators() -> None:
    """Register the fakes as third-party evaluators in this process (for subprocess runs)."""
    import shadowtap.evaluators.registry as registry

    registry._entry_points = fake_entry_points


# Runs `shadowtap eval` in a subprocess with the fakes registered: argv follows the script.
EVAL_SCRIPT = ("import sys; from tests.support.eval_support import install_fake_evaluators; "
               "install_fake_evaluators(); from shadowtap.core.cli import cli; cli(prog_name='shadowtap')")
