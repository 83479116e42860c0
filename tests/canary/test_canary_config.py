"""[canary] and [candidates.canary]: defaults, eligibility, and every mistake named by key and value."""

import pytest

from shadowtap.core.config import CanaryConfig, CandidateCanaryConfig, config_from_dict
from shadowtap.core.errors import ConfigError

PRIMARY = {"base_url": "http://127.0.0.1:9000/v1"}


def candidate(**canary) -> dict:
    return {"name": "small", "model": "openai/small", "api_base": "http://127.0.0.1:9100/v1", "canary": canary}


def load(candidates: list[dict] | None = None, **canary) -> object:
    raw: dict = {"primary": PRIMARY, "candidates": candidates or []}
    if canary:
        raw["canary"] = canary
    return config_from_dict(raw)


def test_a_candidate_without_a_canary_table_never_serves_live():
    config = load([{"name": "small", "model": "openai/small"}])
    assert config.candidates[0].canary is None
    assert not config.canaries_configured()


def test_a_canary_table_reads_into_typed_config_with_the_documented_defaults():
    config = load([candidate(risk_tiers=["low"], max_share=0.2)])
    canary = config.candidates[0].canary
    assert canary == CandidateCanaryConfig(risk_tiers=["low"], max_share=0.2)
    assert canary.endpoints == ["chat.completions"] and canary.timeout_s == 30.0
    assert config.canaries_configured()
    assert config.canary == CanaryConfig()


def test_a_disabled_candidate_with_a_canary_table_starts_no_guard_loop():
    config = load([{**candidate(), "enabled": False}])
    assert not config.canaries_configured()


def test_the_canary_section_reads_every_threshold():
    config = load(min_samples=5, max_error_rate=0.2, webhook_url="http://127.0.0.1:9999/hook", window_s=60)
    assert config.canary.min_samples == 5 and config.canary.max_error_rate == 0.2
    assert config.canary.window_s == 60.0 and config.canary.webhook_url == "http://127.0.0.1:9999/hook"


def test_high_risk_is_eligible_only_when_listed_by_name():
    any_tier = CandidateCanaryConfig()
    assert any_tier.eligible_tier("low") and any_tier.eligible_tier(None)
    assert not any_tier.eligible_tier("high")
    listed = CandidateCanaryConfig(risk_tiers=["low", "high"])
    assert listed.eligible_tier("high") and listed.eligible_tier(None)
    assert not listed.eligible_tier("medium")


@pytest.mark.parametrize(("canary", "message"), [
    ({"shadows": 1}, "[candidates][0] canary shadows: unknown key"),
    ({"max_share": 1.5}, "canary max_share = 1.5: expected a number between 0 and 1"),
    ({"endpoints": ["completion"]}, "canary endpoints: 'completion' cannot be served live"),
    ({"endpoints": []}, "canary endpoints = []"),
    ({"tags": ["team"]}, "canary tags: 'team': expected NAME=VALUE"),
    ({"api_key_env": "sk-live-123"}, "canary api_key_env = 'sk-live-123': expected the NAME"),
    ({"timeout_s": 0}, "canary timeout_s = 0.0"),
    ({"risk_tiers": "low"}, "expected a list of str"),
])
def test_a_bad_candidate_canary_key_is_named_with_its_value(canary, message):
    with pytest.raises(ConfigError) as error:
        load([candidate(**canary)])
    assert message in str(error.value)


def test_a_canary_candidate_needs_an_api_base():
    with pytest.raises(ConfigError, match=r"\[\[candidates\]\] 'small' canary: needs the candidate's api_base"):
        load([{"name": "small", "model": "openai/small", "canary": {}}])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_error_rate", 2, "[canary] max_error_rate = 2.0: expected a number between 0 and 1"),
    ("min_samples", 0, "[canary] min_samples = 0: expected a number at least 1"),
    ("min_trusted_completion_delta", -3, "[canary] min_trusted_completion_delta = -3.0"),
    ("session_header", "X Session", "[canary] session_header = 'X Session': expected a lower-case HTTP header"),
    ("state_stale_s", 0.5, "[canary] state_stale_s = 0.5: expected at least [canary] state_poll_s"),
    ("webhook_url", "ftp://hooks", "[canary] webhook_url = 'ftp://hooks'"),
    ("guard_interval", 5, "[canary] guard_interval: unknown key"),
    ("window_s", "ten", "[canary] window_s = 'ten': expected a number"),
])
def test_a_bad_canary_section_key_is_named_with_its_value(key, value, message):
    with pytest.raises(ConfigError) as error:
        load(**{key: value})
    assert message in str(error.value)
