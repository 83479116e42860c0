"""A row PostgreSQL refuses is set aside with its reason, counted and shown by `ship --status`,
and every row after it keeps flowing; nothing of the refused value reaches the log."""

from __future__ import annotations

import logging

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.ship.shipper import Shipper
from shadowtap.core.store import CaptureStore
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows

# Credential-shaped, so a log line that quoted the refused value would show it.
REFUSED_VALUE = "sk-refused0123456789abcdef"


@pytest.fixture
def spool(tmp_path):
    store = CaptureStore.open(tmp_path / "spool.db")
    yield store
    store.close()


def set_value(spool: CaptureStore, table: str, column: str, value: object, row_id: str) -> None:
    """What SQLite accepts and PostgreSQL does not: its columns take any value (type affinity)."""
    spool.sql.execute(f"update {table} set {column} = ? where id = ?", [value, row_id])
    spool.db.conn.commit()


def shipped_ids(url: str, table: str = "exchanges") -> list[str]:
    return sorted(row[0] for row in pg_rows(url, f"select id from {table}"))


def test_a_row_postgres_refuses_is_set_aside_and_the_rows_after_it_ship(spool, pg_url, caplog):
    rows = add_exchanges(spool, 7)
    refused = rows[2]["id"]
    set_value(spool, "exchanges", "status", REFUSED_VALUE, refused)  # a status that is not a number
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url), batch_size=3)
    with caplog.at_level(logging.WARNING, logger="shadowtap.ship"):
        assert shipper.ship_once() == 6
    assert shipped_ids(pg_url) == sorted(row["id"] for row in rows if row["id"] != refused)
    assert shipper.counters.rejected == 1 and shipper.counters.rows == {"exchanges": 6}
    ((table, row_id, error, reason, row_json),) = pg_rows(
        pg_url, "select table_name, row_id, error, reason, row_json from _shadowtap_ship_rejects")
    assert (table, row_id) == ("exchanges", refused)
    assert error == "invalid_text_representation (22P02) on status"
    assert "bigint" in reason
    assert orjson.loads(row_json)["status"] == REFUSED_VALUE  # kept whole, to be put right by hand
    (line,) = [record.getMessage() for record in caplog.records if "set aside" in record.getMessage()]
    assert refused in line and "invalid_text_representation" in line and "status" in line
    assert REFUSED_VALUE not in caplog.text
    assert shipper.backlog() == 0  # nothing stalls behind it
    more = add_exchanges(spool, 2)
    assert shipper.ship_once() == 2
    assert set(row["id"] for row in more) <= set(shipped_ids(pg_url))
    shipper.close()


def test_refused_rows_of_several_tables_are_each_set_aside_once_even_when_shipped_again(spool, pg_url):
    rows = add_exchanges(spool, 4)
    add_shadow(spool, rows[0]["id"], "small")
    add_shadow(spool, rows[1]["id"], "small")
    set_value(spool, "exchanges", "prompt_tokens", 12.5, rows[3]["id"])  # a fraction of a token
    set_value(spool, "shadows", "latency_ms", "slow", f"{rows[1]['id']}:small")
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    assert shipper.ship_once() == 4
    pg_rows(pg_url, "delete from _shadowtap_ship_positions")  # as if the position was lost: all again
    assert shipper.ship_once() == 4
    assert pg_rows(pg_url, "select table_name, row_id, error from _shadowtap_ship_rejects order by table_name") == [
        ("exchanges", rows[3]["id"], "invalid_text_representation (22P02) on prompt_tokens"),
        ("shadows", f"{rows[1]['id']}:small", "invalid_text_representation (22P02) on latency_ms")]
    assert shipped_ids(pg_url, "shadows") == [f"{rows[0]['id']}:small"]
    shipper.close()


def test_a_nul_character_is_still_replaced_rather_than_setting_its_row_aside(spool, pg_url):
    rows = add_exchanges(spool, 3)
    set_value(spool, "exchanges", "response_text", "a\x00b", rows[0]["id"])
    set_value(spool, "exchanges", "status", "abc", rows[1]["id"])
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    assert shipper.ship_once() == 2
    assert pg_rows(pg_url, f"select response_text from exchanges where id = '{rows[0]['id']}'") == [("a\ufffdb",)]
    assert pg_rows(pg_url, "select row_id from _shadowtap_ship_rejects") == [(rows[1]["id"],)]
    shipper.close()


def test_text_sqlite_holds_that_is_not_utf8_ships_with_the_bad_bytes_replaced(spool, pg_url):
    rows = add_exchanges(spool, 2)
    spool.sql.execute("update exchanges set response_text = cast(x'61ff62' as text) where id = ?", [rows[0]["id"]])
    spool.db.conn.commit()
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    assert shipper.ship_once() == 2
    assert pg_rows(pg_url, f"select response_text from exchanges where id = '{rows[0]['id']}'") == [("a\ufffdb",)]
    shipper.close()


def test_ship_status_shows_the_backlog_and_the_rows_set_aside(tmp_path, pg_url):
    spool = CaptureStore.open(tmp_path / "spool.db")
    rows = add_exchanges(spool, 3)
    set_value(spool, "exchanges", "status", REFUSED_VALUE, rows[0]["id"])
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    shipper.ship_once()
    shipper.close()
    add_exchanges(spool, 2)  # not shipped yet
    spool.close()
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[store]\npath = "{tmp_path / "spool.db"}"\n'
                      f'url = "{pg_url}"\n')
    result = CliRunner().invoke(cli, ["ship", "--config", str(config), "--status", "--json"])
    assert result.exit_code == 0, result.output
    status = orjson.loads(result.output)
    assert status["tables"]["exchanges"]["backlog"] == 2
    assert status["rejected"] == 1
    assert status["latest_rejects"][0]["row_id"] == rows[0]["id"]
    text = CliRunner().invoke(cli, ["ship", "--config", str(config), "--status"])
    assert text.exit_code == 0, text.output
    assert "refused" in text.output and rows[0]["id"] in text.output and "2 to ship" in text.output
    assert pg_rows(pg_url, "select count(*) from exchanges") == [(2,)]  # --status ships nothing


def test_ship_once_says_how_many_rows_were_set_aside(tmp_path, pg_url):
    spool = CaptureStore.open(tmp_path / "spool.db")
    rows = add_exchanges(spool, 3)
    set_value(spool, "exchanges", "completion_tokens", "many", rows[1]["id"])
    spool.close()
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n[store]\npath = "{tmp_path / "spool.db"}"\n'
                      f'url = "{pg_url}"\n')
    result = CliRunner().invoke(cli, ["ship", "--config", str(config), "--once"])
    assert result.exit_code == 0, result.output
    assert "shipped 2 rows, 1 set aside (see --status)" in result.output


def test_a_row_without_the_id_postgres_requires_is_set_aside_under_a_digest_of_its_values(spool, pg_url):
    rows = add_exchanges(spool, 2)
    # SQLite lets a text primary key be NULL; PostgreSQL's primary key is never null.
    spool.sql.execute("insert into shadows (id, exchange_id, candidate, outcome) values (null, ?, 'small', 'ok')",
                      [rows[0]["id"]])
    spool.sql.execute("insert into shadows (id, exchange_id, candidate, outcome) values (null, ?, 'large', 'ok')",
                      [rows[0]["id"]])
    add_shadow(spool, rows[1]["id"], "small")
    spool.db.conn.commit()
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    assert shipper.ship_once() == 3
    assert shipped_ids(pg_url, "shadows") == [f"{rows[1]['id']}:small"]
    rejected = pg_rows(pg_url, "select row_id, error from _shadowtap_ship_rejects order by row_id")
    assert len(rejected) == 2 and rejected[0][0] != rejected[1][0]
    assert all(row_id.startswith("sha256:") and error == "not_null_violation (23502) on id"
               for row_id, error in rejected)
    shipper.close()
