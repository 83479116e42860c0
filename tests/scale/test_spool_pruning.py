"""With [store] spool_keep_hours, the shipper deletes from its spool the rows it has shipped once
they are that old; a row not shipped yet is never deleted, and the shared store keeps everything."""

from __future__ import annotations

import pytest

from shadowtap.core.errors import StoreError
from shadowtap.core.ship.shipper import Shipper
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.retention import cutoff_days_ago, prune_shipped
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows, schema_url

OLD = 1_600_000_000  # September 2020


@pytest.fixture
def spool(tmp_path):
    store = CaptureStore.open(tmp_path / "spool.db")
    yield store
    store.close()


def spool_ids(spool: CaptureStore, table: str = "exchanges") -> list[str]:
    return sorted(row[0] for row in spool.sql.execute(f"select id from {table}").fetchall())


def add_feedback(spool: CaptureStore, exchange_id: str, received_at: str) -> None:
    spool.sql.execute("insert into feedback (id, exchange_id, outcome, source, at, received_at, fingerprint) "
                      "values (?, ?, 'accepted', 'api', ?, ?, ?)",
                      [f"fb-{exchange_id}", exchange_id, received_at, received_at, f"fp-{exchange_id}"])
    spool.db.conn.commit()


def test_shipped_rows_older_than_spool_keep_hours_leave_the_spool_and_stay_in_the_shared_store(spool, pg_url):
    old = add_exchanges(spool, 3, started_at=OLD)
    add_shadow(spool, old[0]["id"], "small")
    recent = add_exchanges(spool, 2)
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url), spool_keep_hours=24)
    assert shipper.ship_once() == 6
    assert spool_ids(spool) == sorted(row["id"] for row in recent)
    assert spool_ids(spool, "shadows") == []
    assert shipper.counters.spool_pruned == 3
    assert pg_rows(pg_url, "select count(*) from exchanges") == [(5,)]
    assert pg_rows(pg_url, "select count(*) from shadows") == [(1,)]
    shipper.close()


def test_without_spool_keep_hours_the_spool_keeps_every_row(spool, pg_url):
    add_exchanges(spool, 2, started_at=OLD)
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    shipper.ship_once()
    assert len(spool_ids(spool)) == 2 and shipper.counters.spool_pruned == 0
    shipper.close()


def test_rows_not_shipped_yet_are_never_pruned_however_old(spool, pg_url):
    old = add_exchanges(spool, 2, started_at=OLD)
    add_shadow(spool, old[0]["id"], "small")
    # Only exchanges are shipped: the old exchanges go, their shadow row (not shipped) stays.
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url), tables=("exchanges",), spool_keep_hours=1)
    shipper.ship_once()
    assert spool_ids(spool) == []
    assert spool_ids(spool, "shadows") == [f"{old[0]['id']}:small"]
    shipper.close()
    more = add_exchanges(spool, 2, started_at=OLD)  # old, and not shipped at all
    result = prune_shipped(spool, cutoff_days_ago(1 / 24), {"exchanges": 0})
    assert result.exchanges == 0 and spool_ids(spool) == sorted(row["id"] for row in more)


def test_a_spool_is_not_pruned_while_the_shared_store_is_unreachable(spool, pg_schema, pg_relay):
    url = schema_url(pg_schema, port=pg_relay.port)
    CaptureStore.open(url).close()
    add_exchanges(spool, 2, started_at=OLD)
    pg_relay.stop()
    shipper = Shipper(spool, lambda: CaptureStore.open(url), spool_keep_hours=1)
    with pytest.raises(StoreError):
        shipper.ship_once()
    assert len(spool_ids(spool)) == 2
    shipper.close()


def test_late_feedback_whose_exchange_was_pruned_goes_once_shipped_and_old(spool, pg_url):
    (gone,) = add_exchanges(spool, 1, started_at=OLD)
    first = Shipper(spool, lambda: CaptureStore.open(pg_url), spool_keep_hours=1)
    first.ship_once()
    first.close()
    assert spool_ids(spool) == []
    add_feedback(spool, gone["id"], "2020-09-20T00:00:00.000000+00:00")  # arrived after the prune
    add_feedback(spool, "elsewhere", "2999-01-01T00:00:00.000000+00:00")  # about another replica's exchange
    second = Shipper(spool, lambda: CaptureStore.open(pg_url), spool_keep_hours=1)
    second.ship_once()
    second.close()
    assert spool_ids(spool, "feedback") == ["fb-elsewhere"]  # shipped, but not old yet
    assert pg_rows(pg_url, "select count(*) from feedback") == [(2,)]


def test_a_prune_past_its_time_budget_stops_between_batches_and_the_next_one_goes_on(spool, pg_url):
    add_exchanges(spool, 5, started_at=OLD)
    shipper = Shipper(spool, lambda: CaptureStore.open(pg_url))
    shipper.ship_once()
    shipper.close()
    positions = {"exchanges": 10**9}
    first = prune_shipped(spool, cutoff_days_ago(1), positions, batch_size=2, budget_s=0)
    assert (first.exchanges, first.more) == (0, True)  # a budget already spent: nothing, and more to do
    rest = prune_shipped(spool, cutoff_days_ago(1), positions, batch_size=2)
    assert (rest.exchanges, rest.more) == (5, False)
    assert spool_ids(spool) == []
