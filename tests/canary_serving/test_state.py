"""The live process's copy of the canary state: polled from the store, stale means the primary answers."""

import time

import pytest

from shadowtap.core.config import CanaryConfig, CandidateCanaryConfig, CandidateConfig, PrimaryConfig, ShadowtapConfig
from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import set_canary_share
from shadowtap.proxy.canary.serving import CanaryServing
from shadowtap.proxy.canary.state import CanaryShares
from shadowtap.proxy.dialects import dialect_for_path
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics

CHAT = dialect_for_path("/v1/chat/completions")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    target = str(tmp_path / "s.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    Store.open(target).close()
    return target


def test_the_poller_reads_running_shares_into_their_regions_and_ignores_the_others(store_target):
    with Store.open(store_target) as store:
        set_canary_share(store, "b", 0.3, status="running", changed_by="t", reason="")
        set_canary_share(store, "a", 0.1, status="running", changed_by="t", reason="")
        set_canary_share(store, "gone", 0.5, status="rolled_back", changed_by="guard", reason="")
        set_canary_share(store, "unknown", 0.5, status="running", changed_by="t", reason="")
    shares = CanaryShares(lambda: Store.open(store_target), [("a", 0.3), ("b", 0.3), ("gone", 0.3)],
                          poll_s=1, stale_s=5)
    assert not shares.running
    assert shares.read_once()
    assert [(s.candidate, s.start, s.end) for s in shares.current.slices] == [("a", 0.0, 0.1), ("b", 0.3, 0.6)]
    assert shares.running and not shares.stale(shares.current)


def test_a_rollback_reaches_the_live_process_within_one_poll(store_target):
    with Store.open(store_target) as store:
        set_canary_share(store, "a", 0.2, status="running", changed_by="t", reason="")
    shares = CanaryShares(lambda: Store.open(store_target), [("a", 0.5)], poll_s=0.05, stale_s=5)
    shares.start()
    try:
        wait_for(lambda: shares.running)
        with Store.open(store_target) as store:
            set_canary_share(store, "a", 0.0, status="rolled_back", changed_by="guard", reason="errors")
        wait_for(lambda: not shares.running)
        assert shares.current.states["a"].status == "rolled_back"
    finally:
        shares.stop()


def test_state_unreadable_for_longer_than_state_stale_s_is_stale_but_keeps_the_last_shares(tmp_path):
    target = str(tmp_path / "s.db")
    with Store.open(target) as store:
        set_canary_share(store, "a", 0.5, status="running", changed_by="t", reason="")
    clock, broken = Clock(), {"now": False}

    def open_store():
        if broken["now"]:
            raise OSError("store unreachable")
        return Store.open(target)

    shares = CanaryShares(open_store, [("a", 0.5)], poll_s=1, stale_s=15, clock=clock)
    assert shares.read_once()
    broken["now"] = True
    shares._close_store()  # the next read has to open the store again, and cannot
    clock.now += 10
    assert not shares.read_once() and not shares.stale(shares.current)
    clock.now += 6
    assert not shares.read_once() and shares.stale(shares.current)
    assert shares.running  # the last shares are kept: they say which requests fall back as state_stale
    broken["now"] = False
    assert shares.read_once() and not shares.stale(shares.current)


def serving_config(tmp_path, **canary) -> ShadowtapConfig:
    candidate = CandidateConfig(name="a", model="openai/a-model", api_base="http://127.0.0.1:9/v1",
                                canary=CandidateCanaryConfig(**canary))
    return ShadowtapConfig(primary=PrimaryConfig(base_url="http://127.0.0.1:9/v1"), candidates=[candidate],
                           canary=CanaryConfig(state_poll_s=1, state_stale_s=15), source=str(tmp_path / "c.toml"))


def exchange(*headers: tuple[bytes, bytes], path: str = "/v1/chat/completions", body: bytes = b"{}") -> RawExchange:
    return RawExchange(new_exchange_id(), time.time(), 0.0, "POST", path, "", list(headers), body)


def test_a_stale_state_sends_a_request_that_would_be_canaried_to_the_primary_and_records_why(tmp_path):
    target = str(tmp_path / "s.db")
    with Store.open(target) as store:
        set_canary_share(store, "a", 1.0, status="running", changed_by="t", reason="")
    metrics = ProxyMetrics()
    serving = CanaryServing(serving_config(tmp_path), metrics, open_state_store=lambda: Store.open(target))
    clock = Clock()
    serving.shares._clock = clock
    assert serving.shares.read_once()
    fresh = exchange()
    assigned = serving.assign(fresh, CHAT)
    assert assigned is not None and assigned.candidate == "a" and fresh.fallback_reason is None
    assert assigned.request == {"model": "a-model"}
    clock.now += 16
    stale = exchange()
    assert serving.assign(stale, CHAT) is None
    assert (stale.served_by, stale.fallback_reason) == ("primary", "state_stale")
    assert metrics.canary_fallbacks.labels("a", "state_stale")._value.get() == 1
    health = serving.health()
    assert health["stale"] is True and health["candidates"]["a"]["share"] == 1.0


def test_no_canary_running_means_no_assignment_at_all(tmp_path):
    target = str(tmp_path / "s.db")
    Store.open(target).close()
    serving = CanaryServing(serving_config(tmp_path), ProxyMetrics(), open_state_store=lambda: Store.open(target))
    assert serving.shares.read_once()
    assert not serving.running
    health = serving.health()
    assert health["stale"] is False and health["candidates"] == {"a": {"share": 0.0, "status": "off", "guard": None,
                                                                                "serving": True}}


def test_a_candidate_whose_key_is_not_in_the_environment_never_serves(tmp_path, monkeypatch):
    monkeypatch.delenv("CANARY_TEST_KEY", raising=False)
    config = serving_config(tmp_path)
    candidate = CandidateConfig(name="a", model="openai/a-model", api_base="http://127.0.0.1:9/v1",
                                api_key_env="CANARY_TEST_KEY", canary=CandidateCanaryConfig())
    config = ShadowtapConfig(primary=config.primary, candidates=[candidate], canary=config.canary, source=config.source)
    serving = CanaryServing(config, ProxyMetrics(), open_state_store=lambda: Store.open(str(tmp_path / "s.db")))
    assert serving.health()["candidates"]["a"]["serving"] is False
    assert serving.assigner.rules == {}


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_share_forced_above_max_share_is_served_whole_and_moves_the_regions_after_it(tmp_path):
    target = str(tmp_path / "s.db")
    with Store.open(target) as store:
        set_canary_share(store, "a", 0.4, status="running", changed_by="t", reason="forced")
        set_canary_share(store, "b", 0.1, status="running", changed_by="t", reason="")
    shares = CanaryShares(lambda: Store.open(target), [("a", 0.25), ("b", 0.25)], poll_s=1, stale_s=5)
    assert shares.read_once()
    assert [(s.candidate, s.start, s.end) for s in shares.current.slices] == [("a", 0.0, 0.4), ("b", 0.4, 0.5)]


def test_a_request_that_leans_on_state_the_primary_keeps_or_is_not_json_is_not_canaried(tmp_path):
    target = str(tmp_path / "s.db")
    with Store.open(target) as store:
        set_canary_share(store, "a", 1.0, status="running", changed_by="t", reason="")
    config = serving_config(tmp_path, endpoints=["chat.completions", "responses"])
    serving = CanaryServing(config, ProxyMetrics(), open_state_store=lambda: Store.open(target))
    assert serving.shares.read_once()
    responses = dialect_for_path("/v1/responses")
    follow_up = exchange(path="/v1/responses", body=b'{"model":"m","input":"and?","previous_response_id":"resp_1"}')
    assert serving.assign(follow_up, responses) is None
    first = exchange(path="/v1/responses", body=b'{"model":"m","input":"hi"}')
    assert serving.assign(first, responses) is not None
    broken = exchange(body=b"not json")
    assert serving.assign(broken, CHAT) is None
    assert (follow_up.served_by, follow_up.fallback_reason, broken.fallback_reason) == (None, None, None)
