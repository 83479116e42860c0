"""Canary state in the store: one row per candidate, every change an event, survives reopening."""

import pytest

from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import CanaryState, canary_events, read_canary_states, set_canary_share


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    target = tmp_path / "s.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = Store.open(target)
    yield opened
    opened.close()


def test_a_new_store_has_no_canary_state_and_no_events(store):
    assert read_canary_states(store) == {}
    assert canary_events(store) == []


def test_setting_a_share_writes_the_state_and_an_event_with_the_share_before(store):
    first = set_canary_share(store, "small", 0.05, status="running", changed_by="ana", reason="first slice")
    set_canary_share(store, "small", 0.2, status="running", changed_by="ana", reason="looks fine")
    states = read_canary_states(store)
    assert list(states) == ["small"]
    assert states["small"].share == 0.2 and states["small"].status == "running"
    assert states["small"].reason == "looks fine" and states["small"].guard is None
    assert isinstance(first, CanaryState) and first.share == 0.05
    events = canary_events(store, "small")
    assert [(e["share_before"], e["share_after"], e["reason"]) for e in events] == [
        (0.0, 0.05, "first slice"), (0.05, 0.2, "looks fine")]


def test_a_guard_rollback_records_the_guard_and_its_window(store):
    set_canary_share(store, "small", 0.1, status="running", changed_by="ana", reason="")
    window = {"guard": "error_rate", "value": 0.3, "samples": 40}
    set_canary_share(store, "small", 0.0, status="rolled_back", changed_by="guard", reason="error rate 0.30 > 0.05",
                     guard="error_rate", window=window)
    state = read_canary_states(store)["small"]
    assert (state.share, state.status, state.guard, state.changed_by) == (0.0, "rolled_back", "error_rate", "guard")
    last = canary_events(store, "small")[-1]
    assert last["guard"] == "error_rate" and last["window"] == window and last["share_before"] == 0.1


def test_events_are_kept_per_candidate_and_limited_to_the_latest(store):
    for share in (0.1, 0.2, 0.3):
        set_canary_share(store, "a", share, status="running", changed_by="x", reason=str(share))
    set_canary_share(store, "b", 0.5, status="running", changed_by="x", reason="b")
    assert [e["candidate"] for e in canary_events(store)] == ["a", "a", "a", "b"]
    assert [e["share_after"] for e in canary_events(store, "a", limit=2)] == [0.2, 0.3]


@pytest.mark.parametrize(("share", "status"), [(1.5, "running"), (-0.1, "running"), (0.1, "paused")])
def test_a_share_outside_0_to_1_or_an_unknown_status_is_refused_and_nothing_is_written(store, share, status):
    with pytest.raises(ValueError):
        set_canary_share(store, "small", share, status=status, changed_by="x", reason="")
    assert read_canary_states(store) == {} and canary_events(store) == []


def test_the_state_survives_reopening_the_store(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        set_canary_share(store, "small", 0.0, status="rolled_back", changed_by="guard", reason="r", guard="g")
    with Store.open(tmp_path / "s.db") as store:
        assert read_canary_states(store)["small"].status == "rolled_back"
