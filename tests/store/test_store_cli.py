"""`shadowtap store migrate|prune` and `shadowtap ship --once`, on either backend."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import Store
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def counts(store: Store) -> dict[str, int]:
    return {table: store.captures.sql.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("exchanges", "shadows", "feedback")}


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("pg_url")


def test_store_migrate_brings_an_empty_store_to_the_current_schema_on_either_backend(target):
    result = run("store", "migrate", "--store", target)
    assert result.exit_code == 0, result.output
    assert "schema is current" in result.output
    with Store.open(target) as store:
        assert store.captures.meta("store_id")


def test_store_prune_deletes_old_exchanges_with_their_rows_and_keeps_the_rest(target):
    store = Store.open(target)
    old = add_exchanges(store.captures, 5, started_at=1_600_000_000)
    new = add_exchanges(store.captures, 3)
    for row in old[:2] + new[:1]:
        add_shadow_row(store, row["id"])
    store.feedback.record([{"exchange_id": old[0]["id"], "outcome": "accepted"},
                           {"exchange_id": new[0]["id"], "outcome": "accepted"}], source="api")
    assert run("store", "prune", "--store", target, "--before", "30d", "--dry-run").output.startswith(
        "would delete 5 exchanges")
    result = run("store", "prune", "--store", target, "--before", "30d", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "deleted 5 exchanges" in result.output and "and 3 shadow, score and feedback rows" in result.output
    assert counts(store) == {"exchanges": 3, "shadows": 1, "feedback": 1}
    store.close()


def add_shadow_row(store: Store, exchange_id: str) -> None:
    store.captures.insert_capture([], [{"id": f"{exchange_id}:small", "exchange_id": exchange_id,
                                        "candidate": "small", "outcome": "ok"}])


def test_ship_once_copies_the_spool_named_in_the_config_into_the_shared_store(tmp_path, pg_url):
    spool = Store.open(tmp_path / "spool.db")
    rows = add_exchanges(spool.captures, 4)
    add_shadow(spool.captures, rows[0]["id"], "small")
    spool.close()
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[store]\npath = "{tmp_path / "spool.db"}"\n'
                      'url_env = "SHADOWTAP_TEST_SHARED_STORE"\n')
    result = run("ship", "--config", str(config), "--once", env={"SHADOWTAP_TEST_SHARED_STORE": pg_url})
    assert result.exit_code == 0, result.output
    assert "shipped 5 rows" in result.output
    assert pg_rows(pg_url, "select count(*) from exchanges") == [(4,)]


def test_ship_without_a_shared_store_configured_is_a_usage_error(tmp_path):
    result = run("ship", "--once")
    assert result.exit_code == 2 and "[store] url" in result.output


def test_captures_list_reads_a_postgres_store_given_by_url(pg_url):
    store = Store.open(pg_url)
    rows = add_exchanges(store.captures, 2)
    store.close()
    result = run("captures", "list", "--store", pg_url, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(row["id"] for row in map(orjson.loads, result.output.splitlines())) == sorted(r["id"] for r in rows)
