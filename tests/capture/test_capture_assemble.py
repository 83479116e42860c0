"""assemble_response: turning a primary's raw JSON body or SSE stream into one clean response."""

import zlib

import orjson
import pytest

from shadowtap.proxy.capture.assemble import assemble_response
from shadowtap.proxy.capture.decoding import decode_body
from shadowtap.proxy.dialects import AssembledResponse, dialect_named, endpoint_for_path

SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"

# What api.openai.com sends for stream=true, stream_options={"include_usage": true}.
CHAT_EVENTS = [
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":"Caf\xc3\xa9"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":" \xe6\x97\xa5\xe6\x9c\xac"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":" \xf0\x9f\x91\x8b"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n',
    b'data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":5,"total_tokens":24,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n',
    b"data: [DONE]\n\n",
]
CHAT_TEXT = "Café 日本 👋"

# Two parallel tool calls; arguments arrive in fragments, only the first fragment names the call.
TOOL_CALL_EVENTS = [
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"lo"}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"cation\\": \\"Paris\\"}"}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_5B0dXr1k3E1LzDlzQs0fiCcL","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\\"tz\\": \\"CET\\"}"}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    b'data: {"id":"chatcmpl-B9N1","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}\n\n',
    b"data: [DONE]\n\n",
]

RESPONSES_EVENTS = [
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67ccd2bed1ec8190","object":"response","created_at":1741476542,"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-4.1-2025-04-14","output":[],"usage":null}}\n\n',
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_67ccd2bf17f0","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n',
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added","sequence_number":2,"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}\n\n',
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"delta":"Hi"}\n\n',
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"delta":" there"}\n\n',
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done","sequence_number":5,"item_id":"msg_67ccd2bf17f0","output_index":0,"content_index":0,"text":"Hi there"}\n\n',
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":6,"response":{"id":"resp_67ccd2bed1ec8190","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4.1-2025-04-14","output":[{"id":"msg_67ccd2bf17f0","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[]}]}],"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}\n\n',
]

RESPONSES_TOOL_EVENTS = [
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_9","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}}\n\n',
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"fc_12345xyz","type":"function_call","status":"in_progress","arguments":"","call_id":"call_AbC123","name":"get_weather"}}\n\n',
    b'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":2,"item_id":"fc_12345xyz","output_index":0,"delta":"{\\"location\\":"}\n\n',
    b'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_12345xyz","output_index":0,"delta":" \\"Paris\\"}"}\n\n',
    b'event: response.function_call_arguments.done\ndata: {"type":"response.function_call_arguments.done","sequence_number":4,"item_id":"fc_12345xyz","output_index":0,"arguments":"{\\"location\\": \\"Paris\\"}"}\n\n',
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"id":"fc_12345xyz","type":"function_call","status":"completed","arguments":"{\\"location\\": \\"Paris\\"}","call_id":"call_AbC123","name":"get_weather"}}\n\n',
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":6,"response":{"id":"resp_9","object":"response","status":"completed","model":"gpt-4.1-2025-04-14","output":[{"id":"fc_12345xyz","type":"function_call","status":"completed","arguments":"{\\"location\\": \\"Paris\\"}","call_id":"call_AbC123","name":"get_weather"}],"usage":{"input_tokens":50,"output_tokens":18,"total_tokens":68}}}\n\n',
]
WEATHER_CALL = {
    "id": "call_AbC123",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
}

COMPLETIONS_EVENTS = [
    b'data: {"id":"cmpl-7","object":"text_completion","created":1741570100,"choices":[{"text":"Once","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}\n\n',
    b'data: {"id":"cmpl-7","object":"text_completion","created":1741570100,"choices":[{"text":" upon","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}\n\n',
    b'data: {"id":"cmpl-7","object":"text_completion","created":1741570100,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct"}\n\n',
    b"data: [DONE]\n\n",
]


def stream(endpoint: str, chunks: list[bytes]) -> AssembledResponse:
    return assemble_response(dialect_named(endpoint), SSE, chunks)


def body(endpoint: str, payload: object) -> AssembledResponse:
    return assemble_response(dialect_named(endpoint), JSON, [orjson.dumps(payload)])


# --- chat streams --------------------------------------------------------------------------


def test_chat_stream_text_usage_and_finish_reason_are_assembled_when_stream_completes():
    result = stream("chat.completions", CHAT_EVENTS)

    assert result.text == CHAT_TEXT
    assert result.finish_reason == "stop"
    assert result.usage == {"prompt_tokens": 19, "completion_tokens": 5, "total_tokens": 24}
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.complete is True
    assert result.events == 7
    assert result.parse_error is None
    assert result.body is None


def test_first_content_chunk_skips_the_empty_role_chunk_when_stream_starts():
    assert stream("chat.completions", CHAT_EVENTS).first_content_chunk == 1


def test_chat_stream_is_assembled_identically_when_every_byte_is_a_separate_read():
    whole = stream("chat.completions", [b"".join(CHAT_EVENTS)])
    bytewise = stream("chat.completions", [bytes([byte]) for byte in b"".join(CHAT_EVENTS)])

    assert bytewise.text == whole.text == CHAT_TEXT
    assert bytewise.usage == whole.usage
    assert bytewise.complete and bytewise.events == whole.events


def test_multibyte_character_is_intact_when_split_across_reads():
    event = CHAT_EVENTS[2]
    split_at = event.index(b"\xe6\x97\xa5") + 1  # inside the 3-byte "日"
    chunks = [CHAT_EVENTS[0] + CHAT_EVENTS[1], event[:split_at], event[split_at:], *CHAT_EVENTS[3:]]

    result = stream("chat.completions", chunks)

    assert result.text == CHAT_TEXT
    assert "\ufffd" not in result.text


def test_first_content_chunk_is_the_read_that_completed_the_event_when_an_event_is_split():
    first_content = CHAT_EVENTS[1]
    chunks = [CHAT_EVENTS[0], first_content[:40], first_content[40:-1], first_content[-1:], *CHAT_EVENTS[2:]]
    assert stream("chat.completions", chunks).first_content_chunk == 3


def test_several_events_are_read_when_one_chunk_holds_them():
    chunks = [CHAT_EVENTS[0] + CHAT_EVENTS[1] + CHAT_EVENTS[2][:10], CHAT_EVENTS[2][10:], *CHAT_EVENTS[3:]]
    result = stream("chat.completions", chunks)
    assert result.text == CHAT_TEXT
    assert result.first_content_chunk == 0


def test_stream_is_read_when_lines_end_in_crlf():
    chunks = [event.replace(b"\n", b"\r\n") for event in CHAT_EVENTS]
    result = stream("chat.completions", chunks)
    assert result.text == CHAT_TEXT
    assert result.complete is True


def test_crlf_is_handled_when_cr_and_lf_arrive_in_different_reads():
    joined = b"".join(CHAT_EVENTS).replace(b"\n", b"\r\n")
    cuts = [index + 1 for index, byte in enumerate(joined) if byte == ord("\r")]
    chunks = [joined[start:end] for start, end in zip([0, *cuts], [*cuts, len(joined)])]
    assert stream("chat.completions", chunks).text == CHAT_TEXT


def test_stream_is_incomplete_and_keeps_partial_text_when_cut_before_done():
    result = stream("chat.completions", CHAT_EVENTS[:3] + [CHAT_EVENTS[3][:25]])

    assert result.complete is False
    assert result.text == "Café 日本"
    assert result.finish_reason is None
    assert result.usage is None


def test_event_missing_its_blank_line_is_kept_when_stream_ends_after_it():
    result = stream("chat.completions", [CHAT_EVENTS[0], CHAT_EVENTS[1].rstrip(b"\n") + b"\n"])
    assert result.text == "Café"
    assert result.complete is False


def test_chat_tool_call_fragments_are_joined_when_arguments_are_streamed():
    result = stream("chat.completions", TOOL_CALL_EVENTS)

    assert result.tool_calls == [
        {
            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        },
        {
            "id": "call_5B0dXr1k3E1LzDlzQs0fiCcL",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
        },
    ]
    assert result.text is None
    assert result.finish_reason == "tool_calls"
    assert result.first_content_chunk == 0


def test_invalid_event_is_skipped_and_reported_when_its_json_is_broken():
    broken = b'data: {"choices":[{"index":0,"delta":{"content":"lost"\n\n'
    result = stream("chat.completions", [*CHAT_EVENTS[:2], broken, *CHAT_EVENTS[2:]])

    assert result.text == CHAT_TEXT
    assert result.parse_error is not None and "event 3" in result.parse_error
    assert result.complete is True


def test_parse_error_counts_further_bad_events_when_several_are_broken():
    result = stream("chat.completions", [b"data: {oops\n\n", b"data: [1, 2]\n\n", b"data: nope\n\n"])
    assert result.parse_error.startswith("event 1 is not valid JSON")
    assert result.parse_error.endswith("(and 2 more invalid events)")


def test_comments_and_other_fields_are_ignored_when_interleaved_with_data():
    chunks = [
        b": OPENROUTER PROCESSING\n\n",
        b"retry: 3000\nid: 1\nevent: message\n" + CHAT_EVENTS[1],
        b":\n\n",
        CHAT_EVENTS[-1],
    ]
    result = stream("chat.completions", chunks)
    assert result.text == "Café"
    assert result.events == 2
    assert result.complete is True


def test_data_lines_are_joined_with_newlines_when_one_event_has_several():
    event = b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"two lines"}}]}\n\n'
    assert stream("chat.completions", [event]).text == "two lines"


def test_only_choice_zero_is_assembled_when_the_request_asked_for_several_choices():
    chunks = [
        b'data: {"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":null}]}\n\n',
        b'data: {"model":"gpt-4o","choices":[{"index":1,"delta":{"content":"B"},"finish_reason":null}]}\n\n',
        b'data: {"model":"gpt-4o","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}\n\n',
        b'data: {"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    result = stream("chat.completions", chunks)
    assert (result.text, result.finish_reason) == ("Aa", "stop")


def test_first_content_chunk_is_none_when_no_event_carries_content():
    result = stream("chat.completions", [CHAT_EVENTS[0], CHAT_EVENTS[4], CHAT_EVENTS[6]])
    assert result.first_content_chunk is None
    assert result.text == ""


def test_content_type_is_matched_case_insensitively_when_upstream_capitalises_it():
    assert assemble_response(dialect_named("chat.completions"), "Text/Event-Stream", CHAT_EVENTS).text == CHAT_TEXT


# --- compressed streams, as the capture writer sees them after decode_body -----------------


def gzip_flushed_per_event(events: list[bytes]) -> list[bytes]:
    compressor = zlib.compressobj(wbits=31)
    reads = [compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) for event in events]
    reads[-1] += compressor.flush()
    return reads


def test_gzip_stream_assembles_when_server_flushes_per_event():
    decoded, error = decode_body("gzip", b"".join(gzip_flushed_per_event(CHAT_EVENTS)))
    result = stream("chat.completions", [decoded])
    assert error is None
    assert (result.text, result.complete) == (CHAT_TEXT, True)


def test_cut_gzip_stream_keeps_partial_text_when_primary_dropped_mid_stream():
    reads = gzip_flushed_per_event(CHAT_EVENTS)
    decoded, error = decode_body("gzip", b"".join(reads[:3]) + reads[3][:4])
    result = stream("chat.completions", [decoded])

    assert error is not None
    assert result.text == "Café 日本"
    assert result.complete is False


# --- completions and Responses API streams -------------------------------------------------


def test_completions_stream_text_is_concatenated_when_streamed():
    result = stream("completions", COMPLETIONS_EVENTS)
    assert (result.text, result.finish_reason, result.model) == ("Once upon", "length", "gpt-3.5-turbo-instruct")
    assert result.complete is True


def test_responses_stream_text_and_usage_are_assembled_when_completed():
    result = stream("responses", RESPONSES_EVENTS)

    assert result.text == "Hi there"
    assert result.usage == {"prompt_tokens": 37, "completion_tokens": 11, "total_tokens": 48}
    assert result.model == "gpt-4.1-2025-04-14"
    assert result.finish_reason == "completed"
    assert result.complete is True
    assert result.first_content_chunk == 3


def test_responses_stream_text_comes_from_completed_event_when_deltas_are_missing():
    result = stream("responses", [RESPONSES_EVENTS[0], RESPONSES_EVENTS[-1]])
    assert result.text == "Hi there"


def test_responses_stream_is_incomplete_when_cut_before_completed_event():
    result = stream("responses", RESPONSES_EVENTS[:-1])
    assert (result.text, result.complete, result.usage) == ("Hi there", False, None)


def test_responses_stream_is_complete_when_response_failed():
    failed = b'data: {"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}}\n\n'
    result = stream("responses", [RESPONSES_EVENTS[0], failed])
    assert (result.complete, result.finish_reason) == (True, "failed")


def test_responses_stream_event_type_comes_from_event_line_when_json_has_no_type():
    delta = b'event: response.output_text.delta\ndata: {"delta":"untyped"}\n\n'
    assert stream("responses", [delta]).text == "untyped"


def test_responses_function_call_becomes_tool_call_when_the_model_calls_a_tool():
    result = stream("responses", RESPONSES_TOOL_EVENTS)
    assert result.tool_calls == [WEATHER_CALL]
    assert result.text is None
    assert result.usage == {"prompt_tokens": 50, "completion_tokens": 18, "total_tokens": 68}
    assert result.first_content_chunk == 1


def test_responses_tool_call_is_built_from_argument_deltas_when_stream_is_cut():
    result = stream("responses", RESPONSES_TOOL_EVENTS[:4])
    assert result.tool_calls == [WEATHER_CALL]
    assert result.complete is False


# --- non-stream bodies ---------------------------------------------------------------------

CHAT_BODY = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The capital is Paris.", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def test_chat_body_is_normalised_when_response_is_not_streamed():
    raw = orjson.dumps(CHAT_BODY)
    result = assemble_response(dialect_named("chat.completions"), "application/json", [raw[:100], raw[100:]])

    assert result.text == "The capital is Paris."
    assert result.finish_reason == "stop"
    assert result.usage == {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163}
    assert result.model == "gpt-4o-2024-08-06"
    assert result.body == CHAT_BODY
    assert (result.complete, result.events, result.parse_error) == (True, 0, None)
    assert result.first_content_chunk == 1


def test_chat_body_tool_calls_are_kept_when_the_model_calls_a_tool():
    message = {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]}
    payload = {**CHAT_BODY, "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    result = body("chat.completions", payload)
    assert (result.text, result.tool_calls, result.finish_reason) == (None, [WEATHER_CALL], "tool_calls")


def test_completions_body_text_is_taken_when_response_is_not_streamed():
    payload = {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "\n\nThis is a test.", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    result = body("completions", payload)
    assert (result.text, result.finish_reason) == ("\n\nThis is a test.", "stop")


def test_responses_body_text_and_function_calls_are_extracted_when_not_streamed():
    payload = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "error": None,
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "Checking ", "annotations": []},
                    {"type": "output_text", "text": "the weather.", "annotations": []},
                ],
            },
            {"type": "function_call", "id": "fc_1", "call_id": "call_AbC123", "name": "get_weather",
             "arguments": '{"location": "Paris"}', "status": "completed"},
        ],
        "usage": {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123},
    }
    result = body("responses", payload)

    assert result.text == "Checking the weather."
    assert result.tool_calls == [WEATHER_CALL]
    assert result.usage == {"prompt_tokens": 36, "completion_tokens": 87, "total_tokens": 123}
    assert result.finish_reason == "completed"


def test_responses_finish_reason_is_the_incomplete_reason_when_output_was_cut_short():
    payload = {"object": "response", "status": "incomplete",
               "incomplete_details": {"reason": "max_output_tokens"}, "output": []}
    assert body("responses", payload).finish_reason == "max_output_tokens"


def test_embeddings_body_has_no_text_and_zero_completion_tokens_when_parsed():
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    result = body("embeddings", payload)

    assert result.text is None
    assert result.usage == {"prompt_tokens": 8, "completion_tokens": 0, "total_tokens": 8}
    assert result.body == payload
    assert result.first_content_chunk is None


def test_error_body_is_kept_without_text_when_upstream_returns_an_error():
    payload = {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests",
                         "param": None, "code": "rate_limit_exceeded"}}
    result = body("chat.completions", payload)
    assert (result.text, result.body, result.complete, result.parse_error) == (None, payload, True, None)


@pytest.mark.parametrize(
    "raw",
    [b'{"choices": [', b"<html>502 Bad Gateway</html>", b'{"text": "\xff\xfe"}', b""],
    ids=["cut-json", "html", "invalid-utf8", "empty"],
)
def test_parse_error_is_set_and_body_dropped_when_body_is_unparseable(raw):
    result = assemble_response(dialect_named("chat.completions"), "application/json", [raw])
    assert result.parse_error is not None
    assert (result.body, result.complete, result.text) == (None, False, None)


# --- robustness and path mapping -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat.completions", "completions", "responses", "embeddings", "other"])
@pytest.mark.parametrize(
    "raw",
    [
        b'{"choices": "nope", "usage": [1], "model": 5}',
        b'{"choices": [{"message": 5, "text": 7, "delta": []}], "output": {"x": 1}}',
        b'{"choices": [null, {"index": 0, "message": {"content": [{"type": "text", "text": "ok"}], "tool_calls": "x"}}]}',
        b'{"output": [null, {"type": "message", "content": "str"}, {"type": "function_call", "arguments": 3}]}',
        b'{"usage": {"prompt_tokens": true, "completion_tokens": "3"}, "incomplete_details": 4}',
        b"[1, 2, 3]",
        b'"just a string"',
    ],
)
def test_odd_json_shapes_never_raise_when_upstream_is_not_openai_shaped(endpoint, raw):
    as_body = assemble_response(dialect_named(endpoint), JSON, [raw])
    as_stream = assemble_response(dialect_named(endpoint), SSE, [b"data: " + raw + b"\n\n"])
    assert as_body.parse_error is None
    assert as_stream.events == 1
    assert isinstance(as_stream, AssembledResponse)


def test_stream_tool_call_fragments_with_odd_shapes_never_raise_when_fed():
    chunks = [
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[null,{"function":"x"},{"index":2,"function":{"arguments":5}}]}}]}\n\n',
        b'data: {"type":"response.function_call_arguments.delta","item_id":"missing","delta":"x"}\n\n',
        b'data: {"type":"response.output_item.added","item":{"type":"function_call"}}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":[0],"id":{},"function":{"name":[]}}]}}]}\n\n',
        b'data: {"type":"response.output_item.added","item":{"type":"function_call","id":[1],"call_id":{}}}\n\n',
        b'data: {"type":"response.function_call_arguments.delta","item_id":{"a":1},"delta":"x"}\n\n',
    ]
    for endpoint in ("chat.completions", "responses"):
        assert assemble_response(dialect_named(endpoint), SSE, chunks).parse_error is None


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/chat/completions", "chat.completions"),
        ("/v1/chat/completions/", "chat.completions"),
        ("/openai/deployments/gpt-4o/chat/completions", "chat.completions"),
        ("/v1/openai/deployments/x/chat/completions", "chat.completions"),
        ("/v1/completions", "completions"),
        ("/v1/responses", "responses"),
        ("/v1/responses/resp_123", "responses"),
        ("/v1/responses/resp_123/input_items", "responses"),
        ("/v1/embeddings", "embeddings"),
        ("/v1/embeddings?api-version=2024-02-01", "embeddings"),
        ("/v1/models", "other"),
        ("/v1/audio/speech", "other"),
        ("/", "other"),
    ],
)
def test_endpoint_is_named_when_path_is_mapped(path, endpoint):
    assert endpoint_for_path(path) == endpoint
