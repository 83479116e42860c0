"""SQLite and PostgreSQL hold the same schema, made by the same migrations, and the store's parts
read the same rows back from both."""

from __future__ import annotations

import psycopg
import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError, StoreError
from shadowtap.core.store import CaptureStore, Store
from shadowtap.core.store.canary_store import (
    canaried_counts,
    canaried_exchanges,
    canary_events,
    exchange_answers,
    read_canary_states,
    set_canary_share,
    twin_answers,
    twinned_primary_exchanges,
    window_feedback,
)
from shadowtap.core.store.capture_store import ExchangeFilter
from shadowtap.core.store.migrations import migrations
from shadowtap.core.store.postgres import migrations as pg_migrations
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.report_support import StoreBuilder

# sqlite-utils' column types, and what each becomes in PostgreSQL.
TYPES = {"TEXT": "text", "INTEGER": "bigint", "FLOAT": "double precision", "REAL": "double precision",
         "BLOB": "bytea"}


def sqlite_schema(store: CaptureStore) -> dict[str, dict]:
    db = store.db
    tables = {}
    for name in db.table_names():
        if name.startswith(("_sqlite", "sqlite_")):
            continue
        table = db[name]
        tables[name] = {
            "columns": [(c.name, TYPES[c.type], bool(c.notnull) or c.is_pk) for c in table.columns],
            "pk": table.pks,
            "indexes": sorted(index.name for index in table.indexes if index.origin == "c"),
        }
    return tables


def postgres_schema(url: str) -> dict[str, dict]:
    with psycopg.connect(url) as conn:
        names = [row[0] for row in conn.execute(
            "select table_name from information_schema.tables where table_schema = current_schema() "
            "and table_name not like '\\_%' order by table_name")]
        tables = {}
        for name in names:
            columns = [(c, t, n == "NO") for c, t, n in conn.execute(
                "select column_name, data_type, is_nullable from information_schema.columns "
                "where table_schema = current_schema() and table_name = %s order by ordinal_position", [name])]
            pk = [row[0] for row in conn.execute(
                "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                "and a.attnum = any(i.indkey) where i.indrelid = %s::regclass and i.indisprimary", [name])]
            indexes = sorted(row[0] for row in conn.execute(
                "select indexname from pg_indexes where schemaname = current_schema() and tablename = %s "
                "and indexname not like '%%_pkey'", [name]))
            tables[name] = {"columns": columns, "pk": pk, "indexes": indexes}
        return tables


def test_both_backends_have_the_same_tables_columns_types_keys_and_indexes(tmp_path, pg_url):
    sqlite = CaptureStore.open(tmp_path / "s.db")
    Store.open(pg_url).close()
    expected, actual = sqlite_schema(sqlite), postgres_schema(pg_url)
    assert sorted(actual) == sorted(expected)
    for table in expected:
        assert actual[table] == expected[table], table


def test_both_backends_apply_the_same_migrations_in_the_same_order(tmp_path, pg_url):
    sqlite = CaptureStore.open(tmp_path / "s.db")
    Store.open(pg_url).close()
    applied_sqlite = [row["name"] for row in sqlite.db.query("select name from _sqlite_migrations order by id")]
    with psycopg.connect(pg_url) as conn:
        applied_pg = [row[0] for row in conn.execute("select name from _shadowtap_migrations order by id")]
    assert applied_pg == applied_sqlite == [name for name, _ in pg_migrations.MIGRATIONS]
    assert migrations.pending(sqlite.db) == []


def test_reopening_a_postgres_store_applies_no_migration_twice_and_keeps_its_salt_and_id(pg_url):
    first = Store.open(pg_url)
    salt, store_id = first.captures.client_key_salt(), first.captures.meta("store_id")
    first.close()
    second = Store.open(pg_url)
    assert (second.captures.client_key_salt(), second.captures.meta("store_id")) == (salt, store_id)
    assert len(salt) == 32 and store_id
    with psycopg.connect(pg_url) as conn:
        assert pg_migrations.pending(conn) == []
    second.close()


def _fill(store: CaptureStore) -> list[dict]:
    rows = add_exchanges(store, 3, started_at=1_700_000_000)
    rows[1]["tags"] = '{"team": "search"}'
    store.sql.execute("update exchanges set tags = ? where id = ?", [rows[1]["tags"], rows[1]["id"]])
    return rows


def test_the_parts_read_the_same_rows_from_both_backends(tmp_path, pg_url):
    sqlite = Store.open(tmp_path / "s.db")
    rows = _fill(sqlite.captures)
    add_shadow(sqlite.captures, rows[0]["id"], "small")
    postgres = Store.open(pg_url)
    postgres.captures.insert_capture(list(sqlite.captures.iter_exchanges()),
                                     list(sqlite.captures.sql.query("select * from shadows")))
    for store in (sqlite, postgres):
        store.feedback.record([{"exchange_id": rows[2]["id"], "outcome": "accepted", "feedback_id": "f1",
                                "at": "2026-01-01T00:00:00+00:00"}], source="api")
        store.scores.write([{"id": f"{rows[0]['id']}:primary:length", "exchange_id": rows[0]["id"],
                             "source": "primary", "evaluator": "length", "evaluator_version": "1",
                             "outcome": "score", "value": 0.5, "label": "half", "details": "{}",
                             "scored_at": "2026-01-01T00:00:00+00:00"}])

    def reads(store: Store) -> dict:
        pending = [page for page in store.scores.iter_pending({"length": "1"})]
        return {
            "list": store.captures.list_exchanges(),
            "tagged": store.captures.list_exchanges(ExchangeFilter(tag=("team", "search"))),
            "count": store.captures.count_exchanges(ExchangeFilter(since="2023-11-14T22:13:21")),
            "prefix": store.captures.get_exchange(rows[0]["id"][:20]),
            "pending": pending, "count_pending": store.scores.count_pending({"length": "1"}),
            "summary": store.scores.summary(versions={"length": "1"}),
            "scores": store.scores.scores(),
            "feedback": [{k: v for k, v in row.items() if k != "received_at"} for row in store.feedback.feedback()],
            "by_endpoint": store.summary.exchanges_by_endpoint_and_status(),
            "shadows": store.summary.shadows_by_candidate(),
            "tables": sorted(store.tables.rows_where("exchanges", "id", [rows[0]["id"], rows[2]["id"]]),
                             key=lambda row: row["id"]),
            "spend": store.captures.shadow_spend_today("2023-11-14"),
        }

    assert reads(postgres) == reads(sqlite)
    postgres.close()


def test_canary_state_events_and_canaried_traffic_read_the_same_from_both_backends(tmp_path, pg_url):
    sqlite = Store.open(tmp_path / "s.db")
    rows = _fill(sqlite.captures)
    sqlite.captures.sql.execute("update exchanges set served_by = 'small' where id = ?", [rows[0]["id"]])
    sqlite.captures.sql.execute("update exchanges set served_by = 'primary', fallback_reason = 'contract_invalid' "
                                "where id = ?", [rows[1]["id"]])
    add_shadow(sqlite.captures, rows[0]["id"], "primary_twin")
    add_shadow(sqlite.captures, rows[2]["id"], "primary_twin")
    postgres = Store.open(pg_url)
    postgres.captures.insert_capture(list(sqlite.captures.iter_exchanges()),
                                     list(sqlite.captures.sql.query("select * from shadows")))
    for store in (sqlite, postgres):
        store.feedback.record([{"exchange_id": rows[0]["id"], "outcome": "edited", "edit_minutes": 2.5,
                                "feedback_id": "f1", "at": "2026-01-01T00:00:00+00:00"}], source="api")
        set_canary_share(store, "small", 0.2, status="running", changed_by="ana", reason="start")
        set_canary_share(store, "small", 0.0, status="rolled_back", changed_by="guard", reason="red",
                         guard="error_rate", window={"samples": 3})

    def reads(store: Store) -> dict:
        ids = [row["id"] for row in rows]
        return {
            "states": {name: (state.share, state.status, state.guard)
                       for name, state in read_canary_states(store).items()},
            "events": [{k: v for k, v in event.items() if k not in ("id", "at")} for event in canary_events(store)],
            "canaried": canaried_exchanges(store, "2000-01-01"),
            "twinned": twinned_primary_exchanges(store, "2000-01-01"),
            "counts": canaried_counts(store), "counts_since": canaried_counts(store, "2000-01-01", "2100-01-01"),
            "twins": twin_answers(store, ids), "answers": exchange_answers(store, ids),
            "feedback": [{k: v for k, v in row.items() if k != "received_at"}
                         for row in window_feedback(store, "2000")],
        }

    expected = reads(sqlite)
    assert [row["id"] for row in expected["canaried"]] == [rows[0]["id"], rows[1]["id"]]
    assert [row["id"] for row in expected["twinned"]] == [rows[2]["id"]]
    assert [(row["served_by"], row["fallback_reason"], row["n"]) for row in expected["counts"]] == [
        ("small", None, 1), ("primary", "contract_invalid", 1)] == [
        (row["served_by"], row["fallback_reason"], row["n"]) for row in expected["counts_since"]]
    assert sorted(expected["twins"]) == sorted([rows[0]["id"], rows[2]["id"]])
    assert [(row["served_by"], row["edit_minutes"]) for row in expected["feedback"]] == [("small", 2.5)]
    assert expected["states"] == {"small": (0.0, "rolled_back", "error_rate")}
    assert reads(postgres) == expected
    postgres.close()


def test_a_report_store_builder_row_reads_back_identically(tmp_path, pg_url):
    sqlite = Store.open(tmp_path / "s.db")
    StoreBuilder(sqlite.captures).exchange("x1", "2026-01-01T00:00:00+00:00", tags={"team": "a"}, text="héllo ✓")
    postgres = Store.open(pg_url)
    postgres.captures.insert_capture(list(sqlite.captures.iter_exchanges()), [])
    assert list(postgres.captures.iter_exchanges()) == list(sqlite.captures.iter_exchanges())
    postgres.close()


def test_a_password_written_in_store_url_is_refused_without_repeating_it():
    with pytest.raises(ConfigError) as error:
        config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                          "store": {"url": "postgresql://shadowtap:hunter2-secret@db:5432/shadowtap"}})
    assert "url_env" in str(error.value) and "hunter2-secret" not in str(error.value)


def test_store_url_env_is_read_from_the_environment(monkeypatch):
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                               "store": {"url_env": "SHADOWTAP_TEST_STORE_URL"}})
    monkeypatch.setenv("SHADOWTAP_TEST_STORE_URL", "postgresql://app:pw@db/shadowtap")
    assert config.store.shared_url() == "postgresql://app:pw@db/shadowtap"
    monkeypatch.delenv("SHADOWTAP_TEST_STORE_URL")
    with pytest.raises(ConfigError, match="SHADOWTAP_TEST_STORE_URL"):
        config.store.shared_url()


def test_an_unreachable_store_is_a_store_error_that_never_shows_the_password():
    with pytest.raises(StoreError) as error:
        Store.open("postgresql://postgres:hunter2-secret@127.0.0.1:1/test")
    assert "hunter2-secret" not in str(error.value) and "127.0.0.1" in str(error.value)
