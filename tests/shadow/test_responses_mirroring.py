"""Responses API requests are mirrored when they stand alone: to a chat-only candidate as chat
completions, to a Responses candidate as a Responses request that is never stored; requests that
lean on stored state are recorded as skipped with the reason."""

import orjson
from openai import OpenAI

from tests.support.shadow_support import shadows_of

TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def candidates(base_url: str) -> str:
    return (f'[[candidates]]\nname = "chatonly"\nmodel = "openai/sim-small"\napi_base = "{base_url}"\n'
            f'[[candidates]]\nname = "responder"\nmodel = "openai/sim-large"\napi_base = "{base_url}"\n'
            'api = "responses"\n')


def sent_to(simulator, path: str, marker: str) -> list[dict]:
    return [record for record in simulator.recorded()
            if record["path"] == path and marker in orjson.dumps(record["body"]).decode()]


def test_responses_calls_are_mirrored_to_a_chat_only_and_a_responses_candidate(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config=candidates(simulator.base_url))
    sdk = OpenAI(base_url=proxy.base_url, api_key="sk-client-key-never-mirrored", max_retries=0, timeout=20)
    buffered = sdk.responses.with_raw_response.create(
        model="sim-large", input="What are the support hours? (mirror 1)", tools=TOOLS, instructions="Be brief.")
    assert buffered.parse().output_text
    with sdk.responses.with_streaming_response.create(model="sim-large", input="Where is the office? (mirror 2)",
                                                      tools=TOOLS, stream=True) as streamed:
        assert b"response.completed" in streamed.read()
    stateful = sdk.responses.with_raw_response.create(model="sim-large", input="And then? (mirror 3)",
                                                      previous_response_id="resp_earlier")
    ids = [response.headers["x-shadowtap-exchange-id"] for response in (buffered, streamed, stateful)]

    for exchange_id in ids[:2]:
        rows = shadows_of(proxy.store_path, exchange_id, 2)
        for name in ("chatonly", "responder"):
            assert rows[name]["outcome"] == "ok", rows[name]
            assert rows[name]["prompt_tokens"] and rows[name]["completion_tokens"]
        # The simulator's chat endpoint calls a declared tool; its Responses endpoint answers in text.
        assert orjson.loads(rows["chatonly"]["response_tool_calls"])[0]["function"]["name"] == "get_weather"
        assert rows["responder"]["response_text"]
    assert shadows_of(proxy.store_path, ids[1], 2)["responder"]["is_stream"] == 1
    skipped = shadows_of(proxy.store_path, ids[2], 2)
    assert {name: (row["outcome"], row["skip_reason"]) for name, row in skipped.items()} == {
        "chatonly": ("skipped", "stateful"), "responder": ("skipped", "stateful")}

    chat = sent_to(simulator, "/v1/chat/completions", "(mirror 1)")
    assert len(chat) == 1 and chat[0]["body"]["model"] == "sim-small"
    assert chat[0]["body"]["messages"] == [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "What are the support hours? (mirror 1)"}]
    assert chat[0]["body"]["tools"][0]["function"]["name"] == "get_weather"
    native = [record for record in sent_to(simulator, "/v1/responses", "(mirror 1)")
              if record["body"]["model"] == "sim-large" and record["body"].get("store") is False]
    assert len(native) == 1 and native[0]["body"]["tools"][0]["name"] == "get_weather"
    for record in chat + native:
        assert "sk-client-key-never-mirrored" not in orjson.dumps(record["headers"]).decode()
    assert sent_to(simulator, "/v1/chat/completions", "(mirror 3)") == []
