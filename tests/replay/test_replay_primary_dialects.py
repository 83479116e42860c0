"""`--target primary` sends each exchange back to the primary that answered it: an Anthropic Messages
exchange to `[primary] anthropic_base_url`, a chat exchange to `[primary] base_url`."""

from __future__ import annotations

import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.replay.targets import resolve_target
from tests.support.replay_support import StoreBuilder, chat, replay, show
from tests.support.servers import simulator  # noqa: F401  (a fixture)

PRIMARY_KEY = "sk-ant-primary-key-for-replay"
QUESTION = {"type": "text", "text": "What are the support hours?"}
MESSAGES_REQUEST = {"model": "sim-large", "max_tokens": 200, "system": "Be brief.",
                    "messages": [{"role": "user", "content": [QUESTION]}]}


def both_primaries(openai: str = "http://127.0.0.1:9/v1", anthropic: str = "http://127.0.0.1:9") -> dict:
    return {"primary": {"base_url": openai, "anthropic_base_url": anthropic}}


def test_an_anthropic_exchange_is_sent_to_the_anthropic_primary_as_an_anthropic_model():
    target = resolve_target("primary", config_from_dict(both_primaries()), allow_primary=True)
    sent = target.call_target({"model": "claude-sonnet-4"}, "anthropic.messages")
    assert (sent.model, sent.api_base) == ("anthropic/claude-sonnet-4", "http://127.0.0.1:9")


def test_a_chat_exchange_is_sent_to_the_openai_compatible_primary():
    target = resolve_target("primary", config_from_dict(both_primaries()), allow_primary=True)
    sent = target.call_target({"model": "gpt-4o-mini"}, "chat.completions")
    assert (sent.model, sent.api_base) == ("openai/gpt-4o-mini", "http://127.0.0.1:9/v1")


def test_a_primary_with_only_an_anthropic_base_url_answers_every_exchange_there():
    config = config_from_dict({"primary": {"anthropic_base_url": "http://127.0.0.1:9"}})
    target = resolve_target("primary", config, allow_primary=True)
    sent = target.call_target({"model": "claude-sonnet-4"}, "chat.completions")
    assert (sent.model, sent.api_base) == ("anthropic/claude-sonnet-4", "http://127.0.0.1:9")


@pytest.mark.e2e  # the simulator runs as a process of its own
def test_replaying_an_anthropic_primary_reaches_its_messages_api_with_its_own_key(simulator, tmp_path,  # noqa: F811
                                                                                   monkeypatch):
    monkeypatch.setenv("REPLAY_TEST_PRIMARY_KEY", PRIMARY_KEY)
    builder = StoreBuilder(tmp_path / "s.db")
    builder.exchange("ex-messages", "2026-11-20T10:01:00.000000+00:00", MESSAGES_REQUEST,
                     endpoint="anthropic.messages")
    builder.exchange("ex-chat", "2026-11-20T10:02:00.000000+00:00", chat("What are the support hours?",
                                                                        model="sim-large"))
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[primary]\nbase_url = "{simulator.base_url}"\nanthropic_base_url = "{simulator.url}"\n'
                      f'api_key_env = "REPLAY_TEST_PRIMARY_KEY"\n\n[store]\npath = "{builder.path}"\n')
    simulator.clear()
    run_id = replay("run", "--config", str(config), "--target", "primary", "--allow-primary")
    calls = [request for request in simulator.recorded() if request["method"] == "POST"]
    assert sorted(request["path"] for request in calls) == ["/v1/chat/completions", "/v1/messages"]
    [messages] = [request for request in calls if request["path"] == "/v1/messages"]
    assert messages["body"]["model"] == "sim-large"
    assert messages["headers"]["x-api-key"] == PRIMARY_KEY
    overall = show(builder.path, run_id)["overall"]
    assert overall["calls"] == 2 and overall["failed_calls"] == 0
