"""The shipper copies a spool's new rows into PostgreSQL exactly once, resuming where it stopped,
and an unreachable PostgreSQL only delays them."""

from __future__ import annotations

import pytest

from shadowtap.core.errors import StoreError
from shadowtap.core.ship.shipper import Shipper
from shadowtap.core.store import CaptureStore
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows, schema_url


@pytest.fixture
def spool(tmp_path):
    store = CaptureStore.open(tmp_path / "spool.db")
    yield store
    store.close()


def shipper_for(spool: CaptureStore, url: str, **options) -> Shipper:
    return Shipper(spool, lambda: CaptureStore.open(url), **options)


def shipped_ids(url: str, table: str = "exchanges") -> list[str]:
    return sorted(row[0] for row in pg_rows(url, f"select id from {table}"))


@pytest.mark.parametrize("way", [{}, {"direct": False}, {"prefetch": False}],
                         ids=["direct copy, read ahead", "staging table", "no reading ahead"])
def test_shipping_copies_every_new_row_once_in_batches(spool, pg_url, way):
    rows = add_exchanges(spool, 25)
    add_shadow(spool, rows[0]["id"], "small")
    shipper = shipper_for(spool, pg_url, batch_size=10, **way)
    assert shipper.ship_once() == 26
    assert shipper.counters.batches == 4  # 10 + 10 + 5 exchanges, 1 shadow
    assert shipped_ids(pg_url) == sorted(row["id"] for row in rows)
    assert shipper.ship_once() == 0
    more = add_exchanges(spool, 3)
    assert shipper.ship_once() == 3
    assert shipped_ids(pg_url) == sorted(row["id"] for row in rows + more)
    shipper.close()


def test_a_new_shipper_resumes_from_the_position_the_shared_store_recorded(spool, pg_url):
    add_exchanges(spool, 5)
    first = shipper_for(spool, pg_url)
    first.ship_once()
    first.close()
    add_exchanges(spool, 2)
    second = shipper_for(spool, pg_url)
    assert second.backlog() == 2
    assert second.ship_once() == 2
    assert pg_rows(pg_url, "select count(*) from exchanges") == [(7,)]
    second.close()


@pytest.mark.parametrize("direct", [True, False], ids=["direct copy", "staging table"])
def test_rows_shipped_again_after_a_lost_position_are_not_duplicated(spool, pg_url, direct):
    add_exchanges(spool, 4)
    shipper = shipper_for(spool, pg_url, direct=direct)
    shipper.ship_once()
    pg_rows(pg_url, "delete from _shadowtap_ship_positions")  # as if the last commit's position was lost
    assert shipper.ship_once() == 4  # read again...
    assert pg_rows(pg_url, "select count(*) from exchanges") == [(4,)]  # ...stored once
    shipper.close()


def test_a_shadow_answer_that_replaces_its_placeholder_is_shipped_again_and_replaces_it(spool, pg_url):
    rows = add_exchanges(spool, 1)
    add_shadow(spool, rows[0]["id"], "small", outcome="skipped")
    shipper = shipper_for(spool, pg_url)
    shipper.ship_once()
    spool.insert_capture([], [{"id": f"{rows[0]['id']}:small", "exchange_id": rows[0]["id"], "candidate": "small",
                               "outcome": "ok", "response_text": "late answer"}])
    assert shipper.ship_once() == 1
    assert pg_rows(pg_url, "select outcome, response_text from shadows") == [("ok", "late answer")]
    shipper.close()


def test_two_spools_ship_into_one_store_side_by_side(tmp_path, pg_url):
    spools = [CaptureStore.open(tmp_path / f"replica{index}.db") for index in range(2)]
    ids = [row["id"] for store in spools for row in add_exchanges(store, 6)]
    for store in spools:
        shipper = shipper_for(store, pg_url, batch_size=4)
        shipper.ship_once()
        shipper.close()
    assert shipped_ids(pg_url) == sorted(ids)
    assert len(pg_rows(pg_url, "select * from _shadowtap_ship_positions where table_name = 'exchanges'")) == 2


def test_an_unreachable_shared_store_fails_the_round_and_the_next_round_ships_everything(spool, pg_schema, pg_relay):
    url = schema_url(pg_schema, port=pg_relay.port)
    CaptureStore.open(url).close()  # migrated while reachable
    first = add_exchanges(spool, 3)
    shipper = shipper_for(spool, url)
    shipper.ship_once()
    pg_relay.stop()
    second = add_exchanges(spool, 4)
    with pytest.raises(StoreError):
        shipper.ship_once()
    with pytest.raises(StoreError):  # still down: it reconnects each round, and fails again
        shipper.ship_once()
    pg_relay.start()
    assert shipper.ship_once() == 4
    assert shipped_ids(url) == sorted(row["id"] for row in first + second)
    assert shipper.counters.rows == {"exchanges": 7}
    shipper.close()


def test_a_shipper_with_retention_days_prunes_old_exchanges_of_the_shared_store(spool, pg_url):
    old = add_exchanges(spool, 3, started_at=1_600_000_000)
    add_shadow(spool, old[0]["id"], "small")
    recent = add_exchanges(spool, 2)
    shipper = shipper_for(spool, pg_url, retention_days=30)
    shipper.ship_once()
    assert shipped_ids(pg_url) == sorted(row["id"] for row in recent)
    assert pg_rows(pg_url, "select count(*) from shadows") == [(0,)]
    assert shipper.counters.pruned == 3
    shipper.close()


def test_a_nul_character_postgres_cannot_store_is_replaced_rather_than_stopping_the_shipper(spool, pg_url):
    rows = add_exchanges(spool, 2)
    spool.sql.execute("update exchanges set response_text = ? where id = ?", ["a\x00b", rows[0]["id"]])
    spool.db.conn.commit()
    shipper = shipper_for(spool, pg_url)
    assert shipper.ship_once() == 2
    assert pg_rows(pg_url, f"select response_text from exchanges where id = '{rows[0]['id']}'") == [("a\ufffdb",)]
    shipper.close()


def test_a_batch_mixing_rows_shipped_before_and_new_ones_lands_whole(spool, pg_url):
    old = add_exchanges(spool, 4)
    shipper = shipper_for(spool, pg_url)
    shipper.ship_once()
    pg_rows(pg_url, "delete from _shadowtap_ship_positions")  # the position is lost...
    new = add_exchanges(spool, 3)  # ...and new rows come: one batch of both, the direct COPY refused
    assert shipper.ship_once() == 7
    assert shipped_ids(pg_url) == sorted(row["id"] for row in old + new)
    assert shipper.counters.rejected == 0
    shipper.close()
