"""The worker's warning when a candidate's calls fail: rate-limited, with a reason, never a prompt."""

import logging

import pytest

from shadowtap.proxy.shadow.failure_log import FailureLog, failure_reason

PROVIDER_MESSAGE = ("litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider you are "
                    "trying to call. You passed model=opnai/gpt-4o-mini")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "shadowtap.shadow"]


def test_the_first_failure_is_logged_at_once_with_the_reason(caplog, clock):
    with caplog.at_level(logging.WARNING, logger="shadowtap.shadow"):
        FailureLog(clock=clock).failed("typo", "opnai/gpt-4o-mini", "error", "BadRequestError", PROVIDER_MESSAGE)
    (line,) = lines(caplog)
    assert "'typo'" in line and "opnai/gpt-4o-mini" in line
    assert "litellm knows no provider for this model string" in line


def test_failures_within_the_interval_are_counted_into_the_next_line_not_logged_each(caplog, clock):
    failures = FailureLog(interval_s=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="shadowtap.shadow"):
        assert failures.failed("c", "openai/m", "error", "APIConnectionError", "Connection error.")
        for _ in range(9):
            clock.now += 5
            assert not failures.failed("c", "openai/m", "error", "APIConnectionError", "Connection error.")
        clock.now += 20  # 65 s after the first line
        assert failures.failed("c", "openai/m", "timeout", "TimeoutError", "no complete answer within 5s")
    first, second = lines(caplog)
    assert "cannot be reached" in first and "(1 failed" in first
    assert "timeout: no complete answer within 5s" in second and "(10 failed" in second


def test_each_candidate_has_its_own_interval(caplog, clock):
    failures = FailureLog(clock=clock)
    with caplog.at_level(logging.WARNING, logger="shadowtap.shadow"):
        assert failures.failed("a", "openai/a", "error", "RateLimitError", "slow down")
        assert failures.failed("b", "openai/b", "error", "RateLimitError", "slow down")
        assert not failures.failed("a", "openai/a", "error", "RateLimitError", "slow down")
    assert len(lines(caplog)) == 2


def test_the_line_never_quotes_what_the_provider_wrote(caplog, clock):
    quoted = "Invalid request: messages[0].content = 'my secret diagnosis is flu' is too long"
    with caplog.at_level(logging.WARNING, logger="shadowtap.shadow"):
        FailureLog(clock=clock).failed("c", "openai/m", "error", "BadRequestError", quoted)
        FailureLog(clock=clock).failed("d", "openai/m", "error", "WeirdProviderError", quoted)
    text = "\n".join(lines(caplog)) + repr([record.__dict__ for record in caplog.records])
    assert "diagnosis" not in text
    assert "WeirdProviderError" in text


@pytest.mark.parametrize("outcome, error_class, message, expected", [
    ("error", "BadRequestError", PROVIDER_MESSAGE, "BadRequestError: litellm knows no provider"),
    ("error", "AuthenticationError", "Incorrect API key provided: sk-abc***", "check `api_key_env`"),
    ("timeout", "TimeoutError", "no complete answer within 2s", "timeout: no complete answer within 2s"),
    ("timeout", "Timeout", "litellm.Timeout: something the provider said", "timeout"),
    ("error", None, None, "unknown error"),
])
def test_failure_reasons_are_short_and_stable(outcome, error_class, message, expected):
    reason = failure_reason(outcome, error_class, message)
    assert reason.startswith(expected) or expected in reason
    if error_class == "Timeout":
        assert reason == "timeout"
