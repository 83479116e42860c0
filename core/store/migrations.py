"""Versioned schema migrations for the capture store, applied once each, in order.

Append new migrations at the end; never edit one that has shipped. A test migrates an empty
database and pins every table's columns.
"""

import secrets

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("shadowtap")


@migrations()
def m001_exchanges(db: Database) -> None:
    db.table("exchanges").create(
        {
            "id": str,                  # exchange id, also sent to the client as x-shadowtap-exchange-id
            "started_at": str,          # ISO 8601 UTC, when the proxy received the request
            "method": str,
            "path": str,                # request path as received, e.g. /v1/chat/completions
            "query": str,
            "endpoint": str,            # chat.completions | completions | responses | embeddings | other
            "model": str,               # model the client asked for
            "response_model": str,      # model the primary says answered
            "is_stream": int,
            "status": int,              # primary's HTTP status (502/504 when it could not be reached)
            "latency_ms": float,        # request received -> last byte relayed
            "ttfb_ms": float,           # request received -> first response byte from the primary
            "ttft_ms": float,           # streams: request received -> first content-bearing event
            "prompt_tokens": int,
            "completion_tokens": int,
            "total_tokens": int,
            "cost_usd": float,          # litellm price tables; NULL when the model is unknown
            "request_json": str,        # parsed request body (JSON text, redacted, shadowtap field removed)
            "request_raw": bytes,       # body bytes when they were not valid JSON
            "request_headers": str,     # JSON object of forwarded headers, secrets removed
            "response_headers": str,    # JSON object of the primary's response headers
            "response_json": str,       # parsed non-stream response body (JSON text, redacted)
            "response_raw": bytes,      # decoded response bytes when not JSON (SSE text for streams)
            "response_text": str,       # assembled assistant text (redacted)
            "response_tool_calls": str, # JSON list of tool calls
            "finish_reason": str,
            "tags": str,                # JSON object from x-shadowtap-* headers
            "task": str,
            "risk_tier": str,
            "shadowtap_metadata": str,  # JSON of the request's `shadowtap` body field
            "client_key_hash": str,     # keyed hash of the client's key, to group traffic by client
            "client_disconnected": int,
            "stream_incomplete": int,
            "request_unparseable": int,
            "response_unparseable": int,
            "upstream_error": str,      # why the primary could not be reached or its stream broke
            "capture_truncated": int,   # body larger than [store] max_capture_body_bytes
        },
        pk="id",
        not_null={"started_at", "method", "path", "endpoint"},
    )
    db.table("exchanges").create_index(["started_at"])
    db.table("exchanges").create_index(["endpoint", "started_at"])
    db.table("exchanges").create_index(["model", "started_at"])
    db.table("exchanges").create_index(["status"])


@migrations()
def m002_store_meta(db: Database) -> None:
    db.table("store_meta").create({"key": str, "value": str}, pk="key")
    # The salt for client-key hashes lives with the data it protects, so hashes stay stable
    # across restarts without anyone configuring a secret.
    db.table("store_meta").insert({"key": "client_key_salt", "value": secrets.token_hex(32)})


@migrations()
def m003_shadows(db: Database) -> None:
    # One row per (exchange, candidate) decision: an answer, an error, or why it was not sent.
    db.table("shadows").create(
        {
            "id": str,                  # "<exchange id>:<candidate name>"
            "exchange_id": str,
            "candidate": str,           # candidate name from [[candidates]], or "primary_twin"
            "model": str,               # litellm model string used
            "is_twin": int,             # 1 for the primary's own second answer (noise floor)
            "outcome": str,             # ok | error | timeout | skipped | cancelled
            "skip_reason": str,         # sampled_out | saturated | over_budget | breaker_open | ineligible | ...
            "started_at": str,
            "latency_ms": float,
            "ttft_ms": float,
            "is_stream": int,
            "response_text": str,
            "response_tool_calls": str, # JSON list, OpenAI shape
            "finish_reason": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "total_tokens": int,
            "cost_usd": float,
            "error_class": str,
            "error_message": str,       # secrets scrubbed
        },
        pk="id",
        not_null={"exchange_id", "candidate", "outcome"},
    )
    db.table("shadows").create_index(["exchange_id"])
    db.table("shadows").create_index(["candidate", "started_at"])


@migrations()
def m004_scores(db: Database) -> None:
    # One row per (exchange, answer source, evaluator); rescoring with a newer evaluator version
    # replaces the row, so the table always holds each answer's latest verdict.
    db.table("scores").create(
        {
            "id": str,                  # "<exchange id>:<source>:<evaluator>"
            "exchange_id": str,
            "source": str,              # "primary", "primary_twin" or a candidate name
            "evaluator": str,
            "evaluator_version": str,
            "outcome": str,             # score | not_applicable | error
            "value": float,             # in [0, 1] when outcome = score, else NULL
            "label": str,               # the score's verdict ("grounded", "stale", "invalid", ...)
            "details": str,             # JSON object: what the verdict rests on, or why not applicable
            "error": str,               # "<ExceptionClass>: message" when outcome = error, secrets scrubbed
            "scored_at": str,           # ISO 8601 UTC
            "duration_ms": float,
        },
        pk="id",
        not_null={"exchange_id", "source", "evaluator", "evaluator_version", "outcome", "scored_at"},
    )
    db.table("scores").create_index(["exchange_id"])
    db.table("scores").create_index(["evaluator", "source"])


@migrations()
def m005_replay(db: Database) -> None:
    # A replay run re-sends selected captured requests to a target; its results are keyed so a
    # resumed run can tell what is already done.
    db.table("replay_runs").create(
        {
            "id": str,                  # short random id, printed by `shadowtap replay run`
            "created_at": str,          # ISO 8601 UTC
            "selection": str,           # JSON: the filters as given and the exchange ids they chose
            "target": str,              # JSON: kind, model, api_base, api_key_env (a name, never a key), patches
            "k": int,                   # repetitions per exchange
            "pass_criterion": str,      # "agreement>=0.8", "contract", "<evaluator>>=<threshold>"
            "config": str,              # JSON snapshot of the config used, secrets removed (env var names only)
            "status": str,              # running | complete | over_budget
            "finished_at": str,
        },
        pk="id",
        not_null={"created_at", "selection", "target", "k", "status"},
    )
    db.table("replay_results").create(
        {
            "id": str,                  # "<run>:<exchange>:<repetition>[:<perturbation>]"
            "run_id": str,
            "exchange_id": str,
            "repetition": int,          # 0 .. k-1
            "perturbation": str,        # NULL for the request as captured
            "outcome": str,             # ok | error | timeout | skipped
            "started_at": str,
            "latency_ms": float,
            "response_text": str,
            "response_tool_calls": str, # JSON list, OpenAI shape; recorded, never executed
            "finish_reason": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "total_tokens": int,
            "cost_usd": float,
            "error": str,               # "<ExceptionClass>: message", secrets scrubbed
            "passed": int,              # 1/0 by the run's pass criterion; NULL when it does not apply
            "pass_value": float,        # the criterion's score, when it has one
            "diff": str,                # JSON: replay.diff.diff_answers against the captured answer
        },
        pk="id",
        not_null={"run_id", "exchange_id", "repetition", "outcome"},
    )
    db.table("replay_results").create_index(["run_id", "exchange_id"])


@migrations()
def m006_feedback(db: Database) -> None:
    # What really happened to a captured answer, told by the app or a reviewer (POST
    # /shadowtap/feedback or `shadowtap feedback import`). One row per feedback id; posting the
    # same id again with the same content changes nothing.
    db.table("feedback").create(
        {
            "id": str,                  # client-supplied feedback id, or "fb_" + a hash of the content
            "exchange_id": str,         # a captured exchange (x-shadowtap-exchange-id); never unknown
            "outcome": str,             # accepted | edited | escalated | rejected | policy_violation
            "edit_minutes": float,      # human effort spent correcting the answer, when given
            "edit_distance": int,       # Levenshtein distance, captured answer -> edited text, when given
            "edit_ratio": float,        # edit_distance / max(len(answer), len(edited)), in [0, 1]
            "reviewer": str,            # who judged it (free id); NULL when the app reported it
            "label": str,               # free label, e.g. a review category
            "comment": str,             # redacted like captured text
            "source": str,              # api | import
            "at": str,                  # ISO 8601 UTC, when the outcome happened (default: received_at)
            "received_at": str,         # ISO 8601 UTC, when shadowtap stored it
            "fingerprint": str,         # hash of the content, to tell a replay from a conflicting reuse of the id
        },
        pk="id",
        not_null={"exchange_id", "outcome", "source", "at", "received_at", "fingerprint"},
    )
    db.table("feedback").create_index(["exchange_id"])
    db.table("feedback").create_index(["at"])


@migrations()
def m007_store_id(db: Database) -> None:
    # Names this store wherever its rows are shipped: a shipper keeps its place in this spool by it,
    # so a spool replaced by a new file is shipped from its start, not from the old one's position.
    db.table("store_meta").insert({"key": "store_id", "value": secrets.token_hex(16)})


@migrations()
def m008_golden_sets(db: Database) -> None:
    # Golden sets (`shadowtap golden`, the review UI): named versions of production exchanges with a
    # reference answer, as snapshots that outlive the exchanges; and each run of a target on one.
    db.table("golden_sets").create(
        {
            "id": str,                  # "<name>@<version>"
            "name": str,
            "version": int,             # 1, 2, ...: a version never changes once written
            "created_at": str,          # ISO 8601 UTC
            "created_by": str,          # a reviewer's name, when one made it
            "description": str,
            "pass_criterion": str,      # "agreement>=0.8" (against the reference), "contract", ...
            "min_pass_rate": float,     # share of items that must pass for `golden run` to exit 0
            "items": int,
        },
        pk="id",
        not_null={"name", "version", "created_at", "pass_criterion", "min_pass_rate", "items"},
    )
    db.table("golden_sets").create_index(["name", "version"])
    db.table("golden_items").create(
        {
            "id": str,                  # "<set id>:<exchange id>"
            "set_id": str,
            "exchange_id": str,         # where it came from (the exchange may since be pruned)
            "endpoint": str,
            "path": str,
            "request_json": str,        # the request as captured (redacted)
            "reference_text": str,      # the answer the target should give
            "reference_tool_calls": str,  # JSON list, OpenAI shape
            "reference_source": str,    # "primary", or "review:<reviewer>"
            "shadowtap_metadata": str,  # contexts and tags, for evaluators that need them
        },
        pk="id",
        not_null={"set_id", "exchange_id", "request_json", "reference_source"},
    )
    db.table("golden_items").create_index(["set_id"])
    db.table("golden_runs").create(
        {
            "id": str,                  # the replay run's id (its results are in replay_results)
            "set_id": str,
            "target_name": str,         # "candidate:NAME", "model:MODEL", "primary:..."
            "target": str,              # JSON, as a replay run records it
            "k": int,
            "created_at": str,
            "items": int,
            "items_judged": int,        # items whose every call answered
            "items_passed": int,        # judged items whose k answers all passed
            "pass_rate": float,         # items_passed / items_judged
            "min_pass_rate": float,
            "passed": int,              # 1: every item judged and pass_rate >= min_pass_rate
            "errors": str,              # JSON: failed calls by reason
        },
        pk="id",
        not_null={"set_id", "target_name", "k", "created_at", "items", "items_judged", "items_passed", "passed"},
    )
    db.table("golden_runs").create_index(["set_id"])


@migrations()
def m009_review_queues(db: Database) -> None:
    # Review queues of the review UI: exchanges chosen by a filter, each to be labelled by N
    # reviewers under one guideline version; and which feedback row labelled which queue item.
    db.table("review_queues").create(
        {
            "id": str,                  # short random id
            "name": str,
            "filter": str,              # JSON: the exchange-list filter and sort it was built from
            "reviewers_per_item": int,
            "guideline_path": str,      # the guideline file reviewers follow, as given
            "guideline_hash": str,      # sha256 of its content when the queue was made: the version
            "category": str,            # exchanges column agreement is broken down by (task, risk_tier, endpoint)
            "created_at": str,
            "created_by": str,
            "items": int,
        },
        pk="id",
        not_null={"name", "filter", "reviewers_per_item", "category", "created_at", "items"},
    )
    db.table("review_queue_items").create(
        {
            "id": str,                  # "<queue id>:<exchange id>"
            "queue_id": str,
            "exchange_id": str,
            "position": int,            # order of the filter it was built from
        },
        pk="id",
        not_null={"queue_id", "exchange_id", "position"},
    )
    db.table("review_queue_items").create_index(["queue_id", "position"])
    db.table("review_queue_labels").create(
        {
            "id": str,                  # "<queue id>:<exchange id>:<reviewer>"
            "queue_id": str,
            "exchange_id": str,
            "reviewer": str,
            "feedback_id": str,         # the feedback row the label is
            "guideline_hash": str,      # the guideline version it was given under
            "labelled_at": str,
        },
        pk="id",
        not_null={"queue_id", "exchange_id", "reviewer", "feedback_id", "labelled_at"},
    )
    db.table("review_queue_labels").create_index(["queue_id", "exchange_id"])


@migrations()
def m010_canary(db: Database) -> None:
    # Canaries (`shadowtap canary`): who answered each live request, why a canaried one fell back to
    # the primary, each candidate's current share of live traffic, and every change of that share.
    # served_by: NULL or "primary" when the primary answered, else the candidate's name;
    # fallback_reason: why a canaried request was answered by the primary (contract_invalid, ...).
    db.table("exchanges").add_column("served_by", str)
    db.table("exchanges").add_column("fallback_reason", str)
    db.table("canary_state").create(
        {
            "candidate": str,           # a [[candidates]] name with a [candidates.canary] table
            "share": float,             # share of eligible live requests it answers, 0 .. 1
            "status": str,              # off | running | rolled_back
            "changed_by": str,          # `--by`, the OS user, or "guard" for an automatic rollback
            "changed_at": float,        # Unix seconds
            "reason": str,
            "guard": str,               # the guard that rolled it back, when one did
        },
        pk="candidate",
        not_null={"share", "status", "changed_by", "changed_at"},
    )
    db.table("canary_events").create(
        {
            "id": str,                  # "ce_" + random hex
            "candidate": str,
            "at": float,                # Unix seconds
            "share_before": float,
            "share_after": float,
            "changed_by": str,
            "reason": str,
            "guard": str,               # the guard that fired, for an automatic rollback
            "window_json": str,         # JSON: the guard window and its numbers, for an automatic rollback
        },
        pk="id",
        not_null={"candidate", "at", "share_before", "share_after", "changed_by"},
    )
    db.table("canary_events").create_index(["candidate", "at"])


@migrations()
def m011_cache_tokens_and_worker_lag(db: Database) -> None:
    # Prompt tokens written to and read from the provider's prompt cache (Anthropic's
    # cache_creation/cache_read_input_tokens, OpenAI's cached_tokens): already counted in
    # prompt_tokens, priced at the cache rates in cost_usd. NULL when the API reported none.
    db.table("exchanges").add_column("cache_creation_tokens", int)
    db.table("exchanges").add_column("cache_read_tokens", int)
    # How long the request waited for the shadow worker to start this call (NULL for a skip).
    db.table("shadows").add_column("worker_lag_ms", float)
    # The shipper's score export to OTLP reads the scores written since it last looked.
    db.table("scores").create_index(["scored_at"])
