"""Who answers a live request: deterministic, sticky per session, disjoint per candidate (no processes)."""

import math

from shadowtap.core.config import CanaryConfig, CandidateCanaryConfig, CandidateConfig
from shadowtap.proxy.canary.assignment import CanaryAssigner, Slice, assignment_point, regions_of, slices_for
from shadowtap.proxy.dialects import dialect_for_path
from shadowtap.proxy.exchange import new_exchange_id

CHAT = dialect_for_path("/v1/chat/completions")
EMBEDDINGS = dialect_for_path("/v1/embeddings")
SESSION = b"x-shadowtap-session"


def candidate(name: str, **canary) -> CandidateConfig:
    return CandidateConfig(name=name, model=f"openai/{name}", api_base="http://127.0.0.1:9/v1",
                           canary=CandidateCanaryConfig(**canary))


def assigner(*candidates: CandidateConfig, **canary) -> CanaryAssigner:
    return CanaryAssigner(list(candidates), CanaryConfig(**canary))


def only(name: str, share: float) -> tuple[Slice, ...]:
    return slices_for(regions_of([(name, 0.5)]), {name: share})


def within_binomial_tolerance(hits: int, trials: int, share: float) -> bool:
    sigma = math.sqrt(trials * share * (1 - share))
    return abs(hits - trials * share) < 4 * sigma


def test_a_20_percent_share_serves_about_20_percent_of_eligible_requests():
    chooser = assigner(candidate("small"))
    slices = only("small", 0.2)
    ids = [new_exchange_id() for _ in range(20_000)]
    served = sum(chooser.assign(i, [], CHAT, slices) == "small" for i in ids)
    assert within_binomial_tolerance(served, len(ids), 0.2)


def test_the_high_risk_tier_is_never_served_unless_listed():
    slices = only("small", 1.0)
    high = [(b"x-shadowtap-risk-tier", b"high")]
    assert all(assigner(candidate("small")).assign(new_exchange_id(), high, CHAT, slices) is None for _ in range(500))
    listed = assigner(candidate("small", risk_tiers=["low", "high"]))
    assert listed.assign(new_exchange_id(), high, CHAT, slices) == "small"
    assert listed.assign(new_exchange_id(), [(b"x-shadowtap-risk-tier", b"medium")], CHAT, slices) is None
    assert listed.assign(new_exchange_id(), [], CHAT, slices) == "small"  # untagged requests are eligible


def test_a_session_always_lands_on_the_same_side():
    chooser = assigner(candidate("small"))
    slices = only("small", 0.5)
    for session in (b"user-1", b"user-2", b"user-3", b"user-4"):
        sides = {chooser.assign(new_exchange_id(), [(SESSION, session)], CHAT, slices) for _ in range(50)}
        assert len(sides) == 1


def test_the_session_header_is_configurable():
    chooser = assigner(candidate("small"), session_header="x-user")
    slices = only("small", 0.5)
    sides = {chooser.assign(new_exchange_id(), [(b"x-user", b"u-42")], CHAT, slices) for _ in range(50)}
    assert len(sides) == 1
    assert assignment_point("a", [(b"x-user", b"u-42")], b"x-user") == assignment_point("b", [(b"x-user", b"u-42")],
                                                                                         b"x-user")


def test_the_opt_out_header_keeps_a_request_on_the_primary():
    chooser = assigner(candidate("small"))
    slices = only("small", 1.0)
    assert chooser.assign(new_exchange_id(), [(b"x-shadowtap-canary", b"off")], CHAT, slices) is None
    assert chooser.assign(new_exchange_id(), [(b"x-shadowtap-canary", b"OFF ")], CHAT, slices) is None
    assert chooser.assign(new_exchange_id(), [(b"x-shadowtap-canary", b"on")], CHAT, slices) == "small"


def test_several_candidates_take_disjoint_slices_and_each_its_own_share():
    chooser = assigner(candidate("a"), candidate("b"))
    slices = slices_for(regions_of([("a", 0.5), ("b", 0.5)]), {"a": 0.1, "b": 0.3})
    assert slices == (Slice("a", 0.0, 0.1), Slice("b", 0.5, 0.8))
    ids = [new_exchange_id() for _ in range(20_000)]
    picks = [chooser.assign(i, [], CHAT, slices) for i in ids]
    assert within_binomial_tolerance(picks.count("a"), len(ids), 0.1)
    assert within_binomial_tolerance(picks.count("b"), len(ids), 0.3)


def test_a_share_beyond_its_region_is_cut_and_zero_shares_take_no_slice():
    regions = regions_of([("a", 0.3), ("idle", 0.3), ("b", 0.5), ("c", 0.5)])
    assert regions == [("a", 0.0, 0.3), ("idle", 0.3, 0.6), ("b", 0.6, 1.0), ("c", 1.0, 1.0)]
    assert slices_for(regions, {"a": 0.7, "idle": 0.0, "b": 0.2, "c": 0.2}) == (Slice("a", 0.0, 0.3),
                                                                                Slice("b", 0.6, 0.8))
    assert only("a", 0.0) == ()


def test_a_rollback_or_promotion_of_one_candidate_leaves_the_others_sessions_where_they_were():
    regions = regions_of([("a", 0.5), ("b", 0.5)])
    before = slices_for(regions, {"a": 0.2, "b": 0.2})
    assert slices_for(regions, {"a": 0.0, "b": 0.2})[0] == before[1]
    assert slices_for(regions, {"a": 0.4, "b": 0.2})[1] == before[1]
    assert slices_for(regions, {"a": 0.4, "b": 0.2})[0].start == before[0].start


def test_endpoints_tasks_and_tags_limit_what_a_candidate_may_serve():
    slices = only("small", 1.0)
    chooser = assigner(candidate("small", tasks=["summarise"], tags=["team=search"]))
    right = [(b"x-shadowtap-task", b"summarise"), (b"x-shadowtap-team", b"search")]
    assert chooser.assign(new_exchange_id(), right, CHAT, slices) == "small"
    assert chooser.assign(new_exchange_id(), right, EMBEDDINGS, slices) is None  # endpoint not listed
    assert chooser.assign(new_exchange_id(), right[:1], CHAT, slices) is None  # tag missing
    assert chooser.assign(new_exchange_id(), [(b"x-shadowtap-task", b"chat"), right[1]], CHAT, slices) is None


def test_a_candidate_without_a_canary_table_or_disabled_never_serves():
    plain = CandidateConfig(name="plain", model="openai/plain")
    off = CandidateConfig(name="off", model="openai/off", api_base="http://127.0.0.1:9/v1", enabled=False,
                          canary=CandidateCanaryConfig())
    chooser = assigner(plain, off)
    slices = slices_for(regions_of([("plain", 0.5), ("off", 0.5)]), {"plain": 0.5, "off": 0.5})
    assert all(chooser.assign(new_exchange_id(), [], CHAT, slices) is None for _ in range(200))
