"""Who gets mirrored: deterministic sampling, eligibility, breakers and budgets (no processes)."""

import math

import pytest

from shadowtap.core.config import CandidateConfig, ShadowConfig
from shadowtap.proxy.exchange import new_exchange_id
from shadowtap.proxy.shadow.breaker import CircuitBreaker
from shadowtap.proxy.shadow.budget import DailyBudget
from shadowtap.proxy.shadow.planning import ShadowPlanner
from shadowtap.proxy.shadow.sampling import is_sampled, sample_point

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def planner(*candidates: CandidateConfig, **shadow) -> ShadowPlanner:
    return ShadowPlanner(list(candidates), ShadowConfig(**shadow))


def candidate(name: str = "c", **options) -> CandidateConfig:
    return CandidateConfig(name=name, model="openai/x", **options)


def test_sampling_rate_holds_within_statistical_tolerance_when_ids_are_random():
    ids = [new_exchange_id() for _ in range(20_000)]
    rate = 0.3
    sampled = sum(is_sampled(exchange_id, "c", rate) for exchange_id in ids)
    sigma = math.sqrt(len(ids) * rate * (1 - rate))
    assert abs(sampled - len(ids) * rate) < 4 * sigma


def test_sampling_is_deterministic_per_exchange_id_and_independent_per_candidate():
    ids = [new_exchange_id() for _ in range(2000)]
    first = [is_sampled(i, "a", 0.5) for i in ids]
    assert first == [is_sampled(i, "a", 0.5) for i in ids]
    other = [is_sampled(i, "b", 0.5) for i in ids]
    assert first != other
    assert all(0 <= sample_point(i, "a") < 1 for i in ids)


def test_plan_records_a_reason_for_every_candidate_not_mirrored():
    plan = planner(candidate("all"), candidate("never", sample_rate=0.0),
                   candidate("tagged", tags=["team=search"]), candidate("other-model", models=["gpt-4o-mini"]),
                   candidate("off", enabled=False)).plan(new_exchange_id(), 0.0, CHAT, [], dict(BODY))
    assert plan.job is not None and plan.job.candidates == ["all"]
    assert sorted(plan.skips) == [("never", "sampled_out"), ("other-model", "ineligible"), ("tagged", "ineligible")]


def test_tag_filters_admit_requests_carrying_the_tag():
    plan = planner(candidate("tagged", tags=["team=search"])).plan(
        new_exchange_id(), 0.0, CHAT, [(b"x-shadowtap-team", b"search")], dict(BODY))
    assert plan.job.candidates == ["tagged"]


@pytest.mark.parametrize("path, headers, body, reason", [
    (CHAT, [(b"x-stainless-retry-count", b"2")], BODY, "client_retry"),
    ("/v1/responses", [], {"model": "m", "input": "hi", "previous_response_id": "r1"}, "stateful"),
    ("/v1/responses", [], {"model": "m", "input": "hi", "conversation": "conv_1"}, "stateful"),
    ("/v1/responses", [], {"model": "m", "input": "hi"}, "ineligible"),  # stateless; this candidate lists chat only
    ("/v1/responses", [], {"model": "m", "input": "hi", "store": False, "previous_response_id": "r1"}, "stateful"),
    ("/v1/embeddings", [], {"model": "e", "input": "hi"}, "ineligible"),
    (CHAT, [], None, "ineligible"),
    ("/v1/models", [], {}, "ineligible"),
])
def test_requests_that_must_not_be_mirrored_are_skipped_with_the_reason(path, headers, body, reason):
    plan = planner(candidate("c", endpoints=["chat.completions"])).plan(new_exchange_id(), 0.0, path, headers, body)
    assert plan.job is None
    assert plan.skips == [("c", reason)]


def test_first_attempts_are_mirrored_when_the_retry_count_is_zero():
    plan = planner(candidate()).plan(new_exchange_id(), 0.0, CHAT, [(b"x-stainless-retry-count", b"0")], dict(BODY))
    assert plan.job.candidates == ["c"]


def test_twin_is_planned_for_chat_requests_of_the_listed_models_only():
    plan_for = planner(primary_twin_rate=1.0, primary_twin_models=["gpt-4o"]).plan
    assert plan_for(new_exchange_id(), 0.0, CHAT, [], dict(BODY)).job.twin is True
    assert plan_for(new_exchange_id(), 0.0, CHAT, [], {**BODY, "model": "other"}).job is None


def test_breaker_opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()            # the one trial call
    assert not breaker.allow()        # nobody else while it is in flight
    breaker.record_failure()          # the trial failed: open again for a full cooldown
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_budget_refuses_calls_once_todays_spend_reaches_the_limit():
    budget = DailyBudget(limit_usd=0.01, spent_today_usd=0.004)
    assert budget.allows_another_call()
    budget.record(0.006)
    assert not budget.allows_another_call()
    budget.record(None)  # an unknown price counts as zero
    assert budget.spent_usd == pytest.approx(0.01)


def test_budget_starts_afresh_on_a_new_utc_day():
    budget = DailyBudget(limit_usd=1.0, spent_today_usd=5.0, day="2000-01-01")
    assert budget.allows_another_call() and budget.spent_usd == 0.0
