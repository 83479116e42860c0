"""The capture store's schema: migrations apply once, and every column is pinned."""

import sqlite3

from shadowtap.core.store import CaptureStore
from shadowtap.core.store.migrations import migrations

EXCHANGE_COLUMNS = [
    "id", "started_at", "method", "path", "query", "endpoint", "model", "response_model", "is_stream",
    "status", "latency_ms", "ttfb_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "total_tokens",
    "cost_usd", "request_json", "request_raw", "request_headers", "response_headers", "response_json",
    "response_raw", "response_text", "response_tool_calls", "finish_reason", "tags", "task", "risk_tier",
    "shadowtap_metadata", "client_key_hash", "client_disconnected", "stream_incomplete",
    "request_unparseable", "response_unparseable", "upstream_error", "capture_truncated",
    "served_by", "fallback_reason", "cache_creation_tokens", "cache_read_tokens",
]

SHADOW_COLUMNS = [
    "id", "exchange_id", "candidate", "model", "is_twin", "outcome", "skip_reason", "started_at", "latency_ms",
    "ttft_ms", "is_stream", "response_text", "response_tool_calls", "finish_reason", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost_usd", "error_class", "error_message", "worker_lag_ms",
]

SCORE_COLUMNS = [
    "id", "exchange_id", "source", "evaluator", "evaluator_version", "outcome", "value", "label", "details",
    "error", "scored_at", "duration_ms",
]

FEEDBACK_COLUMNS = [
    "id", "exchange_id", "outcome", "edit_minutes", "edit_distance", "edit_ratio", "reviewer", "label",
    "comment", "source", "at", "received_at", "fingerprint",
]


def test_migrating_an_empty_database_creates_the_documented_tables(tmp_path):
    store = CaptureStore.open(tmp_path / "s.db")
    assert set(store.db.table_names()) >= {"exchanges", "shadows", "scores", "store_meta", "_sqlite_migrations"}
    assert [c.name for c in store.db["exchanges"].columns] == EXCHANGE_COLUMNS
    assert [c.name for c in store.db["store_meta"].columns] == ["key", "value"]
    assert [c.name for c in store.db["shadows"].columns] == SHADOW_COLUMNS
    assert [c.name for c in store.db["scores"].columns] == SCORE_COLUMNS
    assert [c.name for c in store.db["feedback"].columns] == FEEDBACK_COLUMNS
    created = {tuple(index.columns) for index in store.db["scores"].indexes if index.origin == "c"}
    assert created == {("exchange_id",), ("evaluator", "source"), ("scored_at",)}


def test_reopening_applies_no_migration_twice_and_keeps_the_salt(tmp_path):
    first = CaptureStore.open(tmp_path / "s.db")
    salt = first.client_key_salt()
    first.close()
    second = CaptureStore.open(tmp_path / "s.db")
    assert second.client_key_salt() == salt
    assert migrations.pending(second.db) == []


def test_store_uses_wal_mode(tmp_path):
    CaptureStore.open(tmp_path / "s.db").close()
    mode = sqlite3.connect(tmp_path / "s.db").execute("pragma journal_mode").fetchone()[0]
    assert mode == "wal"
