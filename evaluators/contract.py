"""contract: does the answer keep its output contract (JSON Schema) and call only declared tools correctly?

The schemas are the request's own, as its dialect reads them (`response_format` for chat
completions, `text.format` for the Responses API, `output_format` for Anthropic Messages), and the
first `[contracts] rules` entry matching the exchange. Each tool call must name a declared function
tool and carry arguments valid against its parameters (an Anthropic tool's `input_schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shadowtap.core.config import ContractRule, ShadowtapConfig
from shadowtap.core.json_schemas import load_schema, text_errors, tool_call_errors
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
                errors += text_errors(answer.text, schema)
        if answer.tool_calls and item.request is not None:
            checked.append("tool_calls")
            errors += tool_call_errors(answer.tool_calls, declared_tools(item.request, _dialect(item)))
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


def declared_tools(request: dict, dialect: Dialect = OTHER) -> dict[str, dict | None]:
    """Function tools the request declared, name -> parameters schema (None: any arguments)."""
    return dialect.declared_tools(request)
