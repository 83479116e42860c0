"""What differs between a captured answer and its replay: text, JSON and tool-call diffs, and HTML.

An answer is {"text": str | None, "tool_calls": list | None}; tool calls are in OpenAI shape
({"id", "type", "function": {"name", "arguments": JSON text}}). Call ids are ignored: they are
minted afresh on every call.
"""

from __future__ import annotations

import difflib
import html
import re

import orjson

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
_MISSING = object()


def diff_answers(original: dict, replayed: dict) -> dict:
    """{"identical", "text_diff", "json_diff", "tool_call_diff"} for two answers."""
    old_text, new_text = original.get("text") or "", replayed.get("text") or ""
    old_calls, new_calls = original.get("tool_calls") or [], replayed.get("tool_calls") or []
    text_diff = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                          fromfile="original", tofile="replay", n=1, lineterm=""))
    old_json, new_json = _parse_structured(old_text), _parse_structured(new_text)
    json_diff = json_paths_diff(old_json, new_json) if old_json is not _MISSING and new_json is not _MISSING else []
    tool_call_diff = _tool_call_diff(old_calls, new_calls)
    return {"identical": old_text == new_text and not tool_call_diff, "text_diff": text_diff,
            "json_diff": json_diff, "tool_call_diff": tool_call_diff}


def json_paths_diff(old: object, new: object, path: str = "$") -> list[str]:
    """Lines like "$.score: 3 -> 4", "$.extra: added", "$.items[2]: removed", in document order."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in list(old) + [key for key in new if key not in old]:
            child = f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{orjson.dumps(key).decode()}]"
            if key not in new:
                lines.append(f"{child}: removed")
            elif key not in old:
                lines.append(f"{child}: added")
            else:
                lines += json_paths_diff(old[key], new[key], child)
        return lines
    if isinstance(old, list) and isinstance(new, list):
        lines = []
        for index in range(max(len(old), len(new))):
            child = f"{path}[{index}]"
            if index >= len(new):
                lines.append(f"{child}: removed")
            elif index >= len(old):
                lines.append(f"{child}: added")
            else:
                lines += json_paths_diff(old[index], new[index], child)
        return lines
    # 1 == 1.0 == True in Python; a change of JSON type is still a change.
    if type(old) is type(new) and old == new:
        return []
    return [f"{path}: {_show(old)} -> {_show(new)}"]


def render_text_diff_html(original_text: str | None, replayed_text: str | None) -> str:
    """An HTML fragment of the replayed text with word-level <del>/<ins> spans; everything escaped."""
    old, new = _WORDS.findall(original_text or ""), _WORDS.findall(replayed_text or "")
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        removed, added = html.escape("".join(old[i1:i2])), html.escape("".join(new[j1:j2]))
        if op == "equal":
            out.append(added)
        else:
            if removed:
                out.append(f"<del>{removed}</del>")
            if added:
                out.append(f"<ins>{added}</ins>")
    return "".join(out)


def _parse_structured(text: str) -> object:
    """The JSON object or array in `text` (a ```json fence allowed), else _MISSING."""
    fenced = _FENCE.match(text)
    try:
        value = orjson.loads(fenced.group(1) if fenced else text)
    except orjson.JSONDecodeError:
        return _MISSING
    return value if isinstance(value, (dict, list)) else _MISSING


def _tool_call_diff(old_calls: list, new_calls: list) -> list[str]:
    lines = []
    for index in range(max(len(old_calls), len(new_calls))):
        if index >= len(new_calls):
            lines.append(f"call {index}: missing in replay")
            continue
        new_name, new_args = _call_parts(new_calls[index])
        if index >= len(old_calls):
            lines.append(f"call {index} {new_name}: added in replay")
            continue
        old_name, old_args = _call_parts(old_calls[index])
        if old_name != new_name:
            lines.append(f"call {index}: name {_show(old_name)} -> {_show(new_name)}")
        old_value, new_value = _parse_arguments(old_args), _parse_arguments(new_args)
        if old_value is _MISSING or new_value is _MISSING:
            if old_args != new_args:
                lines.append(f"call {index} {new_name}: arguments {_show(old_args)} -> {_show(new_args)}")
        else:
            lines += [f"call {index} {new_name}: {line}" for line in json_paths_diff(old_value, new_value)]
    return lines


def _call_parts(call: object) -> tuple[str, object]:
    if not isinstance(call, dict):
        return "?", call
    inner = call.get("function")
    function = inner if isinstance(inner, dict) else call
    return str(function.get("name") or "?"), function.get("arguments")


def _parse_arguments(arguments: object) -> object:
    if isinstance(arguments, (dict, list)):
        return arguments
    if isinstance(arguments, str):
        try:
            return orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return _MISSING
    return _MISSING


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)
