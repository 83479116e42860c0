"""freshness: context age against the max-age policy, versions against the registry of current ones."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shadowtap.core.config import ContextsConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.base import NotApplicable
from shadowtap.evaluators.freshness import FreshnessEvaluator
from shadowtap.evaluators.items import build_items
from tests.support.factories import raw_exchange, row_builder

REQUEST_TIME = datetime(2026, 11, 20, tzinfo=UTC)


def days_before_request(days: float) -> str:
    return (REQUEST_TIME - timedelta(days=days)).isoformat()


def exchange_row(contexts: list[dict], headers: list | None = None) -> dict:
    request = {"model": "m", "messages": [{"role": "user", "content": "q"}], "shadowtap": {"contexts": contexts}}
    raw = raw_exchange(request=request, started_at=REQUEST_TIME.timestamp(), request_headers=headers)
    return row_builder().build(raw)


def score(evaluator, row, source="primary", shadows=()):
    item = build_items(row, shadows, ContextsConfig())[source]
    assert evaluator.applies(item)
    return asyncio.run(evaluator.score(item))


def evaluator_from(tmp_path, freshness: dict, files: dict | None = None):
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"}, "freshness": freshness})
    return FreshnessEvaluator.from_config(config, config_dir=tmp_path)


def test_context_older_than_the_policy_is_stale_and_listed_when_scored():
    evaluator = FreshnessEvaluator(default_max_age_days=30)
    result = score(evaluator, exchange_row([{"id": "old", "text": "a", "updated_at": days_before_request(45)},
                                            {"id": "new", "text": "b", "updated_at": days_before_request(2)}]))
    assert (result.value, result.label) == (0.5, "stale")
    [stale] = result.details["stale"]
    assert (stale["id"], stale["reason"], stale["age_days"], stale["max_age_days"]) == ("old", "too_old", 45.0, 30)


def test_contexts_are_fresh_when_all_are_within_the_policy():
    result = score(FreshnessEvaluator(default_max_age_days=30),
                   exchange_row([{"text": "a", "updated_at": days_before_request(29.5)}]))
    assert (result.value, result.label, result.details["stale"]) == (1.0, "fresh", [])


def test_context_without_timestamp_is_unknown_not_fresh_when_scored():
    contexts = [{"id": "x", "text": "a"}, {"id": "y", "text": "b", "updated_at": days_before_request(1)}]
    result = score(FreshnessEvaluator(), exchange_row(contexts))
    assert (result.value, result.label) == (0.5, "unknown")
    assert [(entry["id"], entry["reason"]) for entry in result.details["unknown"]] == [("x", "no_timestamp")]


def test_unparseable_timestamp_is_unknown_when_scored():
    result = score(FreshnessEvaluator(), exchange_row([{"text": "a", "updated_at": "last tuesday"}]))
    assert (result.value, result.label) == (0.0, "unknown")
    assert result.details["unknown"][0]["reason"] == "unparseable_timestamp"


def test_outdated_version_is_stale_when_a_json_registry_is_configured(tmp_path):
    evaluator = evaluator_from(tmp_path, {"versions_file": "versions.json"},
                               {"versions.json": '{"kb-1": "v3", "kb-2": "v1"}'})
    result = score(evaluator, exchange_row([
        {"id": "kb-1", "text": "a", "version": "v2", "updated_at": days_before_request(1)},
        {"id": "kb-2", "text": "b", "version": "v1", "updated_at": days_before_request(1)}]))
    assert (result.value, result.label) == (0.5, "stale")
    [stale] = result.details["stale"]
    assert (stale["id"], stale["reason"], stale["version"], stale["current_version"]) == \
        ("kb-1", "outdated_version", "v2", "v3")


def test_outdated_version_is_stale_when_a_csv_registry_is_configured(tmp_path):
    evaluator = evaluator_from(tmp_path, {"versions_file": "current.csv"},
                               {"current.csv": "id,version\nkb-1,7\n"})
    result = score(evaluator, exchange_row([{"id": "kb-1", "text": "a", "version": "6"}]))
    assert result.label == "stale"
    assert result.details["stale"][0]["current_version"] == "7"


def test_current_version_counts_as_fresh_when_there_is_no_timestamp(tmp_path):
    evaluator = evaluator_from(tmp_path, {"versions_file": "v.json"}, {"v.json": '{"kb-1": "7"}'})
    result = score(evaluator, exchange_row([{"id": "kb-1", "text": "a", "version": "7"}]))
    assert (result.value, result.label) == (1.0, "fresh")


def test_policy_for_the_task_applies_when_the_exchange_has_that_task(tmp_path):
    evaluator = evaluator_from(tmp_path, {"default_max_age_days": 90,
                                          "policies": [{"task": "pricing", "max_age_days": 7}]})
    contexts = [{"text": "a", "updated_at": days_before_request(10)}]
    pricing = score(evaluator, exchange_row(contexts, headers=[(b"x-shadowtap-task", b"pricing")]))
    other = score(evaluator, exchange_row(contexts, headers=[(b"x-shadowtap-task", b"chitchat")]))
    assert (pricing.label, pricing.details["max_age_days"], pricing.details["policy"]) == ("stale", 7, "policies[0]")
    assert (other.label, other.details["max_age_days"], other.details["policy"]) == ("fresh", 90, "default")


def test_first_matching_policy_wins_when_several_match(tmp_path):
    evaluator = evaluator_from(tmp_path, {"policies": [{"tag": "team=search", "max_age_days": 1},
                                                       {"endpoint": "chat.completions", "max_age_days": 30}]})
    contexts = [{"text": "a", "updated_at": days_before_request(5)}]
    tagged = score(evaluator, exchange_row(contexts, headers=[(b"x-shadowtap-team", b"search")]))
    untagged = score(evaluator, exchange_row(contexts))
    assert (tagged.label, untagged.label) == ("stale", "fresh")
    assert untagged.details["policy"] == "policies[1]"


def test_only_the_primary_is_scored_when_candidates_answered_the_same_request():
    row = exchange_row([{"text": "a", "updated_at": days_before_request(1)}])
    shadow = {"exchange_id": row["id"], "candidate": "small", "outcome": "ok", "response_text": "x"}
    result = score(FreshnessEvaluator(), row, source="small", shadows=[shadow])
    assert isinstance(result, NotApplicable)
    assert "primary" in result.reason


def test_freshness_does_not_apply_when_there_are_no_contexts():
    item = build_items(row_builder().build(raw_exchange()), [], ContextsConfig())["primary"]
    assert not FreshnessEvaluator().applies(item)


@pytest.mark.parametrize("files, message", [
    ({}, "cannot be read"),
    ({"versions.json": "[1, 2]"}, "expected a JSON object"),
    ({"versions.json": "{oops"}, "not valid JSON"),
])
def test_bad_versions_file_is_a_config_error_naming_the_key_when_loaded(tmp_path, files, message):
    with pytest.raises(ConfigError, match=message) as raised:
        evaluator_from(tmp_path, {"versions_file": "versions.json"}, files)
    assert "[freshness] versions_file" in str(raised.value)
