"""agreement: how closely a candidate's answer matches the primary's (and the primary its twin's).

Three methods, picked from what the two answers are:

- **tool_calls** (either answer called a tool): calls are paired by function name, in order.
  A pair with the same name scores 0.5 + 0.5 x the share of equal argument fields; a call with
  no partner scores 0. The answer's score is the pairs' sum over the longer list of calls.
- **json** (both texts parse as a JSON object or array, code fences allowed): the share of equal
  leaf fields over the union of both answers' leaf paths (`$.items[0].name`). Numbers compare
  by value (1 == 1.0), booleans only with booleans, strings exactly.
- **text** (prose): both sides are normalised (NFKC, casefolded, punctuation dropped, whitespace
  collapsed), then the mean of token F1 (SQuAD-style, over word multisets: robust to reordering)
  and character-trigram Dice (robust to inflection, spelling and tokenisation differences),
  times 1 - the answer's added share: what the answer says that the reference does not. Both
  similarities are symmetric and barely move when a sentence is appended to an otherwise equal
  answer (an invented claim scored 0.92), so the added share is asymmetric: the content words,
  new to the reference, of the answer's sentences the reference does not support (under half of
  their content words appear in it). Rewording keeps a sentence supported; a made-up claim does not.

Labels: "agree" at >= 0.9, "partial" at >= 0.5, "disagree" below. The primary itself is scored
only against its twin (its own second answer, `"baseline": "primary_twin"` in the details): that
is the noise floor a candidate's agreement is read against. The twin is never scored itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import orjson

from shadowtap.core.config import ShadowtapConfig
from shadowtap.evaluators.base import PRIMARY_TWIN, Answer, EvalItem, NotApplicable, Score
from shadowtap.evaluators.text_support import added_content, char_ngram_dice, normalize_for_comparison, token_f1

AGREE_AT = 0.9
PARTIAL_AT = 0.5
_MAX_PATHS = 50
_MAX_ADDED, _ADDED_LENGTH = 5, 200     # added sentences kept in the details, and their length
_FENCE_RE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


class AgreementEvaluator:
    """A candidate's answer against the primary's: JSON fields, tool calls, or prose similarity."""

    name: ClassVar[str] = "agreement"
    version: ClassVar[str] = "2"   # 2: prose agreement counts what the answer adds
    needs_judge: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> AgreementEvaluator:
        return cls()

    def applies(self, item: EvalItem) -> bool:
        return not isinstance(self._pair(item), NotApplicable)

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        pair = self._pair(item)
        if isinstance(pair, NotApplicable):
            return pair
        answer, reference, baseline = pair
        value, details = compare_answers(answer, reference)
        details["against"] = reference.source
        if baseline:
            details["baseline"] = baseline
        label = "agree" if value >= AGREE_AT else "partial" if value >= PARTIAL_AT else "disagree"
        return Score(value=round(value, 6), label=label, details=details)

    @staticmethod
    def _pair(item: EvalItem) -> tuple[Answer, Answer, str | None] | NotApplicable:
        """(answer, what it is compared with, baseline marker), or why there is nothing to compare."""
        if item.answer.source == PRIMARY_TWIN:
            return NotApplicable("the twin is the primary's reference, not scored itself")
        if item.is_primary:
            if item.twin is None:
                return NotApplicable("the primary is the reference; no twin sample to measure its noise")
            answer, reference, baseline = item.answer, item.twin, "primary_twin"
        else:
            answer, reference, baseline = item.answer, item.primary, None
        for side in (answer, reference):
            if not has_answer(side):
                return NotApplicable(f"{side.source} has no answer to compare")
        return answer, reference, baseline


def has_answer(answer: Answer) -> bool:
    """An answer with text or tool calls and no error status."""
    if answer.status is not None and answer.status >= 400:
        return False
    return answer.text is not None or bool(answer.tool_calls)


def compare_answers(answer: Answer, reference: Answer) -> tuple[float, dict[str, Any]]:
    if answer.tool_calls or reference.tool_calls:
        return compare_tool_calls(answer.tool_calls or [], reference.tool_calls or [])
    structured_a, structured_b = parse_structured(answer.text), parse_structured(reference.text)
    if structured_a is not _MISSING and structured_b is not _MISSING:
        value, differing, compared = compare_json(structured_a, structured_b)
        return value, {"method": "json", "fields": compared, "differing_paths": differing[:_MAX_PATHS]}
    return compare_text(answer.text or "", reference.text or "")


def parse_structured(text: str | None) -> Any:
    """The JSON object or array in `text` (a surrounding code fence allowed), else `_MISSING`."""
    if not text:
        return _MISSING
    stripped = text.strip()
    fenced = _FENCE_RE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    if not stripped or stripped[0] not in "{[":
        return _MISSING
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return _MISSING
    return value if isinstance(value, (dict, list)) else _MISSING


def flatten(value: Any, path: str = "$") -> dict[str, Any]:
    """Leaf paths to leaf values; empty objects and arrays are leaves themselves."""
    leaves: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for key, child in value.items():
            child_path = f"{path}.{key}" if _IDENTIFIER_RE.match(key) else f"{path}[{orjson.dumps(key).decode()}]"
            leaves.update(flatten(child, child_path))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            leaves.update(flatten(child, f"{path}[{index}]"))
    else:
        leaves[path] = value
    return leaves


def leaves_equal(a: Any, b: Any) -> bool:
    # bool is an int in Python; in JSON true and 1 are different values.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def compare_json(a: Any, b: Any, prefix: str = "$") -> tuple[float, list[str], int]:
    """(share of equal leaves over the union of paths, differing paths, number of paths)."""
    leaves_a, leaves_b = flatten(a, prefix), flatten(b, prefix)
    paths = list(leaves_a) + [path for path in leaves_b if path not in leaves_a]
    # A path on one side only is a difference: _MISSING equals nothing.
    differing = [path for path in paths if not leaves_equal(leaves_a.get(path, _MISSING), leaves_b.get(path, _MISSING))]
    return (1 - len(differing) / len(paths)) if paths else 1.0, differing, len(paths)


def _call_parts(call: Any) -> tuple[str | None, Any]:
    """(function name, parsed arguments) of an OpenAI-shaped tool call; raw text when not JSON."""
    if not isinstance(call, dict):
        return None, call
    inner = call.get("function")
    function = inner if isinstance(inner, dict) else call
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError:
            pass
    return function.get("name"), arguments


def compare_tool_calls(calls_a: list, calls_b: list) -> tuple[float, dict[str, Any]]:
    parts_a, parts_b = [_call_parts(c) for c in calls_a], [_call_parts(c) for c in calls_b]
    if not parts_a or not parts_b:
        return 0.0, {"method": "tool_calls", "calls": [len(parts_a), len(parts_b)],
                     "differing_paths": ["tool_calls"], "reason": "only one answer called tools"}
    unmatched_b = list(range(len(parts_b)))
    total = 0.0
    differing: list[str] = []
    for index, (name, arguments) in enumerate(parts_a):
        partner = next((j for j in unmatched_b if parts_b[j][0] == name), None)
        if partner is None:
            differing.append(f"tool_calls[{index}].name")
            continue
        unmatched_b.remove(partner)
        other = parts_b[partner][1]
        prefix = f"tool_calls[{index}].arguments"
        if isinstance(arguments, (dict, list)) and isinstance(other, (dict, list)):
            share, paths, _ = compare_json(arguments, other, prefix)
        else:
            same = arguments == other
            share, paths = (1.0, []) if same else (0.0, [prefix])
        total += 0.5 + 0.5 * share
        differing += paths
    differing += [f"tool_calls[{j}].name (only in reference)" for j in unmatched_b]
    value = total / max(len(parts_a), len(parts_b))
    return value, {"method": "tool_calls", "calls": [len(parts_a), len(parts_b)],
                   "differing_paths": differing[:_MAX_PATHS]}


def compare_text(a: str, b: str) -> tuple[float, dict[str, Any]]:
    """Answer `a` against reference `b`: symmetric similarity, discounted by what `a` adds."""
    norm_a, norm_b = normalize_for_comparison(a), normalize_for_comparison(b)
    f1 = token_f1(norm_a.split(), norm_b.split())
    dice = char_ngram_dice(norm_a, norm_b) if norm_a or norm_b else 1.0
    added, sentences = added_content(a, b)
    return (f1 + dice) / 2 * (1 - added), {
        "method": "text", "token_f1": round(f1, 4), "char_trigram_dice": round(dice, 4),
        "added_share": round(added, 4), "added_sentences": [_shortened(s) for s in sentences[:_MAX_ADDED]],
        "differing_paths": []}


def _shortened(text: str) -> str:
    return text if len(text) <= _ADDED_LENGTH else text[:_ADDED_LENGTH - 1] + "…"
