"""An app using the official Anthropic SDK notices nothing when its base URL points at shadowtap:
the same bytes come back, the exchange is captured like chat, a chat-only candidate answers it
in the background, and the Anthropic headers and key reach neither the store nor the candidate."""

import time

import anthropic
import orjson
import pytest

from shadowtap.core.config import PrimaryConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.proxy.headers import forwardable_request_headers
from shadowtap.proxy.upstream import PrimaryClient
from tests.support.shadow_support import shadows_of
from tests.support.store_reading import wait_for_exchange

CLIENT_KEY = "sk-ant-canary-client-key-3c9e"
BETA = "canary-beta-feature-2026-01"
CANDIDATE_KEY = "candidate-own-key-77a1"
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SYSTEM = [{"type": "text", "text": "You answer questions about Northwind Cloud.",
           "cache_control": {"type": "ephemeral"}}]


def client(base_url: str) -> anthropic.Anthropic:
    # The SDK sends its key as a bearer token; x-api-key, as curl and older SDKs send it, is added.
    return anthropic.Anthropic(base_url=base_url, api_key=CLIENT_KEY, max_retries=0, timeout=20,
                               default_headers={"anthropic-beta": BETA, "x-api-key": CLIENT_KEY})


def ask(text: str, **extra) -> dict:
    return {"model": "sim-large", "max_tokens": 200, "system": SYSTEM,
            "messages": [{"role": "user", "content": text}], **extra}


def candidate(simulator_base_url: str) -> str:
    return (f'[[candidates]]\nname = "chatty"\nmodel = "openai/sim-small"\napi_base = "{simulator_base_url}"\n'
            'api_key_env = "CHATTY_KEY"\n')


@pytest.fixture
def anthropic_proxy(proxy_factory, simulator):
    extra = f'[primary]\nanthropic_base_url = "{simulator.url}"\n' + candidate(simulator.base_url)
    return proxy_factory(simulator.base_url, extra_config=extra, env={"CHATTY_KEY": CANDIDATE_KEY})


def test_anthropic_sdk_gets_direct_bytes_and_each_exchange_is_captured_and_mirrored_to_a_chat_candidate(
        anthropic_proxy, simulator):
    direct, proxied = client(simulator.url), client(anthropic_proxy.url)
    exchanges = {}
    for label, kwargs in (("text", ask("How long are backups kept? (live 1)")),
                          ("tool", ask("Weather in Paris? (live 2)", tools=[WEATHER]))):
        expected = direct.messages.with_raw_response.create(**kwargs)
        actual = proxied.messages.with_raw_response.create(**kwargs)
        assert actual.http_response.content == expected.http_response.content
        assert actual.parse().model_dump() == expected.parse().model_dump()
        exchanges[label] = actual.http_response.headers["x-shadowtap-exchange-id"]
    for label, kwargs in (("stream text", ask("How long are backups kept? (live 3)")),
                          ("stream tool", ask("Weather in Paris? (live 4)", tools=[WEATHER]))):
        with direct.messages.with_streaming_response.create(stream=True, **kwargs) as response:
            expected_bytes = response.read()
        with proxied.messages.with_streaming_response.create(stream=True, **kwargs) as response:
            actual_bytes = response.read()
            exchanges[label] = response.headers["x-shadowtap-exchange-id"]
        assert actual_bytes == expected_bytes and b"event: message_stop" in actual_bytes

    answer = direct.messages.create(**ask("How long are backups kept? (live 1)"))
    text = wait_for_exchange(anthropic_proxy.store_path, exchanges["text"])
    assert text["endpoint"] == "anthropic.messages" and text["status"] == 200
    assert text["response_text"] == answer.content[0].text and text["finish_reason"] == "end_turn"
    usage = answer.usage
    assert usage.cache_creation_input_tokens > 0  # the simulator counts the marked system block as written
    assert (text["prompt_tokens"], text["completion_tokens"]) == (
        usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens, usage.output_tokens)
    for label in ("tool", "stream tool"):
        row = wait_for_exchange(anthropic_proxy.store_path, exchanges[label])
        calls = orjson.loads(row["response_tool_calls"])
        assert [call["function"]["name"] for call in calls] == ["get_weather"] and row["finish_reason"] == "tool_use"
        assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    streamed = wait_for_exchange(anthropic_proxy.store_path, exchanges["stream text"])
    assert streamed["is_stream"] == 1 and streamed["stream_incomplete"] == 0 and streamed["ttft_ms"] > 0
    again = direct.messages.create(**ask("How long are backups kept? (live 3)"))
    assert streamed["response_text"] == again.content[0].text

    for label, exchange_id in exchanges.items():
        shadow = shadows_of(anthropic_proxy.store_path, exchange_id, 1)["chatty"]
        assert shadow["outcome"] == "ok", (label, shadow)
        assert shadow["response_text"] or shadow["response_tool_calls"]
    asked = [record for record in simulator.recorded() if record["path"] == "/v1/chat/completions"
             and "(live " in orjson.dumps(record["body"]).decode()]
    assert len(asked) == len(exchanges)
    for record in asked:
        assert record["body"]["model"] == "sim-small"
        assert record["headers"]["authorization"] == f"Bearer {CANDIDATE_KEY}"
        assert not {"x-api-key", "anthropic-version", "anthropic-beta"} & set(record["headers"])
        assert CLIENT_KEY not in orjson.dumps(record).decode()
        assert record["body"]["messages"][0] == {"role": "system", "content": SYSTEM[0]["text"]}

    time.sleep(0.3)  # let the writer flush the WAL before reading the files
    for path in anthropic_proxy.workdir.iterdir():
        if path.is_file():
            data = path.read_bytes()
            assert CLIENT_KEY.encode() not in data and BETA.encode() not in data, path.name
    stored_headers = orjson.loads(text["request_headers"])
    assert not {"x-api-key", "anthropic-version", "anthropic-beta"} & set(stored_headers)


def test_the_anthropic_primary_gets_the_client_key_and_headers_and_errors_come_back_in_its_shape(
        anthropic_proxy, simulator):
    proxied = client(anthropic_proxy.url)
    with pytest.raises(anthropic.BadRequestError) as raised:
        proxied.messages.create(model="sim-large", max_tokens=10, messages=[])
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    counted = proxied.messages.count_tokens(model="sim-large", messages=[{"role": "user", "content": "one two"}])
    assert counted.input_tokens == 2
    sent = [record for record in simulator.recorded() if record["path"] == "/v1/messages/count_tokens"][-1]
    assert sent["headers"]["x-api-key"] == CLIENT_KEY and sent["headers"]["authorization"] == f"Bearer {CLIENT_KEY}"
    assert sent["headers"]["anthropic-beta"] == BETA
    assert sent["headers"]["anthropic-version"]


def test_the_configured_primary_key_goes_to_anthropic_as_x_api_key():
    headers = [(b"x-api-key", b"client"), (b"authorization", b"Bearer client"), (b"anthropic-version", b"2023-06-01")]
    both = PrimaryClient(PrimaryConfig(base_url="http://a.test/v1", anthropic_base_url="http://b.test"))
    assert str(both.url_for("/messages", b"", "anthropic")) == "http://b.test/v1/messages"
    assert str(both.url_for("/chat/completions", b"", "openai")) == "http://a.test/v1/chat/completions"
    forwarded = forwardable_request_headers(headers, replace_authorization="own",
                                            key_header=both.key_header("anthropic"))
    assert forwarded == [("anthropic-version", "2023-06-01"), ("x-api-key", "own")]
    openai_only = PrimaryClient(PrimaryConfig(base_url="http://a.test/v1"))
    assert str(openai_only.url_for("/messages", b"", "anthropic")) == "http://a.test/v1/messages"
    assert openai_only.key_header("anthropic") == "authorization"  # a gateway at base_url takes a bearer token
    anthropic_only = PrimaryClient(PrimaryConfig(anthropic_base_url="https://api.example.test/"))
    assert str(anthropic_only.url_for("/models", b"")) == "https://api.example.test/v1/models"


def test_either_primary_url_alone_is_a_valid_config_but_not_neither():
    PrimaryConfig(anthropic_base_url="https://api.anthropic.com").validate()
    PrimaryConfig(base_url="http://127.0.0.1:9000/v1").validate()
    with pytest.raises(ConfigError, match="anthropic_base_url"):
        PrimaryConfig().validate()
    with pytest.raises(ConfigError, match=r"\[primary\] anthropic_base_url = 'ftp://x'"):
        PrimaryConfig(anthropic_base_url="ftp://x").validate()
    with pytest.raises(ConfigError, match=r"primary_twin_rate = 0.5: needs \[primary\] base_url"):
        config_from_dict({"primary": {"anthropic_base_url": "https://api.anthropic.com"},
                          "shadow": {"primary_twin_rate": 0.5}})
