"""`--rate N`: a token bucket paces a replay's model calls across all its concurrency, on a fake clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.replay.passing import PassCriterion
from shadowtap.replay.rate import TokenBucket
from shadowtap.replay.runner import ReplayRunner, create_run
from shadowtap.replay.targets import resolve_target
from tests.support.replay_support import StoreBuilder, chat


class FakeClock:
    """Time moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def bucket(rate: float, clock: FakeClock) -> TokenBucket:
    return TokenBucket(rate, clock=clock, sleep=clock.sleep)


def test_n_calls_take_at_least_n_minus_one_intervals_when_the_bucket_starts_full():
    clock = FakeClock()
    limiter = bucket(4, clock)
    starts = []

    async def main():
        for _ in range(9):
            await limiter.acquire()
            starts.append(clock.now)

    asyncio.run(main())
    assert limiter.minimum_seconds(9) == pytest.approx(2.0)
    assert starts[-1] - starts[0] == pytest.approx(2.0)           # 8 intervals of 1/4 s, and no more
    assert all(b - a >= 0.25 - 1e-9 for a, b in zip(starts, starts[1:]))


def test_concurrent_callers_share_one_bucket_and_start_evenly_spaced():
    clock = FakeClock()
    limiter = bucket(10, clock)
    starts = []

    async def caller():
        for _ in range(5):
            await limiter.acquire()
            starts.append(clock.now)

    async def main():
        await asyncio.gather(*(caller() for _ in range(6)))

    asyncio.run(main())
    assert len(starts) == 30
    starts.sort()
    assert starts[-1] - starts[0] >= limiter.minimum_seconds(30) - 1e-9 == pytest.approx(2.9)
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(starts, starts[1:]))


def test_calls_slower_than_the_rate_never_wait():
    clock = FakeClock()
    limiter = bucket(2, clock)

    async def main():
        for _ in range(5):
            await limiter.acquire()
            clock.now += 1.0          # each call takes a second of its own

    asyncio.run(main())
    assert clock.sleeps == []


def test_a_rate_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="above 0"):
        TokenBucket(0)


class CountingLitellm:
    """Stands in for litellm: answers at once and notes the fake clock's time of every call."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def acompletion(self, **kwargs):
        self.calls.append(self.clock.now)
        await asyncio.sleep(0)
        message = SimpleNamespace(content="captured answer", tool_calls=None)
        return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=None)


def test_a_replay_run_with_a_rate_spaces_every_call_across_its_concurrency(tmp_path):
    builder = StoreBuilder(tmp_path / "s.db")
    ids = [builder.exchange(f"ex-{i}", f"2026-11-20T10:0{i}:00+00:00", chat(f"question {i}")) for i in range(4)]
    config = ShadowtapConfig()
    store = ReplayStore(builder.store)
    target = resolve_target("model:openai/x", config, api_base="http://127.0.0.1:9/v1")
    criterion = PassCriterion.parse("agreement>=0.8", config)
    run_id = create_run(store, selection={"exchange_ids": ids}, target=target, k=3, criterion=criterion.text,
                        config=config)
    clock = FakeClock()
    litellm = CountingLitellm(clock)
    runner = ReplayRunner(store, config, target, criterion, k=3, concurrency=4, litellm=litellm,
                          rate_limiter=bucket(5, clock))
    summary = asyncio.run(runner.run(run_id, ids))

    assert summary.status == "complete" and summary.written == 12
    assert len(litellm.calls) == 12
    assert litellm.calls[-1] - litellm.calls[0] >= (12 - 1) / 5 - 1e-9
    assert all(b - a >= 0.2 - 1e-9 for a, b in zip(litellm.calls, litellm.calls[1:]))
    assert all(row["passed"] == 1 for row in store.results(run_id))


def test_replay_run_accepts_rate_and_refuses_zero(tmp_path):
    from tests.support.replay_support import cli_run

    builder = StoreBuilder(tmp_path / "s.db")
    builder.exchange("ex-1", "2026-11-20T10:00:00+00:00", chat("question"))
    result = cli_run("replay", "run", "--store", str(tmp_path / "s.db"), "--target", "model:openai/x",
                     "--rate", "0", expect=2)
    assert "--rate" in result.output
