"""One module per API dialect: each path belongs to one dialect, each dialect says what capture,
shadowing and replay may do with it, and no code outside proxy/dialects names an endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shadowtap.proxy.dialects import DIALECTS, OTHER, dialect_for_path, dialect_named

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path, name", [
    ("/v1/chat/completions", "chat.completions"), ("/openai/v1/chat/completions/", "chat.completions"),
    ("/v1/completions", "completions"), ("/v1/embeddings", "embeddings"), ("/v1/responses", "responses"),
    ("/v1/responses/resp_123", "responses"), ("/v1/responses/resp_123/input_items", "responses"),
    ("/v1/models", "other"), ("/v1/files/file-1/content", "other"),
])
def test_each_path_belongs_to_exactly_the_dialect_that_names_it(path, name):
    assert dialect_for_path(path).name == name
    owners = [dialect.name for dialect in DIALECTS if dialect.owns(path)]
    # /chat/completions also ends in /completions: the registry's order settles it, once.
    assert owners[:1] == ([name] if name != "other" else [])


def test_dialect_names_are_unique_and_found_again_by_name():
    names = [dialect.name for dialect in DIALECTS]
    assert len(names) == len(set(names)) and OTHER.name not in names
    assert all(dialect_named(name) is dialect for name, dialect in zip(names, DIALECTS, strict=True))
    assert dialect_named("gemini.generate_content") is OTHER and dialect_named(None) is OTHER


def test_what_each_dialect_allows_matches_what_shadowtap_did_before_dialects():
    allowed = {dialect.name: (dialect.captured, dialect.mirrorable, dialect.twin_capable, dialect.replayable)
               for dialect in (*DIALECTS, OTHER)}
    assert allowed == {
        "chat.completions": (True, True, True, True),
        "completions": (True, True, False, False),
        "embeddings": (True, True, False, False),
        "responses": (True, True, False, True),
        "anthropic.messages": (True, True, False, True),
        "anthropic.count_tokens": (False, False, False, False),
        "other": (False, False, False, False),
    }
    assert dialect_named("embeddings").shadow_request({"model": "e", "input": "x"}).api == "embedding"
    assert not dialect_named("embeddings").streams_when_asked


def test_a_stateful_responses_request_is_never_mirrored():
    responses = dialect_named("responses")
    # `store` (true by default) asks the primary to keep the answer; it leans on no earlier state.
    assert responses.mirror_refusal({"model": "m", "input": "hi"}) is None
    assert responses.mirror_refusal({"model": "m", "input": "hi", "store": False}) is None
    assert responses.mirror_refusal({"model": "m", "input": "hi", "previous_response_id": "r1"}) == "stateful"
    assert responses.mirror_refusal({"model": "m", "store": False, "previous_response_id": "r1"}) == "stateful"
    assert dialect_named("chat.completions").mirror_refusal({"model": "m"}) is None


_ENDPOINT_NAME = re.compile(
    r"""["'](chat\.completions|completions|embeddings|responses|anthropic\.messages|anthropic\.count_tokens)["']""")
# Where a name is data, not a decision: the config's list of what candidates may mirror, CLI
# examples and help text, the simulator (which is an upstream) and the demo's scripted workload.
_NAMES_ALLOWED_IN = ("proxy/dialects/", "core/config/", "proxy/simulator/", "proxy/demo", "replay/cli.py")


def test_no_code_outside_the_dialects_decides_by_endpoint_name():
    offenders = []
    for folder in ("core", "proxy", "evaluators", "replay"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative.startswith(_NAMES_ALLOWED_IN):
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if _ENDPOINT_NAME.search(line):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
