"""Canary state and history: the only SQL for tables `canary_state` and `canary_events`, and the
guard loop's reads of canaried traffic.

Every function takes the store handle (or any of its parts). A change of share writes the state row
and one event in one transaction, so the history always explains the state. Every live process polls
`read_canary_states`; the guard loop and `shadowtap canary` write through `set_canary_share`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from shadowtap.core.store.backend import SqlBackend, backend_of, upsert_sql

STATUSES = ("off", "running", "rolled_back")
STATE_COLUMNS = ("candidate", "share", "status", "changed_by", "changed_at", "reason", "guard")
EVENT_COLUMNS = ("id", "candidate", "at", "share_before", "share_after", "changed_by", "reason", "guard",
                 "window_json")
# What the guards read of every canaried exchange in their window (no bodies: read every pass)...
TRAFFIC_COLUMNS = ("id", "started_at", "endpoint", "status", "served_by", "fallback_reason", "risk_tier", "task")
# ...and, once per exchange, what its answer is scored from (never headers).
ANSWER_COLUMNS = (*TRAFFIC_COLUMNS, "latency_ms", "cost_usd", "response_text", "response_tool_calls",
                  "finish_reason", "request_json", "shadowtap_metadata")


@dataclass(frozen=True)
class CanaryState:
    candidate: str
    share: float
    status: str            # off | running | rolled_back
    changed_by: str
    changed_at: float      # Unix seconds
    reason: str
    guard: str | None      # the guard that rolled it back, when one did


def read_canary_states(store: object) -> dict[str, CanaryState]:
    """Every candidate's current state, by name (a candidate never started has no row)."""
    sql = _sql(store)
    rows = sql.query(f"select {', '.join(STATE_COLUMNS)} from canary_state order by candidate")
    return {row["candidate"]: _state(row) for row in rows}


def set_canary_share(store: object, candidate: str, share: float, *, status: str, changed_by: str, reason: str,
                     guard: str | None = None, window: dict | None = None) -> CanaryState:
    """Set a candidate's share and status, and record the change as an event; returns the new state."""
    if not 0 <= share <= 1:
        raise ValueError(f"share = {share!r}: expected a number between 0 and 1")
    if status not in STATUSES:
        raise ValueError(f"status = {status!r}: expected one of {', '.join(STATUSES)}")
    sql = _sql(store)
    now = time.time()
    state = CanaryState(candidate, float(share), status, changed_by, now, reason, guard)
    with sql.transaction(immediate=True):
        before = sql.execute("select share from canary_state where candidate = ?", [candidate]).fetchone()
        sql.execute(upsert_sql("canary_state", STATE_COLUMNS, key="candidate"),
                    [getattr(state, column) for column in STATE_COLUMNS])
        sql.execute(upsert_sql("canary_events", EVENT_COLUMNS), [
            f"ce_{secrets.token_hex(8)}", candidate, now, float(before[0]) if before else 0.0, float(share),
            changed_by, reason, guard, orjson.dumps(window).decode() if window is not None else None])
    return state


def canary_events(store: object, candidate: str | None = None, limit: int = 100) -> list[dict]:
    """The latest `limit` changes (of one candidate, or all), oldest first; `window` is the parsed
    window_json (None for a change by hand)."""
    sql = _sql(store)
    where, params = ("where candidate = ?", [candidate]) if candidate is not None else ("", [])
    rows = list(sql.query(f"select {', '.join(EVENT_COLUMNS)} from canary_events {where} "
                          "order by at desc, id desc limit ?", [*params, int(limit)]))
    events = []
    for row in reversed(rows):
        window = row.pop("window_json")
        events.append({**row, "window": orjson.loads(window) if window else None})
    return events


def canaried_exchanges(store: object, since: str) -> list[dict]:
    """Exchanges started at or after `since` (ISO 8601, as stored) that a candidate answered or that
    fell back to the primary, oldest first, with TRAFFIC_COLUMNS only."""
    sql = _sql(store)
    return list(sql.query(
        f"select {', '.join(TRAFFIC_COLUMNS)} from exchanges where started_at >= ? "
        "and ((served_by is not null and served_by <> 'primary') or fallback_reason is not null) "
        "order by started_at, id", [since]))


def exchange_answers(store: object, exchange_ids: Sequence[str]) -> list[dict]:
    """These exchanges with ANSWER_COLUMNS, oldest first."""
    if not exchange_ids:
        return []
    sql = _sql(store)
    return list(sql.query(
        f"select {', '.join(ANSWER_COLUMNS)} from exchanges where id in ({sql.list_values(':ids')}) "
        "order by started_at, id", {"ids": orjson.dumps(list(exchange_ids)).decode()}))


def twinned_primary_exchanges(store: object, since: str, limit: int = 500) -> list[dict]:
    """The latest `limit` exchanges started at or after `since` that the primary answered (no canary,
    no fallback) and whose primary_twin answered too: the noise floor of agreement. Oldest first."""
    sql = _sql(store)
    columns = ", ".join(f"e.{column}" for column in ANSWER_COLUMNS)
    rows = list(sql.query(
        f"select {columns}, s.response_text as twin_text, s.response_tool_calls as twin_tool_calls "
        "from exchanges e join shadows s on s.exchange_id = e.id and s.candidate = 'primary_twin' "
        "and s.outcome = 'ok' where e.started_at >= ? and (e.served_by is null or e.served_by = 'primary') "
        "and e.fallback_reason is null order by e.started_at desc, e.id desc limit ?", [since, int(limit)]))
    return rows[::-1]


def twin_answers(store: object, exchange_ids: Sequence[str]) -> dict[str, dict]:
    """The primary's answer to each canaried request (its `primary_twin` shadow row, outcome ok)."""
    if not exchange_ids:
        return {}
    sql = _sql(store)
    rows = sql.query(
        "select exchange_id, candidate, response_text, response_tool_calls, finish_reason, latency_ms from shadows "
        f"where candidate = 'primary_twin' and outcome = 'ok' and exchange_id in ({sql.list_values(':ids')})",
        {"ids": orjson.dumps(list(exchange_ids)).decode()})
    return {row["exchange_id"]: row for row in rows}


def window_feedback(store: object, since: str | None, until: str | None = None) -> list[dict]:
    """Every feedback row on exchanges started in [since, until) (None: open), with who served the
    exchange (served_by, fallback_reason) and its risk_tier, task, latency_ms and cost_usd."""
    sql = _sql(store)
    return list(sql.query(
        "select f.id, f.exchange_id, f.outcome, f.edit_minutes, f.edit_ratio, f.reviewer, f.label, f.at, "
        "f.received_at, e.served_by, e.fallback_reason, e.risk_tier, e.task, e.latency_ms, e.cost_usd "
        "from feedback f join exchanges e on e.id = f.exchange_id where e.started_at >= :since "
        "and (cast(:until as text) is null or e.started_at < :until) "
        "order by f.exchange_id, f.id", {"since": since or "", "until": until}))


def canaried_counts(store: object, since: str | None = None, until: str | None = None) -> list[dict]:
    """Canaried exchanges in [since, until) (ISO 8601; None: open), counted by served_by,
    fallback_reason, risk_tier, task and, for fallbacks only, `started_at` (NULL for the others)."""
    sql = _sql(store)
    rows = list(sql.query(
        "select case when fallback_reason is null then null else started_at end as started_at, served_by, "
        "fallback_reason, risk_tier, task, count(*) as n from exchanges "
        "where ((served_by is not null and served_by <> 'primary') or fallback_reason is not null) "
        "and (cast(:since as text) is null or started_at >= :since) "
        "and (cast(:until as text) is null or started_at < :until) "
        "group by case when fallback_reason is null then null else started_at end, served_by, fallback_reason, "
        "risk_tier, task",
        {"since": since, "until": until}))
    # Sorted here: the backends order NULLs differently.
    columns = ("started_at", "served_by", "fallback_reason", "risk_tier", "task")
    return sorted(rows, key=lambda row: tuple(row[column] or "" for column in columns))


def _state(row: dict) -> CanaryState:
    return CanaryState(row["candidate"], float(row["share"]), row["status"], row["changed_by"],
                       float(row["changed_at"]), row["reason"] or "", row["guard"])


def _sql(store: object) -> SqlBackend:
    """The SQL backend behind the Store handle or one of its parts."""
    return backend_of(getattr(store, "captures", store))
