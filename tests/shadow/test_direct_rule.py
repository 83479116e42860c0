"""Which candidates skip litellm, and how an OpenAI-compatible error answer is named (as
litellm's exception mapping names it)."""

from __future__ import annotations

import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.proxy.shadow.calls import CallTarget
from shadowtap.proxy.shadow.direct import request_body, status_error
from shadowtap.proxy.shadow.worker import twin_target

PRIMARY = {"base_url": "http://127.0.0.1:9/v1"}


def target_for(candidate: dict, shadow: dict | None = None) -> CallTarget:
    config = config_from_dict({"primary": PRIMARY, "shadow": shadow or {},
                               "candidates": [{"name": "c", **candidate}]})
    return CallTarget.for_candidate(config.candidates[0], config.shadow)


@pytest.mark.parametrize("candidate, direct", [
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1"}, True),
    ({"model": "hosted_vllm/m", "api_base": "http://127.0.0.1:8000/v1"}, True),
    ({"model": "openai/gpt-4o-mini"}, False),                  # OpenAI's cloud: litellm maps per-model params
    ({"model": "anthropic/claude", "api_base": "http://127.0.0.1:8000"}, False),
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1", "api": "responses"}, False),
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1", "params": {"drop_params": True}}, False),
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1", "params": {"temperature": 0}}, True),
])
def test_chat_candidates_of_openai_compatible_providers_at_an_api_base_are_called_directly(candidate, direct):
    assert target_for(candidate).direct is direct


def test_a_candidate_named_in_litellm_candidates_or_a_provider_left_out_keeps_the_litellm_path():
    vllm = {"model": "hosted_vllm/m", "api_base": "http://127.0.0.1:8000/v1"}
    assert target_for(vllm, {"litellm_candidates": ["c"]}).direct is False
    assert target_for(vllm, {"direct_providers": ["openai"]}).direct is False
    assert target_for(vllm, {"direct_providers": []}).direct is False


def test_direct_providers_accepts_only_providers_that_speak_chat_completions_at_api_base():
    with pytest.raises(ConfigError, match=r"\[shadow\] direct_providers: 'anthropic' cannot be called"):
        config_from_dict({"primary": PRIMARY, "shadow": {"direct_providers": ["anthropic"]}})


def test_the_twin_takes_its_limits_from_the_shadow_section_and_is_called_directly_by_default():
    config = config_from_dict({"primary": PRIMARY, "shadow": {"primary_twin_rate": 1.0, "twin_timeout_s": 7.5}})
    twin = twin_target(config)
    assert (twin.timeout_s, twin.is_twin, twin.direct, twin.api_base) == (7.5, True, True, PRIMARY["base_url"])
    config = config_from_dict({"primary": PRIMARY, "shadow": {"primary_twin_rate": 1.0,
                                                              "litellm_candidates": ["primary_twin"]}})
    assert twin_target(config).direct is False


@pytest.mark.parametrize("status, body, error_class", [
    (400, '{"error": {"message": "bad", "type": "invalid_request_error"}}', "BadRequestError"),
    (400, '{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}',
     "ContextWindowExceededError"),
    (401, '{"error": {"message": "no"}}', "AuthenticationError"),
    (403, "", "APIError"),
    (404, '{"error": {"message": "x", "type": "invalid_request_error", "code": "model_not_found"}}',
     "NotFoundError"),
    (404, '{"object": "error", "message": "The model `m` does not exist.", "type": "NotFoundError"}',
     "NotFoundError"),
    (408, "", "Timeout"),
    (422, "unprocessable", "BadRequestError"),
    (429, '{"error": {"message": "slow down"}}', "RateLimitError"),
    (500, '{"error": {"message": "boom"}}', "InternalServerError"),
    (502, "bad gateway", "BadGatewayError"),
    (503, "", "ServiceUnavailableError"),
    (504, "", "Timeout"),
    (307, "", "APIError"),
])
def test_error_answers_get_the_class_litellm_gives_them(status, body, error_class):
    error = status_error(status, body, "openai")
    assert error.error_class == error_class
    assert str(error).startswith(f"litellm.{error_class}: ")


def test_error_messages_quote_the_error_message_else_the_status_and_body():
    assert str(status_error(429, '{"error": {"message": "slow down"}}', "openai")) == \
        "litellm.RateLimitError: RateLimitError: OpenAIException - slow down"
    assert str(status_error(502, "bad gateway", "hosted_vllm")) == \
        "litellm.BadGatewayError: BadGatewayError: Hosted_vllmException - Error code: 502 - bad gateway"
    assert str(status_error(400, "", "openai")) == "litellm.BadRequestError: OpenAIException - Error code: 400"


def test_the_request_body_names_the_model_without_its_provider_and_asks_a_stream_for_usage():
    body = request_body({"model": "hosted_vllm/org/model-7b", "messages": [], "extra_body": {"top_k": 5}},
                        stream=True)
    assert body == {"model": "org/model-7b", "messages": [], "top_k": 5, "stream": True,
                    "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("candidate, needed", [
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1"}, False),
    ({"model": "openai/m", "api_base": "http://127.0.0.1:8000/v1",
      "endpoints": ["chat.completions", "embeddings"]}, True),      # embeddings go through litellm
    ({"model": "anthropic/claude", "api_base": "http://127.0.0.1:8000"}, True),
])
def test_a_worker_loads_litellm_only_when_some_call_needs_it(tmp_path, candidate, needed):
    from shadowtap.proxy.shadow.worker import ShadowWorker

    config = config_from_dict({"primary": PRIMARY, "store": {"path": str(tmp_path / "s.db")},
                               "shadow": {"primary_twin_rate": 1.0}, "candidates": [{"name": "c", **candidate}]})
    worker = ShadowWorker(config, None, None, None)
    worker._build_states()
    assert worker._needs_litellm() is needed


class RecordingClient:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def chat(self, kwargs: dict, **_) -> None:
        self.sent.append(kwargs)


@pytest.mark.parametrize("limit, expected", [
    ({"max_completion_tokens": 300}, {"max_completion_tokens": 300}),  # the primary's own name for it
    ({"max_tokens": 300}, {"max_tokens": 300}),
    ({"max_completion_tokens": 5000}, {"max_completion_tokens": 1024}),  # capped by the candidate's max_tokens
])
def test_a_direct_call_keeps_the_name_the_request_gave_its_token_limit(limit, expected):
    import asyncio

    from shadowtap.proxy.shadow.calls import call_chat_directly

    client = RecordingClient()
    target = CallTarget("c", "openai/m", "http://127.0.0.1:9/v1", "k", 5.0, 1024, direct=True)
    result = asyncio.run(call_chat_directly(client, {"messages": [], **limit}, target, stream=False))  # type: ignore[arg-type]
    assert result.outcome == "ok"
    (sent,) = client.sent
    assert {key: sent[key] for key in ("max_tokens", "max_completion_tokens") if key in sent} == expected
