"""A large report's second core: part of the work in a forked child (`forked.beside`), with the
same report as when one process does it all."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from shadowtap.core.store import Store
from shadowtap.evaluators.report import build
from shadowtap.evaluators.report.forked import beside, can_fork
from tests.report.test_report_slices import store_path  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not can_fork(), reason="this platform cannot fork")]


def test_the_job_runs_in_a_forked_child_while_the_rest_runs_here():
    theirs, mine = beside(os.getpid, os.getpid, fork=True)
    assert mine == os.getpid()
    assert theirs != os.getpid()


def test_without_fork_both_parts_run_here():
    assert beside(os.getpid, os.getpid, fork=False) == (os.getpid(), os.getpid())


def test_an_exception_in_the_forked_child_is_raised_here():
    def fails() -> None:
        raise LookupError("no such cell")

    with pytest.raises(LookupError, match="no such cell"):
        beside(fails, lambda: None, fork=True)


def test_a_forked_report_equals_the_report_of_one_process(store_path, monkeypatch):  # noqa: F811
    store = Store.open(store_path)
    try:
        alone = build.build_report(store.reports, store="s.db")
        monkeypatch.setattr(build, "FORK_AT_ROWS", 0)
        monkeypatch.setattr(build, "beside", _counting(build.beside))
        forked = build.build_report(store.reports, store="s.db", fork=True)
    finally:
        store.close()
    assert build.beside.forks == 1
    assert len(forked.candidates) == 2  # one candidate's figures came from the child, one from here
    assert replace(forked, generated_at="") == replace(alone, generated_at="")


def _counting(beside_):
    def counted(job, meanwhile, *, fork):
        counted.forks += fork
        return beside_(job, meanwhile, fork=fork)

    counted.forks = 0
    return counted
