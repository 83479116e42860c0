"""A canaried request's shadow job always asks the primary's twin (the reverse shadow)."""

from shadowtap.core.config import CandidateCanaryConfig, CandidateConfig, ShadowConfig
from shadowtap.proxy.exchange import new_exchange_id
from shadowtap.proxy.shadow.planning import SERVED_LIVE, ShadowPlanner

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def planner() -> ShadowPlanner:
    live = CandidateConfig(name="live", model="openai/live", api_base="http://127.0.0.1:9/v1",
                           canary=CandidateCanaryConfig())
    return ShadowPlanner([live, CandidateConfig(name="other", model="openai/other")], ShadowConfig())


def test_a_canaried_request_gets_the_primary_twin_and_is_not_mirrored_to_its_own_candidate():
    plan = planner().plan(new_exchange_id(), 0.0, CHAT, [], dict(BODY), b"{}", serving="live")
    assert plan.job is not None and plan.job.twin is True
    assert plan.job.candidates == ["other"]
    assert plan.skips == [("live", SERVED_LIVE)]


def test_a_request_not_canaried_gets_no_twin_when_the_twin_rate_is_zero():
    plan = planner().plan(new_exchange_id(), 0.0, CHAT, [], dict(BODY), b"{}")
    assert plan.job is not None and plan.job.twin is False and plan.job.candidates == ["live", "other"]
