"""Diffs between a captured answer and its replay: text, JSON, tool calls and escaped HTML."""

import orjson

from shadowtap.replay.diff import diff_answers, render_text_diff_html


def answer(text=None, tool_calls=None):
    return {"text": text, "tool_calls": tool_calls}


def call(name, arguments, call_id="call_1"):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(arguments).decode()}}


def test_identical_answers_have_no_diffs_when_only_call_ids_differ():
    result = diff_answers(answer("same", [call("f", {"a": 1}, "call_x")]),
                          answer("same", [call("f", {"a": 1}, "call_y")]))
    assert result == {"identical": True, "text_diff": [], "json_diff": [], "tool_call_diff": []}


def test_missing_text_and_tool_calls_count_as_empty():
    assert diff_answers(answer(None, None), answer("", []))["identical"] is True


def test_text_diff_is_a_unified_diff_with_one_line_of_context():
    old = "line 1\nline 2\nline 3\nline 4\nline 5"
    new = "line 1\nline 2\nline three\nline 4\nline 5"
    result = diff_answers(answer(old), answer(new))
    assert result["identical"] is False
    assert result["text_diff"] == ["--- original", "+++ replay", "@@ -2,3 +2,3 @@",
                                   " line 2", "-line 3", "+line three", " line 4"]
    assert result["json_diff"] == []


def test_json_diff_lists_changed_added_and_removed_paths_when_both_texts_are_json():
    old = orjson.dumps({"score": 3, "tags": ["a", "b"], "gone": True, "nested": {"ok": "yes"}}).decode()
    new = "```json\n" + orjson.dumps({"score": 4, "tags": ["a"], "nested": {"ok": "no"}, "extra": None,
                                      "odd key": 1}).decode() + "\n```"
    assert diff_answers(answer(old), answer(new))["json_diff"] == [
        "$.score: 3 -> 4", "$.tags[1]: removed", "$.gone: removed", "$.nested.ok: 'yes' -> 'no'",
        "$.extra: added", '$["odd key"]: added']


def test_json_diff_reports_a_change_of_type_even_when_python_calls_the_values_equal():
    assert diff_answers(answer('{"a": 1}'), answer('{"a": true}'))["json_diff"] == ["$.a: 1 -> true"]


def test_json_diff_is_empty_when_either_text_is_not_a_json_object_or_array():
    assert diff_answers(answer('{"a": 1}'), answer("not json"))["json_diff"] == []
    assert diff_answers(answer("3"), answer("4"))["json_diff"] == []


def test_tool_call_diff_names_changed_arguments_and_missing_calls():
    old = [call("get_weather", {"city": "Paris", "unit": "C"}), call("get_time", {"tz": "CET"})]
    new = [call("get_weather", {"city": "Rome", "unit": "C"})]
    result = diff_answers(answer(None, old), answer(None, new))
    assert result["identical"] is False
    assert result["tool_call_diff"] == ["call 0 get_weather: $.city: 'Paris' -> 'Rome'", "call 1: missing in replay"]


def test_tool_call_diff_names_renamed_extra_and_unparseable_calls():
    old = [call("a", {}), {"function": {"name": "b", "arguments": "{broken"}}]
    new = [call("c", {}), {"function": {"name": "b", "arguments": "{broken too"}}, call("d", {"x": 1})]
    assert diff_answers(answer(None, old), answer(None, new))["tool_call_diff"] == [
        "call 0: name 'a' -> 'c'", "call 1 b: arguments '{broken' -> '{broken too'", "call 2 d: added in replay"]


def test_html_diff_marks_deleted_and_inserted_words():
    assert render_text_diff_html("the cat sat", "the dog sat") == "the <del>cat</del><ins>dog</ins> sat"


def test_html_diff_escapes_captured_text_everywhere():
    rendered = render_text_diff_html('safe <script>alert("x")</script> & more',
                                     "safe <img src=x onerror=alert(1)> & more")
    assert "<script" not in rendered and "<img" not in rendered
    assert "script&gt;" in rendered and "&quot;x&quot;" in rendered and "&amp; more" in rendered
    assert (rendered.replace("<del>", "").replace("</del>", "").replace("<ins>", "").replace("</ins>", "")
            .count("<") == 0)


def test_html_diff_escapes_a_script_that_is_inserted_whole():
    rendered = render_text_diff_html("hello", "hello <script>alert(1)</script>")
    assert rendered == "hello<ins> &lt;script&gt;alert(1)&lt;/script&gt;</ins>"


def test_html_diff_handles_missing_text():
    assert render_text_diff_html(None, "<b>new</b>") == "<ins>&lt;b&gt;new&lt;/b&gt;</ins>"
