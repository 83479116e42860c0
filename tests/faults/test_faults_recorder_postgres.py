"""The capture recorder of a real `shadowtap serve` writes to a PostgreSQL store ([store] path a
postgresql:// URL) as it does to SQLite: the live process hands it the store's full URL, not the
password-free one messages show."""

from __future__ import annotations

import json

import pytest

from tests.faults.test_faults_recorder_kill import answered_requests
from tests.support.fault_processes import start_serve, wait_until, write_serve_config
from tests.support.postgres import pg_rows, pg_schema, pg_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


def test_the_recorder_writes_to_a_postgresql_store_when_serve_is_given_one(simulator, tmp_path, pg_url):  # noqa: F811
    config_path, port = write_serve_config(tmp_path, simulator.base_url)
    sqlite_path = f'path = "{tmp_path / "captures.db"}"'
    assert sqlite_path in config_path.read_text()
    config_path.write_text(config_path.read_text().replace(sqlite_path, f"path = {json.dumps(pg_url)}"))
    serve = start_serve(config_path, port)
    try:
        answered = answered_requests(serve.base_url, 0, 5)
        wait_until(lambda: {row[0] for row in pg_rows(pg_url, "select id from exchanges")} == answered, 30,
                   "the exchanges did not reach the PostgreSQL store")
    finally:
        assert serve.stop() == 0
    assert not (tmp_path / "captures.db").exists()
