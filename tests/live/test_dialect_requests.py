"""Each dialect reads its own requests: what the model was given, its tools and output schema,
how it is asked of a candidate or a replay target, and which primary it goes to."""

import pytest

from shadowtap.proxy.dialects import OTHER, RequestPart, dialect_named, upstream_for_path

MESSAGES = dialect_named("anthropic.messages")
RESPONSES = dialect_named("responses")
CHAT = dialect_named("chat.completions")

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5", "max_tokens": 300, "stop_sequences": ["END"], "temperature": 0.2, "stream": True,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "get_weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA},
              {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "messages": [
        {"role": "user", "content": [
            {"type": "document", "title": "kb-1", "source": {"type": "text", "media_type": "text/plain",
                                                             "data": "Paris is in France."}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            {"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C, sunny"}]},
            {"type": "text", "text": "And tomorrow?"}]},
    ],
}


def test_a_messages_request_gives_its_system_documents_tool_results_and_turns_in_order():
    assert list(MESSAGES.request_parts(ANTHROPIC_REQUEST)) == [
        RequestPart("text", "Be brief.", None, "system"),
        RequestPart("document", "Paris is in France.", "kb-1", "user"),
        RequestPart("text", "Weather in Paris?", None, "user"),
        RequestPart("tool", "18C, sunny", "toolu_1", "user"),
        RequestPart("text", "And tomorrow?", None, "user"),
    ]


def test_a_messages_request_declares_its_custom_tools_with_their_input_schemas_only():
    assert MESSAGES.declared_tools(ANTHROPIC_REQUEST) == {"get_weather": WEATHER_SCHEMA}


def test_a_messages_request_becomes_the_same_conversation_in_chat_completions():
    chat = MESSAGES.chat_request(ANTHROPIC_REQUEST)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "kb-1\nParis is in France."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            {"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert chat["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                                               "parameters": WEATHER_SCHEMA}}]
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert (chat["max_tokens"], chat["stop"], chat["temperature"], chat["stream"]) == (300, ["END"], 0.2, True)
    assert "thinking" not in chat and "system" not in chat


def test_a_named_tool_choice_and_an_output_format_carry_over_to_chat():
    request = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
               "tool_choice": {"type": "tool", "name": "get_weather"},
               "output_format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}
    chat = MESSAGES.chat_request(request)
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": WEATHER_SCHEMA}}
    assert MESSAGES.output_schema(request) == ("output_format", WEATHER_SCHEMA)


def test_the_last_user_text_of_a_messages_request_is_replaced_in_a_copy():
    request = {"messages": [{"role": "user", "content": [{"type": "text", "text": "first"}]},
                            {"role": "assistant", "content": "a"},
                            {"role": "user", "content": [{"type": "text", "text": "second"},
                                                         {"type": "image", "source": {}}]}]}
    assert MESSAGES.last_user_text(request) == "second"
    changed = MESSAGES.with_user_text(request, "2nd")
    assert changed["messages"][2]["content"][0]["text"] == "2nd"
    assert request["messages"][2]["content"][0]["text"] == "second"
    assert MESSAGES.last_user_text({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]}) is None


RESPONSES_REQUEST = {
    "model": "gpt-4.1", "instructions": "Be brief.", "max_output_tokens": 200, "store": True,
    "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA, "strict": True},
              {"type": "web_search"}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": WEATHER_SCHEMA, "strict": True}},
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ],
}


def test_a_stateless_responses_request_becomes_the_same_conversation_in_chat_completions():
    chat = RESPONSES.chat_request(RESPONSES_REQUEST)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    assert chat["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA,
                                                               "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["max_tokens"] == 200
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA,
                                                                              "strict": True}}


def test_a_responses_candidate_gets_the_request_itself_never_stored():
    shadow = RESPONSES.shadow_request(RESPONSES_REQUEST)
    assert shadow.api == "chat" and shadow.native is not None
    assert shadow.native["store"] is False and shadow.native["input"] == RESPONSES_REQUEST["input"]


@pytest.mark.parametrize("request_body, reason", [
    ({"model": "m", "input": "hi"}, None),
    ({"model": "m", "input": "hi", "store": True}, None),
    ({"model": "m", "input": "hi", "previous_response_id": "resp_1", "store": False}, "stateful"),
    ({"model": "m", "input": "hi", "conversation": "conv_1"}, "stateful"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "stateful"),
    ({"model": "m", "prompt": {"id": "pmpt_1"}}, "stateful"),
])
def test_only_responses_requests_that_lean_on_stored_state_are_refused(request_body, reason):
    assert RESPONSES.mirror_refusal(request_body) == reason


def test_responses_contexts_tools_and_schema_are_read_from_their_own_fields():
    parts = list(RESPONSES.request_parts(RESPONSES_REQUEST))
    assert parts == [RequestPart("text", "Be brief.", None, "system"),
                     RequestPart("text", "Weather in Paris?", None, "user"),
                     RequestPart("tool", "18C", "call_1", "tool")]
    assert RESPONSES.declared_tools(RESPONSES_REQUEST) == {"get_weather": WEATHER_SCHEMA}
    assert RESPONSES.output_schema(RESPONSES_REQUEST) == ("text.format", WEATHER_SCHEMA)


def test_an_unknown_dialect_reads_every_shape_it_knows():
    kinds = [part.kind for part in OTHER.request_parts(ANTHROPIC_REQUEST)]
    assert kinds == ["text", "document", "text", "tool", "text"]
    assert [part.text for part in OTHER.request_parts({"prompt": ["a", "b"]})] == ["a", "b"]
    assert OTHER.declared_tools({"tools": [{"type": "function", "function": {"name": "f"}}]}) == {"f": None}


@pytest.mark.parametrize("path, upstream", [
    ("/messages", "anthropic"), ("/messages/count_tokens", "anthropic"), ("/messages/batches/b1", "anthropic"),
    ("/chat/completions", "openai"), ("/responses", "openai"), ("/models", "openai"),
    ("/threads/t1/messages", "openai"),
])
def test_anthropic_paths_go_to_the_anthropic_primary_and_the_rest_to_base_url(path, upstream):
    assert upstream_for_path(path) == upstream


def test_count_tokens_is_forwarded_but_never_mirrored_or_captured_by_default():
    count = dialect_named("anthropic.count_tokens")
    assert (count.captured, count.mirrorable, count.replayable, count.methods) == (False, False, False, ("POST",))


def test_chat_requests_are_asked_of_candidates_as_they_are():
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
               "response_format": {"type": "json_object"}}
    assert CHAT.shadow_request(request).request is request
    assert CHAT.output_schema(request) == ("response_format", {"type": "object"})
