"""The recorder hands the core back after each exchange it builds, but only while it keeps up."""

import os

import pytest

from shadowtap.proxy.capture.recorder import DeferringToLiveProcess


def building(monkeypatch, backlog: int):
    yields: list[int] = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(1))
    build = DeferringToLiveProcess(lambda raw: f"rows of {raw}", keeping_up_below=400)
    build.backlog = lambda: backlog
    return build, yields


def test_while_keeping_up_it_yields_after_each_exchange(monkeypatch):
    build, yields = building(monkeypatch, backlog=12)
    assert [build("a"), build("b")] == ["rows of a", "rows of b"]
    assert len(yields) == 2


def test_once_behind_it_keeps_the_core_for_its_full_share(monkeypatch):
    build, yields = building(monkeypatch, backlog=400)
    assert build("a") == "rows of a"
    assert yields == []


def test_an_exchange_whose_rows_fail_to_build_still_hands_the_core_back(monkeypatch):
    yields: list[int] = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(1))

    def failing(raw):
        raise ValueError(raw)

    build = DeferringToLiveProcess(failing, keeping_up_below=400)
    with pytest.raises(ValueError):
        build("a")
    assert yields == [1]
