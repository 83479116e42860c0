"""contract: does the answer keep its output contract (JSON Schema) and call only declared tools correctly?

The schemas are the request's own, as its dialect reads them (`response_format` for chat
completions, `text.format` for the Responses API, `output_format` for Anthropic Messages), and the
first `[contracts] rules` entry matching the exchange. Each tool call must name a declared function
tool and carry arguments valid against its parameters (an Anthropic tool's `input_schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import orjson
from jsonschema import validators
from jsonschema.exceptions import SchemaError

from shadowtap.core.config import ContractRule, ShadowtapConfig
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.base import EvalItem, NotApplicable, Score
from shadowtap.evaluators.items import rule_matches
from shadowtap.proxy.dialects import OTHER, Dialect, dialect_named

MAX_ERRORS = 20  # enough to fix an answer; a wholly wrong one would otherwise list every field


class ContractEvaluator:
    name = "contract"
    version = "1"
    needs_judge = False

    def __init__(self, rules: Sequence[tuple[ContractRule, dict]] | None = None) -> None:
        self.rules = list(rules or [])   # (ContractRule, its loaded schema), first match wins

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> ContractEvaluator:
        rules = []
        for index, rule in enumerate(config.contracts.rules):
            rules.append((rule, load_schema(config_dir / rule.schema_file, f"[[contracts.rules]] {index}")))
        return cls(rules)

    def applies(self, item: EvalItem) -> bool:
        return bool(self._schemas(item)) or bool(item.answer.tool_calls and item.request is not None)

    async def score(self, item: EvalItem) -> Score | NotApplicable:
        answer = item.answer
        if answer.status is not None and not 200 <= answer.status < 300:
            return NotApplicable(f"the answer is an error (HTTP {answer.status}), not an output")
        errors: list[str] = []
        checked: list[str] = []
        schemas = self._schemas(item)
        # A tool-calling turn answers with calls instead of text; the output schema is for text.
        if schemas and not (answer.tool_calls and not answer.text):
            for origin, schema in schemas:
                checked.append(origin)
                errors += validate_text(answer.text, schema)
        if answer.tool_calls and item.request is not None:
            checked.append("tool_calls")
            errors += validate_tool_calls(answer.tool_calls, declared_tools(item.request, _dialect(item)))
        if not checked:
            return NotApplicable("no output schema or tool declaration applies to this answer")
        details = {"checked": checked, "errors": errors[:MAX_ERRORS], "error_count": len(errors)}
        return Score(0.0, "invalid", details) if errors else Score(1.0, "valid", details)

    def _schemas(self, item: EvalItem) -> list[tuple[str, dict]]:
        schemas = []
        own = request_schema(item.request, _dialect(item))
        if own is not None:
            schemas.append(own)
        for index, (rule, schema) in enumerate(self.rules):
            if rule_matches(rule, item.exchange):
                schemas.append((f"rules[{index}] {rule.schema_file}", schema))
                break
        return schemas


def _dialect(item: EvalItem) -> Dialect:
    return dialect_named(item.exchange.get("endpoint"))


def request_schema(request: dict | None, dialect: Dialect = OTHER) -> tuple[str, dict] | None:
    """The output schema the request itself asked for, named by where it came from."""
    return dialect.output_schema(request) if isinstance(request, dict) else None


def validate_text(text: str | None, schema: dict) -> list[str]:
    if not text:
        return ["$: the answer has no text to validate"]
    try:
        instance = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [f"$: not valid JSON ({exc})"]
    return schema_errors(instance, schema)


def validate_tool_calls(calls: list[dict], tools: dict[str, dict | None]) -> list[str]:
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


def declared_tools(request: dict, dialect: Dialect = OTHER) -> dict[str, dict | None]:
    """Function tools the request declared, name -> parameters schema (None: any arguments)."""
    return dialect.declared_tools(request)


def schema_errors(instance: object, schema: dict) -> list[str]:
    """Every violation as "<JSON path>: <message>", sorted by path."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    found = sorted(validator.iter_errors(instance), key=lambda error: error.json_path)
    return [f"{error.json_path}: {error.message}" for error in found]


@lru_cache(maxsize=256)
def _validator(schema_json: bytes):
    # Most exchanges of one app share a handful of schemas; checking each once keeps scoring fast.
    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"the schema itself is not valid JSON Schema: {exc.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def load_schema(path: Path, key: str) -> dict:
    """A JSON Schema file, checked now so a broken contract stops the run before it starts."""
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
