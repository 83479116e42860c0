"""What a candidate is sent: the app's request with only the model and the key swapped (no processes)."""

import json

from shadowtap.core.config import CandidateCanaryConfig, CandidateConfig
from shadowtap.proxy.canary.candidate_call import candidate_headers, upstream_model, with_model
from shadowtap.proxy.dialects import dialect_for_path

CHAT = dialect_for_path("/v1/chat/completions")
MESSAGES = dialect_for_path("/v1/messages")
CLIENT_HEADERS = [(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-client"),
                  (b"x-api-key", b"client-anthropic-key"), (b"api-key", b"azure-key"),
                  (b"openai-organization", b"org-client"), (b"x-shadowtap-task", b"extract"),
                  (b"anthropic-version", b"2023-06-01"), (b"host", b"proxy.local")]


def test_only_the_model_is_replaced_and_big_numbers_and_the_shadowtap_field_are_handled():
    body = b'{"model":"gpt-4o","seed":123456789012345678901234567890,"shadowtap":{"trace":"t1"},"messages":[]}'
    encoded, parsed = with_model(body, "small-v2")
    assert json.loads(encoded) == {"model": "small-v2", "seed": 123456789012345678901234567890, "messages": []}
    assert parsed["model"] == "small-v2"
    assert with_model(b"[1, 2]", "m") is None and with_model(b"not json", "m") is None


def test_the_upstream_model_defaults_to_the_model_after_its_provider():
    candidate = CandidateConfig(name="c", model="hosted_vllm/org/small-v2", api_base="http://127.0.0.1:9/v1",
                                canary=CandidateCanaryConfig())
    assert upstream_model(candidate, candidate.canary) == "org/small-v2"
    assert upstream_model(candidate, CandidateCanaryConfig(upstream_model="served-name")) == "served-name"


def test_the_candidate_gets_its_own_key_and_none_of_the_clients_credentials_or_account_headers():
    headers = dict(candidate_headers(CLIENT_HEADERS, "sk-candidate", CHAT))
    assert headers == {"content-type": "application/json", "anthropic-version": "2023-06-01",
                       "authorization": "Bearer sk-candidate"}


def test_an_anthropic_messages_candidate_gets_its_key_as_x_api_key():
    headers = dict(candidate_headers(CLIENT_HEADERS, "sk-candidate", MESSAGES))
    assert headers["x-api-key"] == "sk-candidate" and "authorization" not in headers


def test_without_a_candidate_key_no_key_is_sent_at_all():
    headers = dict(candidate_headers(CLIENT_HEADERS, None, CHAT))
    assert not {"authorization", "x-api-key", "api-key"} & set(headers)
