"""CaptureStore.insert_capture: one prepared statement per table and batch, storing what
sqlite-utils' insert_all stored; and the page size a new store is created with."""

import sqlite3

import pytest

from shadowtap.core.store import CaptureStore
from shadowtap.core.store.capture_store import NEW_STORE_PAGE_BYTES, WAL_CHECKPOINT_BYTES
from shadowtap.proxy.capture.record import CaptureRows
from tests.support.factories import raw_exchange, row_builder


@pytest.fixture
def store(tmp_path):
    opened = CaptureStore.open(tmp_path / "capture.db")
    yield opened
    opened.close()


def exchange_row(exchange_id: str, **columns) -> dict:
    return {"id": exchange_id, "started_at": "2026-12-07T21:40:00.000000+00:00", "method": "POST",
            "path": "/v1/chat/completions", "endpoint": "chat", **columns}


def stored(store, table: str, exchange_id: str) -> dict:
    return next(iter(store.sql.query(f"select * from {table} where id = ?", [exchange_id])))


def test_columns_a_row_lacks_are_stored_as_null_when_other_rows_of_the_batch_have_them(store):
    store.insert_capture([exchange_row("a", model="gpt-4o", status=200), exchange_row("b", ttft_ms=12.5)], [])
    assert (stored(store, "exchanges", "a")["ttft_ms"], stored(store, "exchanges", "a")["model"]) == (None, "gpt-4o")
    assert (stored(store, "exchanges", "b")["model"], stored(store, "exchanges", "b")["ttft_ms"]) == (None, 12.5)


def test_rows_with_their_columns_in_another_order_store_the_same_values(store):
    first = exchange_row("a", model="m", status=200)
    second = dict(reversed(list(exchange_row("b", status=201, model="n").items())))
    store.insert_capture([first, second], [])
    assert (stored(store, "exchanges", "b")["status"], stored(store, "exchanges", "b")["model"]) == (201, "n")


def test_dict_and_list_values_are_stored_as_json_text_as_sqlite_utils_stored_them(store):
    store.insert_capture([exchange_row("a", tags={"team": "café"}, response_tool_calls=[1, "x"])], [])
    row = stored(store, "exchanges", "a")
    assert (row["tags"], row["response_tool_calls"]) == ('{"team": "café"}', '[1, "x"]')


def test_bytes_are_stored_as_blobs(store):
    store.insert_capture([exchange_row("a", request_raw=bytearray(b"\xff{not json"), response_raw=b"\x00data")], [])
    row = stored(store, "exchanges", "a")
    assert (row["request_raw"], row["response_raw"]) == (b"\xff{not json", b"\x00data")


def test_a_batch_with_a_duplicate_exchange_is_rejected_whole(store):
    store.insert_capture([exchange_row("a")], [])
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_capture([exchange_row("b"), exchange_row("a")], [])
    assert store.count_exchanges() == 1


def test_a_shadow_row_replaces_the_earlier_one_for_the_same_candidate(store):
    shadow = {"id": "a:cand", "exchange_id": "a", "candidate": "cand", "outcome": "skipped", "skip_reason": "budget"}
    store.insert_capture([exchange_row("a")], [shadow])
    store.insert_capture([], [{"id": "a:cand", "exchange_id": "a", "candidate": "cand", "outcome": "ok"}])
    row = stored(store, "shadows", "a:cand")
    assert (row["outcome"], row["skip_reason"]) == ("ok", None)


def test_built_rows_all_have_every_exchange_column_in_one_order(store):
    builder = row_builder()
    rows = [builder.build(raw_exchange()), builder.build(raw_exchange(request=b"{not json")),
            builder.build(raw_exchange(request={"model": "m", "stream": True}))]
    columns = [column.name for column in store.db["exchanges"].columns]
    assert all(list(row) == list(rows[0]) for row in rows)
    assert sorted(rows[0]) == sorted(columns)
    store.insert_capture(CaptureRows.merge([CaptureRows([row]) for row in rows]).exchanges, [])
    assert store.count_exchanges() == 3


def test_new_store_gets_large_pages_and_a_checkpoint_every_few_mebibytes(store):
    page_bytes = store.db.execute("pragma page_size").fetchone()[0]
    assert page_bytes == NEW_STORE_PAGE_BYTES
    assert store.db.execute("pragma wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_BYTES // page_bytes


def test_existing_store_keeps_its_page_size(tmp_path):
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("create table t (x)")  # a store created with SQLite's default pages
    connection.close()
    store = CaptureStore.open(path)
    try:
        assert store.db.execute("pragma page_size").fetchone()[0] == 4096
        assert store.db.execute("pragma wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_BYTES // 4096
    finally:
        store.close()


def test_both_backends_store_every_column_when_rows_of_a_batch_have_different_ones(tmp_path, pg_url):
    exchanges = [exchange_row("a", model="m"), exchange_row("b", request_raw=b"{not json", ttft_ms=3.5)]
    shadows = [{"id": "a:x", "exchange_id": "a", "candidate": "x", "outcome": "skipped", "skip_reason": "budget"},
               {"id": "a:y", "exchange_id": "a", "candidate": "y", "outcome": "ok", "latency_ms": 12.0}]
    read_back = []
    for target in (tmp_path / "capture.db", pg_url):
        store = CaptureStore.open(target)
        try:
            store.insert_capture(exchanges, shadows)
            exchange, shadow = stored(store, "exchanges", "b"), stored(store, "shadows", "a:y")
            read_back.append([exchange["request_raw"], exchange["ttft_ms"], shadow["latency_ms"]])
        finally:
            store.close()
    assert read_back[0] == read_back[1] == [b"{not json", 3.5, 12.0]
