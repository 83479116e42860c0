"""`ReportReads.beside`: on PostgreSQL a report's large reads run on a second connection, at the same
time as the rest, and see the same snapshot as every other read of the report."""

from __future__ import annotations

import psycopg
import pytest

from shadowtap.core.store import Store
from tests.support.postgres import pg_rows, pg_schema, pg_url  # noqa: F401 - fixtures


def _backend_pid_and_keys(reads) -> tuple[int, int]:
    [(pid, keys)] = reads.sql.execute("select pg_backend_pid(), count(*) from store_meta").fetchall()
    return pid, keys


@pytest.fixture
def pg_store(pg_url):  # noqa: F811
    store = Store.open(pg_url)
    yield store
    store.close()


def test_a_read_beside_runs_on_a_second_connection_that_sees_the_report_snapshot(pg_store, pg_url):  # noqa: F811
    reads = pg_store.reports
    with reads.snapshot():
        here = _backend_pid_and_keys(reads)
        pg_rows(pg_url, "insert into store_meta (key, value) values ('written_after_the_snapshot', 'x')")
        with reads.beside(_backend_pid_and_keys) as wait:
            there = wait()
    assert there[0] != here[0]
    assert there[1] == here[1]  # the row committed after the snapshot began is not seen beside it either
    assert _backend_pid_and_keys(reads)[1] == here[1] + 1


def test_outside_a_snapshot_a_read_beside_runs_on_the_report_connection_when_asked_for(pg_store):
    reads = pg_store.reports
    with reads.beside(_backend_pid_and_keys) as wait:
        assert wait()[0] == _backend_pid_and_keys(reads)[0]


def test_on_sqlite_a_read_beside_runs_on_the_report_connection(tmp_path):
    store = Store.open(tmp_path / "s.db")
    try:
        reads = store.reports
        with reads.snapshot(), reads.beside(lambda other: other) as wait:
            assert wait() is reads
    finally:
        store.close()


def test_an_error_in_a_read_beside_is_raised_by_waiting_for_it(pg_store):
    reads = pg_store.reports

    def fails(other):
        other.sql.execute("select * from no_such_table")

    with reads.snapshot(), reads.beside(fails) as wait, pytest.raises(psycopg.errors.UndefinedTable):
        wait()
