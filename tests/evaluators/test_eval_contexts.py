"""Retrieved contexts: from the request's `shadowtap` field, else extracted from the request itself."""

import orjson
import pytest

from shadowtap.core.config import ContextsConfig
from shadowtap.evaluators.base import ContextItem
from shadowtap.evaluators.contexts import extract_contexts

DEFAULT = ContextsConfig()


def texts(items):
    return [item.text for item in items]


def test_shadowtap_field_contexts_keep_id_source_timestamp_and_version_when_sent():
    metadata = orjson.dumps({"contexts": [{"text": "Paris is in France.", "id": "kb-1", "source": "kb",
                                           "updated_at": "2026-11-01T00:00:00Z", "version": 3}]})
    items = extract_contexts({"messages": []}, metadata, DEFAULT)
    assert items == [ContextItem(text="Paris is in France.", id="kb-1", source="kb",
                                 updated_at="2026-11-01T00:00:00Z", version="3", origin="shadowtap_field")]


@pytest.mark.parametrize("metadata, expected", [
    (["first", {"text": "second"}], ["first", "second"]),
    ({"context": "only one"}, ["only one"]),
    ({"context": [{"content": "as content"}]}, ["as content"]),
    ({"retrieved_contexts": ["a", "  ", {"id": "no text"}]}, ["a"]),
])
def test_shadowtap_field_accepts_lists_and_single_contexts_when_not_in_the_documented_shape(metadata, expected):
    assert texts(extract_contexts(None, metadata, DEFAULT)) == expected


def test_explicit_empty_contexts_do_not_fall_back_to_the_messages_when_the_app_sent_none():
    request = {"messages": [{"role": "user", "content": "<context>from the prompt</context>"}]}
    assert extract_contexts(request, '{"contexts": []}', DEFAULT) == []
    # Metadata without any contexts key says nothing about them: the messages are read.
    assert texts(extract_contexts(request, '{"trace": "x"}', DEFAULT)) == ["from the prompt"]


def test_epoch_timestamps_become_iso_when_the_app_sends_numbers():
    items = extract_contexts(None, {"contexts": [{"text": "t", "updated_at": 0}]}, DEFAULT)
    assert items[0].updated_at == "1970-01-01T00:00:00+00:00"


def test_tool_messages_are_contexts_when_enabled():
    request = {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]}
    assert extract_contexts(request, None, DEFAULT) == [ContextItem(text="Sunny, 21 C", id="call_1",
                                                                    origin="tool_message")]
    assert extract_contexts(request, None, ContextsConfig(tool_messages=False)) == []


def test_tagged_documents_carry_their_attributes_when_present():
    prompt = ('Answer from these.\n<document id="kb-7" source=\'wiki\' updated_at="2026-01-02" version=v2>'
              "Lyon is on the Rhone.</document>\n<DOCUMENT id=kb-8>Nice &amp; sunny.</DOCUMENT>")
    request = {"messages": [{"role": "system", "content": prompt}, {"role": "user", "content": "where?"}]}
    items = extract_contexts(request, None, DEFAULT)
    assert items == [
        ContextItem(text="Lyon is on the Rhone.", id="kb-7", source="wiki", updated_at="2026-01-02", version="v2",
                    origin="delimited"),
        ContextItem(text="Nice &amp; sunny.", id="kb-8", origin="delimited"),
    ]


def test_only_the_innermost_passages_count_when_tags_nest():
    prompt = "<context><document id='a'>one</document><document id='b'>two</document></context><context>three</context>"
    items = extract_contexts({"messages": [{"role": "user", "content": prompt}]}, None, DEFAULT)
    assert [(item.id, item.text) for item in items] == [("a", "one"), ("b", "two"), (None, "three")]


def test_custom_delimiters_and_tags_are_read_when_configured():
    config = ContextsConfig(tags=["source"], delimiters=[["BEGIN DOC", "END DOC"]])
    prompt = "BEGIN DOC alpha END DOC and <source id=s1>beta</source> and <context>ignored</context>"
    items = extract_contexts({"prompt": prompt}, None, config)
    assert [(item.id, item.text) for item in items] == [(None, "alpha"), ("s1", "beta")]


def test_content_part_lists_are_read_when_messages_use_them():
    request = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "<context>part one</context>"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "text", "text": "<context>part two</context>"},
    ]}]}
    assert texts(extract_contexts(request, None, DEFAULT)) == ["part one", "part two"]


def test_assistant_messages_are_not_contexts_when_they_quote_tags():
    request = {"messages": [{"role": "assistant", "content": "<context>my own words</context>"}]}
    assert extract_contexts(request, None, DEFAULT) == []


def test_responses_api_input_items_and_instructions_are_read_when_present():
    request = {"instructions": "<context>from instructions</context>", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "<document id=d>from input</document>"}]},
        {"type": "function_call", "call_id": "c9", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c9", "output": "search result"},
    ]}
    items = extract_contexts(request, None, DEFAULT)
    assert [(item.text, item.id, item.origin) for item in items] == [
        ("from instructions", None, "delimited"), ("from input", "d", "delimited"),
        ("search result", "c9", "tool_message")]


@pytest.mark.parametrize("request_body", [
    {"input": "<context>plain input</context>"},
    {"prompt": "<context>plain input</context>"},
    {"prompt": ["<context>plain input</context>"]},
])
def test_string_inputs_and_completion_prompts_are_read_when_used(request_body):
    assert texts(extract_contexts(request_body, None, DEFAULT)) == ["plain input"]


def test_nothing_is_extracted_when_the_request_is_unparseable_and_has_no_metadata():
    assert extract_contexts(None, None, DEFAULT) == []
    assert extract_contexts(None, "not json", DEFAULT) == []
