"""Output contracts on the live path: which canaried requests carry one, and whether an answer keeps it.

A request is contract-bound when it asks for structured output (`response_format` json_schema or
json_object, as its dialect reads it), declares tools, or matches a `[[contracts.rules]]` entry
(first match wins, as in the `contract` evaluator; `endpoint`, `task` and `tag` are read from the
request's path and x-shadowtap-* headers). A contract-bound answer from a candidate is buffered
whole and checked here before the app gets any of it.

The checks are the `contract` evaluator's own (`core/json_schemas.py`): an answer is kept only if
it parses, completed, carries text valid against every schema that applies (unless it is a
tool-calling turn) and calls only declared tools with valid arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shadowtap.core.config import ContractRule
from shadowtap.core.json_schemas import load_schema, text_errors, tool_call_errors
from shadowtap.proxy.capture.assemble import assemble_response
from shadowtap.proxy.capture.decoding import decode_chunks
from shadowtap.proxy.dialects import Dialect
from shadowtap.proxy.headers import SHADOWTAP_PREFIX, header_value

_TASK = SHADOWTAP_PREFIX + b"task"


@dataclass(frozen=True)
class Contract:
    """What a contract-bound request's answer must keep."""

    schemas: tuple[dict, ...]
    tools: dict[str, dict | None]


class ContractRules:
    """The configured `[[contracts.rules]]` with their schemas, loaded once at start-up."""

    def __init__(self, rules: list[tuple[ContractRule, dict]]) -> None:
        self._rules = rules

    @classmethod
    def load(cls, rules: list[ContractRule], config_dir: Path) -> ContractRules:
        return cls([(rule, load_schema(config_dir / rule.schema_file, f"[[contracts.rules]] {index}"))
                    for index, rule in enumerate(rules)])

    def matching(self, dialect: Dialect, headers: list[tuple[bytes, bytes]]) -> dict | None:
        for rule, schema in self._rules:
            if rule.endpoint and rule.endpoint != dialect.name:
                continue
            if rule.task and rule.task.encode("latin-1") != header_value(headers, _TASK):
                continue
            if rule.tag:
                name, _, value = rule.tag.partition("=")
                found = header_value(headers, SHADOWTAP_PREFIX + name.strip().lower().encode("latin-1"))
                if found is None or found.decode("latin-1") != value.strip():
                    continue
            return schema
        return None

    def contract_for(self, dialect: Dialect, headers: list[tuple[bytes, bytes]], request: dict) -> Contract | None:
        """The request's contract, or None when it is not contract-bound."""
        schemas = []
        own = dialect.output_schema(request)
        if own is not None:
            schemas.append(own[1])
        ruled = self.matching(dialect, headers)
        if ruled is not None:
            schemas.append(ruled)
        tools = dialect.declared_tools(request)
        if not schemas and not tools and not request.get("tools"):
            return None
        return Contract(tuple(schemas), tools)


def answer_errors(contract: Contract, dialect: Dialect, response_headers: list[tuple[bytes, bytes]],
                  chunks: list[bytes]) -> list[str]:
    """Why a complete 2xx answer breaks the contract; [] when it keeps it."""
    encoding = header_value(response_headers, b"content-encoding")
    if encoding and encoding.strip().lower() not in (b"identity", b""):
        chunks, error = decode_chunks(encoding.decode("latin-1"), chunks)
        if error:
            return [f"$: the body could not be decoded ({error})"]
    content_type = header_value(response_headers, b"content-type")
    answer = assemble_response(dialect, content_type.decode("latin-1") if content_type else None, chunks)
    if not answer.complete:
        return [f"$: the answer is incomplete ({answer.parse_error or 'the stream did not finish'})"]
    errors: list[str] = []
    try:
        if contract.schemas and not (answer.tool_calls and not answer.text):
            for schema in contract.schemas:
                errors += text_errors(answer.text, schema)
        if answer.tool_calls:
            errors += tool_call_errors(answer.tool_calls, contract.tools)
    except (ValueError, TypeError) as exc:
        # The app's own schema is broken: nothing can be shown to keep the answer, so the primary answers.
        errors.append(f"$: the request's schema cannot be used ({exc})")
    return errors
