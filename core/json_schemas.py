"""Checking answers against JSON Schemas: one set of rules for the contract evaluator (offline)
and the canary's live fallback, so an answer the canary lets through is one the evaluator passes.

Violations come back as "<JSON path>: <message>" strings, sorted by path; formats are checked.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import orjson
from jsonschema import validators
from jsonschema.exceptions import SchemaError

from shadowtap.core.errors import ConfigError


def text_errors(text: str | None, schema: dict) -> list[str]:
    """What is wrong with an answer's text as JSON against `schema` (empty: it conforms)."""
    if not text:
        return ["$: the answer has no text to validate"]
    try:
        instance = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [f"$: not valid JSON ({exc})"]
    return schema_errors(instance, schema)


def tool_call_errors(calls: list[dict], tools: dict[str, dict | None]) -> list[str]:
    """What is wrong with tool calls against the declared tools (name -> parameters schema, None:
    any arguments)."""
    errors = []
    for index, call in enumerate(calls):
        inner = call.get("function")
        function = inner if isinstance(inner, dict) else {}
        name = function.get("name")
        where = f"tool_calls[{index}]"
        if name not in tools:
            declared = ", ".join(sorted(tools)) or "none"
            errors.append(f"{where}: unknown tool {name!r} (declared: {declared})")
            continue
        arguments = function.get("arguments")
        try:
            instance = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError as exc:
            errors.append(f"{where} {name} $: arguments are not valid JSON ({exc})")
            continue
        schema = tools[name]
        if schema is not None:
            errors += [f"{where} {name} {error}" for error in schema_errors(instance, schema)]
    return errors


def schema_errors(instance: object, schema: dict) -> list[str]:
    """Every violation as "<JSON path>: <message>", sorted by path. ValueError when the schema
    itself is not valid JSON Schema."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    found = sorted(validator.iter_errors(instance), key=lambda error: error.json_path)
    return [f"{error.json_path}: {error.message}" for error in found]


@lru_cache(maxsize=256)
def _validator(schema_json: bytes):
    # An app sends the same few schemas again and again: each is checked and compiled once.
    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"the schema itself is not valid JSON Schema: {exc.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def load_schema(path: Path, key: str) -> dict:
    """A JSON Schema file, checked now so a broken contract is a config error before anything runs."""
    try:
        schema = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{key} schema_file = {str(path)!r}: cannot be read ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{key} schema_file = {str(path)!r}: not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"{key} schema_file = {str(path)!r}: expected a JSON Schema object")
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"{key} schema_file = {str(path)!r}: not a valid JSON Schema ({exc.message})") from None
    return schema
