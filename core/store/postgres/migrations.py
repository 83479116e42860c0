"""The capture store's migrations for PostgreSQL: the same names, tables, columns, types and indexes
as core/store/migrations.py (tests/store/test_store_backends_agree.py holds the two to each other),
recorded in `_shadowtap_migrations`.

Append new migrations at the end, in both files; never edit one that has shipped. Text columns
sort bytewise (collate "C"), as SQLite's do, so ordered reads agree on both backends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

MIGRATION_SET = "shadowtap"
_TYPES = {str: 'text collate "C"', int: "bigint", float: "double precision", bytes: "bytea"}
# Taken by whoever migrates, so two processes opening an empty database at once do not race.
_LOCK_KEY = 0x5AD07A90

Migration = Callable[[psycopg.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append((function.__name__, function))
    return function


def create_table(conn: psycopg.Connection, name: str, columns: dict[str, type], *, pk: str,
                 not_null: frozenset[str] = frozenset()) -> None:
    """The twin of sqlite-utils' `Table.create`: same column order, types by Python type."""
    parts = []
    for column, kind in columns.items():
        spec = f"{column} {_TYPES[kind]}"
        spec += " primary key" if column == pk else (" not null" if column in not_null else "")
        parts.append(spec)
    conn.execute(f"create table {name} ({', '.join(parts)})")


def create_index(conn: psycopg.Connection, table: str, columns: list[str]) -> None:
    # sqlite-utils' naming, so both backends list the same index names.
    conn.execute(f"create index idx_{table}_{'_'.join(columns)} on {table} ({', '.join(columns)})")


def pending(conn: psycopg.Connection) -> list[str]:
    applied = _applied(conn)
    return [name for name, _ in MIGRATIONS if name not in applied]


def apply(conn: psycopg.Connection) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns the names applied."""
    done: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        conn.execute("create table if not exists _shadowtap_migrations (id serial primary key, "
                     "migration_set text not null, name text not null, applied_at text not null)")
        # Bookkeeping of `shadowtap ship` (core/store/shipping.py): how far each spool's tables have come.
        conn.execute("create table if not exists _shadowtap_ship_positions (store_id text not null, "
                     "table_name text not null, last_rowid bigint not null, shipped_at timestamptz not null "
                     "default now(), primary key (store_id, table_name))")
        applied = _applied(conn)
        for name, function in MIGRATIONS:
            if name in applied:
                continue
            with conn.transaction():
                function(conn)
                conn.execute("insert into _shadowtap_migrations (migration_set, name, applied_at) values (%s, %s, %s)",
                             [MIGRATION_SET, name, datetime.now(UTC).isoformat()])
            done.append(name)
    return done


def _applied(conn: psycopg.Connection) -> set[str]:
    if not conn.execute("select to_regclass('_shadowtap_migrations') is not null").fetchone()[0]:  # type: ignore[index]
        return set()
    rows = conn.execute("select name from _shadowtap_migrations where migration_set = %s", [MIGRATION_SET])
    return {row[0] for row in rows}


@migration
def m001_exchanges(conn: psycopg.Connection) -> None:
    create_table(conn, "exchanges", {
        "id": str, "started_at": str, "method": str, "path": str, "query": str, "endpoint": str, "model": str,
        "response_model": str, "is_stream": int, "status": int, "latency_ms": float, "ttfb_ms": float,
        "ttft_ms": float, "prompt_tokens": int, "completion_tokens": int, "total_tokens": int, "cost_usd": float,
        "request_json": str, "request_raw": bytes, "request_headers": str, "response_headers": str,
        "response_json": str, "response_raw": bytes, "response_text": str, "response_tool_calls": str,
        "finish_reason": str, "tags": str, "task": str, "risk_tier": str, "shadowtap_metadata": str,
        "client_key_hash": str, "client_disconnected": int, "stream_incomplete": int, "request_unparseable": int,
        "response_unparseable": int, "upstream_error": str, "capture_truncated": int,
    }, pk="id", not_null=frozenset({"started_at", "method", "path", "endpoint"}))
    for columns in (["started_at"], ["endpoint", "started_at"], ["model", "started_at"], ["status"]):
        create_index(conn, "exchanges", columns)


@migration
def m002_store_meta(conn: psycopg.Connection) -> None:
    create_table(conn, "store_meta", {"key": str, "value": str}, pk="key")
    conn.execute("insert into store_meta (key, value) values ('client_key_salt', %s)", [secrets.token_hex(32)])


@migration
def m003_shadows(conn: psycopg.Connection) -> None:
    create_table(conn, "shadows", {
        "id": str, "exchange_id": str, "candidate": str, "model": str, "is_twin": int, "outcome": str,
        "skip_reason": str, "started_at": str, "latency_ms": float, "ttft_ms": float, "is_stream": int,
        "response_text": str, "response_tool_calls": str, "finish_reason": str, "prompt_tokens": int,
        "completion_tokens": int, "total_tokens": int, "cost_usd": float, "error_class": str,
        "error_message": str,
    }, pk="id", not_null=frozenset({"exchange_id", "candidate", "outcome"}))
    create_index(conn, "shadows", ["exchange_id"])
    create_index(conn, "shadows", ["candidate", "started_at"])


@migration
def m004_scores(conn: psycopg.Connection) -> None:
    create_table(conn, "scores", {
        "id": str, "exchange_id": str, "source": str, "evaluator": str, "evaluator_version": str, "outcome": str,
        "value": float, "label": str, "details": str, "error": str, "scored_at": str, "duration_ms": float,
    }, pk="id", not_null=frozenset({"exchange_id", "source", "evaluator", "evaluator_version", "outcome",
                                    "scored_at"}))
    create_index(conn, "scores", ["exchange_id"])
    create_index(conn, "scores", ["evaluator", "source"])


@migration
def m005_replay(conn: psycopg.Connection) -> None:
    create_table(conn, "replay_runs", {
        "id": str, "created_at": str, "selection": str, "target": str, "k": int, "pass_criterion": str,
        "config": str, "status": str, "finished_at": str,
    }, pk="id", not_null=frozenset({"created_at", "selection", "target", "k", "status"}))
    create_table(conn, "replay_results", {
        "id": str, "run_id": str, "exchange_id": str, "repetition": int, "perturbation": str, "outcome": str,
        "started_at": str, "latency_ms": float, "response_text": str, "response_tool_calls": str,
        "finish_reason": str, "prompt_tokens": int, "completion_tokens": int, "total_tokens": int,
        "cost_usd": float, "error": str, "passed": int, "pass_value": float, "diff": str,
    }, pk="id", not_null=frozenset({"run_id", "exchange_id", "repetition", "outcome"}))
    create_index(conn, "replay_results", ["run_id", "exchange_id"])


@migration
def m006_feedback(conn: psycopg.Connection) -> None:
    create_table(conn, "feedback", {
        "id": str, "exchange_id": str, "outcome": str, "edit_minutes": float, "edit_distance": int,
        "edit_ratio": float, "reviewer": str, "label": str, "comment": str, "source": str, "at": str,
        "received_at": str, "fingerprint": str,
    }, pk="id", not_null=frozenset({"exchange_id", "outcome", "source", "at", "received_at", "fingerprint"}))
    create_index(conn, "feedback", ["exchange_id"])
    create_index(conn, "feedback", ["at"])


@migration
def m007_store_id(conn: psycopg.Connection) -> None:
    conn.execute("insert into store_meta (key, value) values ('store_id', %s)", [secrets.token_hex(16)])


@migration
def m008_golden_sets(conn: psycopg.Connection) -> None:
    create_table(conn, "golden_sets", {
        "id": str, "name": str, "version": int, "created_at": str, "created_by": str, "description": str,
        "pass_criterion": str, "min_pass_rate": float, "items": int,
    }, pk="id", not_null=frozenset({"name", "version", "created_at", "pass_criterion", "min_pass_rate", "items"}))
    create_index(conn, "golden_sets", ["name", "version"])
    create_table(conn, "golden_items", {
        "id": str, "set_id": str, "exchange_id": str, "endpoint": str, "path": str, "request_json": str,
        "reference_text": str, "reference_tool_calls": str, "reference_source": str, "shadowtap_metadata": str,
    }, pk="id", not_null=frozenset({"set_id", "exchange_id", "request_json", "reference_source"}))
    create_index(conn, "golden_items", ["set_id"])
    create_table(conn, "golden_runs", {
        "id": str, "set_id": str, "target_name": str, "target": str, "k": int, "created_at": str, "items": int,
        "items_judged": int, "items_passed": int, "pass_rate": float, "min_pass_rate": float, "passed": int,
        "errors": str,
    }, pk="id", not_null=frozenset({"set_id", "target_name", "k", "created_at", "items", "items_judged",
                                    "items_passed", "passed"}))
    create_index(conn, "golden_runs", ["set_id"])


@migration
def m009_review_queues(conn: psycopg.Connection) -> None:
    create_table(conn, "review_queues", {
        "id": str, "name": str, "filter": str, "reviewers_per_item": int, "guideline_path": str,
        "guideline_hash": str, "category": str, "created_at": str, "created_by": str, "items": int,
    }, pk="id", not_null=frozenset({"name", "filter", "reviewers_per_item", "category", "created_at", "items"}))
    create_table(conn, "review_queue_items", {
        "id": str, "queue_id": str, "exchange_id": str, "position": int,
    }, pk="id", not_null=frozenset({"queue_id", "exchange_id", "position"}))
    create_index(conn, "review_queue_items", ["queue_id", "position"])
    create_table(conn, "review_queue_labels", {
        "id": str, "queue_id": str, "exchange_id": str, "reviewer": str, "feedback_id": str, "guideline_hash": str,
        "labelled_at": str,
    }, pk="id", not_null=frozenset({"queue_id", "exchange_id", "reviewer", "feedback_id", "labelled_at"}))
    create_index(conn, "review_queue_labels", ["queue_id", "exchange_id"])


@migration
def m010_canary(conn: psycopg.Connection) -> None:
    for column in ("served_by", "fallback_reason"):
        conn.execute(f"alter table exchanges add column {column} {_TYPES[str]}")
    create_table(conn, "canary_state", {
        "candidate": str, "share": float, "status": str, "changed_by": str, "changed_at": float, "reason": str,
        "guard": str,
    }, pk="candidate", not_null=frozenset({"share", "status", "changed_by", "changed_at"}))
    create_table(conn, "canary_events", {
        "id": str, "candidate": str, "at": float, "share_before": float, "share_after": float, "changed_by": str,
        "reason": str, "guard": str, "window_json": str,
    }, pk="id", not_null=frozenset({"candidate", "at", "share_before", "share_after", "changed_by"}))
    create_index(conn, "canary_events", ["candidate", "at"])


@migration
def m011_cache_tokens_and_worker_lag(conn: psycopg.Connection) -> None:
    for column in ("cache_creation_tokens", "cache_read_tokens"):
        conn.execute(f"alter table exchanges add column {column} {_TYPES[int]}")
    conn.execute(f"alter table shadows add column worker_lag_ms {_TYPES[float]}")
    create_index(conn, "scores", ["scored_at"])
